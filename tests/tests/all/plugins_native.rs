//! The built-in plugins' own unit tests (plugins/ is a separate workspace built for wasm), run
//! natively through the SDK's test host, so that `cargo test --workspace` covers them too.
// Test code: failing loudly is its job.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]
use std::process::Command;

use autoflow_tests::{target_dir, workspace_root};

#[test]
fn builtin_plugins_pass_their_unit_tests() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["test", "--manifest-path"])
        .arg(workspace_root().join("plugins/Cargo.toml"))
        .env("CARGO_TARGET_DIR", target_dir().join("plugins-native"))
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "plugin unit tests failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("test result: ok"),
        "no plugin test ran:\n{stdout}"
    );
}
