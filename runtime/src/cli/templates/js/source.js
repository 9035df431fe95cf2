// world: source-plugin
// `{{name}}`: an Autoflow source. It emits `count` records {"n": i}; its cursor is the last `n`
// read, so a resumed run goes on from there.
import { defineSource } from "./autoflow.js";

export const source = defineSource(
  {
    name: "{{name}}",
    version: "0.1.0",
    description: 'Emits `count` records {"n": i}.',
    configSchema: {
      type: "object",
      properties: { count: { type: "integer", minimum: 0 } },
      additionalProperties: false,
    },
  },
  class Plugin {
    constructor(config, cursor) {
      this.count = config.count ?? 3;
      this.cursor = cursor ? Number(cursor) : 0;
    }
    next(max) {
      if (this.cursor >= this.count) return null;
      const end = Math.min(this.count, this.cursor + max);
      const batch = [];
      for (let n = this.cursor + 1; n <= end; n++) batch.push({ n });
      this.cursor = end;
      return batch;
    }
  },
);
