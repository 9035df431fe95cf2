//! Engine-level helpers shared by the test files that drive plugins through the engine API
//! (`sandbox.rs`, `languages.rs`): one engine per test, components loaded by path, instances
//! opened under given limits.
#![allow(dead_code, clippy::unwrap_used)]
use std::sync::Arc;

use autoflow::engine::bindings::Record;
use autoflow::engine::{
    Engine, EngineConfig, Mount, Plugin, Sandbox, StepHost, StepInstance, StepLimits,
};
use autoflow::registry::cache::digest_of;
use autoflow_tests::target_dir;

/// An engine with the tests' shared compiled cache, fuel metering if `fuel`.
pub fn engine(fuel: bool) -> Engine {
    Engine::new(EngineConfig {
        fuel,
        max_instances: 16,
        cache_dir: Some(target_dir().join("autoflow-test-data").join("cache")),
        ..EngineConfig::default()
    })
    .unwrap()
}

/// Loads the component at `path`.
pub fn load(engine: &Engine, path: impl AsRef<std::path::Path>) -> Arc<Plugin> {
    let bytes = std::fs::read(path).unwrap();
    engine.load(&digest_of(&bytes), &bytes).unwrap()
}

/// A record holding `text` and nothing else.
pub fn record(text: &str) -> Record {
    Record {
        key: None,
        value: text.as_bytes().to_vec(),
        headers: vec![],
        timestamp: None,
    }
}

/// `memory_mb` and `timeout_ms`, defaults otherwise.
pub fn limits(memory_mb: u64, timeout_ms: u64) -> StepLimits {
    StepLimits {
        memory_mb,
        timeout_ms,
        ..StepLimits::default()
    }
}

/// Instantiates the component at `path` and opens it with `config` (and, for a source, `cursor`).
pub async fn opened_at(
    engine: &Engine,
    path: impl AsRef<std::path::Path>,
    limits: StepLimits,
    mounts: Vec<Mount>,
    config: &str,
    cursor: Option<&str>,
) -> StepInstance {
    let host = StepHost::new("test-step", Arc::new(|_| {}));
    let mut inst = engine
        .instantiate(
            &load(engine, path),
            Sandbox {
                limits,
                mounts,
                host,
            },
        )
        .await
        .unwrap();
    inst.open(config, cursor).await.unwrap();
    inst
}
