//! `json-map`: reshapes JSON object records with select, rename, set and drop.
//!
//! Config: `{ "select": ["id", "amount"], "rename": {"amount": "total"},
//! "set": {"source": "autoflow"}, "drop": ["note"] }`, every key optional, applied in that
//! order on dotted paths. Key order is kept. A value that is not a JSON object is rejected.
use autoflow_plugin_sdk::{Error, Metadata, Output, Record, Transform};
use serde_json::Value;

mod config;
mod path;

#[cfg(test)]
mod tests;

pub use config::{CONFIG_SCHEMA, Config, Plan, compile};
pub use path::Path;

/// The transform: one compiled plan.
#[derive(Debug)]
pub struct JsonMap {
    plan: Plan,
}

impl Transform for JsonMap {
    type Config = Config;

    fn metadata() -> Metadata {
        Metadata::new(
            "json-map",
            env!("CARGO_PKG_VERSION"),
            "Reshapes JSON object records: select, rename, set and drop fields by dotted path, \
             in that order, keeping key order; rejects values that are not JSON objects.",
        )
        .config_schema(CONFIG_SCHEMA)
    }

    fn open(config: Config) -> Result<Self, Error> {
        Ok(JsonMap {
            plan: compile(config).map_err(Error::InvalidConfig)?,
        })
    }

    fn process(&mut self, mut record: Record, out: &mut Output) -> Result<(), Error> {
        let object = match serde_json::from_slice::<Value>(&record.value) {
            Ok(Value::Object(m)) => m,
            Ok(other) => {
                out.reject(format!(
                    "value is not a JSON object (it is {})",
                    path::kind(&other)
                ));
                return Ok(());
            }
            Err(e) => {
                out.reject(format!("value is not valid JSON: {e}"));
                return Ok(());
            }
        };
        match self.plan.apply(object) {
            Ok(mapped) => {
                record.set_json(&mapped)?;
                out.emit(record);
            }
            Err(reason) => out.reject(reason),
        }
        Ok(())
    }
}

autoflow_plugin_sdk::export_transform!(JsonMap);
