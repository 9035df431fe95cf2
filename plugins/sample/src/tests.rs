//! Unit tests for `sample`, run natively against the SDK's `TestHost`.
use autoflow_plugin_sdk::testing::TestHost;
use autoflow_plugin_sdk::{Error, Record, Transform};
use serde_json::Value;

use super::Sample;

fn orders(n: u64) -> Vec<Record> {
    (0..n)
        .map(|i| Record::new(format!(r#"{{"id":{i},"user":"u{}"}}"#, i % 50)))
        .collect()
}

fn kept_ids(host: &mut TestHost, config: &str, records: Vec<Record>) -> Vec<u64> {
    let out = host.transform::<Sample>(config, records).unwrap();
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    out.records
        .iter()
        .map(|r| r.json::<Value>().unwrap()["id"].as_u64().unwrap())
        .collect()
}

fn config_error(config: &str) -> String {
    match TestHost::new().transform::<Sample>(config, vec![]) {
        Err(Error::InvalidConfig(m)) => m,
        other => panic!("{config}: expected invalid config, got {other:?}"),
    }
}

#[test]
fn keeps_about_the_rate_and_the_same_records_every_run() {
    let mut host = TestHost::new();
    let a = kept_ids(&mut host, r#"{"rate":0.1}"#, orders(10_000));
    assert!((900..1100).contains(&a.len()), "{}", a.len());
    assert_eq!(host.counters["sampled_out"], 10_000 - a.len() as u64);
    // A rerun, in batches of another size, keeps exactly the same records.
    let mut b = Vec::new();
    for chunk in orders(10_000).chunks(333) {
        b.extend(kept_ids(
            &mut TestHost::new(),
            r#"{"rate":0.1}"#,
            chunk.to_vec(),
        ));
    }
    assert_eq!(a, b);
    let other_seed = kept_ids(
        &mut TestHost::new(),
        r#"{"rate":0.1,"seed":7}"#,
        orders(10_000),
    );
    assert_ne!(a, other_seed);
    assert_eq!(
        kept_ids(&mut TestHost::new(), r#"{"rate":1}"#, orders(100)).len(),
        100
    );
    assert!(kept_ids(&mut TestHost::new(), r#"{"rate":0}"#, orders(100)).is_empty());
}

#[test]
fn a_key_keeps_or_drops_all_records_of_one_key_together() {
    let records = orders(5_000);
    let users = |ids: &[u64]| {
        let mut u: Vec<u64> = ids.iter().map(|i| i % 50).collect();
        u.dedup();
        u.sort();
        u.dedup();
        u
    };
    let kept = kept_ids(
        &mut TestHost::new(),
        r#"{"rate":0.3,"key":"user"}"#,
        records,
    );
    let chosen = users(&kept);
    assert!(!chosen.is_empty() && chosen.len() < 50);
    // Every record of a chosen user is there: 100 per user.
    assert_eq!(kept.len(), chosen.len() * 100);
    let same = kept_ids(
        &mut TestHost::new(),
        r#"{"rate":0.3,"key":["user"]}"#,
        orders(5_000),
    );
    assert_eq!(kept, same);
}

#[test]
fn bad_records_are_rejected_with_a_reason() {
    let out = TestHost::new()
        .transform::<Sample>(
            r#"{"rate":1,"key":["user"]}"#,
            vec![
                Record::new(r#"{"id":1}"#),
                Record::new("[]"),
                Record::new(r#"{"user":1}"#),
            ],
        )
        .unwrap();
    assert_eq!(
        out.rejected,
        [
            (0, "key field user is missing".to_string()),
            (1, "value is not a JSON object (it is an array)".to_string()),
        ]
    );
    // Without a key, any value can be sampled, JSON or not.
    let out = TestHost::new()
        .transform::<Sample>(r#"{"rate":1}"#, vec![Record::new("not json")])
        .unwrap();
    assert_eq!(out.records.len(), 1);
}

#[test]
fn bad_configs_name_the_field() {
    assert_eq!(
        config_error("{}"),
        "give rate (a share) or reservoir (a count)"
    );
    assert_eq!(
        config_error(r#"{"rate":1.5}"#),
        "rate: 1.5 is not between 0 and 1"
    );
    assert_eq!(
        config_error(r#"{"rate":0.5,"key":[]}"#),
        "key: name at least one field"
    );
    assert!(config_error(r#"{"rate":0.5,"key":["a",".b"]}"#).starts_with("key[1]: invalid path"));
    assert_eq!(
        config_error(r#"{"rate":0.5,"reservoir":100}"#),
        "rate and reservoir are exclusive: give one"
    );
    assert_eq!(
        config_error(r#"{"reservoir":0}"#),
        "reservoir: 0 is not between 1 and 1000000"
    );
    assert!(config_error(r#"{"rate":0.5,"every":3}"#).contains("unknown field `every`"));
    assert_eq!(Sample::metadata().name, "sample");
}

/// The ids of `records`.
fn ids(records: &[Record]) -> Vec<u64> {
    records
        .iter()
        .map(|r| r.json::<Value>().unwrap()["id"].as_u64().unwrap())
        .collect()
}

#[test]
fn a_reservoir_passes_on_exactly_n_records_at_the_end_whatever_the_batches() {
    let config = r#"{"reservoir":100,"seed":3}"#;
    let mut host = TestHost::new();
    let mut whole = host.open::<Sample>(config).unwrap();
    let during = host.batch(&mut whole, orders(5_000)).unwrap();
    assert!(
        during.records.is_empty(),
        "nothing is passed on before the end"
    );
    let at_end = host.finish(&mut whole).unwrap();
    let kept = ids(&at_end.records);
    assert_eq!(kept.len(), 100);
    assert!(kept.windows(2).all(|w| w[0] < w[1]), "in arrival order");
    assert_eq!(host.counters["sampled_out"], 4_900);
    // The same records in batches of 7 and in reverse order: the same sample.
    let mut host = TestHost::new();
    let mut batched = host.open::<Sample>(config).unwrap();
    let mut reversed = orders(5_000);
    reversed.reverse();
    for chunk in reversed.chunks(7) {
        host.batch(&mut batched, chunk.to_vec()).unwrap();
    }
    let mut again = ids(&host.finish(&mut batched).unwrap().records);
    again.sort_unstable();
    assert_eq!(again, kept);
    // Spread over the input, not its first hundred.
    assert!(kept.iter().any(|&id| id >= 2_500));
    // Fewer records than the reservoir: all of them.
    let mut host = TestHost::new();
    let mut small = host.open::<Sample>(config).unwrap();
    host.batch(&mut small, orders(40)).unwrap();
    assert_eq!(
        ids(&host.finish(&mut small).unwrap().records),
        (0..40).collect::<Vec<_>>()
    );
}
