//! Unit tests for `jq`, run natively against the SDK's `TestHost`.
use autoflow_plugin_sdk::testing::TestHost;
use autoflow_plugin_sdk::{Error, Processed, Record, Transform};

use super::Jq;

const ORDER: &str = r#"{"id":7,"customer":{"name":"Ada"},"items":[{"sku":"A","qty":1,"price":2.5},{"sku":"B","qty":3,"price":1}]}"#;

fn run(program: &str, values: &[&str]) -> Processed {
    let records = values.iter().map(|v| Record::new(*v)).collect();
    let config = serde_json::json!({ "program": program }).to_string();
    TestHost::new().transform::<Jq>(&config, records).unwrap()
}

fn texts(out: &Processed) -> Vec<String> {
    out.records
        .iter()
        .map(|r| String::from_utf8(r.value.clone()).unwrap())
        .collect()
}

fn config_error(config: &str) -> String {
    match TestHost::new().transform::<Jq>(config, vec![]) {
        Err(Error::InvalidConfig(m)) => m,
        other => panic!("{config}: expected invalid config, got {other:?}"),
    }
}

#[test]
fn one_record_per_output_value() {
    let out = run(".items[] | {id: 7, sku, total: (.qty * .price)}", &[ORDER]);
    assert_eq!(
        texts(&out),
        [
            r#"{"id":7,"sku":"A","total":2.5}"#,
            r#"{"id":7,"sku":"B","total":3}"#
        ]
    );
    let out = run(
        ". as $o | .items | map(.qty) | add | {id: $o.id, qty: .}",
        &[ORDER],
    );
    assert_eq!(texts(&out), [r#"{"id":7,"qty":4}"#]);
    assert_eq!(texts(&run(".", &[ORDER])), [ORDER], "key order is kept");
}

#[test]
fn zero_outputs_drop_the_record_and_std_functions_work() {
    let out = run(r#"select(.id > 10)"#, &[ORDER, r#"{"id":11}"#]);
    assert_eq!(texts(&out), [r#"{"id":11}"#]);
    let out = run(
        r#"{name: (.customer.name | ascii_downcase), skus: [.items[].sku] | join(","), n: (.items | length), t: ("x" | test("x"))}"#,
        &[ORDER],
    );
    assert_eq!(
        texts(&out),
        [r#"{"name":"ada","skus":"A,B","n":2,"t":true}"#]
    );
    let mut r = Record::new("1").with_key("k");
    r.timestamp = Some(5);
    let out = TestHost::new()
        .transform::<Jq>(r#"{"program":". + 1, . + 2"}"#, vec![r])
        .unwrap();
    assert_eq!(texts(&out), ["2", "3"]);
    assert!(
        out.records
            .iter()
            .all(|o| o.key.as_deref() == Some(&b"k"[..]) && o.timestamp == Some(5))
    );
}

#[test]
fn runtime_errors_reject_the_record_with_jqs_message() {
    let out = run(".id + \"x\"", &[ORDER, "not json", r#"{"id":"a"}"#]);
    assert_eq!(out.rejected.len(), 2, "{:?}", out.rejected);
    assert_eq!(out.rejected[0].0, 0);
    assert_eq!(out.rejected[0].1, r#"jq: cannot calculate 7 + "x""#);
    assert_eq!(out.rejected[1].0, 1);
    assert!(
        out.rejected[1].1.starts_with("value is not valid JSON"),
        "{}",
        out.rejected[1].1
    );
    assert_eq!(texts(&out), [r#""ax""#]);
    let out = run(r#"error("too big")"#, &["1"]);
    assert_eq!(out.rejected, [(0, "jq: too big".to_string())]);
}

#[test]
fn compile_errors_are_invalid_config_with_jaqs_message() {
    assert_eq!(
        config_error(r#"{"program":".a | nosuch(1)"}"#),
        "program: undefined filter nosuch at character 6"
    );
    assert_eq!(
        config_error(r#"{"program":".a | $x"}"#),
        "program: undefined variable $x at character 6"
    );
    let m = config_error(r#"{"program":"{a: }"}"#);
    assert_eq!(m, r#"program: expected term at character 5, found "}""#);
    let m = config_error(r#"{"program":"[1, 2"}"#);
    assert_eq!(m, "program: expected closing bracket at character 6");
    assert!(config_error("{}").contains("missing field `program`"));
    assert!(config_error(r#"{"program":".","args":{}}"#).contains("unknown field `args`"));
    assert_eq!(Jq::metadata().name, "jq");
}
