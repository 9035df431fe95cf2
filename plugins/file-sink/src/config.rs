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

/// The file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// JSON Lines: each value on its own line.
    Jsonl,
    /// CSV (RFC 4180) with a header row.
    Csv,
}

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
        let format =
            self.format
                .unwrap_or_else(|| match std::path::Path::new(&self.path).extension() {
                    Some(ext) if ext.eq_ignore_ascii_case("csv") => Format::Csv,
                    _ => Format::Jsonl,
                });
        if format == Format::Jsonl {
            for (key, given) in [
                ("columns", self.columns.is_some()),
                ("delimiter", self.delimiter.is_some()),
            ] {
                if given {
                    return Err(format!(
                        "`{key}` applies only to format csv, and {} is written as jsonl",
                        self.path
                    ));
                }
            }
        }
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
        let text = self.delimiter.as_deref().unwrap_or(",");
        let delimiter = match text.as_bytes() {
            [b] if b.is_ascii() && !matches!(b, b'"' | b'\r' | b'\n') => *b,
            _ => {
                return Err(format!(
                    "delimiter must be one ASCII character other than a quote or line break, not {text:?}"
                ));
            }
        };
        Ok(Settings {
            path: self.path,
            format,
            append: self.append,
            columns: self.columns,
            delimiter,
        })
    }
}
