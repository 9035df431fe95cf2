//! Unit tests for `file-source`, run natively against the SDK's `TestHost` on real temp files.
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use autoflow_plugin_sdk::testing::TestHost;
use autoflow_plugin_sdk::{Batch, Error};

use super::FileSource;

mod config;
mod csv;
mod jsonl;

/// A temp file holding `contents`, named `…-name` (the extension picks the format).
fn temp_file(name: &str, contents: &[u8]) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!(
        "autoflow-file-source-{}-{n}-{name}",
        std::process::id()
    ));
    std::fs::write(&path, contents).unwrap();
    path
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

fn read(config: &str, cursor: Option<&str>, max: u32) -> Result<Vec<Batch>, Error> {
    TestHost::new().source::<FileSource>(config, cursor.map(String::from), max)
}

/// Every record value as text.
fn texts(batches: &[Batch]) -> Vec<String> {
    batches
        .iter()
        .flat_map(|b| &b.records)
        .map(|r| String::from_utf8(r.value.clone()).unwrap())
        .collect()
}

fn fatal(result: Result<Vec<Batch>, Error>) -> String {
    match result {
        Err(Error::Fatal(m)) => m,
        other => panic!("expected a fatal error, got {other:?}"),
    }
}
