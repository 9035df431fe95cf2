//! Unit tests for `route`, run natively against the SDK's `TestHost`.
use autoflow_plugin_sdk::testing::TestHost;
use autoflow_plugin_sdk::{Error, Processed, Record, Transform};
use serde_json::Value;

use super::Route;

const ORDERS: &[&str] = &[
    r#"{"id":1,"country":"DE","amount":120}"#,
    r#"{"id":2,"country":"US","amount":80}"#,
    r#"{"id":3,"country":"FR","amount":5}"#,
    r#"{"id":4,"country":"JP","amount":700}"#,
    r#"{"id":5,"country":"US","amount":1}"#,
];

const BY_REGION: &str = r#"{"routes": [
    {"output": "eu", "when": {"field": "country", "op": "in", "value": ["DE", "FR"]}},
    {"output": "big", "when": {"field": "amount", "op": "gte", "value": 100}},
    {"output": "us", "when": {"field": "country", "equals": "US"}}
]}"#;

fn run(config: &str) -> Processed {
    let records = ORDERS.iter().map(|s| Record::new(*s)).collect();
    TestHost::new().transform::<Route>(config, records).unwrap()
}

fn ids(records: &[Record]) -> Vec<u64> {
    records
        .iter()
        .map(|r| r.json::<Value>().unwrap()["id"].as_u64().unwrap())
        .collect()
}

fn config_error(config: &str) -> String {
    match TestHost::new().transform::<Route>(config, vec![]) {
        Err(Error::InvalidConfig(m)) => m,
        other => panic!("{config}: expected invalid config, got {other:?}"),
    }
}

#[test]
fn each_record_goes_to_its_first_matching_route_and_the_rest_to_the_default_output() {
    let out = run(BY_REGION);
    assert_eq!(ids(out.output("eu")), [1, 3]);
    assert_eq!(ids(out.output("big")), [4]);
    assert_eq!(ids(out.output("us")), [2, 5]);
    assert!(out.records.is_empty());
    assert!(out.rejected.is_empty());
    let partial = r#"{"routes": [{"output": "eu", "when": {"field": "country", "op": "in", "value": ["DE", "FR"]}}]}"#;
    let out = run(partial);
    assert_eq!(ids(out.output("eu")), [1, 3]);
    assert_eq!(ids(&out.records), [2, 4, 5]);
}

#[test]
fn mode_all_sends_a_record_to_every_matching_output_once() {
    let config = r#"{"mode": "all", "routes": [
        {"output": "eu", "when": {"field": "country", "equals": "DE"}},
        {"output": "big", "when": {"field": "amount", "op": "gte", "value": 100}},
        {"output": "eu", "when": {"field": "country", "equals": "FR"}},
        {"output": "eu", "when": {"field": "amount", "op": "gt", "value": 100}}
    ]}"#;
    let out = run(config);
    assert_eq!(ids(out.output("eu")), [1, 3, 4]);
    assert_eq!(ids(out.output("big")), [1, 4]);
    assert_eq!(ids(&out.records), [2, 5]);
}

#[test]
fn outputs_are_the_routes_names_once_in_order() {
    let mut host = TestHost::new();
    assert_eq!(
        host.outputs::<Route>(BY_REGION).unwrap(),
        ["eu", "big", "us"]
    );
    let twice = r#"{"routes": [
        {"output": "a", "when": {"field": "x", "equals": 1}},
        {"output": "b", "when": {"field": "x", "equals": 2}},
        {"output": "a", "when": {"field": "x", "equals": 3}}
    ]}"#;
    assert_eq!(host.outputs::<Route>(twice).unwrap(), ["a", "b"]);
}

#[test]
fn values_that_are_not_json_are_rejected_and_the_others_routed() {
    let records = vec![
        Record::new(r#"{"id":1,"country":"DE","amount":1}"#),
        Record::new("not json"),
        Record::new(vec![0xff, 0xfe]),
    ];
    let out = TestHost::new()
        .transform::<Route>(BY_REGION, records)
        .unwrap();
    assert_eq!(ids(out.output("eu")), [1]);
    let rejected: Vec<(u32, &str)> = out.rejected.iter().map(|(i, r)| (*i, r.as_str())).collect();
    assert_eq!(rejected.len(), 2, "{rejected:?}");
    assert_eq!(rejected[0].0, 1);
    assert!(
        rejected[0].1.starts_with("value is not valid JSON"),
        "{rejected:?}"
    );
    assert_eq!(rejected[1].0, 2);
    assert!(rejected[1].1.contains("not UTF-8"), "{rejected:?}");
}

#[test]
fn bad_configs_name_their_place() {
    assert_eq!(
        config_error(r#"{"routes": []}"#),
        "routes: give at least one route"
    );
    assert!(
        config_error(
            r#"{"routes": [{"output": "Big Ones", "when": {"field": "a", "equals": 1}}]}"#
        )
        .starts_with("routes[0].output: invalid output name \"Big Ones\""),
    );
    let e = config_error(
        r#"{"routes": [{"output": "a", "when": {"field": "a", "equals": 1}}, {"output": "b", "when": {}}]}"#,
    );
    assert!(e.starts_with("routes[1].when: empty condition"), "{e}");
    let e = config_error(r#"{"routes": [{"output": "a"}]}"#);
    assert!(e.contains("when"), "{e}");
    let e = config_error(
        r#"{"routes": [{"output": "a", "when": {"field": "a", "equals": 1}}], "mode": "some"}"#,
    );
    assert!(e.contains("some"), "{e}");
}

#[test]
fn the_schema_is_valid_json_with_json_filters_condition() {
    let meta = Route::metadata();
    let schema: Value = serde_json::from_str(meta.config_schema.as_deref().unwrap()).unwrap();
    assert!(schema["$defs"]["condition"].is_object());
    assert_eq!(schema["required"][0], "routes");
}
