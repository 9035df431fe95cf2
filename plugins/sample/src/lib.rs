//! `sample`: keeps a deterministic share of the records.
//!
//! Config: `{ "rate": 0.1, "key": ["user"], "seed": 0 }`. A record is kept when the stable hash
//! of its key fields (or of its whole value when `key` is left out), read as a number in
//! [0, 1), is below `rate`: a rerun over the same records keeps the same ones, and every record
//! of one key is kept or dropped together. A reservoir of N per run needs an end-of-run call
//! that `autoflow:plugin@0.1.0` transforms do not have, so `reservoir` is refused.
use autoflow_json_path::{Fields, KeyHasher, Path, hash_fields, object};
use autoflow_plugin_sdk::{Error, Metadata, Output, Record, Transform, host};
use serde::Deserialize;
use serde_json::Value;

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
    "key": {
      "description": "Field(s) whose values decide; the whole value when left out.",
      "oneOf": [
        { "$ref": "#/$defs/path" },
        { "type": "array", "items": { "$ref": "#/$defs/path" }, "minItems": 1 }
      ]
    },
    "seed": { "description": "Picks another subset of the same share.", "type": "integer", "minimum": 0, "default": 0 }
  },
  "required": ["rate"],
  "additionalProperties": false,
  "$defs": {
    "path": { "type": "string", "minLength": 1, "pattern": "^[^.]+(\\.[^.]+)*$" }
  }
}"##;

/// The step's configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Share kept, 0 to 1.
    pub rate: f64,
    /// Key fields; the whole value when `None`.
    #[serde(default)]
    pub key: Option<Fields>,
    /// Hash seed.
    #[serde(default)]
    pub seed: u64,
    /// Refused with a reason (see the module doc).
    #[serde(default)]
    pub reservoir: Option<Value>,
}

/// The transform.
#[derive(Debug)]
pub struct Sample {
    /// Records are kept when the top 53 bits of their hash are below this.
    threshold: u64,
    key: Option<Vec<Path>>,
    seed: u64,
    dropped: u64,
}

const SCALE: f64 = (1u64 << 53) as f64;

impl Sample {
    /// Checks `config`; the error names the offending key.
    pub fn new(config: Config) -> Result<Self, String> {
        if config.reservoir.is_some() {
            return Err(
                "reservoir: a reservoir of N per run needs a call at the end of the run, \
                        which autoflow:plugin@0.1.0 transforms do not have; use rate"
                    .into(),
            );
        }
        if !(0.0..=1.0).contains(&config.rate) {
            return Err(format!("rate: {} is not between 0 and 1", config.rate));
        }
        let key = match &config.key {
            None => None,
            Some(f) => Some(f.paths("key")?),
        };
        Ok(Sample {
            threshold: (config.rate * SCALE) as u64,
            key,
            seed: config.seed,
            dropped: 0,
        })
    }

    /// Whether the record with this value is kept, or why it cannot be decided.
    pub fn keeps(&self, value: &[u8]) -> Result<bool, String> {
        let hash = match &self.key {
            Some(paths) => hash_fields(self.seed, &object(value)?, paths)?,
            None => {
                let mut h = KeyHasher::new(self.seed);
                h.write(value);
                h.finish()
            }
        };
        Ok(hash >> 11 < self.threshold)
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
        match self.keeps(&record.value) {
            Ok(true) => out.emit(record),
            Ok(false) => self.dropped += 1,
            Err(reason) => out.reject(reason),
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
