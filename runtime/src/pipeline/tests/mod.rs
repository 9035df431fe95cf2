//! Unit tests of the pipeline module: parsing, every validation message, the step graph.

mod depth;
mod graph;
mod parsing;
mod validation;

use super::{ValidationPolicy, parse};

/// A pipeline using every field of the model.
const FULL_YAML: &str = r#"
name: orders-clean
description: Keep the paid orders.
schedule: { cron: "0 */5 * * * *", timezone: Europe/Paris, catchup: once, overlap: queue }
steps:
  - id: read
    plugin: file-source@0.1.0
    config: { path: /in/orders.jsonl }
    mounts: [{ host: ./data/in, guest: /in }]
    secrets: [db-password]
    allow_hosts: [api.example.com, "[::1]:8080"]
  - id: paid
    plugin: json-filter@latest
    input: read
    config: { field: status, equals: paid, nested: { list: [1, 2.5, true, null] } }
    limits: { memory_mb: 128, fuel: 1000000 }
    batch_size: 256
  - id: write
    plugin: ./plugins/file-sink.wasm
    inputs: [paid]
    config: { path: /out/paid.jsonl }
    mounts: [{ host: ./data/out, guest: /out, mode: rw }]
limits: { memory_mb: 64, timeout_ms: 30000, max_output_bytes: 1048576 }
retry: { max_attempts: 3, initial_backoff_ms: 500, max_backoff_ms: 60000 }
batch_size: 2048
dead_letter: { path: ./dead-letters.jsonl }
"#;

/// The same pipeline as [`FULL_YAML`], in JSON.
const FULL_JSON: &str = r#"{
  "name": "orders-clean",
  "description": "Keep the paid orders.",
  "schedule": {"cron": "0 */5 * * * *", "timezone": "Europe/Paris", "catchup": "once", "overlap": "queue"},
  "steps": [
    {"id": "read", "plugin": "file-source@0.1.0", "config": {"path": "/in/orders.jsonl"},
     "mounts": [{"host": "./data/in", "guest": "/in"}], "secrets": ["db-password"],
     "allow_hosts": ["api.example.com", "[::1]:8080"]},
    {"id": "paid", "plugin": "json-filter@latest", "input": "read",
     "config": {"field": "status", "equals": "paid", "nested": {"list": [1, 2.5, true, null]}},
     "limits": {"memory_mb": 128, "fuel": 1000000}, "batch_size": 256},
    {"id": "write", "plugin": "./plugins/file-sink.wasm", "inputs": ["paid"],
     "config": {"path": "/out/paid.jsonl"},
     "mounts": [{"host": "./data/out", "guest": "/out", "mode": "rw"}]}
  ],
  "limits": {"memory_mb": 64, "timeout_ms": 30000, "max_output_bytes": 1048576},
  "retry": {"max_attempts": 3, "initial_backoff_ms": 500, "max_backoff_ms": 60000},
  "batch_size": 2048,
  "dead_letter": {"path": "./dead-letters.jsonl"}
}"#;

/// A one-step pipeline with `extra` appended to the step (indented four spaces per line).
fn one_step(extra: &str) -> String {
    format!("name: p\nsteps:\n  - id: read\n    plugin: file-source@0.1.0\n{extra}")
}

/// The validation messages for a YAML or JSON text that parses.
fn problems(text: &str, policy: &ValidationPolicy) -> Vec<String> {
    let pipeline = parse(text, None).unwrap();
    pipeline.validate(policy).unwrap_err().messages()
}

/// The parse error text.
fn parse_error(text: &str) -> String {
    parse(text, None).unwrap_err().to_string()
}
