//! The upload validator: the check a plugin's bytes pass before the registry stores them
//! (`control::plugins::check` loads them: a binary component, exactly one plugin world,
//! nothing imported that the host lacks, compiled by wasmtime) refuses any bytes without a
//! panic. Seeded with the built-in plugins (`fuzz/run.sh` copies them into the corpus).
#![no_main]

use std::sync::OnceLock;

use autoflow::engine::{Engine, EngineConfig};
use autoflow::registry::cache::digest_of;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // No pooling and no disk cache; a fresh engine for each input, so that the plugins it
    // loaded do not pile up in memory.
    static CONFIG: OnceLock<EngineConfig> = OnceLock::new();
    let config = CONFIG.get_or_init(|| EngineConfig {
        pooling: false,
        cache_dir: None,
        ..EngineConfig::default()
    });
    let engine = Engine::new(config.clone()).expect("the engine starts");
    let _ = engine.load(&digest_of(data), data);
});
