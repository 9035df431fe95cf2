//! The fields a condition reads, and pulling just those out of a JSON text in one pass: the
//! rest of the document is checked for syntax but never built into values (so, unlike a full
//! `serde_json::Value` parse, a lone surrogate escape such as `"\ud800"` in a string that is not
//! read is let through; the JSON grammar allows it).
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// A dotted path, split once: object keys, or array indexes for numeric segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path(Vec<(String, Option<usize>)>);

impl Path {
    /// Parses `customer.country` or `items.0.sku`; empty segments are refused.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.split('.').any(str::is_empty) {
            return Err(format!("invalid field path {text:?}: empty segment"));
        }
        Ok(Path(
            text.split('.')
                .map(|s| (s.to_string(), s.parse().ok()))
                .collect(),
        ))
    }

    /// The value at this path in `v`, if any.
    pub fn lookup<'v>(&self, v: &'v Value) -> Option<&'v Value> {
        self.lookup_below(0, v)
    }

    /// The value at this path in `v`, the value found after the first `depth` segments.
    fn lookup_below<'v>(&self, depth: usize, v: &'v Value) -> Option<&'v Value> {
        self.0
            .get(depth..)?
            .iter()
            .try_fold(v, |cur, (key, index)| match cur {
                Value::Object(m) => m.get(key),
                Value::Array(a) => a.get((*index)?),
                _ => None,
            })
    }
}

/// One node of the path trie: the value here goes to `slot` if a path ends here.
#[derive(Debug, Clone, Default)]
struct Node {
    slot: Option<usize>,
    children: Vec<((String, Option<usize>), Node)>,
}

/// The set of paths a condition reads; each distinct path gets one slot.
#[derive(Debug, Clone, Default)]
pub struct Fields {
    root: Node,
    paths: Vec<Path>,
}

impl Fields {
    /// The slot of `path`, adding it if new.
    pub fn slot(&mut self, path: Path) -> usize {
        if let Some(i) = self.paths.iter().position(|p| *p == path) {
            return i;
        }
        let slot = self.paths.len();
        let mut node = &mut self.root;
        for seg in &path.0 {
            let i = match node.children.iter().position(|(s, _)| s == seg) {
                Some(i) => i,
                None => {
                    node.children.push((seg.clone(), Node::default()));
                    node.children.len() - 1
                }
            };
            node = &mut node.children[i].1;
        }
        node.slot = Some(slot);
        self.paths.push(path);
        slot
    }

    /// Parses `text` as JSON, filling `slots` (one per path) with the values found; the
    /// error is the JSON syntax error.
    pub fn extract(
        &self,
        text: &str,
        slots: &mut Vec<Option<Value>>,
    ) -> Result<(), serde_json::Error> {
        slots.clear();
        slots.resize(self.paths.len(), None);
        let mut de = serde_json::Deserializer::from_str(text);
        NodeSeed {
            node: &self.root,
            depth: 0,
            fields: self,
            slots,
        }
        .deserialize(&mut de)?;
        de.end()
    }

    /// Fills the slots below `node`, found `depth` segments deep, from its value `v`.
    fn fill_below(&self, node: &Node, depth: usize, v: &Value, slots: &mut [Option<Value>]) {
        for (_, child) in &node.children {
            self.fill_below(child, depth, v, slots);
            if let Some(s) = child.slot {
                slots[s] = self.paths[s].lookup_below(depth, v).cloned();
            }
        }
    }
}

/// Clears the slots below `node`: a repeated key replaces what the first one gave.
fn clear_below(node: &Node, slots: &mut [Option<Value>]) {
    for (_, child) in &node.children {
        if let Some(s) = child.slot {
            slots[s] = None;
        }
        clear_below(child, slots);
    }
}

/// Reads the value at `node`: the whole value if a path ends here, else only its children.
struct NodeSeed<'a> {
    node: &'a Node,
    depth: usize,
    fields: &'a Fields,
    slots: &'a mut [Option<Value>],
}

impl<'de> DeserializeSeed<'de> for NodeSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        clear_below(self.node, self.slots);
        match self.node.slot {
            Some(slot) => {
                let v = <Value as serde::Deserialize>::deserialize(d)?;
                // Paths below this one are read from the value (rare: `a` and `a.b` both used).
                self.fields
                    .fill_below(self.node, self.depth, &v, self.slots);
                self.slots[slot] = Some(v);
                Ok(())
            }
            None if self.node.children.is_empty() => {
                d.deserialize_ignored_any(IgnoredAny).map(drop)
            }
            None => d.deserialize_any(self),
        }
    }
}

impl<'de> Visitor<'de> for NodeSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(child) = map.next_key_seed(KeySeed(self.node))? {
            match child {
                Some(i) => map.next_value_seed(NodeSeed {
                    node: &self.node.children[i].1,
                    depth: self.depth + 1,
                    fields: self.fields,
                    slots: &mut *self.slots,
                })?,
                None => map.next_value::<IgnoredAny>().map(drop)?,
            }
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0;
        loop {
            let child = self
                .node
                .children
                .iter()
                .position(|((_, i), _)| *i == Some(index));
            let more = match child {
                Some(c) => seq
                    .next_element_seed(NodeSeed {
                        node: &self.node.children[c].1,
                        depth: self.depth + 1,
                        fields: self.fields,
                        slots: &mut *self.slots,
                    })?
                    .is_some(),
                None => seq.next_element::<IgnoredAny>()?.is_some(),
            };
            if !more {
                return Ok(());
            }
            index += 1;
        }
    }
}

/// Reads an object key as the index of the matching child of a node, without allocating.
struct KeySeed<'a>(&'a Node);

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Option<usize>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }
    fn visit_str<E>(self, key: &str) -> Result<Option<usize>, E> {
        Ok(self.0.children.iter().position(|((k, _), _)| k == key))
    }
}
