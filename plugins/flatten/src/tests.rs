//! Unit tests for `flatten`, run natively against the SDK's `TestHost`.
use autoflow_plugin_sdk::testing::TestHost;
use autoflow_plugin_sdk::{Error, Processed, Record, Transform};

use super::Flatten;

const NESTED: &str = r#"{"id":7,"customer":{"name":"Ada","address":{"city":"Berlin","zip":"10115"}},"tags":["a","b"],"empty":{},"none":[]}"#;

fn run(config: &str, values: &[&str]) -> Processed {
    let records = values.iter().map(|v| Record::new(*v)).collect();
    TestHost::new()
        .transform::<Flatten>(config, records)
        .unwrap()
}

fn one(config: &str, value: &str) -> String {
    let out = run(config, &[value]);
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    String::from_utf8(out.records[0].value.clone()).unwrap()
}

fn config_error(config: &str) -> String {
    match TestHost::new().transform::<Flatten>(config, vec![]) {
        Err(Error::InvalidConfig(m)) => m,
        other => panic!("{config}: expected invalid config, got {other:?}"),
    }
}

#[test]
fn flattens_nested_objects_keeping_arrays_and_empty_objects() {
    assert_eq!(
        one("{}", NESTED),
        r#"{"id":7,"customer.name":"Ada","customer.address.city":"Berlin","customer.address.zip":"10115","tags":["a","b"],"empty":{},"none":[]}"#
    );
    assert_eq!(
        one(r#"{"separator":"_"}"#, r#"{"a":{"b":{"c":1}}}"#),
        r#"{"a_b_c":1}"#
    );
}

#[test]
fn indexes_arrays_when_asked() {
    assert_eq!(
        one(
            r#"{"arrays":"index"}"#,
            r#"{"tags":["a","b"],"items":[{"sku":"A","n":[1]}],"none":[]}"#
        ),
        r#"{"tags.0":"a","tags.1":"b","items.0.sku":"A","items.0.n.0":1,"none":[]}"#
    );
}

#[test]
fn unflatten_reverses_flatten() {
    let flat = one("{}", NESTED);
    assert_eq!(one(r#"{"mode":"unflatten"}"#, &flat), NESTED);
    let flat = one(r#"{"arrays":"index","separator":"/"}"#, NESTED);
    assert_eq!(
        one(
            r#"{"mode":"unflatten","arrays":"index","separator":"/"}"#,
            &flat
        ),
        NESTED
    );
    // Without "index", digit keys stay object keys.
    assert_eq!(
        one(r#"{"mode":"unflatten"}"#, r#"{"a.0":"x","a.1":"y"}"#),
        r#"{"a":{"0":"x","1":"y"}}"#
    );
    // Only a full 0..n-1 run of keys becomes an array.
    assert_eq!(
        one(
            r#"{"mode":"unflatten","arrays":"index"}"#,
            r#"{"a.1":"y","a.0":"x","b.0":1,"b.2":2,"c.01":3}"#
        ),
        r#"{"a":["x","y"],"b":{"0":1,"2":2},"c":{"01":3}}"#
    );
}

#[test]
fn bad_records_are_rejected_with_a_reason() {
    let out = run("{}", &[r#"{"a.b":1,"a":{"b":2}}"#, "3", "{"]);
    assert_eq!(
        out.rejected[0],
        (0, r#"key "a.b" appears twice once flattened"#.to_string())
    );
    assert_eq!(
        out.rejected[1],
        (1, "value is not a JSON object (it is a number)".to_string())
    );
    assert!(out.rejected[2].1.starts_with("value is not valid JSON"));
    let out = run(
        r#"{"mode":"unflatten"}"#,
        &[
            r#"{"a":1,"a.b":2}"#,
            r#"{"a.b":2,"a":1}"#,
            r#"{"x.y":1,"x.y.z":2}"#,
        ],
    );
    assert_eq!(
        out.rejected,
        [
            (
                0,
                r#"key "a.b": "a" is a number, not an object"#.to_string()
            ),
            (1, r#"key "a": "a" is already set"#.to_string()),
            (
                2,
                r#"key "x.y.z": "x.y" is a number, not an object"#.to_string()
            ),
        ]
    );
}

#[test]
fn bad_configs_name_the_field() {
    assert_eq!(
        config_error(r#"{"separator":""}"#),
        "separator: must not be empty"
    );
    assert!(config_error(r#"{"mode":"sideways"}"#).contains("unknown variant `sideways`"));
    assert!(config_error(r#"{"arrays":"zip"}"#).contains("unknown variant `zip`"));
    assert!(config_error(r#"{"unflatten":true}"#).contains("unknown field `unflatten`"));
    assert_eq!(Flatten::metadata().name, "flatten");
}
