//! `sample`: keeps a deterministic share of the records, or a reservoir of N per run.
//!
//! Config: `{ "rate": 0.1, "key": ["user"], "seed": 0 }`. A record is kept when the stable hash
//! of its key fields (or of its whole value when `key` is left out), read as a number in
//! [0, 1), is below `rate`: a rerun over the same records keeps the same ones, and every record
//! of one key is kept or dropped together.
//!
//! `{ "reservoir": 100 }` instead keeps the 100 records of the run with the lowest hashes (a
//! bottom-k sample: uniform, and the same records whatever the batch size or order), held in a
//! bounded heap and passed on at the end of the run (`finish`, `autoflow:plugin@0.2.0`) in the
//! order they came.
use std::collections::BinaryHeap;

use autoflow_json_path::{Fields, KeyHasher, Path, hash_fields, object};
use autoflow_plugin_sdk::{Error, Metadata, Output, Record, Transform, host};
use serde::Deserialize;

#[cfg(test)]
mod tests;

/// JSON Schema (draft 2020-12) of [`Config`].
pub const CONFIG_SCHEMA: &str = r##"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "sample config",
  "description": "Keeps the records whose hash falls below `rate`.",
  "type": "object",
  "properties": {
    "rate": { "description": "Share of records (or keys) kept, from 0 to 1.", "type": "number", "minimum": 0, "maximum": 1 },
    "reservoir": { "description": "Instead of rate: keep this many records per run (those with the lowest hashes), passed on at the end of the run.", "type": "integer", "minimum": 1, "maximum": 1000000 },
    "key": {
      "description": "Field(s) whose values decide; the whole value when left out.",
      "oneOf": [
        { "$ref": "#/$defs/path" },
        { "type": "array", "items": { "$ref": "#/$defs/path" }, "minItems": 1 }
      ]
    },
    "seed": { "description": "Picks another subset of the same share.", "type": "integer", "minimum": 0, "default": 0 }
  },
  "oneOf": [{ "required": ["rate"] }, { "required": ["reservoir"] }],
  "additionalProperties": false,
  "$defs": {
    "path": { "type": "string", "minLength": 1, "pattern": "^[^.]+(\\.[^.]+)*$" }
  }
}"##;

/// The step's configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Share kept, 0 to 1 (exclusive with `reservoir`).
    #[serde(default)]
    pub rate: Option<f64>,
    /// Key fields; the whole value when `None`.
    #[serde(default)]
    pub key: Option<Fields>,
    /// Hash seed.
    #[serde(default)]
    pub seed: u64,
    /// Records kept per run, passed on at its end (exclusive with `rate`).
    #[serde(default)]
    pub reservoir: Option<u64>,
}

/// Largest `reservoir`.
pub const MAX_RESERVOIR: u64 = 1_000_000;

/// A record held in the reservoir: the heap keeps the highest hash on top, to be evicted.
#[derive(Debug)]
struct Held {
    hash: u64,
    arrival: u64,
    record: Record,
}

impl PartialEq for Held {
    fn eq(&self, other: &Self) -> bool {
        (self.hash, self.arrival) == (other.hash, other.arrival)
    }
}
impl Eq for Held {}
impl PartialOrd for Held {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Held {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.hash, self.arrival).cmp(&(other.hash, other.arrival))
    }
}

/// How records are chosen.
#[derive(Debug)]
enum Choice {
    /// Kept when the top 53 bits of their hash are below this.
    Rate(u64),
    /// The `size` records with the lowest hashes so far.
    Reservoir {
        size: usize,
        held: BinaryHeap<Held>,
        arrived: u64,
    },
}

/// The transform.
#[derive(Debug)]
pub struct Sample {
    choice: Choice,
    key: Option<Vec<Path>>,
    seed: u64,
    dropped: u64,
}

const SCALE: f64 = (1u64 << 53) as f64;

impl Sample {
    /// Checks `config`; the error names the offending key.
    pub fn new(config: Config) -> Result<Self, String> {
        let choice = match (config.rate, config.reservoir) {
            (Some(_), Some(_)) => {
                return Err("rate and reservoir are exclusive: give one".into());
            }
            (None, None) => return Err("give rate (a share) or reservoir (a count)".into()),
            (Some(rate), None) if !(0.0..=1.0).contains(&rate) => {
                return Err(format!("rate: {rate} is not between 0 and 1"));
            }
            (Some(rate), None) => Choice::Rate((rate * SCALE) as u64),
            (None, Some(n)) if !(1..=MAX_RESERVOIR).contains(&n) => {
                return Err(format!(
                    "reservoir: {n} is not between 1 and {MAX_RESERVOIR}"
                ));
            }
            (None, Some(n)) => Choice::Reservoir {
                size: n as usize,
                held: BinaryHeap::new(),
                arrived: 0,
            },
        };
        let key = match &config.key {
            None => None,
            Some(f) => Some(f.paths("key")?),
        };
        Ok(Sample {
            choice,
            key,
            seed: config.seed,
            dropped: 0,
        })
    }

    /// The stable hash that decides for the record with this value, or why there is none.
    fn hash(&self, value: &[u8]) -> Result<u64, String> {
        match &self.key {
            Some(paths) => hash_fields(self.seed, &object(value)?, paths),
            None => {
                let mut h = KeyHasher::new(self.seed);
                h.write(value);
                Ok(h.finish())
            }
        }
    }

    /// With `rate`: whether the record with this value is kept, or why it cannot be decided.
    /// With `reservoir` it is decided at the end: `false`.
    pub fn keeps(&self, value: &[u8]) -> Result<bool, String> {
        let hash = self.hash(value)?;
        Ok(matches!(self.choice, Choice::Rate(threshold) if hash >> 11 < threshold))
    }
}

impl Transform for Sample {
    type Config = Config;

    fn metadata() -> Metadata {
        Metadata::new(
            "sample",
            env!("CARGO_PKG_VERSION"),
            "Keeps a deterministic share (rate) of the records, decided by a stable hash of key \
             fields or of the whole value, so a rerun keeps the same records.",
        )
        .config_schema(CONFIG_SCHEMA)
    }

    fn open(config: Config) -> Result<Self, Error> {
        Sample::new(config).map_err(Error::InvalidConfig)
    }

    fn process(&mut self, record: Record, out: &mut Output) -> Result<(), Error> {
        let hash = match self.hash(&record.value) {
            Ok(hash) => hash,
            Err(reason) => {
                out.reject(reason);
                return Ok(());
            }
        };
        match &mut self.choice {
            Choice::Rate(threshold) if hash >> 11 < *threshold => out.emit(record),
            Choice::Rate(_) => self.dropped += 1,
            Choice::Reservoir {
                size,
                held,
                arrived,
            } => {
                let arrival = *arrived;
                *arrived += 1;
                if held.len() < *size {
                    held.push(Held {
                        hash,
                        arrival,
                        record,
                    });
                } else if held.peek().is_some_and(|top| hash < top.hash) {
                    held.pop();
                    held.push(Held {
                        hash,
                        arrival,
                        record,
                    });
                    self.dropped += 1;
                } else {
                    self.dropped += 1;
                }
            }
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut Output) -> Result<(), Error> {
        if let Choice::Reservoir { held, .. } = &mut self.choice {
            let mut kept = std::mem::take(held).into_vec();
            kept.sort_by_key(|h| h.arrival);
            kept.into_iter().for_each(|h| out.emit(h.record));
        }
        Ok(())
    }

    fn end_batch(&mut self, _out: &mut Output) -> Result<(), Error> {
        if self.dropped > 0 {
            host::count("sampled_out", std::mem::take(&mut self.dropped));
        }
        Ok(())
    }
}

autoflow_plugin_sdk::export_transform!(Sample);
