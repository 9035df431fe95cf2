//! Unit tests for `json-schema`, run natively against the SDK's `TestHost`.
use autoflow_plugin_sdk::testing::TestHost;
use autoflow_plugin_sdk::{Error, Processed, Record, Transform};

use super::JsonSchema;

const ORDER_SCHEMA: &str = r#"{"type":"object","required":["id","items"],"properties":{
  "id":{"type":"integer"},
  "items":{"type":"array","items":{"type":"object","properties":{"qty":{"type":"integer","minimum":1}}}},
  "pair":{"prefixItems":[{"type":"string"},{"type":"number"}]}}}"#;

fn run(config: &str, values: &[&str]) -> Processed {
    let records = values.iter().map(|v| Record::new(*v)).collect();
    TestHost::new()
        .transform::<JsonSchema>(config, records)
        .unwrap()
}

fn config_error(config: &str) -> String {
    match TestHost::new().transform::<JsonSchema>(config, vec![]) {
        Err(Error::InvalidConfig(m)) => m,
        other => panic!("{config}: expected invalid config, got {other:?}"),
    }
}

#[test]
fn valid_records_pass_unchanged_and_invalid_ones_name_path_and_keyword() {
    let config = format!(r#"{{"schema":{ORDER_SCHEMA}}}"#);
    let good = r#"{"id":1, "items":[{"qty":2}], "pair":["a",1]}"#;
    let out = run(
        &config,
        &[
            good,
            r#"{"id":"x","items":[{"qty":0}]}"#,
            r#"{"items":[]}"#,
            r#"{"id":2,"items":[],"pair":[1,"a"]}"#,
            "nope",
        ],
    );
    assert_eq!(out.records.len(), 1);
    assert_eq!(
        out.records[0].value,
        good.as_bytes(),
        "passed byte for byte"
    );
    assert_eq!(
        out.rejected[..3],
        [
            (1, r#"at /id (type): "x" is not of type "integer"; at /items/0/qty (minimum): 0 is less than the minimum of 1"#.to_string()),
            (2, r#"at / (required): "id" is a required property"#.to_string()),
            (3, r#"at /pair/0 (type): 1 is not of type "string"; at /pair/1 (type): "a" is not of type "number""#.to_string()),
        ]
    );
    assert!(out.rejected[3].1.starts_with("value is not valid JSON"));
}

#[test]
fn max_errors_caps_the_reason() {
    let out = run(
        r#"{"schema":{"items":{"type":"string"}},"max_errors":2}"#,
        &["[1,2,3,4]"],
    );
    assert_eq!(
        out.rejected,
        [(0, r#"at /0 (type): 1 is not of type "string"; at /1 (type): 2 is not of type "string"; and 2 more"#.to_string())]
    );
}

#[test]
fn the_schema_can_come_from_a_file() {
    let dir = std::env::temp_dir().join(format!("json-schema-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("order.json");
    std::fs::write(&file, ORDER_SCHEMA).unwrap();
    let config = serde_json::json!({ "schema_file": file }).to_string();
    let out = run(&config, &[r#"{"id":1,"items":[]}"#, r#"{"id":1}"#]);
    assert_eq!(out.records.len(), 1);
    assert_eq!(out.rejected.len(), 1);
    std::fs::write(&file, "{").unwrap();
    assert!(
        config_error(&config).starts_with(&format!("schema_file: {} is not JSON", file.display()))
    );
    let gone = serde_json::json!({ "schema_file": dir.join("gone.json") }).to_string();
    assert!(config_error(&gone).starts_with("schema_file: cannot read"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_configs_name_the_field() {
    assert_eq!(
        config_error("{}"),
        "schema: give `schema` (inline) or `schema_file`"
    );
    assert!(
        config_error(r#"{"schema":{},"schema_file":"/s.json"}"#).starts_with("schema_file: give")
    );
    let m = config_error(r#"{"schema":{"type":"integr"}}"#);
    assert!(m.starts_with("schema: invalid schema at /type"), "{m}");
    assert_eq!(
        config_error(r#"{"schema":{},"max_errors":0}"#),
        "max_errors: must be at least 1"
    );
    assert!(config_error(r#"{"schema":{},"draft":7}"#).contains("unknown field `draft`"));
    assert_eq!(JsonSchema::metadata().name, "json-schema");
}
