//! `mask`: hashes, redacts or truncates chosen fields.
//!
//! Config: `{ "secret": "mask-key", "fields": { "email": "hash", "name": "redact",
//! "card": { "truncate": 4 }, "ssn": { "redact": "XXX" } } }`. `hash` is HMAC-SHA256 keyed
//! with the granted secret `secret`, written as lowercase hex; a missing or null field is left
//! as it is.
use autoflow_json_path::{Path, kind, object};
use autoflow_plugin_sdk::{Error, Metadata, Output, Record, Transform, host};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::Sha256;

#[cfg(test)]
mod tests;

/// JSON Schema (draft 2020-12) of [`Config`].
pub const CONFIG_SCHEMA: &str = r##"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "mask config",
  "description": "Per field: hash (HMAC-SHA256 with a granted secret), redact, or truncate.",
  "type": "object",
  "properties": {
    "secret": { "description": "Name of the granted secret that keys `hash`.", "type": "string", "minLength": 1 },
    "fields": {
      "description": "Dotted path -> rule.",
      "type": "object",
      "minProperties": 1,
      "propertyNames": { "type": "string", "minLength": 1, "pattern": "^[^.]+(\\.[^.]+)*$" },
      "additionalProperties": {
        "oneOf": [
          { "enum": ["hash", "redact"] },
          { "type": "object", "properties": { "redact": {} }, "required": ["redact"], "additionalProperties": false },
          { "type": "object", "properties": { "truncate": { "type": "integer", "minimum": 0 } }, "required": ["truncate"], "additionalProperties": false }
        ]
      }
    }
  },
  "required": ["fields"],
  "additionalProperties": false
}"##;

/// What `"redact"` alone puts in place of the value.
pub const REDACTED: &str = "[redacted]";

/// The step's configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Name of the secret keying `hash`.
    #[serde(default)]
    pub secret: Option<String>,
    /// Path -> rule, as written.
    pub fields: Map<String, Value>,
}

/// What happens to one field.
#[derive(Debug, Clone)]
pub enum Rule {
    /// HMAC-SHA256 in hex.
    Hash,
    /// Replaced by this value.
    Redact(Value),
    /// Cut to this many characters.
    Truncate(usize),
}

impl Rule {
    fn parse(at: &str, v: &Value) -> Result<Rule, String> {
        let bad = || {
            format!(
                "{at}: a rule is \"hash\", \"redact\", {{\"redact\": value}} or {{\"truncate\": n}}, not {v}"
            )
        };
        match v {
            Value::String(s) if s == "hash" => Ok(Rule::Hash),
            Value::String(s) if s == "redact" => Ok(Rule::Redact(Value::from(REDACTED))),
            Value::Object(m) if m.len() == 1 => match m.iter().next() {
                Some((k, r)) if k == "redact" => Ok(Rule::Redact(r.clone())),
                Some((k, n)) if k == "truncate" => n
                    .as_u64()
                    .and_then(|n| usize::try_from(n).ok())
                    .map(Rule::Truncate)
                    .ok_or_else(|| format!("{at}.truncate: {n} is not an integer ≥ 0")),
                _ => Err(bad()),
            },
            _ => Err(bad()),
        }
    }
}

/// The transform: parsed rules and the keyed MAC, ready to clone per value.
pub struct Mask {
    rules: Vec<(Path, Rule)>,
    mac: Option<Hmac<Sha256>>,
}

impl std::fmt::Debug for Mask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mask").field("rules", &self.rules).finish()
    }
}

impl Mask {
    /// Parses `config` and keys the MAC with `secret` (the value of the secret it names).
    pub fn new(
        config: Config,
        secret: impl FnOnce(&str) -> Option<String>,
    ) -> Result<Self, String> {
        if config.fields.is_empty() {
            return Err("fields: name at least one field".into());
        }
        let mut rules = Vec::with_capacity(config.fields.len());
        for (p, v) in &config.fields {
            let path = Path::parse(p).map_err(|e| format!("fields: {e}"))?;
            rules.push((path, Rule::parse(&format!("fields.{p}"), v)?));
        }
        let hashed = rules.iter().find(|(_, r)| matches!(r, Rule::Hash));
        let mac = match (hashed, &config.secret) {
            (None, _) => None,
            (Some((p, _)), None) => {
                return Err(format!(
                    "secret: fields.{} is hashed, which needs `secret`, the name of a secret granted to the step",
                    p.as_str()
                ));
            }
            (Some(_), Some(name)) => {
                let value = secret(name).ok_or_else(|| {
                    format!("secret: the secret {name:?} is not granted to this step")
                })?;
                if value.is_empty() {
                    return Err(format!("secret: the secret {name:?} is empty"));
                }
                Some(
                    Hmac::<Sha256>::new_from_slice(value.as_bytes())
                        .map_err(|e| format!("secret: {e}"))?,
                )
            }
        };
        Ok(Mask { rules, mac })
    }

    /// Applies every rule to `root`, or says why one cannot apply.
    pub fn apply(&self, root: &mut Map<String, Value>) -> Result<(), String> {
        for (path, rule) in &self.rules {
            let Some(v) = path.get_mut(root) else {
                continue;
            };
            if v.is_null() {
                continue;
            }
            match rule {
                Rule::Hash => {
                    let mut mac = self.mac.clone().ok_or("no key for hash")?;
                    match &*v {
                        Value::String(s) => mac.update(s.as_bytes()),
                        other => mac.update(other.to_string().as_bytes()),
                    }
                    *v = Value::String(hex(&mac.finalize().into_bytes()));
                }
                Rule::Redact(r) => *v = r.clone(),
                Rule::Truncate(n) => match v {
                    Value::String(s) => {
                        if let Some((cut, _)) = s.char_indices().nth(*n) {
                            s.truncate(cut);
                        }
                    }
                    other => {
                        return Err(format!(
                            "{} is {}; truncate applies to strings",
                            path.as_str(),
                            kind(other)
                        ));
                    }
                },
            }
        }
        Ok(())
    }
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

impl Transform for Mask {
    type Config = Config;

    fn metadata() -> Metadata {
        Metadata::new(
            "mask",
            env!("CARGO_PKG_VERSION"),
            "Masks chosen fields: hash (HMAC-SHA256 keyed with a granted secret, hex), redact \
             (a fixed replacement) or truncate (keep N characters).",
        )
        .config_schema(CONFIG_SCHEMA)
    }

    fn open(config: Config) -> Result<Self, Error> {
        Mask::new(config, host::secret).map_err(Error::InvalidConfig)
    }

    fn process(&mut self, mut record: Record, out: &mut Output) -> Result<(), Error> {
        let masked = object(&record.value).and_then(|mut root| {
            self.apply(&mut root)?;
            Ok(root)
        });
        match masked {
            Ok(root) => {
                record.set_json(&root)?;
                out.emit(record);
            }
            Err(reason) => out.reject(reason),
        }
        Ok(())
    }
}

autoflow_plugin_sdk::export_transform!(Mask);
