//! The config as written, its JSON Schema, and the settings resolved from it.
use serde::Deserialize;

/// JSON Schema (draft 2020-12) of [`Config`].
pub const CONFIG_SCHEMA: &str = r##"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "file-source config",
  "type": "object",
  "properties": {
    "path": {
      "description": "File to read, as the plugin sees it (a path under a granted mount).",
      "type": "string", "minLength": 1
    },
    "format": {
      "description": "jsonl: one record per non-blank line, verbatim. csv: a header row, then one JSON object per row. Default: csv for a .csv extension, else jsonl.",
      "enum": ["jsonl", "csv"]
    },
    "delimiter": {
      "description": "CSV only: the field delimiter, one ASCII character (default \",\").",
      "type": "string", "pattern": "^[\\x00-\\x7F]$", "not": { "enum": ["\"", "\r", "\n"] }, "default": ","
    },
    "infer_types": {
      "description": "CSV only: cells written as JSON numbers or true/false become numbers and booleans; all else stays a string (default true).",
      "type": "boolean", "default": true
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
      "then": { "properties": { "delimiter": false, "infer_types": false } }
    }
  ]
}"##;

pub use file_format::Format;

/// The step's configuration, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// File to read.
    pub path: String,
    /// Format; by default from the extension (`.csv` means CSV, anything else JSON Lines).
    #[serde(default)]
    pub format: Option<Format>,
    /// CSV field delimiter (default `,`).
    #[serde(default)]
    pub delimiter: Option<String>,
    /// CSV: turn number and boolean cells into JSON numbers and booleans (default true).
    #[serde(default)]
    pub infer_types: Option<bool>,
}

/// The settings in force, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// File to read.
    pub path: String,
    /// Format.
    pub format: Format,
    /// CSV field delimiter.
    pub delimiter: u8,
    /// CSV type inference.
    pub infer_types: bool,
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
            "read",
            &[
                ("delimiter", self.delimiter.is_some()),
                ("infer_types", self.infer_types.is_some()),
            ],
        )?;
        Ok(Settings {
            delimiter: file_format::delimiter(self.delimiter.as_deref().unwrap_or(","))?,
            infer_types: self.infer_types.unwrap_or(true),
            format,
            path: self.path,
        })
    }
}
