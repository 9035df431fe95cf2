//! Config checks, metadata and schema.
use super::*;
use crate::CONFIG_SCHEMA;

fn invalid(config: &str) -> String {
    match sink(config, &[]) {
        Err(Error::InvalidConfig(m)) => m,
        other => panic!("{config}: expected invalid config, got {other:?}"),
    }
}

#[test]
fn config_errors() {
    assert!(invalid("{}").contains("missing field `path`"));
    assert!(invalid(r#"{"path":""}"#).contains("must not be empty"));
    assert!(invalid(r#"{"path":"/x.csv","format":"parquet"}"#).contains("unknown variant"));
    assert!(
        invalid(r#"{"path":"/x.jsonl","columns":["a"]}"#).contains("applies only to format csv")
    );
    assert!(
        invalid(r#"{"path":"/x.jsonl","delimiter":";"}"#).contains("applies only to format csv")
    );
    assert!(invalid(r#"{"path":"/x.csv","columns":[]}"#).contains("must not be empty"));
    assert!(invalid(r#"{"path":"/x.csv","columns":["a","a"]}"#).contains("listed twice"));
    assert!(invalid(r#"{"path":"/x.csv","columns":[""]}"#).contains("columns[0] is empty"));
    assert!(invalid(r#"{"path":"/x.csv","delimiter":"\n"}"#).contains("one ASCII character"));
    assert!(invalid(r#"{"path":"/x.csv","append":"yes"}"#).contains("invalid type"));
    assert!(invalid(r#"{"path":"/x.csv","mode":"w"}"#).contains("unknown field `mode`"));
}

#[test]
fn metadata_and_schema() {
    let m = FileSink::metadata();
    assert_eq!(
        (m.name.as_str(), m.version.as_str()),
        ("file-sink", "0.1.0")
    );
    let schema: serde_json::Value = serde_json::from_str(CONFIG_SCHEMA).unwrap();
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(schema["required"], serde_json::json!(["path"]));
    let props: Vec<&String> = schema["properties"].as_object().unwrap().keys().collect();
    assert_eq!(props, ["path", "format", "append", "columns", "delimiter"]);
}
