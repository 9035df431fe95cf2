//! Unit tests for `mask`, run natively against the SDK's `TestHost`.
use autoflow_plugin_sdk::testing::TestHost;
use autoflow_plugin_sdk::{Error, Processed, Record, Transform};

use super::{Mask, hex};

const USER: &str = r#"{"id":1,"email":"ada@example.com","name":"Ada Lovelace","card":"4242424242424242","ssn":"123-45-6789","tier":3,"none":null}"#;

fn host() -> TestHost {
    TestHost::new().secret("mask-key", "key")
}

fn run(config: &str, values: &[&str]) -> Processed {
    let records = values.iter().map(|v| Record::new(*v)).collect();
    host().transform::<Mask>(config, records).unwrap()
}

fn one(config: &str, value: &str) -> String {
    let out = run(config, &[value]);
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    String::from_utf8(out.records[0].value.clone()).unwrap()
}

fn config_error(host: TestHost, config: &str) -> String {
    match { host }.transform::<Mask>(config, vec![]) {
        Err(Error::InvalidConfig(m)) => m,
        other => panic!("{config}: expected invalid config, got {other:?}"),
    }
}

#[test]
fn hash_is_hmac_sha256_of_the_text_in_hex() {
    // RFC 4231-style known answer: HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog").
    let out = one(
        r#"{"secret":"mask-key","fields":{"s":"hash"}}"#,
        r#"{"s":"The quick brown fox jumps over the lazy dog"}"#,
    );
    assert_eq!(
        out,
        r#"{"s":"f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"}"#
    );
    // Non-strings are hashed by their JSON text; null and missing fields stay as they are.
    let a = one(
        r#"{"secret":"mask-key","fields":{"tier":"hash","none":"hash","gone":"hash"}}"#,
        USER,
    );
    let b = one(
        r#"{"secret":"mask-key","fields":{"tier":"hash"}}"#,
        r#"{"tier":"3"}"#,
    );
    assert!(a.contains(r#""none":null"#) && !a.contains("gone"));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&a).unwrap()["tier"],
        serde_json::from_str::<serde_json::Value>(&b).unwrap()["tier"]
    );
}

#[test]
fn redact_and_truncate() {
    assert_eq!(
        one(
            r#"{"fields":{"name":"redact","ssn":{"redact":"XXX-XX-XXXX"},"card":{"truncate":4},"email":{"truncate":0},"tier":{"redact":null}}}"#,
            USER
        ),
        r#"{"id":1,"email":"","name":"[redacted]","card":"4242","ssn":"XXX-XX-XXXX","tier":null,"none":null}"#
    );
    // Characters, not bytes; a short string is left whole.
    assert_eq!(
        one(
            r#"{"fields":{"a":{"truncate":2},"b":{"truncate":9}}}"#,
            r#"{"a":"ééé","b":"ab"}"#
        ),
        r#"{"a":"éé","b":"ab"}"#
    );
    assert_eq!(
        one(
            r#"{"fields":{"user.email":"redact"}}"#,
            r#"{"user":{"email":"x@y","id":2}}"#
        ),
        r#"{"user":{"email":"[redacted]","id":2}}"#
    );
}

#[test]
fn bad_records_are_rejected_with_a_reason() {
    let out = run(
        r#"{"fields":{"card":{"truncate":4}}}"#,
        &[r#"{"card":4242}"#, "[]", r#"{"card":"1234567"}"#],
    );
    assert_eq!(
        out.rejected,
        [
            (
                0,
                "card is a number; truncate applies to strings".to_string()
            ),
            (1, "value is not a JSON object (it is an array)".to_string()),
        ]
    );
    assert_eq!(out.records.len(), 1);
}

#[test]
fn bad_configs_name_the_field() {
    assert_eq!(
        config_error(
            TestHost::new(),
            r#"{"secret":"mask-key","fields":{"email":"hash"}}"#
        ),
        r#"secret: the secret "mask-key" is not granted to this step"#
    );
    assert!(
        config_error(host(), r#"{"fields":{"email":"hash"}}"#)
            .starts_with("secret: fields.email is hashed")
    );
    assert_eq!(
        config_error(
            TestHost::new().secret("k", ""),
            r#"{"secret":"k","fields":{"email":"hash"}}"#
        ),
        r#"secret: the secret "k" is empty"#
    );
    assert_eq!(
        config_error(host(), r#"{"fields":{}}"#),
        "fields: name at least one field"
    );
    assert!(
        config_error(host(), r#"{"fields":{"a":"scramble"}}"#).starts_with("fields.a: a rule is")
    );
    assert!(
        config_error(host(), r#"{"fields":{"a":{"truncate":-1}}}"#)
            .starts_with("fields.a.truncate: -1")
    );
    assert!(
        config_error(host(), r#"{"fields":{"a..b":"redact"}}"#).starts_with("fields: invalid path")
    );
    assert!(
        config_error(host(), r#"{"fields":{"a":"redact"},"salt":1}"#)
            .contains("unknown field `salt`")
    );
    assert_eq!(Mask::metadata().name, "mask");
    assert_eq!(hex(&[0, 15, 255]), "000fff");
}
