//! `dedupe`: drops records whose key was seen among the last `window` distinct keys, across
//! runs, remembered in the step's durable state.
//!
//! Config: `{ "key": ["id"], "window": 100000 }`. Each key is kept as its 64-bit stable hash
//! ([`autoflow_json_path::hash_fields`]), so the state holds 8 bytes per key: a ring of
//! `window` hashes cut into segments of [`SEGMENT`] (one state entry each, `dedupe.seg.N`),
//! plus `dedupe.meta`; only the segments a batch changed are written back.
use std::collections::{BTreeSet, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

use autoflow_json_path::{Fields, KeyHasher, Path, hash_fields, object};
use autoflow_plugin_sdk::{Error, Metadata, Output, Record, Transform, host};
use serde::Deserialize;

#[cfg(test)]
mod tests;

/// Hashes per state entry.
pub const SEGMENT: usize = 4096;
/// The largest window: 8 MiB of hashes, half the host's 16 MiB cap on a step's state.
pub const MAX_WINDOW: u64 = 1 << 20;
/// The state entry holding the format, the window and the count of keys ever remembered.
pub const META_KEY: &str = "dedupe.meta";
const MAGIC: &[u8; 8] = b"dedupe01";

/// JSON Schema (draft 2020-12) of [`Config`].
pub const CONFIG_SCHEMA: &str = r##"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "dedupe config",
  "description": "Drops records whose key is among the last `window` distinct keys seen, across runs.",
  "type": "object",
  "properties": {
    "key": {
      "description": "Field(s) making the key; the whole value when left out.",
      "oneOf": [
        { "$ref": "#/$defs/path" },
        { "type": "array", "items": { "$ref": "#/$defs/path" }, "minItems": 1 }
      ]
    },
    "window": { "description": "How many distinct keys are remembered (8 bytes each in the step state).", "type": "integer", "minimum": 1, "maximum": 1048576, "default": 100000 }
  },
  "additionalProperties": false,
  "$defs": {
    "path": { "type": "string", "minLength": 1, "pattern": "^[^.]+(\\.[^.]+)*$" }
  }
}"##;

/// The step's configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Key fields; the whole value when `None`.
    #[serde(default)]
    pub key: Option<Fields>,
    /// Distinct keys remembered.
    #[serde(default = "default_window")]
    pub window: u64,
}

fn default_window() -> u64 {
    100_000
}

/// The keys are hashes already: a set of them needs no second hash.
#[derive(Default)]
struct Identity(u64);

impl Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// The last `window` distinct key hashes, oldest first from `next % window` once full.
#[derive(Debug, Default)]
pub struct Window {
    window: usize,
    /// Keys ever remembered (the next one goes to slot `next % window`).
    next: u64,
    ring: Vec<u64>,
    seen: HashSet<u64, BuildHasherDefault<Identity>>,
    dirty: BTreeSet<usize>,
}

impl Window {
    /// An empty window of `window` keys, its memory taken at once (about 17 bytes a key: the
    /// ring and the set, which then never grows and rehashes).
    pub fn new(window: usize) -> Self {
        Window {
            window,
            ring: Vec::with_capacity(window),
            seen: HashSet::with_capacity_and_hasher(window, BuildHasherDefault::default()),
            ..Window::default()
        }
    }

    /// Remembers `hash`; false if it is in the window already (a duplicate).
    pub fn insert(&mut self, hash: u64) -> bool {
        if !self.seen.insert(hash) {
            return false;
        }
        let slot = (self.next % self.window as u64) as usize;
        if slot < self.ring.len() {
            let old = std::mem::replace(&mut self.ring[slot], hash);
            self.seen.remove(&old);
        } else {
            self.ring.push(hash);
        }
        self.next += 1;
        self.dirty.insert(slot / SEGMENT);
        true
    }

    /// The remembered hashes, oldest first.
    fn in_order(&self) -> impl Iterator<Item = u64> + '_ {
        let start = if self.ring.len() < self.window {
            0
        } else {
            (self.next % self.window as u64) as usize
        };
        self.ring[start..]
            .iter()
            .chain(&self.ring[..start])
            .copied()
    }

    /// Loads the window kept in state by `get`, resized to `window` (keeping the newest keys).
    pub fn load(window: usize, get: impl Fn(&str) -> Option<Vec<u8>>) -> Result<Self, String> {
        let Some(meta) = get(META_KEY) else {
            return Ok(Window::new(window));
        };
        let field = |i: usize| {
            meta.get(8 + 8 * i..16 + 8 * i)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_le_bytes)
        };
        let (Some(stored), Some(next)) = (field(0), field(1)) else {
            return Err(format!("state {META_KEY} is not in the dedupe01 format"));
        };
        if meta.get(..8) != Some(MAGIC) || stored == 0 || stored > MAX_WINDOW {
            return Err(format!("state {META_KEY} is not in the dedupe01 format"));
        }
        let stored = stored as usize;
        let len = next.min(stored as u64) as usize;
        let mut old = Window::new(stored);
        old.next = next;
        for seg in 0..len.div_ceil(SEGMENT) {
            let key = segment_key(seg);
            let want = (len - seg * SEGMENT).min(SEGMENT);
            let bytes = get(&key).unwrap_or_default();
            if bytes.len() < want * 8 {
                return Err(format!(
                    "state {key} holds {} bytes, not the {} of {want} keys",
                    bytes.len(),
                    want * 8
                ));
            }
            old.ring.extend(
                bytes[..want * 8]
                    .chunks_exact(8)
                    .filter_map(|c| c.try_into().ok().map(u64::from_le_bytes)),
            );
        }
        if stored == window {
            let Window { ring, seen, .. } = &mut old;
            seen.extend(ring.iter().copied());
            return Ok(old);
        }
        let mut w = Window::new(window);
        let keep = old.ring.len().min(window);
        for h in old.in_order().skip(old.ring.len() - keep) {
            w.insert(h);
        }
        // Every segment of the new layout is written, and the old ones past it emptied.
        w.dirty = (0..old.ring.len().max(w.ring.len()).div_ceil(SEGMENT)).collect();
        Ok(w)
    }

    /// Writes the changed segments and the meta entry with `set`.
    pub fn save(&mut self, mut set: impl FnMut(&str, &[u8])) {
        if self.dirty.is_empty() {
            return;
        }
        let mut buf = Vec::with_capacity(SEGMENT * 8);
        for seg in std::mem::take(&mut self.dirty) {
            buf.clear();
            let from = (seg * SEGMENT).min(self.ring.len());
            let to = ((seg + 1) * SEGMENT).min(self.ring.len());
            for h in &self.ring[from..to] {
                buf.extend_from_slice(&h.to_le_bytes());
            }
            set(&segment_key(seg), &buf);
        }
        let mut meta = Vec::with_capacity(24);
        meta.extend_from_slice(MAGIC);
        meta.extend_from_slice(&(self.window as u64).to_le_bytes());
        meta.extend_from_slice(&self.next.to_le_bytes());
        set(META_KEY, &meta);
    }
}

/// The state entry of segment `n`.
pub fn segment_key(n: usize) -> String {
    format!("dedupe.seg.{n}")
}

/// The transform.
#[derive(Debug)]
pub struct Dedupe {
    key: Option<Vec<Path>>,
    window: Window,
    dropped: u64,
}

impl Dedupe {
    /// The key hash of a record value, or why it has none.
    pub fn key_hash(&self, value: &[u8]) -> Result<u64, String> {
        match &self.key {
            Some(paths) => hash_fields(0, &object(value)?, paths),
            None => {
                let mut h = KeyHasher::new(0);
                h.write(value);
                Ok(h.finish())
            }
        }
    }
}

impl Transform for Dedupe {
    type Config = Config;

    fn metadata() -> Metadata {
        Metadata::new(
            "dedupe",
            env!("CARGO_PKG_VERSION"),
            "Drops records whose key (one or more fields, or the whole value) is among the \
             last `window` distinct keys seen, across runs, kept in the step's state (8 bytes \
             per key).",
        )
        .config_schema(CONFIG_SCHEMA)
    }

    fn open(config: Config) -> Result<Self, Error> {
        let key = match &config.key {
            None => None,
            Some(f) => Some(f.paths("key").map_err(Error::InvalidConfig)?),
        };
        if config.window == 0 || config.window > MAX_WINDOW {
            return Err(Error::InvalidConfig(format!(
                "window: {} is not between 1 and {MAX_WINDOW}",
                config.window
            )));
        }
        let window = Window::load(config.window as usize, host::state_get).map_err(Error::Fatal)?;
        Ok(Dedupe {
            key,
            window,
            dropped: 0,
        })
    }

    fn process(&mut self, record: Record, out: &mut Output) -> Result<(), Error> {
        match self.key_hash(&record.value) {
            Ok(h) if self.window.insert(h) => out.emit(record),
            Ok(_) => self.dropped += 1,
            Err(reason) => out.reject(reason),
        }
        Ok(())
    }

    fn end_batch(&mut self, _out: &mut Output) -> Result<(), Error> {
        self.window.save(host::state_set);
        if self.dropped > 0 {
            host::count("duplicates", std::mem::take(&mut self.dropped));
        }
        Ok(())
    }
}

autoflow_plugin_sdk::export_transform!(Dedupe);
