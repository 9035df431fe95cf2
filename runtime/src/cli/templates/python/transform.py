# world: transform-plugin
"""`{{name}}`: an Autoflow transform. It marks each JSON object with `"seen": true`."""

from autoflow_plugin import transform


@transform(name="{{name}}", version="0.1.0", description="Marks each JSON object with \"seen\": true.",
           config_schema={"type": "object", "additionalProperties": False})
class Plugin:
    def __init__(self, config: dict):
        pass

    def process(self, record: dict) -> dict | list[dict] | None:
        return {**record, "seen": True}


Transform = Plugin
