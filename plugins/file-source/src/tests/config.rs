//! Config checks, defaults, metadata and schema.
use autoflow_plugin_sdk::Source;

use super::*;
use crate::{CONFIG_SCHEMA, Config, Format};

fn invalid(config: &str) -> String {
    match read(config, None, 10) {
        Err(Error::InvalidConfig(m)) => m,
        other => panic!("{config}: expected invalid config, got {other:?}"),
    }
}

#[test]
fn format_defaults_from_extension() {
    let settings = |p: &str| {
        serde_json::from_str::<Config>(&format!(r#"{{"path":"{p}"}}"#))
            .unwrap()
            .settings()
            .unwrap()
            .format
    };
    assert_eq!(settings("/in/a.csv"), Format::Csv);
    assert_eq!(settings("/in/a.CSV"), Format::Csv);
    assert_eq!(settings("/in/a.jsonl"), Format::Jsonl);
    assert_eq!(settings("/in/csv"), Format::Jsonl);
}

#[test]
fn config_errors() {
    assert!(invalid("{}").contains("missing field `path`"));
    assert!(invalid(r#"{"path":""}"#).contains("must not be empty"));
    assert!(invalid(r#"{"path":"/a.csv","format":"xml"}"#).contains("unknown variant `xml`"));
    assert!(invalid(r#"{"path":"/a.csv","delimiter":";;"}"#).contains("one ASCII character"));
    assert!(invalid(r#"{"path":"/a.csv","delimiter":"\""}"#).contains("one ASCII character"));
    assert!(invalid(r#"{"path":"/a.csv","delimiter":"§"}"#).contains("one ASCII character"));
    assert!(
        invalid(r#"{"path":"/a.jsonl","delimiter":","}"#).contains("applies only to format csv")
    );
    assert!(
        invalid(r#"{"path":"/a.csv","format":"jsonl","infer_types":true}"#)
            .contains("`infer_types`")
    );
    assert!(invalid(r#"{"path":"/a.csv","infer":true}"#).contains("unknown field `infer`"));
}

#[test]
fn metadata_and_schema() {
    let m = FileSource::metadata();
    assert_eq!(
        (m.name.as_str(), m.version.as_str()),
        ("file-source", "0.1.0")
    );
    let schema: serde_json::Value = serde_json::from_str(CONFIG_SCHEMA).unwrap();
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(schema["required"], serde_json::json!(["path"]));
    let props: Vec<&String> = schema["properties"].as_object().unwrap().keys().collect();
    assert_eq!(props, ["path", "format", "delimiter", "infer_types"]);
}
