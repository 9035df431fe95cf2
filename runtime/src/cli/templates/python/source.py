# world: source-plugin
"""`{{name}}`: an Autoflow source. It emits `count` records {"n": i}; its cursor is the last `n`
read, so a resumed run goes on from there."""

from autoflow_plugin import source


@source(name="{{name}}", version="0.1.0", description="Emits `count` records {\"n\": i}.",
        config_schema={"type": "object", "properties": {"count": {"type": "integer", "minimum": 0}},
                       "additionalProperties": False})
class Plugin:
    def __init__(self, config: dict, cursor: str | None):
        self.count = config.get("count", 3)
        self.cursor = int(cursor) if cursor else 0

    def next(self, max_records: int) -> list[dict] | None:
        if self.cursor >= self.count:
            return None
        end = min(self.count, self.cursor + max_records)
        batch = [{"n": n} for n in range(self.cursor + 1, end + 1)]
        self.cursor = end
        return batch


Source = Plugin
