# world: transform-plugin
"""`fingerprint` (Python): tags each JSON object with `fp`, the FNV-1a 32-bit hash of its compact
JSON text, as the object's first field. Empty objects are dropped; anything else is refused.

The same transform exists in Rust, JavaScript and C (docs/plugins.md); on compact JSON input
all four write byte-identical output.
"""

from autoflow_plugin import Reject, dumps, transform


def fnv1a(data: bytes) -> str:
    h = 0x811C9DC5
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return f"{h:08x}"


@transform(name="fingerprint", version="0.1.0",
           description="Adds `fp`, the FNV-1a hash of each JSON object, as its first field.",
           config_schema={"type": "object", "additionalProperties": False})
class Fingerprint:
    def __init__(self, config: dict):
        pass

    def process(self, record: dict) -> dict | None:
        if not record:
            return None
        return {"fp": fnv1a(dumps(record)), **record}


Transform = Fingerprint
