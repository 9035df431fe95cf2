//! Config probe: declares a JSON schema requiring `{"threshold": integer >= 0}`; passes records on.
use autoflow_plugin_sdk::*;
use serde::Deserialize;

const SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "properties": {
    "threshold": { "type": "integer", "minimum": 0 }
  },
  "required": ["threshold"],
  "additionalProperties": false
}"#;

/// The step config the schema describes.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Unused beyond parsing.
    pub threshold: u64,
}

/// Emits records unchanged once its config parsed.
pub struct ConfigCheck {
    /// The parsed threshold.
    pub threshold: u64,
}

impl Transform for ConfigCheck {
    type Config = Config;
    fn metadata() -> Metadata {
        Metadata::new(
            "config-check",
            "0.1.0",
            "Requires a threshold in its config (test guest)",
        )
        .config_schema(SCHEMA)
    }
    fn open(config: Config) -> Result<Self> {
        Ok(ConfigCheck {
            threshold: config.threshold,
        })
    }
    fn process(&mut self, r: Record, out: &mut Output) -> Result<()> {
        out.emit(r);
        Ok(())
    }
}
export_transform!(ConfigCheck);
