//! `generator`: a source of deterministic synthetic order records, for demos and benchmarks.
//!
//! Config: `{ "count": 1000, "seed": 0, "start": 0 }`. Record `i` (0-based) has id `start + i`
//! and its content depends only on `(seed, start + i)`, so a resumed run continues exactly.
//! The cursor is the number of records emitted so far, as a decimal string.
use autoflow_plugin_sdk::{Batch, Error, Metadata, Record, Source};
use serde::Deserialize;

mod order;
mod rng;

#[cfg(test)]
mod tests;

pub use order::write_order;

/// JSON Schema (draft 2020-12) of [`Config`].
pub const CONFIG_SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "generator config",
  "type": "object",
  "properties": {
    "count": {
      "description": "How many records to emit in total (default 1000).",
      "type": "integer", "minimum": 0, "default": 1000
    },
    "seed": {
      "description": "Seed of the pseudo-random content (default 0).",
      "type": "integer", "minimum": 0, "default": 0
    },
    "start": {
      "description": "Id of the first record (default 0).",
      "type": "integer", "minimum": 0, "default": 0
    }
  },
  "required": [],
  "additionalProperties": false
}"#;

/// The step's configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// How many records to emit in total.
    #[serde(default = "default_count")]
    pub count: u64,
    /// Seed of the pseudo-random content.
    #[serde(default)]
    pub seed: u64,
    /// Id of the first record.
    #[serde(default)]
    pub start: u64,
}

fn default_count() -> u64 {
    1000
}

/// The source: emits records `next .. count`.
#[derive(Debug)]
pub struct Generator {
    config: Config,
    next: u64,
}

impl Source for Generator {
    type Config = Config;

    fn metadata() -> Metadata {
        Metadata::new(
            "generator",
            env!("CARGO_PKG_VERSION"),
            "Emits `count` synthetic order records (about 300 bytes of JSON each), \
             deterministically from `seed`; resumes exactly from its cursor.",
        )
        .config_schema(CONFIG_SCHEMA)
    }

    fn open(config: Config, cursor: Option<String>) -> Result<Self, Error> {
        if config.start.checked_add(config.count).is_none() {
            return Err(Error::InvalidConfig(
                "start + count overflows a 64-bit id".into(),
            ));
        }
        let next = match cursor {
            None => 0,
            Some(c) => c.trim().parse::<u64>().map_err(|_| {
                Error::Fatal(format!("invalid cursor {c:?}: expected a record count"))
            })?,
        };
        Ok(Generator {
            next: next.min(config.count),
            config,
        })
    }

    fn next(&mut self, max: u32) -> Result<Option<Batch>, Error> {
        if self.next >= self.config.count {
            return Ok(None);
        }
        let n = (self.config.count - self.next).min(u64::from(max.max(1)));
        let mut records = Vec::with_capacity(n.min(4096) as usize);
        for i in self.next..self.next + n {
            let mut text = String::with_capacity(order::CAPACITY);
            write_order(&mut text, self.config.seed, self.config.start + i);
            records.push(Record::new(text));
        }
        self.next += n;
        Ok(Some(Batch {
            records,
            cursor: Some(self.next.to_string()),
        }))
    }
}

autoflow_plugin_sdk::export_source!(Generator);
