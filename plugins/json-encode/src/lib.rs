//! `json-encode`: raw record bytes (text lines, binary payloads, JSON) become a JSON object
//! record, so that the JSON transforms can work on them.
//!
//! Config: `{ "as": "auto" | "text" | "base64" | "json", "into": "value", "key_into": "key",
//! "encoding_into": "encoding" }`. Each value becomes `{"<into>": V}`: V is the value as a
//! UTF-8 string (`text`), as standard base64 (`base64`), parsed as JSON (`json`), or, with
//! `auto`, the first of json, text and base64 that fits, named at `encoding_into`. With
//! `key_into`, the record's key goes there as a string (`null` when it has none). Key,
//! headers and time stay on the record.
use autoflow_json_path::{Path, utf8};
use autoflow_plugin_sdk::{Error, Metadata, Output, Record, Transform};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::{Map, Value};

#[cfg(test)]
mod tests;

/// JSON Schema (draft 2020-12) of [`Config`].
pub const CONFIG_SCHEMA: &str = r##"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "json-encode config",
  "description": "Turns each record's raw value into the JSON object {\"<into>\": V}.",
  "type": "object",
  "properties": {
    "as": {
      "description": "text: the value as a UTF-8 string. base64: as a standard base64 string. json: parsed as JSON. auto: json if it parses, else text if UTF-8, else base64, named at encoding_into.",
      "enum": ["auto", "text", "base64", "json"], "default": "auto"
    },
    "into": { "description": "Where V goes (dotted path).", "$ref": "#/$defs/path", "default": "value" },
    "key_into": { "description": "Where the record's key goes, as a string (null without a key); left out: nowhere.", "$ref": "#/$defs/path" },
    "encoding_into": {
      "description": "With as auto: where the encoding used goes (\"json\", \"text\" or \"base64\").",
      "$ref": "#/$defs/path", "default": "encoding"
    }
  },
  "additionalProperties": false,
  "if": { "required": ["as"], "properties": { "as": { "not": { "const": "auto" } } } },
  "then": { "properties": { "encoding_into": false } },
  "$defs": {
    "path": { "type": "string", "minLength": 1, "pattern": "^[^.]+(\\.[^.]+)*$" }
  }
}"##;

/// The step's configuration, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// How the value is read: `auto` (default), `text`, `base64` or `json`.
    #[serde(default, rename = "as")]
    pub as_: Option<String>,
    /// Where the value goes (default `value`).
    #[serde(default)]
    pub into: Option<String>,
    /// Where the key goes, if anywhere.
    #[serde(default)]
    pub key_into: Option<String>,
    /// With `auto`: where the encoding used goes (default `encoding`).
    #[serde(default)]
    pub encoding_into: Option<String>,
}

/// How a value is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// The first of json, text and base64 that fits.
    Auto,
    /// A UTF-8 string.
    Text,
    /// A standard base64 string.
    Base64,
    /// Parsed JSON.
    Json,
}

impl Encoding {
    /// The encoding `name` names; the error names `as`.
    fn parse(name: &str) -> Result<Self, String> {
        match name {
            "auto" => Ok(Encoding::Auto),
            "text" => Ok(Encoding::Text),
            "base64" => Ok(Encoding::Base64),
            "json" => Ok(Encoding::Json),
            other => Err(format!(
                "as: must be \"auto\", \"text\", \"base64\" or \"json\", not {other:?}"
            )),
        }
    }

    /// The name written at `encoding_into`.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Auto => "auto",
            Encoding::Text => "text",
            Encoding::Base64 => "base64",
            Encoding::Json => "json",
        }
    }
}

/// The transform: the encoding and the checked paths.
#[derive(Debug)]
pub struct JsonEncode {
    encoding: Encoding,
    into: Path,
    key_into: Option<Path>,
    /// Set with `auto` only.
    encoding_into: Option<Path>,
}

impl JsonEncode {
    /// Builds the transform from `config`; the error names the offending key.
    pub fn new(config: Config) -> Result<Self, String> {
        let encoding = Encoding::parse(config.as_.as_deref().unwrap_or("auto"))?;
        let into = path("into", config.into.as_deref().unwrap_or("value"))?;
        let key_into = config.key_into.map(|p| path("key_into", &p)).transpose()?;
        let encoding_into = match (encoding, config.encoding_into) {
            (Encoding::Auto, given) => Some(path(
                "encoding_into",
                given.as_deref().unwrap_or("encoding"),
            )?),
            (_, None) => None,
            (other, Some(_)) => {
                return Err(format!(
                    "encoding_into: applies only to as \"auto\", and as is {:?}",
                    other.name()
                ));
            }
        };
        let named = [
            Some(("into", &into)),
            encoding_into.as_ref().map(|p| ("encoding_into", p)),
            key_into.as_ref().map(|p| ("key_into", p)),
        ];
        check_apart(&named.into_iter().flatten().collect::<Vec<_>>())?;
        Ok(JsonEncode {
            encoding,
            into,
            key_into,
            encoding_into,
        })
    }

    /// The JSON object `record` becomes, or why it is rejected.
    pub fn encode(&self, record: &Record) -> Result<Map<String, Value>, String> {
        let (value, used) = decode(self.encoding, &record.value)?;
        let mut out = Map::new();
        self.into.set(&mut out, value)?;
        if let Some(p) = &self.encoding_into {
            p.set(&mut out, Value::String(used.name().into()))?;
        }
        if let Some(p) = &self.key_into {
            let key = match &record.key {
                None => Value::Null,
                Some(key) => Value::String(utf8(key, "key")?.to_string()),
            };
            p.set(&mut out, key)?;
        }
        Ok(out)
    }
}

/// Parses `text`, the value of config key `key`, as a path; the error names the key.
fn path(key: &str, text: &str) -> Result<Path, String> {
    Path::parse(text).map_err(|e| format!("{key}: {e}"))
}

/// Refuses two of the `(key, path)` where one lies within the other (they would overwrite
/// each other); the error names the later key.
fn check_apart(named: &[(&str, &Path)]) -> Result<(), String> {
    for (i, (key, p)) in named.iter().enumerate() {
        if let Some((other, q)) = named[..i].iter().find(|(_, q)| p.within(q) || q.within(p)) {
            return Err(format!(
                "{key}: {:?} overlaps {other} ({:?})",
                p.as_str(),
                q.as_str()
            ));
        }
    }
    Ok(())
}

/// Reads `bytes` with `encoding`: the JSON value and the encoding used (not `Auto`), or why
/// they cannot be read so.
pub fn decode(encoding: Encoding, bytes: &[u8]) -> Result<(Value, Encoding), String> {
    match encoding {
        Encoding::Text => Ok((Value::String(utf8(bytes, "value")?.into()), Encoding::Text)),
        Encoding::Base64 => Ok((Value::String(STANDARD.encode(bytes)), Encoding::Base64)),
        Encoding::Json => serde_json::from_slice(bytes)
            .map(|v| (v, Encoding::Json))
            .map_err(|e| format!("value is not JSON: {e}")),
        Encoding::Auto => decode(Encoding::Json, bytes)
            .or_else(|_| decode(Encoding::Text, bytes))
            .or_else(|_| decode(Encoding::Base64, bytes)),
    }
}

impl Transform for JsonEncode {
    type Config = Config;

    fn metadata() -> Metadata {
        Metadata::new(
            "json-encode",
            env!("CARGO_PKG_VERSION"),
            "Turns each record's raw value (text, binary or JSON) into the JSON object \
             {\"value\": V}: a UTF-8 string, base64, parsed JSON, or the first that fits; \
             optionally with the record's key.",
        )
        .config_schema(CONFIG_SCHEMA)
    }

    fn open(config: Config) -> Result<Self, Error> {
        JsonEncode::new(config).map_err(Error::InvalidConfig)
    }

    fn process(&mut self, mut record: Record, out: &mut Output) -> Result<(), Error> {
        match self.encode(&record) {
            Ok(object) => {
                record.set_json(&object)?;
                out.emit(record);
            }
            Err(reason) => out.reject(reason),
        }
        Ok(())
    }
}

autoflow_plugin_sdk::export_transform!(JsonEncode);
