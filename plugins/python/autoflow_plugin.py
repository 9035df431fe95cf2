"""Autoflow plugins in Python: write a source, transform or sink as a small class over dicts.

A transform is a class with a constructor taking the step's config (a dict) and one method::

    from autoflow_plugin import Reject, transform

    @transform(name="upper", version="0.1.0", description="Upper-cases `name`")
    class Upper:
        def __init__(self, config: dict):
            self.field = config.get("field", "name")

        def process(self, record: dict) -> dict | list[dict] | None:
            if self.field not in record:
                return Reject(f"no field {self.field!r}")   # or: raise Reject(...)
            return {**record, self.field: str(record[self.field]).upper()}

    Transform = Upper          # componentize-py looks up the export by its WIT name

`process` sees each record's value parsed as JSON (it must be an object) and returns a dict (one
record out), a list of dicts (any number), or None (the record is dropped). Returning or raising
`Reject(reason)` refuses the record (a dead letter); any other exception refuses it too, with the
exception as the reason. Raise `InvalidConfig`, `Retryable` or `Fatal` to fail the whole batch
with that kind of error. Output dicts are written as compact JSON (`{"a":1}`), keys in order,
UTF-8 as is: the same bytes as the Rust SDK's `serde_json`. Key, headers and timestamp of the
input record carry over to every record made from it.

Sources (`next(self, max) -> list[dict] | None`, with `self.cursor`) and sinks (`write(self,
record)`, `flush(self)`) work the same way; see `source` and `sink` below, and docs/plugins.md.

Build: `componentize-py -d wit -w transform-plugin componentize MODULE -o plugin.wasm`, with this
file on the module path (`-p plugins/python`); `plugins/build-lang.sh` does it for every example.
"""

import json

from componentize_py_types import Err
from wit_world.imports import host, types

__all__ = [
    "Reject", "PluginError", "InvalidConfig", "Retryable", "Fatal",
    "transform", "source", "sink", "log", "count", "state_get", "state_set", "secret",
]


class Reject(Exception):
    """Refuses the record being processed; return it or raise it. The reason goes to the dead
    letter."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class PluginError(Exception):
    """Fails the whole call; the subclass tells the host whether to retry."""

    def to_wit(self):
        return types.Error_Fatal(str(self))


class InvalidConfig(PluginError):
    """The step's configuration is wrong: fix the pipeline, retrying will not help."""

    def to_wit(self):
        return types.Error_InvalidConfig(str(self))


class Retryable(PluginError):
    """A passing failure: the host may retry with backoff."""

    def to_wit(self):
        return types.Error_Retryable(str(self))


class Fatal(PluginError):
    """The step cannot go on: the run fails."""


# --- host imports ---------------------------------------------------------------------------

_LEVELS = {
    "trace": host.Level.TRACE, "debug": host.Level.DEBUG, "info": host.Level.INFO,
    "warn": host.Level.WARN, "error": host.Level.ERROR,
}


def log(message: str, level: str = "info") -> None:
    """Writes a line to the run's log (level: trace, debug, info, warn or error)."""
    host.log(_LEVELS[level], message)


def count(name: str, delta: int = 1) -> None:
    """Adds `delta` to the run metric `name` of this step."""
    host.count(name, delta)


def state_get(key: str) -> bytes | None:
    """The bytes stored under `key` in this step's durable state, if any."""
    return host.state_get(key)


def state_set(key: str, value: bytes) -> None:
    """Stores `value` under `key` in this step's durable state."""
    host.state_set(key, value)


def secret(name: str) -> str | None:
    """The secret `name`, if it was granted to this step."""
    return host.secret(name)


# --- JSON in and out ------------------------------------------------------------------------

def dumps(value) -> bytes:
    """Compact JSON, keys in order, UTF-8 as is: the form every Autoflow SDK writes."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _loads(value: bytes) -> dict:
    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        raise Reject("not a JSON object")
    return parsed


def _open(cls, config: str, *extra):
    """Builds the plugin from its JSON config; a bad one is an `invalid-config` error."""
    try:
        parsed = json.loads(config) if config.strip() else {}
    except ValueError as e:
        raise Err(types.Error_InvalidConfig(f"config is not JSON: {e}"))
    try:
        return cls(parsed, *extra)
    except PluginError as e:
        raise Err(e.to_wit())
    except Exception as e:  # a constructor that cannot take this config
        raise Err(types.Error_InvalidConfig(f"{type(e).__name__}: {e}"))


def _call(fn, *args):
    """Calls into the plugin; its `PluginError`s become the WIT error, others are fatal."""
    try:
        return fn(*args)
    except PluginError as e:
        raise Err(e.to_wit())
    except Err:
        raise
    except Exception as e:
        raise Err(types.Error_Fatal(f"{type(e).__name__}: {e}"))


def _metadata(name, version, description, config_schema):
    schema = None if config_schema is None else json.dumps(config_schema)
    return types.Metadata(name, version, description, schema)


def _plugin(kind):
    """The class decorator for one plugin kind. It returns the export class that the generated
    bindings instantiate (with no arguments): its WIT methods delegate to the functions in
    `kind`, which keep the live plugin instance on the author's class (`Export.plugin`)."""

    def decorator(name: str, version: str, description: str, config_schema: dict | None = None):
        meta = _metadata(name, version, description, config_schema)

        def wrap(cls):
            cls._autoflow_live = None
            methods = {"plugin": cls, "describe": lambda self: meta}
            for method, impl in kind.items():
                methods[method] = lambda self, *args, _impl=impl: _impl(cls, *args)
            return type(cls.__name__, (), methods)

        return wrap

    return decorator


# --- transform ------------------------------------------------------------------------------

def _transform_open(cls, config: str) -> None:
    cls._autoflow_live = _open(cls, config)


def _transform_process(cls, records):
    plugin = cls._autoflow_live
    out, rejected = [], []
    for index, record in enumerate(records):
        try:
            result = plugin.process(_loads(record.value))
        except Reject as e:
            result = e
        except PluginError as e:
            raise Err(e.to_wit())
        except Exception as e:
            result = Reject(f"{type(e).__name__}: {e}")
        if isinstance(result, Reject):
            rejected.append(types.Rejection(index, result.reason))
            continue
        if result is None:
            continue
        for value in result if isinstance(result, list) else [result]:
            out.append(types.Record(record.key, dumps(value), record.headers, record.timestamp))
    return types.Processed(out, rejected)


transform = _plugin({"open": _transform_open, "process": _transform_process})
transform.__doc__ = """Class decorator: `cls(config)` with `process(record) -> dict | list[dict] | None`."""


# --- source ---------------------------------------------------------------------------------

def _source_open(cls, config: str, cursor) -> None:
    cls._autoflow_live = _open(cls, config, cursor)


def _source_next(cls, max_records: int):
    plugin = cls._autoflow_live
    values = _call(plugin.next, max_records)
    if values is None:
        return None
    records = [types.Record(None, dumps(v), [], None) for v in values]
    cursor = getattr(plugin, "cursor", None)
    return types.Batch(records, None if cursor is None else str(cursor))


source = _plugin({"open": _source_open, "next": _source_next})
source.__doc__ = """Class decorator: `cls(config, cursor)` with `next(max) -> list[dict] | None` and a
`cursor` attribute (str or None) saying where it stands after the records returned."""


# --- sink -----------------------------------------------------------------------------------

def _sink_open(cls, config: str) -> None:
    cls._autoflow_live = _open(cls, config)


def _sink_write(cls, records) -> None:
    plugin = cls._autoflow_live
    for record in records:
        try:
            value = json.loads(record.value)
        except ValueError:
            raise Err(types.Error_Fatal("a record's value is not JSON"))
        _call(plugin.write, value)


def _sink_flush(cls) -> None:
    flush = getattr(cls._autoflow_live, "flush", None)
    if flush is not None:
        _call(flush)


sink = _plugin({"open": _sink_open, "write": _sink_write, "flush": _sink_flush})
sink.__doc__ = """Class decorator: `cls(config)` with `write(record: dict)` and optional `flush()`."""
