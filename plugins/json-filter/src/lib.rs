//! `json-filter`: keeps the records whose JSON value matches a condition.
//!
//! The config is one condition: `{ "field": "status", "op": "eq", "value": "paid" }` (or the
//! shorthand `{ "field": "status", "equals": "paid" }`), `{ "all": [..] }`, `{ "any": [..] }` or
//! `{ "not": .. }`. It is compiled once in `open`; each value is parsed once, and a matching
//! record is passed on unchanged. A value that is not JSON is rejected.
use autoflow_plugin_sdk::{Error, Metadata, Output, Record, Transform};
use serde_json::Value;

mod cond;
mod config;

#[cfg(test)]
mod tests;

pub use cond::{Condition, Path, Test};
pub use config::{CONFIG_SCHEMA, Op, RawCondition, compile};

/// The transform: one compiled condition.
#[derive(Debug)]
pub struct JsonFilter {
    condition: Condition,
}

impl Transform for JsonFilter {
    type Config = RawCondition;

    fn metadata() -> Metadata {
        Metadata::new(
            "json-filter",
            env!("CARGO_PKG_VERSION"),
            "Keeps the records whose JSON value matches a condition (comparisons on dotted \
             field paths, combined with all/any/not); rejects values that are not JSON.",
        )
        .config_schema(CONFIG_SCHEMA)
    }

    fn open(config: RawCondition) -> Result<Self, Error> {
        let condition = compile(config, "").map_err(Error::InvalidConfig)?;
        Ok(JsonFilter { condition })
    }

    fn process(&mut self, record: Record, out: &mut Output) -> Result<(), Error> {
        match serde_json::from_slice::<Value>(&record.value) {
            Ok(v) if self.condition.matches(&v) => out.emit(record),
            Ok(_) => {}
            Err(e) => out.reject(format!("value is not valid JSON: {e}")),
        }
        Ok(())
    }
}

autoflow_plugin_sdk::export_transform!(JsonFilter);
