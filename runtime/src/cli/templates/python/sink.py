# world: sink-plugin
"""`{{name}}`: an Autoflow sink. It appends each record as a JSON line to the file `path` (inside
a mount the step is granted) and makes it durable on `flush`."""

import os

from autoflow_plugin import dumps, sink


@sink(name="{{name}}", version="0.1.0", description="Appends each record as a JSON line to `path`.",
      config_schema={"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"],
                     "additionalProperties": False})
class Plugin:
    def __init__(self, config: dict):
        self.file = open(config["path"], "ab")

    def write(self, record: dict) -> None:
        self.file.write(dumps(record) + b"\n")

    def flush(self) -> None:
        self.file.flush()
        os.fsync(self.file.fileno())


Sink = Plugin
