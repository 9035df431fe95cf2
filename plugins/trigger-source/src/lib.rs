//! `trigger-source`: the records a run was triggered with, such as the body of a webhook
//! trigger's request (`POST /v1/hooks/{tenant}/{pipeline}`), one record per JSON document.
//!
//! A step with this plugin has no `input`: the runtime feeds it the run's input records, and it
//! hands each one on unchanged. A run started otherwise (a schedule, the API without input, a
//! replay) gives it no records. It is a transform under the hood so that the records stay in
//! the host until the run reads them; the runtime allows it, and only it, at the head of a DAG.
use autoflow_plugin_sdk::{Error, Metadata, Output, Record, Transform};
use serde::Deserialize;

/// JSON Schema (draft 2020-12) of [`Config`]: no settings.
pub const CONFIG_SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "trigger-source config",
  "description": "No settings: the records are the trigger's.",
  "type": "object",
  "additionalProperties": false
}"#;

/// The step's configuration: none.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {}

/// The step.
#[derive(Debug, Default)]
pub struct TriggerSource;

impl Transform for TriggerSource {
    type Config = Config;

    fn metadata() -> Metadata {
        Metadata::new(
            "trigger-source",
            env!("CARGO_PKG_VERSION"),
            "The records the run was triggered with (a webhook trigger's body: a JSON document, \
             an array of them, or JSON lines); none for a run started otherwise.",
        )
        .config_schema(CONFIG_SCHEMA)
    }

    fn open(_config: Config) -> Result<Self, Error> {
        Ok(TriggerSource)
    }

    fn process(&mut self, record: Record, out: &mut Output) -> Result<(), Error> {
        out.emit(record);
        Ok(())
    }
}

autoflow_plugin_sdk::export_transform!(TriggerSource);

#[cfg(test)]
mod tests {
    use super::*;
    use autoflow_plugin_sdk::testing::TestHost;

    #[test]
    fn hands_each_record_on_unchanged() {
        let records = vec![Record::new(r#"{"a":1}"#), Record::new("[2]")];
        let out = TestHost::new()
            .transform::<TriggerSource>("{}", records.clone())
            .unwrap();
        assert_eq!(out.records, records);
    }

    #[test]
    fn refuses_settings() {
        assert!(
            TestHost::new()
                .transform::<TriggerSource>(r#"{"x":1}"#, vec![])
                .is_err()
        );
    }
}
