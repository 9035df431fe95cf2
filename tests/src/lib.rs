//! Shared harness for the end-to-end tests: paths of the test guests, the `autoflow` binary,
//! and a scratch project folder to run pipeline files in.
// Test support: failing loudly is its job.
#![allow(clippy::panic)]
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub mod certs;
pub mod http_server;
pub mod postgres_tls;
pub mod server;
pub mod smtp_server;
pub mod tripwire;

/// Absolute paths of the test guest components (`tests/guests`), built for wasm32-wasip2 by
/// `build.rs`: one constant per guest, such as [`guests::SPIN_LOOP`], and [`guests::ALL`].
pub mod guests {
    include!(concat!(env!("OUT_DIR"), "/guests.rs"));
}

/// Components written in Python, JavaScript, C and Rust, built from `plugins/` and
/// `tests/guests/lang` by `plugins/build-lang.sh` at build time (`build_lang.rs`).
pub mod lang {
    include!(concat!(env!("OUT_DIR"), "/lang.rs"));

    /// The languages of the examples, Rust first (it needs nothing but cargo).
    pub const ALL: &[&str] = &["rust", "python", "js", "c"];
}

/// The component `name` written in `lang`, from the example plugins (`set` = `"plugins"`) or
/// the test guests (`"guests"`). When its toolchain was missing at build time the test fails
/// under CI (`CI=true`: `tests/setup-tools.sh` installed every toolchain); elsewhere this prints why
/// and returns `None`, and the caller skips that language.
pub fn lang_component(set: &str, lang: &str, name: &str) -> Option<PathBuf> {
    let Some(&(_, _, dir, error)) = lang::BUILDS.iter().find(|b| b.0 == set && b.1 == lang) else {
        panic!("no {lang} {set} are built: is tests/build_lang.rs up to date?");
    };
    if !error.is_empty() {
        let msg = format!(
            "the {lang} {set} could not be built (tests/setup-tools.sh installs the toolchains: see its warning, then rerun \
             `cargo test --workspace`):\n{error}"
        );
        if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
            panic!("{msg}");
        }
        eprintln!("SKIPPED {lang}: {msg}");
        return None;
    }
    let path = Path::new(dir).join(format!("{name}.wasm"));
    assert!(path.is_file(), "{} was not built", path.display());
    Some(path)
}

/// The workspace's target folder.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                workspace_root().join(dir)
            }
        }
        None => workspace_root().join("target"),
    }
}

/// The repository root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The `autoflow` binary that `cargo test --workspace` built beside these tests, or the one
/// `AUTOFLOW_BIN` names (useful when several worktrees share one target folder).
pub fn autoflow_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("AUTOFLOW_BIN") {
        return PathBuf::from(bin);
    }
    let bin = target_dir().join("debug").join("autoflow");
    assert!(
        bin.exists(),
        "{} is missing: run the tests with `cargo test --workspace`, which builds it",
        bin.display()
    );
    bin
}

/// A scratch folder holding a pipeline file and its data, run with the real binary. Compiled
/// plugins are cached in one folder shared by all tests, as a server's data dir would.
pub struct Project {
    /// The scratch folder (deleted on drop).
    pub dir: tempfile::TempDir,
}

/// What a run printed and how it exited.
#[derive(Debug)]
pub struct RunOutput {
    /// Exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Project {
    /// An empty project with `data/in` and `data/out`.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        for sub in ["data/in", "data/out"] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap_or_else(|e| panic!("mkdir: {e}"));
        }
        Self { dir }
    }

    /// The project folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `text` to `rel` inside the project.
    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let path = self.path().join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("mkdir: {e}"));
        }
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }

    /// Reads `rel` inside the project.
    pub fn read(&self, rel: &str) -> String {
        let path = self.path().join(rel);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
    }

    /// Runs `autoflow run <file> <extra...>` in the project folder.
    pub fn run(&self, file: &str, extra: &[&str]) -> RunOutput {
        let out: Output = Command::new(autoflow_bin())
            .arg("run")
            .arg(file)
            .args(extra)
            .current_dir(self.path())
            .env("AUTOFLOW_DATA_DIR", target_dir().join("autoflow-test-data"))
            .env_remove("AUTOFLOW_MOUNT_ROOTS")
            .output()
            .unwrap_or_else(|e| panic!("cannot run autoflow: {e}"));
        RunOutput {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Default for Project {
    fn default() -> Self {
        Self::new()
    }
}

/// What `autoflow plugin check --json` says of the component at `wasm` (it must be valid).
pub fn plugin_check(wasm: &Path) -> serde_json::Value {
    let out = Command::new(autoflow_bin())
        .args(["plugin", "check", "--json"])
        .arg(wasm)
        .output()
        .unwrap_or_else(|e| panic!("cannot run autoflow: {e}"));
    assert!(
        out.status.success(),
        "plugin check {}: {}",
        wasm.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("plugin check --json: {e}"))
}

/// Parses JSON lines into values.
pub fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}
