//! The config as written, its JSON Schema, and the settings resolved from it.
use serde::Deserialize;

/// JSON Schema (draft 2020-12) of [`Config`].
pub const CONFIG_SCHEMA: &str = r##"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "file-sink config",
  "type": "object",
  "properties": {
    "path": {
      "description": "File to write, as the plugin sees it (a path under a granted rw mount).",
      "type": "string", "minLength": 1
    },
    "format": {
      "description": "jsonl: each value verbatim on its own line. csv: a header row, then one row per JSON object. Default: csv for a .csv extension, else jsonl.",
      "enum": ["jsonl", "csv"]
    },
    "append": {
      "description": "Append to the file instead of truncating it at open (default false).",
      "type": "boolean", "default": false
    },
    "columns": {
      "description": "CSV only: the columns, in order; a key, or a dotted path into nested objects. Default: the keys of the first record (or the header of the file appended to).",
      "type": "array", "items": { "type": "string", "minLength": 1 }, "minItems": 1, "uniqueItems": true
    },
    "delimiter": {
      "description": "CSV only: the field delimiter, one ASCII character (default \",\").",
      "type": "string", "pattern": "^[\\x00-\\x7F]$", "not": { "enum": ["\"", "\r", "\n"] }, "default": ","
    }
  },
  "required": ["path"],
  "additionalProperties": false,
  "allOf": [
    {
      "description": "The csv-only keys are refused when the file is jsonl (by format, or by extension when format is absent).",
      "if": {
        "anyOf": [
          { "required": ["format"], "properties": { "format": { "const": "jsonl" } } },
          { "not": { "required": ["format"] }, "properties": { "path": { "not": { "pattern": "[^/]\\.[cC][sS][vV]$" } } } }
        ]
      },
      "then": { "properties": { "columns": false, "delimiter": false } }
    }
  ]
}"##;

pub use file_format::Format;

/// The step's configuration, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// File to write.
    pub path: String,
    /// Format; by default from the extension (`.csv` means CSV, anything else JSON Lines).
    #[serde(default)]
    pub format: Option<Format>,
    /// Append instead of truncating.
    #[serde(default)]
    pub append: bool,
    /// CSV columns, in order.
    #[serde(default)]
    pub columns: Option<Vec<String>>,
    /// CSV field delimiter (default `,`).
    #[serde(default)]
    pub delimiter: Option<String>,
}

/// The settings in force, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// File to write.
    pub path: String,
    /// Format.
    pub format: Format,
    /// Append instead of truncating.
    pub append: bool,
    /// CSV columns, if given.
    pub columns: Option<Vec<String>>,
    /// CSV field delimiter.
    pub delimiter: u8,
}

impl Config {
    /// Resolves defaults and checks the values.
    pub fn settings(self) -> Result<Settings, String> {
        if self.path.is_empty() {
            return Err("path must not be empty".into());
        }
        let format = file_format::resolve(self.format, &self.path);
        file_format::refuse_csv_keys(
            format,
            &self.path,
            "written",
            &[
                ("columns", self.columns.is_some()),
                ("delimiter", self.delimiter.is_some()),
            ],
        )?;
        if let Some(columns) = &self.columns {
            if columns.is_empty() {
                return Err("columns must not be empty".into());
            }
            for (i, c) in columns.iter().enumerate() {
                if c.is_empty() {
                    return Err(format!("columns[{i}] is empty"));
                }
                if columns[..i].contains(c) {
                    return Err(format!("column {c:?} is listed twice"));
                }
            }
        }
        let delimiter = file_format::delimiter(self.delimiter.as_deref().unwrap_or(","))?;
        Ok(Settings {
            path: self.path,
            format,
            append: self.append,
            columns: self.columns,
            delimiter,
        })
    }
}
