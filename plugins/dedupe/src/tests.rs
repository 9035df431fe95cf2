//! Unit tests for `dedupe`, run natively against the SDK's `TestHost`.
use autoflow_plugin_sdk::testing::TestHost;
use autoflow_plugin_sdk::{Error, Record, Transform};
use serde_json::Value;

use super::{Dedupe, META_KEY, SEGMENT, segment_key};

fn rec(id: u64, n: u64) -> Record {
    Record::new(format!(r#"{{"id":{id},"n":{n}}}"#))
}

/// The `n` of each record passed on.
fn passed(host: &mut TestHost, config: &str, records: Vec<Record>) -> Vec<u64> {
    let out = host.transform::<Dedupe>(config, records).unwrap();
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    out.records
        .iter()
        .map(|r| r.json::<Value>().unwrap()["n"].as_u64().unwrap())
        .collect()
}

fn config_error(config: &str) -> String {
    match TestHost::new().transform::<Dedupe>(config, vec![]) {
        Err(Error::InvalidConfig(m)) => m,
        other => panic!("{config}: expected invalid config, got {other:?}"),
    }
}

#[test]
fn drops_repeated_keys_within_and_across_runs() {
    let mut host = TestHost::new();
    let ids = [1, 2, 1, 3, 2, 4];
    let records = ids
        .iter()
        .enumerate()
        .map(|(n, id)| rec(*id, n as u64))
        .collect();
    assert_eq!(passed(&mut host, r#"{"key":"id"}"#, records), [0, 1, 3, 5]);
    assert_eq!(host.counters["duplicates"], 2);
    // The next run (a new instance on the same state) remembers 1..4.
    let records = [4, 5, 1]
        .iter()
        .enumerate()
        .map(|(n, id)| rec(*id, n as u64))
        .collect();
    assert_eq!(passed(&mut host, r#"{"key":"id"}"#, records), [1]);
    assert_eq!(host.state[META_KEY].len(), 24);
    assert_eq!(host.state[&segment_key(0)].len(), 5 * 8);
}

#[test]
fn several_key_fields_and_the_whole_value() {
    let rows = [
        r#"{"a":1,"b":"x"}"#,
        r#"{"a":1,"b":"y"}"#,
        r#"{"b":"x","a":1}"#,
        r#"{"a":1,"b":"x"}"#,
    ];
    let records = |i: &[usize]| i.iter().map(|i| Record::new(rows[*i])).collect::<Vec<_>>();
    let out = TestHost::new()
        .transform::<Dedupe>(r#"{"key":["a","b"]}"#, records(&[0, 1, 2, 3]))
        .unwrap();
    assert_eq!(out.records.len(), 2, "a and b decide, in any key order");
    let out = TestHost::new()
        .transform::<Dedupe>("{}", records(&[0, 1, 2, 3]))
        .unwrap();
    assert_eq!(
        out.records.len(),
        3,
        "the whole value decides, byte for byte"
    );
}

#[test]
fn only_the_last_window_keys_are_remembered() {
    let mut host = TestHost::new();
    let cfg = r#"{"key":"id","window":3}"#;
    assert_eq!(
        passed(&mut host, cfg, (1..=4).map(|i| rec(i, i)).collect()),
        [1, 2, 3, 4]
    );
    // 1 fell out of the window of 3 (2, 3, 4); 4 is still in it.
    assert_eq!(passed(&mut host, cfg, vec![rec(4, 40), rec(1, 10)]), [10]);
    // Now 3, 4, 1: 2 fell out; 3 is still in (until 2 comes back and pushes it out).
    assert_eq!(
        passed(&mut host, cfg, vec![rec(3, 30), rec(2, 20), rec(3, 31)]),
        [20, 31]
    );
}

#[test]
fn the_state_survives_many_segments_and_a_change_of_window() {
    let mut host = TestHost::new();
    let n = (SEGMENT * 2 + 100) as u64;
    let cfg = |w: u64| format!(r#"{{"key":"id","window":{w}}}"#);
    // Batches of 1024 as a pipeline sends them.
    for chunk in (0..n).collect::<Vec<_>>().chunks(1024) {
        let records = chunk.iter().map(|i| rec(*i, *i)).collect();
        assert_eq!(passed(&mut host, &cfg(10_000), records).len(), chunk.len());
    }
    assert_eq!(host.state[&segment_key(2)].len(), 100 * 8);
    assert!(passed(&mut host, &cfg(10_000), (0..n).map(|i| rec(i, i)).collect()).is_empty());
    // A smaller window keeps the newest keys: the last 5000 of 0..n.
    let probe = vec![rec(n - 5000, 2), rec(n - 1, 3), rec(n - 5000 - 1, 1)];
    assert_eq!(passed(&mut host, &cfg(5000), probe), [1]);
    assert_eq!(
        host.state[&segment_key(2)].len(),
        0,
        "the old segment past the new ring is emptied"
    );
    let probe = vec![rec(n - 4000, 2), rec(n - 4999, 3)];
    assert!(passed(&mut host, &cfg(5000), probe).is_empty());
}

#[test]
fn bad_records_are_rejected_and_bad_state_is_fatal() {
    let out = TestHost::new()
        .transform::<Dedupe>(
            r#"{"key":["id","day"]}"#,
            vec![Record::new(r#"{"id":1}"#), Record::new("7")],
        )
        .unwrap();
    assert_eq!(
        out.rejected,
        [
            (0, "key field day is missing".to_string()),
            (1, "value is not a JSON object (it is a number)".to_string()),
        ]
    );
    let mut host = TestHost::new();
    host.state.insert(META_KEY.into(), b"garbage".to_vec());
    match host.transform::<Dedupe>(r#"{"key":"id"}"#, vec![]) {
        Err(Error::Fatal(m)) => assert_eq!(m, "state dedupe.meta is not in the dedupe01 format"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn bad_configs_name_the_field() {
    assert_eq!(
        config_error(r#"{"key":"id","window":0}"#),
        "window: 0 is not between 1 and 1048576"
    );
    assert!(config_error(r#"{"key":"id","window":2000000}"#).starts_with("window: 2000000"));
    assert!(config_error(r#"{"key":"id","window":-1}"#).contains("invalid value"));
    assert_eq!(
        config_error(r#"{"key":[]}"#),
        "key: name at least one field"
    );
    assert!(config_error(r#"{"key":"a."}"#).starts_with("key: invalid path"));
    assert!(config_error(r#"{"key":"id","ttl":60}"#).contains("unknown field `ttl`"));
    assert_eq!(Dedupe::metadata().name, "dedupe");
}
