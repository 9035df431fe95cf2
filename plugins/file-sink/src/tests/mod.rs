//! Unit tests for `file-sink`, run natively against the SDK's `TestHost` on real temp files.
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use autoflow_plugin_sdk::testing::TestHost;
use autoflow_plugin_sdk::{Error, Record, Sink};

use super::FileSink;

mod config;
mod csv;
mod jsonl;

/// A fresh temp path named `…-name` (the extension picks the format); nothing is created.
fn temp_path(name: &str) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!(
        "autoflow-file-sink-{}-{n}-{name}",
        std::process::id()
    ))
}

/// The config `{"path": <path>, ..extra}`.
fn config(path: &std::path::Path, extra: &str) -> String {
    let path = serde_json::to_string(path.to_str().unwrap()).unwrap();
    if extra.is_empty() {
        format!(r#"{{"path":{path}}}"#)
    } else {
        format!(r#"{{"path":{path},{extra}}}"#)
    }
}

fn records(values: &[&str]) -> Vec<Record> {
    values.iter().map(|v| Record::new(*v)).collect()
}

/// Writes `values` as one batch through a fresh sink and returns the host.
fn sink(config: &str, values: &[&str]) -> Result<TestHost, Error> {
    let mut host = TestHost::new();
    host.sink::<FileSink>(config, records(values))?;
    Ok(host)
}

fn contents(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

fn fatal(result: Result<TestHost, Error>) -> String {
    match result {
        Err(Error::Fatal(m)) => m,
        other => panic!("expected a fatal error, got {other:?}"),
    }
}
