# world: transform-plugin
"""Hostile test guest: loops forever on the first record; the deadline must stop it."""

from autoflow_plugin import transform


@transform(name="py-spin-loop", version="0.1.0", description="Never returns (test guest)")
class SpinLoop:
    def __init__(self, config: dict):
        pass

    def process(self, record: dict) -> dict:
        n = 0
        while True:
            n += 1


Transform = SpinLoop
