//! Plugins in any language: the same pipeline with its `fingerprint` transform written in Rust,
//! Python, JavaScript and C writes byte-identical output; a Python source reads and resumes;
//! and the sandbox's deadline and memory cap hold for Python and JavaScript guests.
//!
//! The components are built from source by the tests' build script (`build_lang.rs`); a
//! language whose toolchain is missing fails these tests under CI and is skipped elsewhere.
// Test code: failing loudly is its job.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]
use std::time::{Duration, Instant};

use crate::common::{engine, limits, opened_at, record};
use autoflow::engine::StepError;
use autoflow_tests::{Project, lang, lang_component};

/// JSON lines in compact form (as the transforms write them), with the cases each language
/// must treat alike: nesting, escapes, UTF-8, an empty object (dropped), and two lines that are
/// not JSON objects (refused).
fn input() -> String {
    let mut text = String::from(concat!(
        r#"{"id":1,"name":"ada","tags":["x","y"]}"#,
        "\n",
        "{}\n",
        "not json\n",
        "[1,2]\n",
        r#"{"id":2,"name":"Zoë","nested":{"a":"b\"c","n":null,"f":1.5,"t":true}}"#,
        "\n",
    ));
    for i in 0..300 {
        text.push_str(&format!(
            "{{\"id\":{},\"user\":\"u{}\",\"amount\":{},\"paid\":{}}}\n",
            i + 3,
            i % 7,
            i * 37 % 1000,
            i % 3 == 0
        ));
    }
    text
}

/// Runs read -> fingerprint (the component at `plugin`) -> write, in batches of 64; returns the
/// output file and the dead-letter file.
fn run_fingerprint(p: &Project, name: &str, plugin: &std::path::Path) -> (String, String) {
    p.write(
        &format!("{name}.yaml"),
        &format!(
            "name: fingerprint-{name}
batch_size: 64
steps:
  - id: read
    plugin: file-source@0.1.0
    config: {{ path: /in/input.jsonl }}
    mounts: [{{ host: ./data/in, guest: /in }}]
  - id: fp
    plugin: {}
    input: read
    limits: {{ memory_mb: 128 }}
  - id: write
    plugin: file-sink@0.1.0
    input: fp
    config: {{ path: /out/{name}.jsonl }}
    mounts: [{{ host: ./data/out, guest: /out, mode: rw }}]
",
            plugin.display()
        ),
    );
    let out = p.run(
        &format!("{name}.yaml"),
        &["--dead-letters", &format!("{name}.dead.jsonl")],
    );
    assert_eq!(out.code, 0, "{name}: {}{}", out.stdout, out.stderr);
    (
        p.read(&format!("data/out/{name}.jsonl")),
        p.read(&format!("{name}.dead.jsonl")),
    )
}

/// The reason and value of each dead letter (the plugin digest differs by language).
fn dead_letters(text: &str) -> Vec<(String, String)> {
    autoflow_tests::json_lines(text)
        .iter()
        .map(|d| {
            (
                d["reason"].as_str().unwrap_or_default().to_string(),
                d["value"].to_string(),
            )
        })
        .collect()
}

#[test]
fn the_same_transform_in_rust_python_javascript_and_c_writes_identical_output() {
    let p = Project::new();
    p.write("data/in/input.jsonl", &input());
    let mut outputs = Vec::new();
    for &language in lang::ALL {
        let Some(plugin) = lang_component("plugins", language, "fingerprint") else {
            continue;
        };
        outputs.push((language, run_fingerprint(&p, language, &plugin)));
    }
    let (first, (expected, expected_dead)) = &outputs[0];
    assert_eq!(
        *first, "rust",
        "the Rust example needs only cargo, so it always runs"
    );
    let lines: Vec<&str> = expected.lines().collect();
    assert_eq!(lines.len(), 302, "two objects and 300 generated ones");
    assert_eq!(
        lines[0],
        r#"{"fp":"c0fd3cc4","id":1,"name":"ada","tags":["x","y"]}"#
    );
    assert_eq!(
        lines[1],
        r#"{"fp":"1b688fd0","id":2,"name":"Zoë","nested":{"a":"b\"c","n":null,"f":1.5,"t":true}}"#
    );
    assert_eq!(
        dead_letters(expected_dead),
        [
            ("not a JSON object".to_string(), "\"not json\"".to_string()),
            ("not a JSON object".to_string(), "[1,2]".to_string())
        ]
    );
    for (language, (output, dead)) in &outputs[1..] {
        assert!(
            output == expected,
            "{language} wrote other bytes than Rust:\n{output}"
        );
        assert_eq!(
            dead_letters(dead),
            dead_letters(expected_dead),
            "{language}"
        );
    }
}

#[tokio::test]
async fn a_python_source_reads_in_batches_and_resumes_from_its_cursor() {
    let Some(counter) = lang_component("plugins", "python", "counter") else {
        return;
    };
    let engine = engine(false);
    let config = r#"{"count":1030}"#;
    let mut first = opened_at(&engine, &counter, limits(128, 10_000), vec![], config, None).await;
    let batch = first.next(1024).await.unwrap().unwrap();
    assert_eq!(batch.records.len(), 1024);
    assert_eq!(batch.records[0].value, br#"{"n":1}"#);
    assert_eq!(batch.cursor.as_deref(), Some("1024"));
    assert_eq!(first.host().counters.get("emitted"), Some(&1024));

    // A later run opened at the committed cursor reads the rest, then ends.
    let mut resumed = opened_at(
        &engine,
        &counter,
        limits(128, 10_000),
        vec![],
        config,
        Some("1024"),
    )
    .await;
    let batch = resumed.next(1024).await.unwrap().unwrap();
    let values: Vec<&[u8]> = batch.records.iter().map(|r| r.value.as_slice()).collect();
    assert_eq!(
        values,
        [
            &br#"{"n":1025}"#[..],
            br#"{"n":1026}"#,
            br#"{"n":1027}"#,
            br#"{"n":1028}"#,
            br#"{"n":1029}"#,
            br#"{"n":1030}"#
        ]
    );
    assert_eq!(batch.cursor.as_deref(), Some("1030"));
    assert!(resumed.next(1024).await.unwrap().is_none());
}

#[tokio::test]
async fn a_python_plugin_describes_itself_and_refuses_a_bad_config() {
    let Some(counter) = lang_component("plugins", "python", "counter") else {
        return;
    };
    let engine = engine(false);
    let mut inst = opened_at(&engine, &counter, limits(128, 10_000), vec![], "{}", None).await;
    let meta = inst.describe().await.unwrap();
    assert_eq!(
        (meta.name.as_str(), meta.version.as_str()),
        ("counter", "0.1.0")
    );
    assert!(
        meta.config_schema
            .unwrap_or_default()
            .contains(r#""minimum": 0"#)
    );
    let err = inst.open(r#"{"count":-1}"#, None).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid_config: count must be a non-negative integer"
    );
}

/// The guest loops forever: the call ends with `timeout` within 100 ms of its deadline.
async fn stopped_at_its_deadline(language: &str) {
    let Some(spin) = lang_component("guests", language, "spin_loop") else {
        return;
    };
    let engine = engine(false);
    let mut inst = opened_at(&engine, &spin, limits(128, 300), vec![], "{}", None).await;
    let started = Instant::now();
    let err = inst.process(&[record("{}")]).await.unwrap_err();
    let took = started.elapsed();
    assert_eq!(err, StepError::Timeout { timeout_ms: 300 }, "{language}");
    assert!(
        took >= Duration::from_millis(300),
        "{language} stopped early: {took:?}"
    );
    assert!(
        took <= Duration::from_millis(400),
        "{language} stopped late: {took:?}"
    );
}

/// The guest allocates without end: the call ends with `memory_limit_exceeded` at the cap.
async fn refused_at_its_memory_cap(language: &str) {
    let Some(bomb) = lang_component("guests", language, "memory_bomb") else {
        return;
    };
    let engine = engine(false);
    let mut inst = opened_at(&engine, &bomb, limits(128, 20_000), vec![], "{}", None).await;
    let err = inst.process(&[record("{}")]).await.unwrap_err();
    assert_eq!(err.kind(), "memory_limit_exceeded", "{language}: {err}");
    assert!(
        err.to_string().contains("over its limit of 128 MiB"),
        "{language}: {err}"
    );
}

#[tokio::test]
async fn an_infinite_loop_in_python_is_stopped_at_its_deadline() {
    stopped_at_its_deadline("python").await;
}

#[tokio::test]
async fn an_infinite_loop_in_javascript_is_stopped_at_its_deadline() {
    stopped_at_its_deadline("js").await;
}

#[tokio::test]
async fn a_memory_bomb_in_python_is_refused_at_its_cap() {
    refused_at_its_memory_cap("python").await;
}

#[tokio::test]
async fn a_memory_bomb_in_javascript_is_refused_at_its_cap() {
    refused_at_its_memory_cap("js").await;
}
