//! Dotted paths into nested JSON objects, and moving values in and out of them.
use serde_json::{Map, Value};

/// A dotted path (`customer.country`), split once into object keys.
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

    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `self` is `other` or lies inside it (`a.b` is within `a`).
    pub fn within(&self, other: &Path) -> bool {
        self.keys.starts_with(&other.keys)
    }

    /// Whether both paths end in the same object (`a.x` and `a.y`).
    pub fn same_parent(&self, other: &Path) -> bool {
        let n = self.keys.len();
        n == other.keys.len() && self.keys[..n - 1] == other.keys[..n - 1]
    }

    fn split(&self) -> (&[String], &str) {
        match self.keys.split_last() {
            Some((last, parents)) => (parents, last),
            None => (&[], ""),
        }
    }

    /// The object holding the last key, if every parent exists and is an object.
    fn parent_mut<'m>(
        &self,
        root: &'m mut Map<String, Value>,
    ) -> Option<&'m mut Map<String, Value>> {
        self.split()
            .0
            .iter()
            .try_fold(root, |m, k| m.get_mut(k)?.as_object_mut())
    }

    /// Removes and returns the value at this path, keeping the order of the other keys.
    pub fn take(&self, root: &mut Map<String, Value>) -> Option<Value> {
        self.parent_mut(root)?.shift_remove(self.split().1)
    }

    /// Removes and returns the value at this path; the order of the other keys may change
    /// (cheaper, for an object about to be dropped).
    pub fn take_unordered(&self, root: &mut Map<String, Value>) -> Option<Value> {
        self.parent_mut(root)?.swap_remove(self.split().1)
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

    /// Renames the key at `self` to the last key of `to` in place (same parent object), so
    /// the key keeps its position. Returns false if there was nothing to rename.
    pub fn rename_in_place(&self, root: &mut Map<String, Value>, to: &Path) -> bool {
        let Some(m) = self.parent_mut(root) else {
            return false;
        };
        let from = self.split().1;
        let Some(index) = m.keys().position(|k| k == from) else {
            return false;
        };
        if let Some(v) = m.shift_remove(from) {
            let index = index.min(m.len());
            m.shift_insert(index, to.split().1.to_string(), v);
        }
        true
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
