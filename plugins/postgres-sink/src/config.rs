//! The config as written, its JSON Schema, and its checks.
use serde::Deserialize;

/// JSON Schema (draft 2020-12) of [`Config`].
pub const CONFIG_SCHEMA: &str = r##"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "postgres-sink config",
  "type": "object",
  "properties": {
    "connection": {
      "description": "A PostgreSQL connection granted to the step (the pipeline's top-level connections, the step's connections list).",
      "type": "string", "minLength": 1
    },
    "table": {
      "description": "The table to write, one identifier as it is named (quoted by the plugin: case and any character are kept).",
      "type": "string", "minLength": 1
    },
    "schema": {
      "description": "The table's schema (default: the connection's search path).",
      "type": "string", "minLength": 1
    },
    "key": {
      "description": "Upsert on these columns (a unique index or primary key over exactly them): INSERT ... ON CONFLICT (key) DO UPDATE SET the other columns. Without key, a plain INSERT.",
      "type": "array", "items": { "type": "string", "minLength": 1 }, "minItems": 1, "uniqueItems": true
    },
    "columns": {
      "description": "The columns to write, from the fields of each record's JSON object of the same names. Default: the keys of the first record written. A missing field is NULL; fields outside the columns are ignored.",
      "type": "array", "items": { "type": "string", "minLength": 1 }, "minItems": 1, "uniqueItems": true
    }
  },
  "required": ["connection", "table"],
  "additionalProperties": false
}"##;

/// The step's configuration, as written.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The granted connection to write through.
    pub connection: String,
    /// The table.
    pub table: String,
    /// The table's schema, if not the search path's.
    #[serde(default)]
    pub schema: Option<String>,
    /// Upsert key columns.
    #[serde(default)]
    pub key: Option<Vec<String>>,
    /// Columns to write.
    #[serde(default)]
    pub columns: Option<Vec<String>>,
}

impl Config {
    /// Checks the values the schema cannot (or the host did not) check.
    pub fn check(&self) -> Result<(), String> {
        for (what, v) in [("connection", &self.connection), ("table", &self.table)] {
            if v.is_empty() {
                return Err(format!("{what} must not be empty"));
            }
        }
        if self.schema.as_deref() == Some("") {
            return Err("schema must not be empty".into());
        }
        for (what, list) in [("key", &self.key), ("columns", &self.columns)] {
            let Some(list) = list else { continue };
            if list.is_empty() {
                return Err(format!("{what} must not be empty"));
            }
            for (i, c) in list.iter().enumerate() {
                if c.is_empty() {
                    return Err(format!("{what}[{i}] is empty"));
                }
                if list[..i].contains(c) {
                    return Err(format!("{what}: column {c:?} is listed twice"));
                }
            }
        }
        if let (Some(key), Some(columns)) = (&self.key, &self.columns)
            && let Some(k) = key.iter().find(|k| !columns.contains(k))
        {
            return Err(format!("key column {k:?} is not in columns {columns:?}"));
        }
        Ok(())
    }
}
