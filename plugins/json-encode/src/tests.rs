//! Unit tests for `json-encode`, run natively against the SDK's `TestHost`.
use autoflow_plugin_sdk::testing::TestHost;
use autoflow_plugin_sdk::{Error, Processed, Record, Transform};
use serde_json::Value;

use super::{CONFIG_SCHEMA, JsonEncode};

fn run(config: &str, records: Vec<Record>) -> Processed {
    TestHost::new()
        .transform::<JsonEncode>(config, records)
        .unwrap()
}

/// What each of `values` becomes under `config`, as JSON text; nothing may be rejected.
fn encoded(config: &str, values: &[&[u8]]) -> Vec<String> {
    let out = run(config, values.iter().map(|v| Record::new(*v)).collect());
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    out.records
        .iter()
        .map(|r| String::from_utf8(r.value.clone()).unwrap())
        .collect()
}

/// Why the one record `value` is rejected under `config`.
fn rejected(config: &str, value: &[u8]) -> String {
    let out = run(config, vec![Record::new(value)]);
    assert!(out.records.is_empty());
    assert_eq!(out.rejected.len(), 1);
    out.rejected[0].1.clone()
}

fn config_error(config: &str) -> String {
    match TestHost::new().transform::<JsonEncode>(config, vec![]) {
        Err(Error::InvalidConfig(m)) => m,
        other => panic!("{config}: expected invalid config, got {other:?}"),
    }
}

#[test]
fn text_keeps_the_value_as_a_string_and_refuses_bad_utf8() {
    let cfg = r#"{"as":"text"}"#;
    assert_eq!(
        encoded(
            cfg,
            &[b"GET /a 200", "héllo \"x\"\n".as_bytes(), b"{\"a\":1}", b""]
        ),
        [
            r#"{"value":"GET /a 200"}"#,
            r#"{"value":"héllo \"x\"\n"}"#,
            r#"{"value":"{\"a\":1}"}"#,
            r#"{"value":""}"#
        ]
    );
    assert_eq!(
        rejected(cfg, b"ok \xff\xfe"),
        "value is not UTF-8: invalid byte at offset 3"
    );
}

#[test]
fn base64_encodes_any_bytes() {
    assert_eq!(
        encoded(
            r#"{"as":"base64","into":"raw"}"#,
            &[b"\x00\xff\x10hi", b"", b"abc"]
        ),
        [
            r#"{"raw":"AP8QaGk="}"#,
            r#"{"raw":""}"#,
            r#"{"raw":"YWJj"}"#
        ]
    );
}

#[test]
fn json_parses_the_value_and_refuses_what_is_not_json() {
    let cfg = r#"{"as":"json","into":"doc.body"}"#;
    assert_eq!(
        encoded(
            cfg,
            &[b" {\"b\":[1,2.5,null],\"a\":\"x\"} ", b"42", b"\"s\""]
        ),
        [
            r#"{"doc":{"body":{"b":[1,2.5,null],"a":"x"}}}"#,
            r#"{"doc":{"body":42}}"#,
            r#"{"doc":{"body":"s"}}"#
        ]
    );
    assert_eq!(
        rejected(cfg, b"{\"a\":\n  oops}"),
        "value is not JSON: expected value at line 2 column 3"
    );
    assert_eq!(
        rejected(cfg, b""),
        "value is not JSON: EOF while parsing a value at line 1 column 0"
    );
}

#[test]
fn auto_takes_json_then_text_then_base64_and_says_which() {
    assert_eq!(
        encoded("{}", &[b"{\"a\":1}", b"plain text", b"\xff\x00", b"7"]),
        [
            r#"{"value":{"a":1},"encoding":"json"}"#,
            r#"{"value":"plain text","encoding":"text"}"#,
            r#"{"value":"/wA=","encoding":"base64"}"#,
            r#"{"value":7,"encoding":"json"}"#
        ]
    );
    assert_eq!(
        encoded(r#"{"as":"auto","encoding_into":"meta.enc"}"#, &[b"x"]),
        [r#"{"value":"x","meta":{"enc":"text"}}"#]
    );
}

#[test]
fn key_into_adds_the_key_and_the_record_keeps_key_headers_and_time() {
    let mut r = Record::new("v1").with_key("order-7");
    r.headers.push(("h".into(), "v".into()));
    r.timestamp = Some(42);
    let out = run(
        r#"{"as":"text","key_into":"key"}"#,
        vec![
            r,
            Record::new("v2"),
            Record::new("v3").with_key(&b"\xc3"[..]),
        ],
    );
    let values: Vec<Value> = out.records.iter().map(|o| o.json().unwrap()).collect();
    assert_eq!(
        values,
        [
            serde_json::json!({"value": "v1", "key": "order-7"}),
            serde_json::json!({"value": "v2", "key": null})
        ]
    );
    assert_eq!(out.records[0].key.as_deref(), Some(&b"order-7"[..]));
    assert_eq!(out.records[0].header("h"), Some("v"));
    assert_eq!(out.records[0].timestamp, Some(42));
    assert_eq!(
        out.rejected,
        [(
            2,
            "key is not UTF-8: it ends inside a character at offset 0".to_string()
        )]
    );
}

#[test]
fn bad_configs_name_their_place() {
    let cases = [
        (
            r#"{"as":"hex"}"#,
            "as: must be \"auto\", \"text\", \"base64\" or \"json\", not \"hex\"",
        ),
        (r#"{"into":""}"#, "into: invalid path \"\": empty segment"),
        (
            r#"{"into":"a..b"}"#,
            "into: invalid path \"a..b\": empty segment",
        ),
        (
            r#"{"key_into":".k"}"#,
            "key_into: invalid path \".k\": empty segment",
        ),
        (
            r#"{"key_into":"value"}"#,
            "key_into: \"value\" overlaps into (\"value\")",
        ),
        (
            r#"{"into":"v","key_into":"v.key","as":"text"}"#,
            "key_into: \"v.key\" overlaps into (\"v\")",
        ),
        (
            r#"{"into":"encoding"}"#,
            "encoding_into: \"encoding\" overlaps into (\"encoding\")",
        ),
        (
            r#"{"encoding_into":"e","key_into":"e"}"#,
            "key_into: \"e\" overlaps encoding_into (\"e\")",
        ),
        (
            r#"{"as":"text","encoding_into":"e"}"#,
            "encoding_into: applies only to as \"auto\", and as is \"text\"",
        ),
    ];
    for (cfg, message) in cases {
        assert_eq!(config_error(cfg), message, "{cfg}");
    }
    assert!(config_error(r#"{"field":"x"}"#).contains("unknown field `field`"));
    // Without encoding_into, text may go where auto's encoding would.
    assert_eq!(
        encoded(r#"{"as":"text","into":"encoding"}"#, &[b"x"]),
        [r#"{"encoding":"x"}"#]
    );
}

#[test]
fn metadata_carries_the_schema() {
    let m = JsonEncode::metadata();
    assert_eq!(m.name, "json-encode");
    let schema: Value = serde_json::from_str(m.config_schema.as_deref().unwrap()).unwrap();
    assert_eq!(
        schema,
        serde_json::from_str::<Value>(CONFIG_SCHEMA).unwrap()
    );
    assert_eq!(
        schema["properties"]["as"]["enum"],
        serde_json::json!(["auto", "text", "base64", "json"])
    );
}

#[test]
fn the_readme_examples_hold() {
    let out = run(
        r#"{"as":"auto","key_into":"key"}"#,
        vec![
            Record::new("GET /a 200").with_key("k1"),
            Record::new(r#"{"a":1}"#),
        ],
    );
    let texts: Vec<&str> = out.records.iter().map(|r| r.text().unwrap()).collect();
    assert_eq!(
        texts,
        [
            r#"{"value":"GET /a 200","encoding":"text","key":"k1"}"#,
            r#"{"value":{"a":1},"encoding":"json","key":null}"#
        ]
    );
}

#[test]
fn the_schema_agrees_with_the_code() {
    let schema: Value = serde_json::from_str(CONFIG_SCHEMA).unwrap();
    let v = jsonschema::validator_for(&schema).unwrap();
    for good in [
        "{}",
        r#"{"as":"auto","into":"line","key_into":"k","encoding_into":"meta.enc"}"#,
        r#"{"as":"base64","into":"raw.bytes"}"#,
        r#"{"as":"json"}"#,
    ] {
        let config: Value = serde_json::from_str(good).unwrap();
        assert!(v.is_valid(&config), "{good}");
        TestHost::new()
            .transform::<JsonEncode>(good, vec![])
            .unwrap();
    }
    for bad in [
        r#"{"as":"hex"}"#,
        r#"{"into":""}"#,
        r#"{"into":"a..b"}"#,
        r#"{"as":"text","encoding_into":"e"}"#,
        r#"{"field":"x"}"#,
    ] {
        let config: Value = serde_json::from_str(bad).unwrap();
        assert!(!v.is_valid(&config), "{bad}");
        config_error(bad);
    }
}
