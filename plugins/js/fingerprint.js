// world: transform-plugin
// `fingerprint` (JavaScript): tags each JSON object with `fp`, the FNV-1a 32-bit hash of its
// compact JSON text, as the object's first field. Empty objects are dropped; anything else is
// refused. The same transform exists in Rust, Python and C; their outputs are byte-identical.
import { defineTransform, dumps } from "./autoflow.js";

function fnv1a(bytes) {
  let h = 0x811c9dc5;
  for (const b of bytes) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return h.toString(16).padStart(8, "0");
}

export const transform = defineTransform(
  {
    name: "fingerprint",
    version: "0.1.0",
    description: "Adds `fp`, the FNV-1a hash of each JSON object, as its first field.",
    configSchema: { type: "object", additionalProperties: false },
  },
  class Fingerprint {
    process(record) {
      if (Object.keys(record).length === 0) return null;
      return { fp: fnv1a(dumps(record)), ...record };
    }
  },
);
