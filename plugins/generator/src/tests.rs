//! Unit tests for `generator`, run natively against the SDK's `TestHost`.
use autoflow_plugin_sdk::testing::TestHost;
use autoflow_plugin_sdk::{Batch, Error, Record, Source};
use serde_json::Value;

use super::{CONFIG_SCHEMA, Generator, order::civil_from_days};

fn values(batches: &[Batch]) -> Vec<Vec<u8>> {
    batches
        .iter()
        .flat_map(|b| b.records.iter().map(|r| r.value.clone()))
        .collect()
}

fn run(config: &str, cursor: Option<&str>, max: u32) -> Vec<Batch> {
    TestHost::new()
        .source::<Generator>(config, cursor.map(String::from), max)
        .unwrap()
}

#[test]
fn emits_count_records_in_batches_with_cursors() {
    let batches = run(r#"{"count": 10}"#, None, 4);
    let sizes: Vec<usize> = batches.iter().map(|b| b.records.len()).collect();
    assert_eq!(sizes, [4, 4, 2]);
    let cursors: Vec<&str> = batches
        .iter()
        .map(|b| b.cursor.as_deref().unwrap())
        .collect();
    assert_eq!(cursors, ["4", "8", "10"]);
}

#[test]
fn default_count_is_1000() {
    assert_eq!(values(&run("{}", None, 1024)).len(), 1000);
}

#[test]
fn records_are_json_orders_of_about_300_bytes() {
    let all = values(&run(
        r#"{"count": 500, "seed": 7, "start": 100}"#,
        None,
        128,
    ));
    for (i, v) in all.iter().enumerate() {
        assert!(
            (290..=330).contains(&v.len()),
            "record {i} is {} bytes",
            v.len()
        );
        let o: Value = serde_json::from_slice(v).unwrap();
        assert_eq!(o["id"], 100 + i as u64);
        assert!(o["user"].as_str().unwrap().starts_with("user-"));
        assert!(o["email"].as_str().unwrap().contains('@'));
        assert!(["paid", "pending", "refunded", "failed"].contains(&o["status"].as_str().unwrap()));
        let amount = o["amount"].as_f64().unwrap();
        assert!((1.0..1000.0).contains(&amount));
        assert_eq!(o["currency"].as_str().unwrap().len(), 3);
        assert_eq!(o["country"].as_str().unwrap().len(), 2);
        assert!((1..=9).contains(&o["items"].as_u64().unwrap()));
        let at = o["created_at"].as_str().unwrap();
        assert!(
            at.starts_with("2026-01-01T") && at.ends_with('Z') && at.len() == 20,
            "{at}"
        );
        let keys: Vec<&String> = o.as_object().unwrap().keys().collect();
        assert_eq!(keys.first().map(|k| k.as_str()), Some("id"));
        assert_eq!(keys.last().map(|k| k.as_str()), Some("note"));
    }
    let paid = all
        .iter()
        .filter(|v| serde_json::from_slice::<Value>(v).unwrap()["status"] == "paid")
        .count();
    assert!((250..450).contains(&paid), "paid: {paid}");
}

#[test]
fn deterministic_and_seed_dependent() {
    let a = values(&run(r#"{"count": 50, "seed": 1}"#, None, 16));
    let b = values(&run(r#"{"count": 50, "seed": 1}"#, None, 7));
    let c = values(&run(r#"{"count": 50, "seed": 2}"#, None, 16));
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn resume_continues_exactly() {
    let whole = values(&run(r#"{"count": 30, "seed": 9}"#, None, 8));
    let rest = values(&run(r#"{"count": 30, "seed": 9}"#, Some("13"), 8));
    assert_eq!(rest, whole[13..]);
    assert!(run(r#"{"count": 30}"#, Some("30"), 8).is_empty());
    assert!(run(r#"{"count": 30}"#, Some("99"), 8).is_empty());
}

#[test]
fn start_shifts_ids_and_content() {
    let from0 = values(&run(r#"{"count": 20}"#, None, 64));
    let from5 = values(&run(r#"{"count": 15, "start": 5}"#, None, 64));
    assert_eq!(from5, from0[5..]);
}

#[test]
fn bad_config_and_cursor() {
    for bad in [
        r#"{"count": -1}"#,
        r#"{"count": "ten"}"#,
        r#"{"rows": 5}"#,
        r#"{"start": 18446744073709551615, "count": 2}"#,
    ] {
        let err = TestHost::new()
            .source::<Generator>(bad, None, 8)
            .unwrap_err();
        assert!(matches!(err, Error::InvalidConfig(_)), "{bad}: {err:?}");
    }
    let err = TestHost::new()
        .source::<Generator>("{}", Some("x".into()), 8)
        .unwrap_err();
    assert!(matches!(err, Error::Fatal(m) if m.contains("invalid cursor")));
}

#[test]
fn zero_max_still_progresses() {
    let mut g = Generator::open(serde_json::from_str(r#"{"count": 2}"#).unwrap(), None).unwrap();
    let b = g.next(0).unwrap().unwrap();
    assert_eq!(b.records.len(), 1);
    assert_eq!(b.records[0].key, Record::default().key);
}

#[test]
fn civil_dates() {
    assert_eq!(civil_from_days(0), (1970, 1, 1));
    assert_eq!(civil_from_days(1_767_225_600 / 86_400), (2026, 1, 1));
    assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    assert_eq!(civil_from_days(-1), (1969, 12, 31));
}

#[test]
fn metadata_and_schema() {
    let m = Generator::metadata();
    assert_eq!(
        (m.name.as_str(), m.version.as_str()),
        ("generator", "0.1.0")
    );
    let schema: Value = serde_json::from_str(CONFIG_SCHEMA).unwrap();
    assert_eq!(schema["additionalProperties"], false);
    let props: Vec<&String> = schema["properties"].as_object().unwrap().keys().collect();
    assert_eq!(props, ["count", "seed", "start"]);
}
