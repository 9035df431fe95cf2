// world: sink-plugin
// `{{name}}`: an Autoflow sink. It logs each record through the host (`autoflow run` shows the
// lines) and counts them in the run metric `written`. (The JS runtime has no file API.)
import { count, defineSink, log } from "./autoflow.js";

export const sink = defineSink(
  {
    name: "{{name}}",
    version: "0.1.0",
    description: "Logs each record and counts them.",
    configSchema: { type: "object", additionalProperties: false },
  },
  class Plugin {
    write(record) {
      log(`record: ${JSON.stringify(record)}`);
      count("written");
    }
  },
);
