//! Unit tests for `json-map`, run natively against the SDK's `TestHost`.
use autoflow_plugin_sdk::testing::TestHost;
use autoflow_plugin_sdk::{Error, Processed, Record, Transform};
use serde_json::Value;

use super::{CONFIG_SCHEMA, JsonMap};

const ORDER: &str =
    r#"{"id":7,"status":"paid","amount":12.5,"customer":{"name":"Ada","country":"DE"},"note":"x"}"#;

fn run(config: &str, values: &[&str]) -> Processed {
    let records = values.iter().map(|v| Record::new(*v)).collect();
    TestHost::new()
        .transform::<JsonMap>(config, records)
        .unwrap()
}

/// The text of the one record `config` makes of `value`.
fn map(config: &str, value: &str) -> String {
    let out = run(config, &[value]);
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    String::from_utf8(out.records[0].value.clone()).unwrap()
}

fn config_error(config: &str) -> String {
    match TestHost::new().transform::<JsonMap>(config, vec![]) {
        Err(Error::InvalidConfig(m)) => m,
        other => panic!("{config}: expected invalid config, got {other:?}"),
    }
}

#[test]
fn select_keeps_listed_paths_in_order() {
    assert_eq!(
        map(r#"{"select":["amount","id","missing"]}"#, ORDER),
        r#"{"amount":12.5,"id":7}"#
    );
    assert_eq!(
        map(r#"{"select":["customer.country","id"]}"#, ORDER),
        r#"{"customer":{"country":"DE"},"id":7}"#
    );
}

#[test]
fn rename_keeps_position_or_moves() {
    assert_eq!(
        map(
            r#"{"select":["id","amount","status"],"rename":{"amount":"total"}}"#,
            ORDER
        ),
        r#"{"id":7,"total":12.5,"status":"paid"}"#
    );
    assert_eq!(
        map(
            r#"{"select":["id","customer"],"rename":{"customer.country":"country","id":"meta.id"}}"#,
            ORDER
        ),
        r#"{"customer":{"name":"Ada"},"country":"DE","meta":{"id":7}}"#
    );
    // Renames apply in order; a missing source is skipped.
    assert_eq!(
        map(
            r#"{"rename":{"a":"b","b":"c","zz":"y"}}"#,
            r#"{"a":1,"x":2}"#
        ),
        r#"{"c":1,"x":2}"#
    );
    assert_eq!(
        map(r#"{"rename":{"a":"x"}}"#, r#"{"a":1,"x":2,"y":3}"#),
        r#"{"x":1,"y":3}"#
    );
}

#[test]
fn set_creates_objects_and_replaces_in_place() {
    assert_eq!(
        map(
            r#"{"set":{"source":"autoflow","meta.v":[1,{"k":null}],"id":8}}"#,
            r#"{"id":7,"z":0}"#
        ),
        r#"{"id":8,"z":0,"source":"autoflow","meta":{"v":[1,{"k":null}]}}"#
    );
}

#[test]
fn drop_removes_paths_keeping_order() {
    assert_eq!(
        map(
            r#"{"drop":["note","customer.name","nope","status.x"]}"#,
            ORDER
        ),
        r#"{"id":7,"status":"paid","amount":12.5,"customer":{"country":"DE"}}"#
    );
}

#[test]
fn all_steps_in_order() {
    let cfg = r#"{"select":["id","amount","note"],"rename":{"amount":"total"},
                  "set":{"source":"autoflow"},"drop":["note"]}"#;
    assert_eq!(
        map(cfg, ORDER),
        r#"{"id":7,"total":12.5,"source":"autoflow"}"#
    );
}

#[test]
fn empty_config_passes_objects_through() {
    assert_eq!(map("{}", ORDER), ORDER);
}

#[test]
fn keeps_key_headers_and_time() {
    let mut r = Record::new(ORDER).with_key("k");
    r.headers.push(("h".into(), "v".into()));
    r.timestamp = Some(5);
    let out = TestHost::new()
        .transform::<JsonMap>(r#"{"select":["id"]}"#, vec![r])
        .unwrap();
    let o = &out.records[0];
    assert_eq!(
        (o.key.as_deref(), o.header("h"), o.timestamp),
        (Some(&b"k"[..]), Some("v"), Some(5))
    );
    assert_eq!(o.value, br#"{"id":7}"#);
}

#[test]
fn rejects_non_objects_and_conflicts() {
    let out = run(
        r#"{"set":{"status.code":1}}"#,
        &["nope", "[1,2]", r#"{"status":"paid"}"#, r#"{"id":1}"#],
    );
    let reasons: Vec<(u32, &str)> = out.rejected.iter().map(|(i, r)| (*i, r.as_str())).collect();
    assert_eq!(reasons.len(), 3);
    assert!(reasons[0].0 == 0 && reasons[0].1.starts_with("value is not valid JSON"));
    assert_eq!(
        reasons[1],
        (1, "value is not a JSON object (it is an array)")
    );
    assert_eq!(
        reasons[2],
        (
            2,
            "cannot set status.code: status is a string, not an object"
        )
    );
    assert_eq!(out.records.len(), 1);
    assert_eq!(out.records[0].json::<Value>().unwrap()["status"]["code"], 1);
}

#[test]
fn config_errors_are_clear() {
    assert!(config_error(r#"{"select":[]}"#).contains("empty list"));
    assert!(config_error(r#"{"select":["a","a.b"]}"#).contains("overlap"));
    assert!(config_error(r#"{"select":["a..b"]}"#).starts_with("select: invalid path"));
    assert!(
        config_error(r#"{"rename":{"a":5}}"#).contains("rename.a: the new path must be a string")
    );
    assert!(config_error(r#"{"rename":{"a":""}}"#).starts_with("rename: invalid path"));
    assert!(config_error(r#"{"set":{".a":1}}"#).starts_with("set: invalid path"));
    assert!(config_error(r#"{"drop":"note"}"#).contains("invalid type"));
    assert!(config_error(r#"{"keep":["a"]}"#).contains("unknown field `keep`"));
}

#[test]
fn metadata_and_schema() {
    let m = JsonMap::metadata();
    assert_eq!((m.name.as_str(), m.version.as_str()), ("json-map", "0.1.0"));
    let schema: Value = serde_json::from_str(CONFIG_SCHEMA).unwrap();
    assert_eq!(schema["additionalProperties"], false);
    let props: Vec<&String> = schema["properties"].as_object().unwrap().keys().collect();
    assert_eq!(props, ["select", "rename", "set", "drop"]);
}
