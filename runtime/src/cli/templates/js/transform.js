// world: transform-plugin
// `{{name}}`: an Autoflow transform. It marks each JSON object with `"seen": true`.
import { defineTransform } from "./autoflow.js";

export const transform = defineTransform(
  {
    name: "{{name}}",
    version: "0.1.0",
    description: 'Marks each JSON object with "seen": true.',
    configSchema: { type: "object", additionalProperties: false },
  },
  class Plugin {
    process(record) {
      return { ...record, seen: true };
    }
  },
);
