//! `json-schema`: validates each record against a JSON Schema (draft 2020-12 unless the schema's
//! `$schema` names another draft), given in the config or as a file in a mount.
//!
//! Config: `{ "schema": { "type": "object", "required": ["id"] } }` or
//! `{ "schema_file": "/schemas/order.json" }`. A valid record passes unchanged; an invalid one
//! is rejected with each failing instance path and keyword (up to `max_errors`).
use autoflow_plugin_sdk::{Error, Metadata, Output, Record, Transform};
use jsonschema::{Draft, Validator};
use serde::Deserialize;
use serde_json::Value;

#[cfg(test)]
mod tests;

/// JSON Schema (draft 2020-12) of [`Config`].
pub const CONFIG_SCHEMA: &str = r##"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "json-schema config",
  "description": "Validates each record against `schema` (inline) or `schema_file` (a file in a mount).",
  "type": "object",
  "properties": {
    "schema": { "description": "The JSON Schema, inline.", "type": ["object", "boolean"] },
    "schema_file": { "description": "Path of a JSON file holding the schema, inside a mount.", "type": "string", "minLength": 1 },
    "max_errors": { "description": "How many failures a rejection lists.", "type": "integer", "minimum": 1, "default": 5 }
  },
  "oneOf": [ { "required": ["schema"] }, { "required": ["schema_file"] } ],
  "additionalProperties": false
}"##;

/// The step's configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The schema, inline.
    #[serde(default)]
    pub schema: Option<Value>,
    /// A file holding the schema.
    #[serde(default)]
    pub schema_file: Option<String>,
    /// Failures listed per rejection.
    #[serde(default = "five")]
    pub max_errors: usize,
}

fn five() -> usize {
    5
}

/// The transform: the compiled schema.
pub struct JsonSchema {
    validator: Validator,
    max_errors: usize,
}

impl std::fmt::Debug for JsonSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JsonSchema")
    }
}

impl JsonSchema {
    /// Compiles the schema `config` names; the error names the offending key.
    pub fn new(config: Config) -> Result<Self, String> {
        if config.max_errors == 0 {
            return Err("max_errors: must be at least 1".into());
        }
        let (schema, at) = match (config.schema, &config.schema_file) {
            (Some(s), None) => (s, "schema".to_string()),
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("schema_file: cannot read {path}: {e}"))?;
                let s = serde_json::from_str(&text)
                    .map_err(|e| format!("schema_file: {path} is not JSON: {e}"))?;
                (s, format!("schema_file: {path}"))
            }
            (Some(_), Some(_)) => {
                return Err("schema_file: give `schema` or `schema_file`, not both".into());
            }
            (None, None) => return Err("schema: give `schema` (inline) or `schema_file`".into()),
        };
        let validator = jsonschema::options()
            .with_draft(Draft::Draft202012)
            .build(&schema)
            .map_err(|e| {
                format!(
                    "{at}: invalid schema at {}: {e}",
                    pointer(&e.instance_path.to_string())
                )
            })?;
        Ok(JsonSchema {
            validator,
            max_errors: config.max_errors,
        })
    }

    /// Why `value` does not match the schema, or `None` if it does.
    pub fn check(&self, value: &Value) -> Option<String> {
        let mut failures = Vec::new();
        let mut more = 0usize;
        for e in self.validator.iter_errors(value) {
            if failures.len() == self.max_errors {
                more += 1;
                continue;
            }
            let schema_path = e.schema_path.to_string();
            let keyword = schema_path
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_string();
            failures.push(format!(
                "at {} ({keyword}): {e}",
                pointer(&e.instance_path.to_string())
            ));
        }
        if failures.is_empty() {
            return None;
        }
        let mut reason = failures.join("; ");
        if more > 0 {
            reason.push_str(&format!("; and {more} more"));
        }
        Some(reason)
    }
}

/// A JSON pointer as written in messages: `/` for the root.
fn pointer(p: &str) -> &str {
    if p.is_empty() { "/" } else { p }
}

impl Transform for JsonSchema {
    type Config = Config;

    fn metadata() -> Metadata {
        Metadata::new(
            "json-schema",
            env!("CARGO_PKG_VERSION"),
            "Validates each record against a JSON Schema (draft 2020-12 by default), inline or \
             from a file; rejects invalid records with the failing instance path and keyword.",
        )
        .config_schema(CONFIG_SCHEMA)
    }

    fn open(config: Config) -> Result<Self, Error> {
        JsonSchema::new(config).map_err(Error::InvalidConfig)
    }

    fn process(&mut self, record: Record, out: &mut Output) -> Result<(), Error> {
        let value: Value = match serde_json::from_slice(&record.value) {
            Ok(v) => v,
            Err(e) => {
                out.reject(format!("value is not valid JSON: {e}"));
                return Ok(());
            }
        };
        match self.check(&value) {
            None => out.emit(record),
            Some(reason) => out.reject(reason),
        }
        Ok(())
    }
}

autoflow_plugin_sdk::export_transform!(JsonSchema);
