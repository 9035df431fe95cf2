//! The web UI (issue 16) in a real browser: headless Chromium (Debian's `chromium`), driven by
//! `tests/browser/ui.mjs` through the npm package `playwright-core` (both installed by
//! `tests/setup-tools.sh`), against a real server on loopback, signed in as the user its first
//! start made (`admin`, with the password it wrote to the data dir). The
//! script signs in, writes a pipeline in the editor with a typo and fixes it, triggers it and
//! watches the run live, diffs two versions, rolls back, replays a dead letter and uploads a
//! plugin; its screenshots go to `target/test-outputs/ui/`, and it prints the figures (paint and
//! interactive times of the pipelines page with 500 pipelines and of a run page with 10,000
//! log lines, and the page weight).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use std::path::{Path, PathBuf};
use std::process::Command;

use autoflow_tests::server::{Backend, Server};
use autoflow_tests::{target_dir, workspace_root};

/// The user the first start makes (its password is in the data dir).
const USER: &str = "admin";
const CHROMIUM: &str = "/usr/bin/chromium";

/// Why the browser test cannot run here, if it cannot: under CI that fails the test (the
/// set-up script installs everything); elsewhere the test says so and passes.
fn missing_tools(browser_dir: &Path) -> Option<String> {
    if !Path::new(CHROMIUM).exists() {
        return Some(format!("{CHROMIUM} is missing (apt-get install chromium)"));
    }
    if Command::new("node").arg("--version").output().is_err() {
        return Some("node is missing (apt-get install nodejs npm)".into());
    }
    if !browser_dir.join("node_modules/playwright-core").is_dir() {
        return Some("playwright-core is missing (cd tests/browser && npm ci)".into());
    }
    None
}

/// The smallest built-in plugin component (the test server takes uploads up to 2 MiB).
fn small_component() -> PathBuf {
    let dir = target_dir().join("wasm-plugins/wasm32-wasip2/release");
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
        .min_by_key(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(u64::MAX))
        .unwrap_or_else(|| panic!("no component in {}", dir.display()))
}

#[test]
fn the_web_ui_in_a_real_browser() {
    let browser_dir = workspace_root().join("tests/browser");
    if let Some(why) = missing_tools(&browser_dir) {
        let msg = format!("the browser test cannot run: {why}; tests/setup-tools.sh installs it");
        if std::env::var("AUTOFLOW_REQUIRE_SERVICES").is_ok_and(|v| v == "1") {
            panic!("{msg}");
        }
        eprintln!("SKIPPED: {msg}");
        return;
    }
    let out = target_dir().join("test-outputs/ui");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    // Progress every 100 ms (the shortest interval): the run page must see the counts change
    // while a run of about a second runs, however fast the machine is.
    let s = Server::start_with(Backend::Sqlite, &["--progress-interval-ms", "100"])
        .expect("a SQLite server");
    let password = std::fs::read_to_string(s.data.path().join("admin-password")).unwrap();
    let started = std::time::Instant::now();
    let run = Command::new("node")
        .arg(browser_dir.join("ui.mjs"))
        .current_dir(&browser_dir)
        .env("AUTOFLOW_URL", &s.url)
        .env("UI_USER", USER)
        .env("UI_PASSWORD", password.trim())
        .env("UI_OUT", &out)
        .env("UI_PLUGIN_WASM", small_component())
        .env("CHROMIUM", CHROMIUM)
        .output()
        .unwrap_or_else(|e| panic!("cannot run node: {e}"));
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    println!(
        "browser test took {:.1} s; screenshots in {}",
        started.elapsed().as_secs_f64(),
        out.display()
    );
    let log = std::fs::read_to_string(s.data.path().join("server.log")).unwrap_or_default();
    assert!(
        run.status.success(),
        "the browser test failed ({}):\n{stderr}\nlast lines of the server's log:\n{}",
        run.status,
        log.lines()
            .rev()
            .take(30)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        stdout.contains("PASS"),
        "the script did not finish: {stdout}"
    );
    assert!(
        out.join("01-signin.png").is_file(),
        "no screenshot in {}",
        out.display()
    );
}
