//! Unit tests for `split`, run natively against the SDK's `TestHost`.
use autoflow_plugin_sdk::testing::TestHost;
use autoflow_plugin_sdk::{Error, Processed, Record, Transform};
use serde_json::Value;

use super::{CONFIG_SCHEMA, Split};

const ORDER: &str = r#"{"id":7,"customer":{"name":"Ada","country":"DE"},"items":[{"sku":"A","qty":1},{"sku":"B","qty":2}],"note":"x"}"#;

fn run(config: &str, values: &[&str]) -> Processed {
    let records = values.iter().map(|v| Record::new(*v)).collect();
    TestHost::new().transform::<Split>(config, records).unwrap()
}

fn texts(out: &Processed) -> Vec<String> {
    out.records
        .iter()
        .map(|r| String::from_utf8(r.value.clone()).unwrap())
        .collect()
}

fn config_error(config: &str) -> String {
    match TestHost::new().transform::<Split>(config, vec![]) {
        Err(Error::InvalidConfig(m)) => m,
        other => panic!("{config}: expected invalid config, got {other:?}"),
    }
}

#[test]
fn one_record_per_element_keeping_every_other_field() {
    let out = run(r#"{"field":"items"}"#, &[ORDER]);
    assert!(out.rejected.is_empty());
    assert_eq!(
        texts(&out),
        [
            r#"{"id":7,"customer":{"name":"Ada","country":"DE"},"note":"x","items":{"sku":"A","qty":1}}"#,
            r#"{"id":7,"customer":{"name":"Ada","country":"DE"},"note":"x","items":{"sku":"B","qty":2}}"#,
        ]
    );
}

#[test]
fn keep_and_as_choose_the_fields_and_the_element_name() {
    let out = run(
        r#"{"field":"items","keep":["id","customer.country","missing"],"as":"item"}"#,
        &[ORDER],
    );
    assert_eq!(
        texts(&out),
        [
            r#"{"id":7,"customer":{"country":"DE"},"item":{"sku":"A","qty":1}}"#,
            r#"{"id":7,"customer":{"country":"DE"},"item":{"sku":"B","qty":2}}"#,
        ]
    );
    let out = run(
        r#"{"field":"order.lines","keep":[],"as":"line.value"}"#,
        &[r#"{"order":{"lines":[1,"two",null]}}"#],
    );
    assert_eq!(
        texts(&out),
        [
            r#"{"line":{"value":1}}"#,
            r#"{"line":{"value":"two"}}"#,
            r#"{"line":{"value":null}}"#
        ]
    );
}

#[test]
fn an_empty_array_gives_no_record_and_key_headers_time_are_copied() {
    let out = run(r#"{"field":"items"}"#, &[r#"{"id":1,"items":[]}"#]);
    assert!(out.records.is_empty() && out.rejected.is_empty());
    let mut r = Record::new(ORDER).with_key("k");
    r.headers.push(("h".into(), "v".into()));
    r.timestamp = Some(42);
    let out = TestHost::new()
        .transform::<Split>(r#"{"field":"items","keep":["id"]}"#, vec![r])
        .unwrap();
    assert_eq!(out.records.len(), 2);
    for o in &out.records {
        assert_eq!(o.key.as_deref(), Some(&b"k"[..]));
        assert_eq!(o.header("h"), Some("v"));
        assert_eq!(o.timestamp, Some(42));
    }
}

#[test]
fn bad_records_are_rejected_with_a_reason() {
    let out = run(
        r#"{"field":"items"}"#,
        &[
            r#"{"id":1}"#,
            r#"{"items":"A,B"}"#,
            "[1,2]",
            "not json",
            r#"{"items":[1]}"#,
        ],
    );
    assert_eq!(
        out.rejected,
        [
            (0, "items is missing".to_string()),
            (1, "items is a string, not an array".to_string()),
            (2, "value is not a JSON object (it is an array)".to_string()),
            (
                3,
                "value is not valid JSON: expected ident at line 1 column 2".to_string()
            ),
        ]
    );
    assert_eq!(texts(&out), [r#"{"items":1}"#]);
    let out = run(
        r#"{"field":"items","as":"id.x"}"#,
        &[r#"{"id":3,"items":[1]}"#],
    );
    assert_eq!(
        out.rejected,
        [(
            0,
            "cannot set id.x: id is a number, not an object".to_string()
        )]
    );
}

#[test]
fn bad_configs_name_the_field() {
    assert!(config_error("{}").contains("missing field `field`"));
    assert!(config_error(r#"{"field":"a..b"}"#).starts_with("field: invalid path"));
    assert!(config_error(r#"{"field":"a","keep":["x",""]}"#).starts_with("keep[1]: invalid path"));
    assert!(config_error(r#"{"field":"a","as":".x"}"#).starts_with("as: invalid path"));
    assert!(
        config_error(r#"{"field":"a","keep":["x","item.y"],"as":"item"}"#).starts_with("keep[1]:")
    );
    assert!(config_error(r#"{"field":"a","into":"b"}"#).contains("unknown field `into`"));
}

#[test]
fn metadata_carries_the_schema() {
    let m = Split::metadata();
    assert_eq!(m.name, "split");
    let schema: Value = serde_json::from_str(CONFIG_SCHEMA).unwrap();
    assert_eq!(schema["required"], serde_json::json!(["field"]));
}
