//! The config as written, its JSON Schema, and its compilation into a [`Plan`].
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::path::{Path, kind};

/// JSON Schema (draft 2020-12) of [`Config`].
pub const CONFIG_SCHEMA: &str = r##"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "json-map config",
  "description": "Applied in order: select, rename, set, drop. Paths are dotted (\"customer.country\").",
  "type": "object",
  "properties": {
    "select": {
      "description": "Keep only these paths, in this order (missing ones are skipped).",
      "type": "array", "items": { "$ref": "#/$defs/path" }, "minItems": 1
    },
    "rename": {
      "description": "Move the value at each key path to the path given as its value.",
      "type": "object", "propertyNames": { "$ref": "#/$defs/path" },
      "additionalProperties": { "$ref": "#/$defs/path" }
    },
    "set": {
      "description": "Put these constant JSON values at these paths, creating objects as needed.",
      "type": "object", "propertyNames": { "$ref": "#/$defs/path" }
    },
    "drop": {
      "description": "Remove these paths.",
      "type": "array", "items": { "$ref": "#/$defs/path" }
    }
  },
  "required": [],
  "additionalProperties": false,
  "$defs": {
    "path": { "type": "string", "minLength": 1, "pattern": "^[^.]+(\\.[^.]+)*$" }
  }
}"##;

/// The step's configuration; every key is optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Paths to keep, in output order.
    #[serde(default)]
    pub select: Option<Vec<String>>,
    /// `from path -> to path`, applied in order.
    #[serde(default)]
    pub rename: Map<String, Value>,
    /// `path -> constant value`, applied in order.
    #[serde(default)]
    pub set: Map<String, Value>,
    /// Paths to remove.
    #[serde(default)]
    pub drop: Vec<String>,
}

/// The compiled config: parsed paths, checked once.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Paths to keep, if selecting.
    pub select: Option<Vec<Path>>,
    /// Renames, in order.
    pub rename: Vec<(Path, Path)>,
    /// Constants to set, in order.
    pub set: Vec<(Path, Value)>,
    /// Paths to remove.
    pub drop: Vec<Path>,
}

/// Parses every path in `config`; the error names the offending key.
pub fn compile(config: Config) -> Result<Plan, String> {
    fn at(key: &'static str) -> impl Fn(String) -> String {
        move |e| format!("{key}: {e}")
    }
    let select = match config.select {
        None => None,
        Some(list) if list.is_empty() => {
            return Err(
                "select: an empty list would drop every field; omit `select` to keep all".into(),
            );
        }
        Some(list) => {
            let paths: Vec<Path> = list
                .iter()
                .map(|p| Path::parse(p))
                .collect::<Result<_, _>>()
                .map_err(at("select"))?;
            for (i, a) in paths.iter().enumerate() {
                if let Some(b) = paths[..i].iter().find(|b| a.within(b) || b.within(a)) {
                    return Err(format!(
                        "select: {:?} and {:?} overlap",
                        b.as_str(),
                        a.as_str()
                    ));
                }
            }
            Some(paths)
        }
    };
    let mut rename = Vec::with_capacity(config.rename.len());
    for (from, to) in config.rename {
        let Value::String(to) = to else {
            return Err(format!(
                "rename.{from}: the new path must be a string, not {}",
                kind(&to)
            ));
        };
        rename.push((
            Path::parse(&from).map_err(at("rename"))?,
            Path::parse(&to).map_err(at("rename"))?,
        ));
    }
    let set = config
        .set
        .into_iter()
        .map(|(p, v)| Ok((Path::parse(&p).map_err(at("set"))?, v)))
        .collect::<Result<_, String>>()?;
    let drop = config
        .drop
        .iter()
        .map(|p| Path::parse(p))
        .collect::<Result<_, _>>()
        .map_err(at("drop"))?;
    Ok(Plan {
        select,
        rename,
        set,
        drop,
    })
}

impl Plan {
    /// Applies select, rename, set and drop to `root`, in that order.
    pub fn apply(&self, root: Map<String, Value>) -> Result<Map<String, Value>, String> {
        let mut root = root;
        if let Some(select) = &self.select {
            let mut kept = Map::with_capacity(select.len());
            for p in select {
                if let Some(v) = p.take_unordered(&mut root) {
                    p.set(&mut kept, v)?;
                }
            }
            root = kept;
        }
        for (from, to) in &self.rename {
            if from == to {
                continue;
            }
            if from.same_parent(to) {
                from.rename_in_place(&mut root, to);
            } else if let Some(v) = from.take(&mut root) {
                to.set(&mut root, v)?;
            }
        }
        for (p, v) in &self.set {
            p.set(&mut root, v.clone())?;
        }
        for p in &self.drop {
            p.take(&mut root);
        }
        Ok(root)
    }
}
