//! Hostile guests against the real engine: each limit ends the step with its named error,
//! never a hang or a host crash, and the same engine then still runs a good plugin.
// Test code: failing loudly is its job.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]
use std::time::{Duration, Instant};

use crate::common::{engine, limits, record};
use autoflow::engine::{Engine, EngineConfig, Mount, StepError, StepInstance, StepLimits};
use autoflow::registry::cache::digest_of;
use autoflow_tests::{Project, guests};

use crate::common;

async fn opened(
    engine: &Engine,
    guest: &str,
    limits: StepLimits,
    mounts: Vec<Mount>,
    config: &str,
) -> StepInstance {
    common::opened_at(engine, guest, limits, mounts, config, None).await
}

/// The engine is unharmed: a good plugin still instantiates and processes a batch.
async fn good_plugin_still_runs(engine: &Engine) {
    let mut inst = opened(
        engine,
        guests::GOOD_UPPER,
        StepLimits::default(),
        vec![],
        "{}",
    )
    .await;
    let out = inst.process(&[record("{\"a\":\"b\"}")]).await.unwrap();
    assert_eq!(out.records[0].value, b"{\"A\":\"B\"}");
    assert_eq!(inst.host().counters.get("seen"), Some(&1));
}

#[tokio::test]
async fn an_infinite_loop_is_stopped_at_its_deadline() {
    let engine = engine(false);
    let mut inst = opened(&engine, guests::SPIN_LOOP, limits(64, 300), vec![], "{}").await;
    let started = Instant::now();
    let err = inst.process(&[record("{}")]).await.unwrap_err();
    let took = started.elapsed();
    assert_eq!(err, StepError::Timeout { timeout_ms: 300 });
    assert!(
        took >= Duration::from_millis(300),
        "stopped early: {took:?}"
    );
    assert!(took <= Duration::from_millis(400), "stopped late: {took:?}");
    // The trapped instance refuses further calls with the same error.
    assert_eq!(
        inst.process(&[record("{}")]).await.unwrap_err().kind(),
        "timeout"
    );
    good_plugin_still_runs(&engine).await;
}

#[tokio::test]
async fn a_memory_bomb_is_refused_at_its_cap() {
    let engine = engine(false);
    let mut inst = opened(
        &engine,
        guests::MEMORY_BOMB,
        limits(32, 10_000),
        vec![],
        "{}",
    )
    .await;
    let err = inst.process(&[record("{}")]).await.unwrap_err();
    assert_eq!(err.kind(), "memory_limit_exceeded", "{err}");
    assert!(
        err.to_string().contains("over its limit of 32 MiB"),
        "{err}"
    );
    good_plugin_still_runs(&engine).await;
}

#[tokio::test]
async fn an_output_bomb_is_refused() {
    let engine = engine(false);
    let limits = StepLimits {
        memory_mb: 1024,
        timeout_ms: 20_000,
        fuel: None,
        max_output_bytes: 1 << 20,
    };
    let mut inst = opened(&engine, guests::OUTPUT_BOMB, limits, vec![], "{}").await;
    let err = inst.process(&[record("{}")]).await.unwrap_err();
    assert_eq!(err.kind(), "output_too_large", "{err}");
    assert!(
        err.to_string().contains("over the limit of 1048576"),
        "{err}"
    );
    good_plugin_still_runs(&engine).await;
}

#[tokio::test]
async fn unbounded_recursion_overflows_the_guest_stack_only() {
    let engine = engine(false);
    let mut inst = opened(
        &engine,
        guests::DEEP_RECURSION,
        limits(64, 10_000),
        vec![],
        "{}",
    )
    .await;
    let err = inst.process(&[record("{}")]).await.unwrap_err();
    assert_eq!(err, StepError::StackOverflow);
    good_plugin_still_runs(&engine).await;
}

/// Recursion that overflows the shadow stack (Rust's stack in linear memory, below address 0)
/// is `stack_overflow` too, not an out-of-bounds `trap`.
#[tokio::test]
async fn a_shadow_stack_overflow_is_named_stack_overflow() {
    let engine = engine(false);
    let mut inst = opened(
        &engine,
        guests::SHADOW_STACK,
        limits(64, 10_000),
        vec![],
        "{}",
    )
    .await;
    let err = inst.process(&[record("{}")]).await.unwrap_err();
    assert_eq!(err, StepError::StackOverflow, "{err}");
    assert_eq!(err.kind(), "stack_overflow");
    good_plugin_still_runs(&engine).await;
}

/// A state write past the host's cap fails the call as `state_too_large`, naming the cap.
#[tokio::test]
async fn a_state_write_over_the_cap_is_named_state_too_large() {
    let engine = engine(false);
    let mut inst = opened(
        &engine,
        guests::STATE_HOG,
        limits(128, 10_000),
        vec![],
        "{}",
    )
    .await;
    let err = inst.process(&[record("{}")]).await.unwrap_err();
    assert_eq!(err.kind(), "state_too_large", "{err}");
    assert_eq!(
        err.to_string(),
        "state_too_large: the step's state would exceed 16 MiB"
    );
    good_plugin_still_runs(&engine).await;
}

#[tokio::test]
async fn paths_outside_the_mounts_are_refused() {
    let engine = engine(false);
    let p = Project::new();
    p.write("data/in/ok.txt", "granted");
    let mounts = vec![Mount {
        host: p.path().join("data/in"),
        guest: "/in".into(),
        writable: false,
    }];
    let read = |path: &str| format!("{{\"path\":\"{path}\"}}");

    let mut inst = opened(
        &engine,
        guests::ESCAPE_FS,
        limits(64, 5_000),
        mounts.clone(),
        &read("/in/ok.txt"),
    )
    .await;
    let out = inst.process(&[record("{}")]).await.unwrap();
    assert_eq!(out.records[0].value, b"granted");

    for path in ["/etc/passwd", "/in/../../etc/passwd", "/in/../ok.txt"] {
        let mut inst = opened(
            &engine,
            guests::ESCAPE_FS,
            limits(64, 5_000),
            mounts.clone(),
            &read(path),
        )
        .await;
        let err = inst.process(&[record("{}")]).await.unwrap_err();
        assert_eq!(err.kind(), "fatal", "{path}: {err}");
        assert!(err.to_string().contains(&format!("read {path}:")), "{err}");
        assert!(!err.to_string().contains("root:"), "{err}");
    }
    good_plugin_still_runs(&engine).await;
}

/// The SDK's heap and wasi-libc's malloc share the guest's memory: a list the host returns to
/// wasi-libc (here the names of directory entries), which it frees with `free()`, must not come
/// from the heap. When it did, this guest trapped in `dlfree` (or worse, dlmalloc took back
/// memory the heap still handed out).
#[tokio::test]
async fn lists_freed_by_wasi_libc_leave_the_plugin_heap_intact() {
    let engine = engine(false);
    let p = Project::new();
    for i in 0..40 {
        p.write(&format!("data/in/file-{i:02}.txt"), "x");
    }
    let mounts = vec![Mount {
        host: p.path().join("data/in"),
        guest: "/in".into(),
        writable: false,
    }];
    let mut inst = opened(
        &engine,
        guests::HEAP_CHURN,
        limits(64, 30_000),
        mounts,
        r#"{"dir":"/in"}"#,
    )
    .await;
    for batch in 0..10 {
        let records: Vec<_> = (0..10).map(|_| record("{}")).collect();
        let out = inst
            .process(&records)
            .await
            .unwrap_or_else(|e| panic!("batch {batch}: {e}"));
        let entries: Vec<&[u8]> = out.records.iter().map(|r| r.value.as_slice()).collect();
        assert_eq!(entries, vec![b"40".as_slice(); 10], "batch {batch}");
    }
}

#[tokio::test]
async fn a_panic_fails_the_step_with_its_message() {
    let engine = engine(false);
    let mut inst = opened(&engine, guests::PANICKER, limits(64, 5_000), vec![], "{}").await;
    let err = inst.process(&[record("{}")]).await.unwrap_err();
    assert_eq!(err.kind(), "trap", "{err}");
    assert!(
        err.to_string()
            .contains("boom: the guest panicked on purpose"),
        "{err}"
    );
    // The trap itself is named, not just "error while executing at wasm backtrace:".
    assert!(
        err.to_string()
            .starts_with("trap: wasm trap: wasm `unreachable` instruction executed"),
        "{err}"
    );
    let head = err
        .to_string()
        .split("; the plugin printed")
        .next()
        .unwrap_or_default()
        .to_string();
    assert!(!head.contains("backtrace"), "{err}");
    good_plugin_still_runs(&engine).await;
}

#[tokio::test]
async fn fuel_runs_out() {
    let engine = engine(true);
    let limits = StepLimits {
        fuel: Some(5_000_000),
        ..limits(64, 20_000)
    };
    let mut inst = opened(&engine, guests::SPIN_LOOP, limits, vec![], "{}").await;
    let err = inst.process(&[record("{}")]).await.unwrap_err();
    assert_eq!(err, StepError::FuelExhausted { fuel: 5_000_000 });
    good_plugin_still_runs(&engine).await;
}

#[test]
fn a_run_with_a_runaway_step_fails_with_a_named_error() {
    let p = Project::new();
    p.write("data/in/x.jsonl", "{\"a\":1}\n");
    p.write(
        "spin.yaml",
        &format!(
            "name: runaway
steps:
  - id: read
    plugin: file-source@0.1.0
    config: {{ path: /in/x.jsonl }}
    mounts: [{{ host: ./data/in, guest: /in }}]
  - id: spin
    plugin: {}
    input: read
    limits: {{ timeout_ms: 200 }}
  - id: out
    plugin: log-sink@0.1.0
    input: spin
",
            guests::SPIN_LOOP
        ),
    );
    let started = Instant::now();
    let out = p.run("spin.yaml", &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr
            .contains(r#"run failed: step "spin": timeout: the call did not finish within 200 ms"#),
        "{}",
        out.stderr
    );
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn a_second_start_loads_compiled_code_from_the_cache() {
    use autoflow::registry::cache::Origin;
    let cache = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(guests::GOOD_UPPER).unwrap();
    let digest = digest_of(&bytes);
    let start = || {
        Engine::new(EngineConfig {
            cache_dir: Some(cache.path().to_path_buf()),
            max_instances: 4,
            ..EngineConfig::default()
        })
        .unwrap()
    };
    let first = start().load(&digest, &bytes).unwrap();
    assert_eq!(first.origin, Origin::Compiled);
    let cached: Vec<String> = std::fs::read_dir(cache.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(cached.len(), 1, "{cached:?}");
    assert!(
        cached[0].starts_with(&format!("{digest}-")) && cached[0].ends_with(".cwasm"),
        "{cached:?}"
    );
    // A new engine (a restart) reads the cache instead of compiling, and the plugin works.
    let engine = start();
    let again = engine.load(&digest, &bytes).unwrap();
    assert_eq!(again.origin, Origin::Cache);
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(good_plugin_still_runs(&engine));
    // A different engine configuration has another fingerprint, so it compiles its own.
    let fueled = Engine::new(EngineConfig {
        cache_dir: Some(cache.path().to_path_buf()),
        fuel: true,
        max_instances: 4,
        ..EngineConfig::default()
    })
    .unwrap();
    assert_eq!(
        fueled.load(&digest, &bytes).unwrap().origin,
        Origin::Compiled
    );
    assert_eq!(std::fs::read_dir(cache.path()).unwrap().count(), 2);
}
