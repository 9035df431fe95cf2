# world: transform-plugin
"""Hostile test guest: keeps allocating 16 MiB blocks; the memory cap must refuse it."""

from autoflow_plugin import transform


@transform(name="py-memory-bomb", version="0.1.0", description="Allocates without end (test guest)")
class MemoryBomb:
    def __init__(self, config: dict):
        self.hoard = []

    def process(self, record: dict) -> dict:
        while True:
            self.hoard.append(bytearray(16 << 20))


Transform = MemoryBomb
