# world: source-plugin
"""`counter` (Python): a source of `count` records `{"n": 1}`, `{"n": 2}`, ... whose cursor is
the last `n` read, so a resumed run goes on where the last one stopped.
"""

from autoflow_plugin import InvalidConfig, count, source


@source(name="counter", version="0.1.0",
        description="Emits `count` records {\"n\": i}; resumes after the committed cursor.",
        config_schema={
            "type": "object",
            "properties": {"count": {"type": "integer", "minimum": 0}},
            "additionalProperties": False,
        })
class Counter:
    def __init__(self, config: dict, cursor: str | None):
        self.count = config.get("count", 10)
        if not isinstance(self.count, int) or self.count < 0:
            raise InvalidConfig("count must be a non-negative integer")
        self.cursor = int(cursor) if cursor else 0

    def next(self, max_records: int) -> list[dict] | None:
        if self.cursor >= self.count:
            return None
        end = min(self.count, self.cursor + max_records)
        batch = [{"n": n} for n in range(self.cursor + 1, end + 1)]
        self.cursor = end
        count("emitted", len(batch))
        return batch


Source = Counter
