//! `split`: one record per element of an array field.
//!
//! Config: `{ "field": "order.items", "keep": ["id", "customer.name"], "as": "item" }`. Each
//! output record holds the kept parent fields (all of them but the array when `keep` is left
//! out) and the element at `as` (the array's own path when left out). An empty array gives no
//! record; a missing field, or one that is not an array, is rejected.
use autoflow_json_path::{Path, kind, object};
use autoflow_plugin_sdk::{Error, Metadata, Output, Record, Transform};
use serde::Deserialize;
use serde_json::{Map, Value};

#[cfg(test)]
mod tests;

/// JSON Schema (draft 2020-12) of [`Config`].
pub const CONFIG_SCHEMA: &str = r##"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "split config",
  "description": "One record per element of the array at `field`.",
  "type": "object",
  "properties": {
    "field": { "description": "Dotted path of the array to split.", "$ref": "#/$defs/path" },
    "keep": {
      "description": "Parent fields copied into every output record, in this order; all but the array when left out.",
      "type": "array", "items": { "$ref": "#/$defs/path" }
    },
    "as": { "description": "Where the element goes in the output; the array's path when left out.", "$ref": "#/$defs/path" }
  },
  "required": ["field"],
  "additionalProperties": false,
  "$defs": {
    "path": { "type": "string", "minLength": 1, "pattern": "^[^.]+(\\.[^.]+)*$" }
  }
}"##;

/// The step's configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Dotted path of the array.
    pub field: String,
    /// Parent fields to keep; `None` keeps all but the array.
    #[serde(default)]
    pub keep: Option<Vec<String>>,
    /// Where the element goes; `None` puts it at `field`.
    #[serde(default, rename = "as")]
    pub as_: Option<String>,
}

/// The transform: the parsed paths.
#[derive(Debug)]
pub struct Split {
    field: Path,
    keep: Option<Vec<Path>>,
    at: Path,
}

impl Split {
    /// Builds the transform from `config`; the error names the offending key.
    pub fn new(config: Config) -> Result<Self, String> {
        let field = Path::parse(&config.field).map_err(|e| format!("field: {e}"))?;
        let keep = match &config.keep {
            None => None,
            Some(list) => Some(Path::parse_all("keep", list)?),
        };
        let at = match &config.as_ {
            None => field.clone(),
            Some(p) => Path::parse(p).map_err(|e| format!("as: {e}"))?,
        };
        if let Some((i, k)) = keep
            .iter()
            .flatten()
            .enumerate()
            .find(|(_, k)| k.within(&at) || at.within(k))
        {
            return Err(format!(
                "keep[{i}]: {:?} overlaps where the element goes ({:?})",
                k.as_str(),
                at.as_str()
            ));
        }
        Ok(Split { field, keep, at })
    }

    /// The records `root` splits into, or why it cannot be split.
    pub fn split(&self, mut root: Map<String, Value>) -> Result<Vec<Map<String, Value>>, String> {
        let items = match self.field.take(&mut root) {
            Some(Value::Array(items)) => items,
            Some(other) => {
                return Err(format!(
                    "{} is {}, not an array",
                    self.field.as_str(),
                    kind(&other)
                ));
            }
            None => return Err(format!("{} is missing", self.field.as_str())),
        };
        let parent = match &self.keep {
            None => root,
            Some(keep) => {
                let mut kept = Map::with_capacity(keep.len() + 1);
                for p in keep {
                    if let Some(v) = p.get(&root) {
                        p.set(&mut kept, v.clone())?;
                    }
                }
                kept
            }
        };
        let mut out = Vec::with_capacity(items.len());
        let n = items.len();
        let mut parent = Some(parent);
        for (i, item) in items.into_iter().enumerate() {
            // The last element takes the parent itself instead of a copy.
            let mut m = if i + 1 == n {
                parent.take().unwrap_or_default()
            } else {
                parent.clone().unwrap_or_default()
            };
            self.at.set(&mut m, item)?;
            out.push(m);
        }
        Ok(out)
    }
}

impl Transform for Split {
    type Config = Config;

    fn metadata() -> Metadata {
        Metadata::new(
            "split",
            env!("CARGO_PKG_VERSION"),
            "One record per element of an array field (dotted path), keeping chosen parent \
             fields; an empty array gives no record, a missing or non-array field is rejected.",
        )
        .config_schema(CONFIG_SCHEMA)
    }

    fn open(config: Config) -> Result<Self, Error> {
        Split::new(config).map_err(Error::InvalidConfig)
    }

    fn process(&mut self, record: Record, out: &mut Output) -> Result<(), Error> {
        let parts = match object(&record.value).and_then(|root| self.split(root)) {
            Ok(parts) => parts,
            Err(reason) => {
                out.reject(reason);
                return Ok(());
            }
        };
        for part in parts {
            let mut r = Record {
                key: record.key.clone(),
                value: Vec::new(),
                headers: record.headers.clone(),
                timestamp: record.timestamp,
            };
            r.set_json(&part)?;
            out.emit(r);
        }
        Ok(())
    }
}

autoflow_plugin_sdk::export_transform!(Split);
