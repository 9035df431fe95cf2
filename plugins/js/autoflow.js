// Autoflow plugins in JavaScript: a source, transform or sink is a small class over objects.
//
//   import { Reject, transform } from "./autoflow.js";
//   export const transform = defineTransform({ name, version, description, configSchema },
//     class { constructor(config) {}  process(record) { return { ...record, seen: true }; } });
//
// `process` sees each record's value parsed as JSON (it must be an object) and returns an
// object (one record out), an array of objects (any number), or null/undefined (dropped).
// Returning or throwing `new Reject(reason)` refuses the record (a dead letter); any other
// exception refuses it too, with its message. Throw `InvalidConfig`, `Retryable` or `Fatal` to
// fail the whole batch with that kind of error. Output objects are written as compact JSON
// (JSON.stringify), the same bytes as the Python and Rust SDKs for the same object. Key,
// headers and timestamp of the input record carry over to every record made from it.
//
// componentize-js bundles this module with the plugin; plugins/build-lang.sh builds each
// example with `componentize-js FILE --wit wit -n WORLD -d http fetch-event -o OUT`.
import * as host from "autoflow:plugin/host@0.1.0";

/** Refuses the record being processed; return it or throw it. */
export class Reject extends Error {
  constructor(reason) {
    super(reason);
    this.reason = reason;
  }
}

/** Fails the whole call; the subclass tells the host whether to retry. */
export class PluginError extends Error {
  get tag() {
    return "fatal";
  }
}
/** The step's configuration is wrong: retrying will not help. */
export class InvalidConfig extends PluginError {
  get tag() {
    return "invalid-config";
  }
}
/** A passing failure: the host may retry with backoff. */
export class Retryable extends PluginError {
  get tag() {
    return "retryable";
  }
}
/** The step cannot go on: the run fails. */
export class Fatal extends PluginError {}

/** Writes a line to the run's log (level: trace, debug, info, warn or error). */
export const log = (message, level = "info") => host.log(level, message);
/** Adds `delta` to the run metric `name` of this step. */
export const count = (name, delta = 1) => host.count(name, BigInt(delta));
/** The bytes stored under `key` in this step's durable state, if any. */
export const stateGet = (key) => host.stateGet(key);
/** Stores `value` (Uint8Array) under `key` in this step's durable state. */
export const stateSet = (key, value) => host.stateSet(key, value);
/** The secret `name`, if it was granted to this step. */
export const secret = (name) => host.secret(name);

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Compact JSON as UTF-8 bytes: the form every Autoflow SDK writes. */
export const dumps = (value) => encoder.encode(JSON.stringify(value));

/** The WIT error for anything thrown out of a plugin call. */
function witError(e, fallback = "fatal") {
  if (e instanceof PluginError) return { tag: e.tag, val: e.message };
  return { tag: fallback, val: e instanceof Error ? `${e.name}: ${e.message}` : String(e) };
}

function parseObject(bytes) {
  let value;
  try {
    value = JSON.parse(decoder.decode(bytes));
  } catch {
    value = null;
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new Reject("not a JSON object");
  }
  return value;
}

function describe(meta) {
  const { name, version, description, configSchema } = meta;
  return () => ({
    name,
    version,
    description,
    configSchema: configSchema === undefined ? undefined : JSON.stringify(configSchema),
  });
}

function construct(Plugin, config, ...extra) {
  let parsed;
  try {
    parsed = config.trim() ? JSON.parse(config) : {};
  } catch (e) {
    throw { tag: "invalid-config", val: `config is not JSON: ${e.message}` };
  }
  try {
    return new Plugin(parsed, ...extra);
  } catch (e) {
    throw witError(e, "invalid-config");
  }
}

function call(fn) {
  try {
    return fn();
  } catch (e) {
    throw witError(e);
  }
}

/** The `transform` export for a class `new Plugin(config)` with `process(record)`. */
export function defineTransform(meta, Plugin) {
  let live = null;
  return {
    describe: describe(meta),
    open(config) {
      live = construct(Plugin, config);
    },
    process(records) {
      const out = [];
      const rejected = [];
      records.forEach((record, index) => {
        let result;
        try {
          result = live.process(parseObject(record.value));
        } catch (e) {
          if (e instanceof PluginError) throw witError(e);
          result = e instanceof Reject ? e : new Reject(e instanceof Error ? `${e.name}: ${e.message}` : String(e));
        }
        if (result instanceof Reject) {
          rejected.push({ index, reason: result.reason });
          return;
        }
        if (result === null || result === undefined) return;
        for (const value of Array.isArray(result) ? result : [result]) {
          out.push({ ...record, value: dumps(value) });
        }
      });
      return { records: out, rejected };
    },
  };
}

/** The `source` export for a class `new Plugin(config, cursor)` with `next(max)` returning an
 * array of objects or null at the end, and a `cursor` property (string or null). */
export function defineSource(meta, Plugin) {
  let live = null;
  return {
    describe: describe(meta),
    open(config, cursor) {
      live = construct(Plugin, config, cursor ?? null);
    },
    next(max) {
      const values = call(() => live.next(max));
      if (values === null || values === undefined) return undefined;
      const records = values.map((v) => ({ value: dumps(v), headers: [] }));
      return { records, cursor: live.cursor == null ? undefined : String(live.cursor) };
    },
  };
}

/** The `sink` export for a class `new Plugin(config)` with `write(record)` and optional `flush()`. */
export function defineSink(meta, Plugin) {
  let live = null;
  return {
    describe: describe(meta),
    open(config) {
      live = construct(Plugin, config);
    },
    write(records) {
      for (const record of records) {
        const value = call(() => JSON.parse(decoder.decode(record.value)));
        call(() => live.write(value));
      }
    },
    flush() {
      if (live.flush) call(() => live.flush());
    },
  };
}
