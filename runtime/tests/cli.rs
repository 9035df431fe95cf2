//! The binary starts and describes itself (and makes cargo build it for the workspace tests).
// Test code: failing loudly is its job.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]
use std::process::Command;

#[test]
fn help_lists_the_run_command() {
    let out = Command::new(env!("CARGO_BIN_EXE_autoflow"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("run"), "{text}");
}
