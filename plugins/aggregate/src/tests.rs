//! Unit tests for `aggregate`, run natively against the SDK's `TestHost`.
use autoflow_plugin_sdk::testing::TestHost;
use autoflow_plugin_sdk::{Error, Record};
use serde_json::{Value, json};

use super::{Aggregate, STATE_KEY};

const PER_MINUTE: &str = r#"{
    "group_by": ["country"],
    "window": {"size_ms": 60000, "time_field": "ts"},
    "aggregates": {
        "orders": {"op": "count"},
        "total": {"op": "sum", "field": "amount"},
        "smallest": {"op": "min", "field": "amount"},
        "largest": {"op": "max", "field": "amount"},
        "mean": {"op": "avg", "field": "amount"},
        "first_id": {"op": "first", "field": "id"},
        "last_id": {"op": "last", "field": "id"},
        "customers": {"op": "distinct", "field": "customer"}
    }
}"#;

fn order(id: u64, ts: i64, country: &str, amount: f64, customer: &str) -> Record {
    Record::new(
        json!({"id": id, "ts": ts, "country": country, "amount": amount, "customer": customer})
            .to_string(),
    )
}

fn rows(records: &[Record]) -> Vec<Value> {
    records.iter().map(|r| r.json::<Value>().unwrap()).collect()
}

fn config_error(config: &str) -> String {
    match TestHost::new().transform::<Aggregate>(config, vec![]) {
        Err(Error::InvalidConfig(m)) => m,
        other => panic!("{config}: expected invalid config, got {other:?}"),
    }
}

#[test]
fn a_window_is_passed_on_once_the_watermark_passes_its_end_with_every_aggregate() {
    let mut host = TestHost::new();
    let mut agg = host.open::<Aggregate>(PER_MINUTE).unwrap();
    let first = vec![
        order(1, 1_000, "DE", 10.0, "a"),
        order(2, 2_000, "FR", 5.5, "b"),
        order(3, 30_000, "DE", 2.0, "a"),
        order(4, 59_999, "DE", 30.0, "c"),
    ];
    let out = host.batch(&mut agg, first).unwrap();
    assert!(out.records.is_empty(), "the minute is still open");
    let out = host
        .batch(&mut agg, vec![order(5, 60_000, "DE", 1.0, "a")])
        .unwrap();
    assert_eq!(
        rows(&out.records),
        [
            json!({"window_start": 0, "window_end": 60000, "country": "DE", "orders": 3, "total": 42.0,
                   "smallest": 2.0, "largest": 30.0, "mean": 14.0, "first_id": 1, "last_id": 4, "customers": 2}),
            json!({"window_start": 0, "window_end": 60000, "country": "FR", "orders": 1, "total": 5.5,
                   "smallest": 5.5, "largest": 5.5, "mean": 5.5, "first_id": 2, "last_id": 2, "customers": 1}),
        ]
    );
    assert_eq!(out.records[0].timestamp, Some(60_000));
    // The open minute is kept in the state at the end of the run, not passed on.
    let end = host.finish(&mut agg).unwrap();
    assert!(end.records.is_empty());
    assert!(host.state.contains_key(STATE_KEY));
}

#[test]
fn open_windows_carry_over_to_the_next_run_through_the_state() {
    let mut host = TestHost::new();
    let mut run1 = host.open::<Aggregate>(PER_MINUTE).unwrap();
    host.batch(&mut run1, vec![order(1, 1_000, "DE", 1.0, "a")])
        .unwrap();
    host.finish(&mut run1).unwrap();
    // The next run opens with the committed state and completes the minute.
    let mut run2 = host.open::<Aggregate>(PER_MINUTE).unwrap();
    host.batch(&mut run2, vec![order(2, 2_000, "DE", 2.0, "b")])
        .unwrap();
    let out = host
        .batch(&mut run2, vec![order(3, 61_000, "DE", 4.0, "b")])
        .unwrap();
    let r = rows(&out.records);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0]["orders"], 2);
    assert_eq!(r[0]["total"], 3.0);
    assert_eq!(r[0]["first_id"], 1);
    assert_eq!(r[0]["customers"], 2);
}

#[test]
fn integer_sums_stay_integers() {
    let config = r#"{"window": {"size_ms": 10, "time_field": "t"}, "aggregates": {"s": {"op": "sum", "field": "n"}}, "emit_open_at_end": true}"#;
    let records = vec![
        Record::new(r#"{"t": 1, "n": 2}"#),
        Record::new(r#"{"t": 2, "n": 3}"#),
    ];
    let mut host = TestHost::new();
    let mut agg = host.open::<Aggregate>(config).unwrap();
    host.batch(&mut agg, records).unwrap();
    let end = host.finish(&mut agg).unwrap();
    assert_eq!(
        rows(&end.records),
        [json!({"window_start": 0, "window_end": 10, "s": 5})]
    );
}

#[test]
fn sliding_windows_count_a_record_in_each_window_that_holds_it() {
    let config = r#"{"window": {"size_ms": 30, "slide_ms": 10, "time_field": "t"}, "aggregates": {"n": {"op": "count"}}, "emit_open_at_end": true}"#;
    let records = [5, 15, 25, 35]
        .iter()
        .map(|t| Record::new(format!(r#"{{"t": {t}}}"#)))
        .collect();
    let mut host = TestHost::new();
    let mut agg = host.open::<Aggregate>(config).unwrap();
    let mut all = host.batch(&mut agg, records).unwrap().records;
    all.extend(host.finish(&mut agg).unwrap().records);
    let counts: Vec<(i64, u64)> = rows(&all)
        .iter()
        .map(|r| {
            (
                r["window_start"].as_i64().unwrap(),
                r["n"].as_u64().unwrap(),
            )
        })
        .collect();
    // Windows [-20,10) [-10,20) [0,30) [10,40) [20,50) [30,60).
    assert_eq!(
        counts,
        [(-20, 1), (-10, 2), (0, 3), (10, 3), (20, 2), (30, 1)]
    );
}

#[test]
fn late_records_within_the_allowed_lateness_count_and_later_ones_are_rejected() {
    let config = r#"{"window": {"size_ms": 100, "time_field": "t", "allowed_lateness_ms": 50}, "aggregates": {"n": {"op": "count"}}}"#;
    let mut host = TestHost::new();
    let mut agg = host.open::<Aggregate>(config).unwrap();
    // t=140: watermark 90, window [0,100) still open; t=20 counts in it.
    let out = host
        .batch(
            &mut agg,
            vec![
                Record::new(r#"{"t": 10}"#),
                Record::new(r#"{"t": 140}"#),
                Record::new(r#"{"t": 20}"#),
            ],
        )
        .unwrap();
    assert!(out.records.is_empty());
    // t=160: watermark 110 closes [0,100) with its 2 records; t=30 is then late.
    let out = host
        .batch(
            &mut agg,
            vec![Record::new(r#"{"t": 160}"#), Record::new(r#"{"t": 30}"#)],
        )
        .unwrap();
    assert_eq!(
        rows(&out.records),
        [json!({"window_start": 0, "window_end": 100, "n": 2})]
    );
    assert_eq!(out.rejected.len(), 1);
    assert_eq!(out.rejected[0].0, 1);
    assert!(
        out.rejected[0].1.starts_with("late: time 30"),
        "{:?}",
        out.rejected
    );
    assert_eq!(host.counters["late"], 1);
}

#[test]
fn bad_records_are_rejected_with_a_reason() {
    let mut host = TestHost::new();
    let mut agg = host.open::<Aggregate>(PER_MINUTE).unwrap();
    let out = host
        .batch(
            &mut agg,
            vec![
                Record::new("not json"),
                Record::new(r#"{"id": 1, "country": "DE", "amount": 1}"#),
                Record::new(r#"{"id": 2, "ts": "noon", "amount": 1}"#),
                Record::new(r#"{"id": 3, "ts": 5, "amount": "ten"}"#),
            ],
        )
        .unwrap();
    let reasons: Vec<&str> = out.rejected.iter().map(|(_, r)| r.as_str()).collect();
    assert_eq!(reasons.len(), 4, "{reasons:?}");
    assert!(reasons[1].contains("ts is missing"), "{reasons:?}");
    assert!(reasons[2].contains("ts is a string"), "{reasons:?}");
    assert!(
        reasons[3].contains("aggregate largest: max takes numbers"),
        "{reasons:?}"
    );
}

#[test]
fn bad_configs_name_the_key() {
    let w = |window: &str| {
        format!(r#"{{"window": {window}, "aggregates": {{"n": {{"op": "count"}}}}}}"#)
    };
    assert_eq!(
        config_error(&w(r#"{"size_ms": 0}"#)),
        "window.size_ms: 0 must be at least 1"
    );
    assert_eq!(
        config_error(&w(r#"{"size_ms": 10, "slide_ms": 20}"#)),
        "window.slide_ms: 20 must be between 1 and size_ms (10)"
    );
    assert!(config_error(&w(r#"{"size_ms": 100000, "slide_ms": 1}"#)).contains("at most 1000"));
    assert_eq!(
        config_error(&w(
            r#"{"size_ms": 10, "time": "arrival", "time_field": "t"}"#
        )),
        "window.time_field: only with time: event"
    );
    assert_eq!(
        config_error(r#"{"window": {"size_ms": 10}, "aggregates": {"s": {"op": "sum"}}}"#),
        "aggregates.s.field: sum needs a field"
    );
    assert_eq!(
        config_error(r#"{"window": {"size_ms": 10}, "aggregates": {}}"#),
        "aggregates: name at least one"
    );
    assert!(
        config_error(r#"{"window": {"size_ms": 10}, "aggregates": {"x": {"op": "median"}}}"#)
            .contains("median")
    );
}

#[test]
fn the_saved_state_of_other_aggregates_is_refused_by_name() {
    let mut host = TestHost::new();
    let mut agg = host.open::<Aggregate>(PER_MINUTE).unwrap();
    host.batch(&mut agg, vec![order(1, 1_000, "DE", 1.0, "a")])
        .unwrap();
    host.finish(&mut agg).unwrap();
    let other = r#"{"window": {"size_ms": 60000, "time_field": "ts"}, "aggregates": {"n": {"op": "count"}}}"#;
    match host.open::<Aggregate>(other) {
        Err(Error::InvalidConfig(m)) => assert!(m.contains("other aggregates"), "{m}"),
        other => panic!("{other:?}"),
    }
}
