//! Dotted paths into JSON objects, JSON type names for messages, record values read as JSON
//! objects or UTF-8 text, and a stable key hash: the pieces the built-in transforms (`split`,
//! `flatten`, `sample`, `mask`, `dedupe`, `csv-parse`, `json-encode`) share.
use std::hash::Hasher;

use serde_json::{Map, Value};
use siphasher::sip::SipHasher13;

/// A dotted path (`customer.country`) into nested JSON objects, split once into keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    text: String,
    keys: Vec<String>,
}

impl Path {
    /// Parses `text`; empty segments (`a..b`, `.a`, ``) are refused.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.split('.').any(str::is_empty) {
            return Err(format!("invalid path {text:?}: empty segment"));
        }
        Ok(Path {
            text: text.to_string(),
            keys: text.split('.').map(String::from).collect(),
        })
    }

    /// Parses each path of `list`; the error names `field` and the index.
    pub fn parse_all(field: &str, list: &[String]) -> Result<Vec<Self>, String> {
        list.iter()
            .enumerate()
            .map(|(i, p)| Path::parse(p).map_err(|e| format!("{field}[{i}]: {e}")))
            .collect()
    }

    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `self` is `other` or lies inside it (`a.b` is within `a`).
    pub fn within(&self, other: &Path) -> bool {
        self.keys.starts_with(&other.keys)
    }

    fn split(&self) -> (&[String], &str) {
        match self.keys.split_last() {
            Some((last, parents)) => (parents, last),
            None => (&[], ""),
        }
    }

    /// The value at this path, if every parent is an object and the key is there.
    pub fn get<'v>(&self, root: &'v Map<String, Value>) -> Option<&'v Value> {
        let (parents, last) = self.split();
        parents
            .iter()
            .try_fold(root, |m, k| m.get(k)?.as_object())?
            .get(last)
    }

    /// The value at this path, mutably.
    pub fn get_mut<'v>(&self, root: &'v mut Map<String, Value>) -> Option<&'v mut Value> {
        let (parents, last) = self.split();
        parents
            .iter()
            .try_fold(root, |m, k| m.get_mut(k)?.as_object_mut())?
            .get_mut(last)
    }

    /// Removes and returns the value at this path, keeping the order of the other keys.
    pub fn take(&self, root: &mut Map<String, Value>) -> Option<Value> {
        let (parents, last) = self.split();
        parents
            .iter()
            .try_fold(root, |m, k| m.get_mut(k)?.as_object_mut())?
            .shift_remove(last)
    }

    /// Puts `value` at this path, creating missing objects; a key already there keeps its
    /// position. Fails if a parent exists but is not an object.
    pub fn set(&self, root: &mut Map<String, Value>, value: Value) -> Result<(), String> {
        let (parents, last) = self.split();
        let mut m = root;
        for (i, k) in parents.iter().enumerate() {
            let slot = m
                .entry(k.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            m = match slot {
                Value::Object(inner) => inner,
                other => {
                    return Err(format!(
                        "cannot set {}: {} is {}, not an object",
                        self.text,
                        parents[..=i].join("."),
                        kind(other)
                    ));
                }
            };
        }
        m.insert(last.to_string(), value);
        Ok(())
    }
}

/// A config value naming one field or several: `"id"` or `["id", "day"]`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(untagged)]
pub enum Fields {
    /// One dotted path.
    One(String),
    /// Several, in order.
    Many(Vec<String>),
}

impl Fields {
    /// The parsed paths; the error names `field` (and the index), and refuses an empty list.
    pub fn paths(&self, field: &str) -> Result<Vec<Path>, String> {
        match self {
            Fields::One(p) => Ok(vec![Path::parse(p).map_err(|e| format!("{field}: {e}"))?]),
            Fields::Many(list) if list.is_empty() => {
                Err(format!("{field}: name at least one field"))
            }
            Fields::Many(list) => Path::parse_all(field, list),
        }
    }
}

/// A JSON type name with its article, for messages.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Parses a record value as a JSON object; the error is a rejection reason.
pub fn object(value: &[u8]) -> Result<Map<String, Value>, String> {
    match serde_json::from_slice::<Value>(value) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(other) => Err(format!(
            "value is not a JSON object (it is {})",
            kind(&other)
        )),
        Err(e) => Err(format!("value is not valid JSON: {e}")),
    }
}

/// Reads `bytes` (`what`: "value", "key") as UTF-8 text; the error is a rejection reason that
/// names the byte offset of the first bad byte.
pub fn utf8<'b>(bytes: &'b [u8], what: &str) -> Result<&'b str, String> {
    std::str::from_utf8(bytes).map_err(|e| {
        let at = e.valid_up_to();
        match e.error_len() {
            Some(_) => format!("{what} is not UTF-8: invalid byte at offset {at}"),
            None => format!("{what} is not UTF-8: it ends inside a character at offset {at}"),
        }
    })
}

/// A stable 64-bit hash (SipHash-1-3 with fixed keys): the same on every platform and in every
/// release, so hashes kept in step state and sampling decisions survive upgrades.
#[derive(Debug, Clone)]
pub struct KeyHasher(SipHasher13);

impl KeyHasher {
    /// A hasher keyed by `seed`.
    pub fn new(seed: u64) -> Self {
        KeyHasher(SipHasher13::new_with_keys(seed, 0x6175_746f_666c_6f77))
    }

    /// Adds `bytes` and a length, so `["ab","c"]` and `["a","bc"]` differ.
    pub fn write(&mut self, bytes: &[u8]) {
        self.0.write(bytes);
        self.0.write(&(bytes.len() as u64).to_le_bytes());
    }

    /// Adds a JSON value by its compact JSON text (a string by its UTF-8 bytes).
    pub fn write_json(&mut self, v: &Value) {
        match v {
            Value::String(s) => {
                self.0.write_u8(b's');
                self.write(s.as_bytes());
            }
            other => {
                self.0.write_u8(b'j');
                self.write(other.to_string().as_bytes());
            }
        }
    }

    /// The hash.
    pub fn finish(&self) -> u64 {
        self.0.finish()
    }
}

/// Hashes the values at `paths` in `root` (in order); the error names the first missing path.
pub fn hash_fields(seed: u64, root: &Map<String, Value>, paths: &[Path]) -> Result<u64, String> {
    let mut h = KeyHasher::new(seed);
    for p in paths {
        match p.get(root) {
            Some(v) => h.write_json(v),
            None => return Err(format!("key field {} is missing", p.as_str())),
        }
    }
    Ok(h.finish())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn utf8_errors_name_the_offset() {
        assert_eq!(utf8("é".as_bytes(), "value"), Ok("é"));
        assert_eq!(
            utf8(b"ab\xffc", "value"),
            Err("value is not UTF-8: invalid byte at offset 2".into())
        );
        assert_eq!(
            utf8(b"a\xc3", "key"),
            Err("key is not UTF-8: it ends inside a character at offset 1".into())
        );
    }

    #[test]
    fn paths_get_set_take() {
        let mut m: Map<String, Value> = serde_json::from_str(r#"{"a":{"b":1},"c":2}"#).unwrap();
        let ab = Path::parse("a.b").unwrap();
        assert_eq!(ab.get(&m), Some(&Value::from(1)));
        assert!(Path::parse("c.d").unwrap().set(&mut m, 1.into()).is_err());
        Path::parse("x.y").unwrap().set(&mut m, 3.into()).unwrap();
        assert_eq!(ab.take(&mut m), Some(Value::from(1)));
        assert_eq!(
            Value::Object(m).to_string(),
            r#"{"a":{},"c":2,"x":{"y":3}}"#
        );
        assert!(Path::parse("a..b").is_err());
    }

    #[test]
    fn the_hash_is_stable() {
        // Pinned: step state and sampling decisions depend on these values staying put.
        let m: Map<String, Value> = serde_json::from_str(r#"{"id":7,"u":"ada"}"#).unwrap();
        let paths = Path::parse_all("key", &["id".into(), "u".into()]).unwrap();
        let h = hash_fields(0, &m, &paths).unwrap();
        assert_eq!(h, hash_fields(0, &m, &paths).unwrap());
        assert_ne!(h, hash_fields(1, &m, &paths).unwrap());
        assert_eq!(format!("{h:016x}"), PINNED);
    }
    const PINNED: &str = "36174d2045f14286";
}
