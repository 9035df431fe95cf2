//! The config as written, its JSON Schema, and the settings checked from it.
use autoflow_json_path::Path;
use file_format::{Cells, RowWriter};
use serde::Deserialize;

/// JSON Schema (draft 2020-12) of [`Config`].
pub const CONFIG_SCHEMA: &str = r##"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "csv-parse config",
  "description": "Parses the CSV text of each record's value (or of its string field `field`) into one JSON object record per data row.",
  "type": "object",
  "properties": {
    "header": {
      "description": "true: the first row of each text is the header, naming the columns (renamed by `columns` when given). false: every row is data, named by `columns`.",
      "type": "boolean", "default": true
    },
    "columns": {
      "description": "Column names, in order. Required when header is false; with header true they replace the header's names (the header must have as many).",
      "type": "array", "minItems": 1, "items": { "type": "string", "minLength": 1 }
    },
    "delimiter": {
      "description": "The field delimiter, one ASCII character other than a quote or a line break (default \",\").",
      "type": "string", "pattern": "^[\\x00-\\x7F]$", "not": { "enum": ["\"", "\r", "\n"] }, "default": ","
    },
    "field": {
      "description": "Dotted path of a string field of a JSON object record holding the CSV text; without it the whole value is the CSV text.",
      "$ref": "#/$defs/path"
    },
    "keep": {
      "description": "With `field`: parent fields copied into every row record, before the columns.",
      "type": "array", "items": { "$ref": "#/$defs/path" }
    },
    "types": {
      "description": "string: every cell is a string. infer: a cell that is a JSON number or true/false becomes one, an empty cell null, the rest strings.",
      "enum": ["string", "infer"], "default": "string"
    },
    "skip_empty_lines": {
      "description": "Skip blank lines between rows (default true); when false a blank line is a row of one empty cell.",
      "type": "boolean", "default": true
    }
  },
  "additionalProperties": false,
  "dependentRequired": { "keep": ["field"] },
  "if": { "required": ["header"], "properties": { "header": { "const": false } } },
  "then": { "required": ["columns"] },
  "$defs": {
    "path": { "type": "string", "minLength": 1, "pattern": "^[^.]+(\\.[^.]+)*$" }
  }
}"##;

/// The step's configuration, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Whether the first row of each text is the header (default true).
    #[serde(default)]
    pub header: Option<bool>,
    /// Column names: required without a header, renaming it with one.
    #[serde(default)]
    pub columns: Option<Vec<String>>,
    /// Field delimiter (default `,`).
    #[serde(default)]
    pub delimiter: Option<String>,
    /// The string field holding the CSV text; `None`: the whole value.
    #[serde(default)]
    pub field: Option<String>,
    /// Parent fields copied into each row record (with `field` only).
    #[serde(default)]
    pub keep: Option<Vec<String>>,
    /// `"string"` (default) or `"infer"`.
    #[serde(default)]
    pub types: Option<String>,
    /// Skip blank lines (default true).
    #[serde(default)]
    pub skip_empty_lines: Option<bool>,
}

/// Where the column names come from.
#[derive(Debug, Clone)]
pub enum Names {
    /// The first row of each text.
    Header,
    /// `columns`, after skipping a header row when there is one (`skip_header`).
    Given {
        /// The writer of rows under `columns`.
        writer: RowWriter,
        /// Whether each text starts with a header row to skip.
        skip_header: bool,
    },
}

/// The settings in force, checked.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where the column names come from.
    pub names: Names,
    /// Field delimiter.
    pub delimiter: u8,
    /// The field holding the CSV text, if any.
    pub field: Option<Path>,
    /// Parent fields copied into each row record.
    pub keep: Vec<Path>,
    /// How cells are typed.
    pub cells: Cells,
    /// Whether blank lines are skipped.
    pub skip_empty_lines: bool,
}

impl Config {
    /// Resolves defaults and checks every value; the error names the offending key.
    pub fn settings(self) -> Result<Settings, String> {
        let header = self.header.unwrap_or(true);
        let field = match &self.field {
            None => None,
            Some(p) => Some(Path::parse(p).map_err(|e| format!("field: {e}"))?),
        };
        let keep = match (&self.keep, &field) {
            (None, _) => Vec::new(),
            (Some(_), None) => {
                return Err(
                    "keep: applies only with `field` (a whole value has no fields to keep)".into(),
                );
            }
            (Some(list), Some(_)) => Path::parse_all("keep", list)?,
        };
        let cells = cells(self.types.as_deref())?;
        let names = match self.columns {
            None if header => Names::Header,
            None => return Err("columns: required when header is false".into()),
            Some(columns) => {
                check_columns(&columns)?;
                let first_keys: Vec<&str> = keep.iter().map(first_key).collect();
                if let Some((i, c)) = clash(columns.iter().map(String::as_str), &first_keys) {
                    return Err(format!(
                        "keep[{i}]: {:?} clashes with column {c:?}",
                        keep[i].as_str()
                    ));
                }
                Names::Given {
                    writer: RowWriter::new(columns.iter().map(String::as_str), cells)?,
                    skip_header: header,
                }
            }
        };
        Ok(Settings {
            names,
            delimiter: file_format::delimiter(self.delimiter.as_deref().unwrap_or(","))?,
            field,
            keep,
            cells,
            skip_empty_lines: self.skip_empty_lines.unwrap_or(true),
        })
    }
}

/// The cell typing `types` names.
fn cells(types: Option<&str>) -> Result<Cells, String> {
    match types {
        None | Some("string") => Ok(Cells::Strings),
        Some("infer") => Ok(Cells::TypedOrNull),
        Some(other) => Err(format!(
            "types: must be \"string\" or \"infer\", not {other:?}"
        )),
    }
}

/// Checks `columns`: at least one, and every name good ([`name_problem`]).
fn check_columns(columns: &[String]) -> Result<(), String> {
    if columns.is_empty() {
        return Err("columns: name at least one column".into());
    }
    match name_problem(columns.iter().map(String::as_str)) {
        Some((i, problem)) => Err(format!("columns[{i}]: {problem}")),
        None => Ok(()),
    }
}

/// The first bad column name of `names`, by index: an empty name, or one seen before.
pub fn name_problem<'a>(names: impl Iterator<Item = &'a str>) -> Option<(usize, String)> {
    let mut seen: Vec<&str> = Vec::new();
    for (i, name) in names.enumerate() {
        if name.is_empty() {
            return Some((i, "empty name".into()));
        }
        if let Some(first) = seen.iter().position(|s| *s == name) {
            return Some((
                i,
                format!("duplicate name {name:?} (as column {})", first + 1),
            ));
        }
        seen.push(name);
    }
    None
}

/// The top-level key a kept path writes (`customer` for `customer.name`).
pub fn first_key(path: &Path) -> &str {
    path.as_str().split('.').next().unwrap_or_default()
}

/// The first kept key (its index in `kept`) that a column of `columns` would overwrite, with
/// that column's name.
pub fn clash<'a>(
    columns: impl Iterator<Item = &'a str>,
    kept: &[&str],
) -> Option<(usize, &'a str)> {
    columns
        .filter_map(|c| kept.iter().position(|k| *k == c).map(|i| (i, c)))
        .next()
}
