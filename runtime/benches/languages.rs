//! The same `fingerprint` transform written in Rust, Python, JavaScript and C: per language,
//! the time to instantiate it and call it on one record, its throughput on batches of 1,024
//! records, and the time to load the component on a restart (from the compiled cache).
//!
//! `cargo bench -p autoflow --bench languages`. The components come from
//! `plugins/build-lang.sh` (which `cargo test --workspace` runs; this bench runs it if needed).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use autoflow::engine::bindings::Record;
use autoflow::engine::{Engine, EngineConfig, Plugin, Sandbox, StepHost, StepLimits};
use autoflow::registry::cache::digest_of;

const LANGS: &[&str] = &["rust", "python", "js", "c"];

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let out = target.join("lang-plugins");
    let status = std::process::Command::new("bash")
        .arg(root.join("plugins/build-lang.sh"))
        .arg("--out")
        .arg(&out)
        .status()
        .expect("run plugins/build-lang.sh");
    assert!(status.success(), "plugins/build-lang.sh failed");
    let cache = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    println!(
        "{:<8} {:>10} {:>12} {:>16} {:>14} {:>12}",
        "language", "size", "compile", "instantiate+call", "records/s", "restart load"
    );
    for lang in LANGS {
        let bytes = std::fs::read(out.join(lang).join("fingerprint.wasm")).unwrap();
        let digest = digest_of(&bytes);
        let engine = new_engine(cache.path());
        let started = Instant::now();
        let plugin = engine.load(&digest, &bytes).unwrap();
        let compile = started.elapsed();
        let per_call = rt.block_on(instantiate_and_call(&engine, &plugin));
        let throughput = rt.block_on(records_per_second(&engine, &plugin));
        // A restart: a new engine reads the compiled code from the cache.
        let restarted = new_engine(cache.path()).load(&digest, &bytes).unwrap();
        println!(
            "{lang:<8} {:>8.1}MB {:>10.0}ms {:>14.0}µs {:>14.0} {:>10.1}ms",
            bytes.len() as f64 / 1e6,
            compile.as_secs_f64() * 1e3,
            per_call.as_secs_f64() * 1e6,
            throughput,
            restarted.load_time.as_secs_f64() * 1e3,
        );
    }
}

fn new_engine(cache: &Path) -> Engine {
    Engine::new(EngineConfig {
        max_instances: 8,
        cache_dir: Some(cache.to_path_buf()),
        ..EngineConfig::default()
    })
    .unwrap()
}

fn sandbox() -> Sandbox {
    let limits = StepLimits {
        memory_mb: 256,
        ..StepLimits::default()
    };
    Sandbox {
        limits,
        mounts: Vec::new(),
        host: StepHost::new("bench", Arc::new(|_| {})),
    }
}

fn record(i: usize) -> Record {
    let value = format!(
        "{{\"id\":{i},\"user\":\"u{}\",\"amount\":{},\"paid\":{}}}",
        i % 7,
        i * 37 % 1000,
        i.is_multiple_of(3)
    );
    Record {
        key: None,
        value: value.into_bytes(),
        headers: vec![],
        timestamp: None,
    }
}

/// Median of fresh instance + open + one `process` of one record.
async fn instantiate_and_call(engine: &Engine, plugin: &Plugin) -> Duration {
    let batch = [record(1)];
    let mut times = Vec::new();
    for _ in 0..200 {
        let started = Instant::now();
        let mut inst = engine.instantiate(plugin, sandbox()).await.unwrap();
        inst.open("{}", None).await.unwrap();
        let out = inst.process(&batch).await.unwrap();
        times.push(started.elapsed());
        assert_eq!(out.records.len(), 1);
    }
    times.sort();
    times[times.len() / 2]
}

/// Records per second through one instance, in batches of 1,024, for about a second.
async fn records_per_second(engine: &Engine, plugin: &Plugin) -> f64 {
    let batch: Vec<Record> = (0..1024).map(record).collect();
    let mut inst = engine.instantiate(plugin, sandbox()).await.unwrap();
    inst.open("{}", None).await.unwrap();
    inst.process(&batch).await.unwrap(); // warm up
    let started = Instant::now();
    let mut records = 0usize;
    while started.elapsed() < Duration::from_secs(1) {
        records += inst.process(&batch).await.unwrap().records.len();
    }
    records as f64 / started.elapsed().as_secs_f64()
}
