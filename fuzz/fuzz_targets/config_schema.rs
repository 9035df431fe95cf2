//! The JSON Schema check of step configs: a plugin's schema (any text: it comes from the
//! plugin's `describe`, so from whoever uploaded it) and a config are checked without a panic.
//! The input is the schema text, a NUL byte, then the config's JSON.
#![no_main]

use autoflow::engine::bindings::Metadata;
use autoflow::executor::prepare::check_config_against;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (schema, config) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &b"{}"[..]),
    };
    let Ok(config) = serde_json::from_slice::<serde_json::Value>(config) else {
        return;
    };
    let meta = Metadata {
        name: "fuzz".into(),
        version: "0.0.0".into(),
        description: String::new(),
        config_schema: Some(String::from_utf8_lossy(schema).into_owned()),
    };
    let _ = check_config_against(&meta, &config);
});
