//! `json-filter`: keeps the records whose JSON value matches a condition.
//!
//! The config is one condition: `{ "field": "status", "op": "eq", "value": "paid" }` (or the
//! shorthand `{ "field": "status", "equals": "paid" }`), `{ "all": [..] }`, `{ "any": [..] }` or
//! `{ "not": .. }`. It is compiled once in `open`. Each value is parsed once, in one pass that
//! checks all of its JSON syntax but builds only the fields the condition reads; a matching
//! record is passed on unchanged. A value that is not JSON is rejected.
use autoflow_plugin_sdk::{Error, Metadata, Output, Record, Transform};
use serde_json::Value;

mod cond;
mod config;
mod fields;

#[cfg(test)]
mod tests;

pub use cond::{Condition, Test};
pub use config::{CONFIG_SCHEMA, Op, RawCondition, compile};
pub use fields::{Fields, Path};

/// The transform: one compiled condition, and the fields it reads.
#[derive(Debug)]
pub struct JsonFilter {
    condition: Condition,
    fields: Fields,
    slots: Vec<Option<Value>>,
}

impl JsonFilter {
    /// Whether `value` (JSON text) matches; the error is why it is not valid JSON.
    pub fn matches(&mut self, value: &[u8]) -> Result<bool, String> {
        let text = std::str::from_utf8(value)
            .map_err(|e| format!("value is not valid JSON: it is not UTF-8 ({e})"))?;
        self.fields
            .extract(text, &mut self.slots)
            .map_err(|e| format!("value is not valid JSON: {e}"))?;
        Ok(self.condition.matches(&self.slots))
    }
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
        let mut fields = Fields::default();
        let condition = compile(config, "", &mut fields).map_err(Error::InvalidConfig)?;
        Ok(JsonFilter {
            condition,
            fields,
            slots: Vec::new(),
        })
    }

    fn process(&mut self, record: Record, out: &mut Output) -> Result<(), Error> {
        match self.matches(&record.value) {
            Ok(true) => out.emit(record),
            Ok(false) => {}
            Err(reason) => out.reject(reason),
        }
        Ok(())
    }
}

autoflow_plugin_sdk::export_transform!(JsonFilter);
