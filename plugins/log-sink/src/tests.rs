//! Unit tests for `log-sink`, run natively against the SDK's `TestHost`.
use autoflow_plugin_sdk::testing::TestHost;
use autoflow_plugin_sdk::{Error, Level, Record, Sink};

use super::{CONFIG_SCHEMA, LogSink};

#[test]
fn logs_each_value_with_prefix_and_counts() {
    let mut host = TestHost::new();
    let records = vec![Record::new(r#"{"a":1}"#), Record::new(b"\xffbad".to_vec())];
    host.sink::<LogSink>(r#"{"level":"warn","prefix":"out: "}"#, records)
        .unwrap();
    assert_eq!(
        host.logs,
        vec![
            (Level::Warn, r#"out: {"a":1}"#.to_string()),
            (Level::Warn, "out: \u{fffd}bad".to_string())
        ]
    );
    assert_eq!(host.counters["records_written"], 2);
}

#[test]
fn defaults_to_info_without_prefix() {
    let mut host = TestHost::new();
    host.sink::<LogSink>("", vec![Record::new("x")]).unwrap();
    assert_eq!(host.logs, vec![(Level::Info, "x".to_string())]);
}

#[test]
fn rejects_bad_config() {
    for bad in [
        r#"{"level":"loud"}"#,
        r#"{"prefix":1}"#,
        r#"{"colour":"red"}"#,
    ] {
        let err = TestHost::new().sink::<LogSink>(bad, vec![]).unwrap_err();
        assert!(matches!(err, Error::InvalidConfig(_)), "{bad}: {err:?}");
    }
}

#[test]
fn metadata_and_schema() {
    let m = LogSink::metadata();
    assert_eq!((m.name.as_str(), m.version.as_str()), ("log-sink", "0.1.0"));
    let schema: serde_json::Value = serde_json::from_str(CONFIG_SCHEMA).unwrap();
    assert_eq!(m.config_schema.as_deref(), Some(CONFIG_SCHEMA));
    assert_eq!(schema["additionalProperties"], false);
    let props: Vec<&String> = schema["properties"].as_object().unwrap().keys().collect();
    assert_eq!(props, ["level", "prefix"]);
}
