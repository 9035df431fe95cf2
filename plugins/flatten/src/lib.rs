//! `flatten`: nested objects to flat keys joined by a separator (`{"a":{"b":1}}` to
//! `{"a.b":1}`), or back with `"mode": "unflatten"`; arrays are kept as values, or indexed
//! (`a.0`, `a.1`) with `"arrays": "index"`.
use autoflow_json_path::{kind, object};
use autoflow_plugin_sdk::{Error, Metadata, Output, Record, Transform};
use serde::Deserialize;
use serde_json::{Map, Value};

#[cfg(test)]
mod tests;

/// JSON Schema (draft 2020-12) of [`Config`].
pub const CONFIG_SCHEMA: &str = r##"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "flatten config",
  "description": "Nested objects to keys joined by `separator`, or back.",
  "type": "object",
  "properties": {
    "mode": { "description": "`flatten` nested objects, or `unflatten` joined keys.", "enum": ["flatten", "unflatten"], "default": "flatten" },
    "separator": { "description": "What joins the keys.", "type": "string", "minLength": 1, "default": "." },
    "arrays": { "description": "`keep` arrays as values, or `index` their elements (`a.0`).", "enum": ["keep", "index"], "default": "keep" }
  },
  "additionalProperties": false
}"##;

/// Which way the transform goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Nested objects to joined keys.
    #[default]
    Flatten,
    /// Joined keys to nested objects.
    Unflatten,
}

/// What happens to arrays.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arrays {
    /// Arrays are values like any other.
    #[default]
    Keep,
    /// Each element gets its index as a key (`a.0`); unflattening rebuilds the arrays.
    Index,
}

/// The step's configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Which way.
    #[serde(default)]
    pub mode: Mode,
    /// What joins keys.
    #[serde(default = "dot")]
    pub separator: String,
    /// What happens to arrays.
    #[serde(default)]
    pub arrays: Arrays,
}

fn dot() -> String {
    ".".into()
}

/// The transform.
#[derive(Debug)]
pub struct Flatten {
    config: Config,
}

impl Flatten {
    /// Checks `config`; the error names the offending key.
    pub fn new(config: Config) -> Result<Self, String> {
        if config.separator.is_empty() {
            return Err("separator: must not be empty".into());
        }
        Ok(Flatten { config })
    }

    /// Flattens or unflattens `root`, or says why it cannot.
    pub fn apply(&self, root: Map<String, Value>) -> Result<Map<String, Value>, String> {
        match self.config.mode {
            Mode::Flatten => {
                let mut out = Map::with_capacity(root.len());
                let mut prefix = String::new();
                self.flatten_into(&mut out, &mut prefix, root)?;
                Ok(out)
            }
            Mode::Unflatten => self.unflatten(root),
        }
    }

    fn flatten_into(
        &self,
        out: &mut Map<String, Value>,
        prefix: &mut String,
        m: Map<String, Value>,
    ) -> Result<(), String> {
        for (k, v) in m {
            let len = prefix.len();
            if len > 0 {
                prefix.push_str(&self.config.separator);
            }
            prefix.push_str(&k);
            self.flatten_value(out, prefix, v)?;
            prefix.truncate(len);
        }
        Ok(())
    }

    fn flatten_value(
        &self,
        out: &mut Map<String, Value>,
        prefix: &mut String,
        v: Value,
    ) -> Result<(), String> {
        match v {
            Value::Object(inner) if !inner.is_empty() => self.flatten_into(out, prefix, inner),
            Value::Array(items) if self.config.arrays == Arrays::Index && !items.is_empty() => {
                for (i, item) in items.into_iter().enumerate() {
                    let len = prefix.len();
                    prefix.push_str(&self.config.separator);
                    prefix.push_str(&i.to_string());
                    self.flatten_value(out, prefix, item)?;
                    prefix.truncate(len);
                }
                Ok(())
            }
            leaf => {
                if out.contains_key(prefix.as_str()) {
                    return Err(format!("key {prefix:?} appears twice once flattened"));
                }
                out.insert(prefix.clone(), leaf);
                Ok(())
            }
        }
    }

    fn unflatten(&self, root: Map<String, Value>) -> Result<Map<String, Value>, String> {
        let sep = self.config.separator.as_str();
        let mut out = Map::with_capacity(root.len());
        for (key, v) in root {
            let mut parts = key.split(sep).peekable();
            let mut m = &mut out;
            let mut walked = 0usize;
            while let Some(part) = parts.next() {
                if parts.peek().is_none() {
                    if m.contains_key(part) {
                        return Err(format!(
                            "key {key:?}: {:?} is already set",
                            &key[..walked + part.len()]
                        ));
                    }
                    m.insert(part.to_string(), v);
                    break;
                }
                let slot = m
                    .entry(part.to_string())
                    .or_insert_with(|| Value::Object(Map::new()));
                walked += part.len();
                m = match slot {
                    Value::Object(inner) => inner,
                    other => {
                        return Err(format!(
                            "key {key:?}: {:?} is {}, not an object",
                            &key[..walked],
                            kind(other)
                        ));
                    }
                };
                walked += sep.len();
            }
        }
        if self.config.arrays == Arrays::Index {
            for v in out.values_mut() {
                rebuild_arrays(v);
            }
        }
        Ok(out)
    }
}

/// Turns every object whose keys are exactly `0`..`n-1` (written without leading zeros) into
/// the array of its values in index order, innermost first.
fn rebuild_arrays(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for inner in m.values_mut() {
                rebuild_arrays(inner);
            }
            if m.is_empty() {
                return;
            }
            let n = m.len();
            let mut slots: Vec<Option<Value>> = vec![None; n];
            for k in m.keys() {
                match index(k) {
                    Some(i) if i < n => {}
                    _ => return,
                }
            }
            for (k, inner) in std::mem::take(m) {
                if let Some(i) = index(&k) {
                    slots[i] = Some(inner);
                }
            }
            *v = Value::Array(slots.into_iter().map(Option::unwrap_or_default).collect());
        }
        Value::Array(items) => items.iter_mut().for_each(rebuild_arrays),
        _ => {}
    }
}

/// `k` as an array index: digits, no leading zero (but `0` itself).
fn index(k: &str) -> Option<usize> {
    if k.is_empty() || !k.bytes().all(|b| b.is_ascii_digit()) || (k.len() > 1 && k.starts_with('0'))
    {
        return None;
    }
    k.parse().ok()
}

impl Transform for Flatten {
    type Config = Config;

    fn metadata() -> Metadata {
        Metadata::new(
            "flatten",
            env!("CARGO_PKG_VERSION"),
            "Flattens nested objects to keys joined by a separator (default \".\"), or \
             unflattens them back (\"mode\": \"unflatten\"); arrays kept or indexed.",
        )
        .config_schema(CONFIG_SCHEMA)
    }

    fn open(config: Config) -> Result<Self, Error> {
        Flatten::new(config).map_err(Error::InvalidConfig)
    }

    fn process(&mut self, mut record: Record, out: &mut Output) -> Result<(), Error> {
        match object(&record.value).and_then(|root| self.apply(root)) {
            Ok(m) => {
                record.set_json(&m)?;
                out.emit(record);
            }
            Err(reason) => out.reject(reason),
        }
        Ok(())
    }
}

autoflow_plugin_sdk::export_transform!(Flatten);
