//! `autoflow plugin new`: a scaffolded plugin of each language builds and passes its own test
//! (`test.sh`: build the component, run it in a pipeline, compare the output); and
//! `autoflow plugin check` describes a good component and names what is wrong with a bad one.
// Test code: failing loudly is its job.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]
use std::path::{Path, PathBuf};
use std::process::Command;

use autoflow_tests::{autoflow_bin, lang_component, target_dir, workspace_root};

/// Scaffolds `name` and runs its `test.sh`; the tools come from where `.ci/run` installs them.
fn scaffold_and_test(lang: &str, kind: &str, name: &str) {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(autoflow_bin())
        .args([
            "plugin", "new", name, "--lang", lang, "--kind", kind, "--dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let project = dir.path().join(name);
    let out = Command::new("bash")
        .arg(project.join("test.sh"))
        .env("AUTOFLOW", autoflow_bin())
        .env("AUTOFLOW_DATA_DIR", target_dir().join("autoflow-test-data"))
        .env("CARGO_TARGET_DIR", target_dir().join("scaffolded"))
        .env(
            "COMPONENTIZE_JS",
            workspace_root().join("plugins/js/node_modules/.bin/componentize-js"),
        )
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .output()
        .unwrap();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{lang} {kind}: test.sh failed:\n{log}"
    );
    assert!(log.contains(&format!("{name}: test passed")), "{log}");
    // The Rust SDK targets autoflow:plugin@0.2.0, whose only new interface is `transform`;
    // the Python and JavaScript helpers target 0.1.0.
    let contract = if lang == "rust" && kind == "transform" {
        "0.2.0"
    } else {
        "0.1.0"
    };
    check_describes(&project.join(format!("{name}.wasm")), name, kind, contract);
}

/// `autoflow plugin check` on the built component names its world, contract version and
/// metadata.
fn check_describes(wasm: &Path, name: &str, kind: &str, contract: &str) {
    let report = autoflow_tests::plugin_check(wasm);
    assert_eq!(report["world"], format!("{kind}-plugin"));
    assert_eq!(report["contract"], contract);
    assert_eq!(report["name"], name);
    assert!(report["imports"].as_array().unwrap().iter().any(|i| {
        i.as_str()
            .unwrap_or_default()
            .starts_with("autoflow:plugin/")
            || i.as_str().unwrap_or_default().starts_with("wasi:")
    }));
}

#[test]
fn a_scaffolded_rust_sink_builds_and_passes_its_test() {
    scaffold_and_test("rust", "sink", "my-rust-sink");
}

#[test]
fn a_scaffolded_python_source_builds_and_passes_its_test() {
    // The toolchain check (fails under CI, skips elsewhere) is the one of the Python examples.
    if lang_component("plugins", "python", "counter").is_none() {
        return;
    }
    scaffold_and_test("python", "source", "my-python-source");
}

#[test]
fn a_scaffolded_javascript_transform_builds_and_passes_its_test() {
    if lang_component("plugins", "js", "fingerprint").is_none() {
        return;
    }
    scaffold_and_test("js", "transform", "my-js-transform");
}

#[test]
fn check_names_what_is_wrong_with_a_component() {
    let dir = tempfile::tempdir().unwrap();
    let not_wasm: PathBuf = dir.path().join("junk.wasm");
    std::fs::write(&not_wasm, b"\0asm junk").unwrap();
    let out = Command::new(autoflow_bin())
        .args(["plugin", "check"])
        .arg(&not_wasm)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with(&format!(
            "{}: not a valid Autoflow plugin: ",
            not_wasm.display()
        )),
        "{err}"
    );
}
