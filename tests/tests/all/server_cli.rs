//! The CLI against a real server: `autoflow token create` (straight into the database),
//! `autoflow plugin push|list|delete`, `autoflow pipeline apply|list|show|versions|rollback|run|
//! dead-letters`, `autoflow runs list|show|logs|attempts|dead-letters`, `autoflow secret list`:
//! `--json` on every listing, the hint that a listing goes on, durations as numbers, digests as
//! `sha256:<hex>`, errors that say their kind once, and a quiet end when stdout closes.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]
use std::process::{Command, Stdio};

use serde_json::Value;

use autoflow_tests::server::{Backend, Server};
use autoflow_tests::{autoflow_bin, guests};

fn cli(s: &Server, token: &str, args: &[&str]) -> (i32, String, String) {
    s.cli(token, args)
}

#[test]
fn cli_token_plugin_pipeline_runs() {
    let Some(s) = Server::start(Backend::Sqlite) else {
        return;
    };
    let (code, out, err) = cli(
        &s,
        "",
        &[
            "token",
            "create",
            "--role",
            "editor",
            "--database",
            &s.database,
        ],
    );
    assert_eq!(code, 0, "{err}");
    let editor = out.trim().to_string();
    assert!(editor.starts_with("af_"), "{out}");
    let (code, out, err) = cli(
        &s,
        &editor,
        &[
            "plugin",
            "push",
            guests::GOOD_UPPER,
            "--name",
            "up",
            "--version",
            "1.0.0",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("up@1.0.0 sha256:"), "{out}");
    let (_, out, _) = cli(&s, &editor, &["plugin", "list"]);
    assert!(out.contains("generator") && out.contains("up "), "{out}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.yaml");
    std::fs::write(&file, "name: p\nsteps:\n  - id: g\n    plugin: generator@latest\n    config: { count: 3 }\n  - id: u\n    plugin: up@1.0.0\n    input: g\n  - id: s\n    plugin: log-sink@latest\n    input: u\n").unwrap();
    let (code, out, err) = cli(&s, &editor, &["pipeline", "apply", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("p version 1"), "{out}");
    let (_, out, _) = cli(&s, &editor, &["pipeline", "list"]);
    assert!(out.contains("demo") && out.contains("p "), "{out}");
    let (code, out, err) = cli(&s, &editor, &["pipeline", "run", "p", "--wait"]);
    assert_eq!(code, 0, "{err}");
    let id = out.lines().next().unwrap().to_string();
    assert!(out.contains("[s] info:"), "log lines follow: {out}");
    let (_, out, _) = cli(&s, &editor, &["runs", "list", "p"]);
    assert!(out.contains(&id) && out.contains("succeeded"), "{out}");
    let (_, out, _) = cli(&s, &editor, &["runs", "show", &id]);
    assert!(out.contains("\"records_out\""), "{out}");
    let (_, out, _) = cli(&s, &editor, &["runs", "logs", &id]);
    assert!(out.contains("run started"), "{out}");
    // A viewer made by the CLI cannot write.
    let (_, viewer, _) = cli(
        &s,
        "",
        &[
            "token",
            "create",
            "--role",
            "viewer",
            "--database",
            &s.database,
        ],
    );
    let (code, _, err) = cli(&s, viewer.trim(), &["pipeline", "run", "p"]);
    assert_ne!(code, 0);
    assert!(err.contains("403"), "{err}");
}

#[test]
fn cli_run_with_an_idempotency_key_queues_once() {
    let Some(s) = Server::start(Backend::Sqlite) else {
        return;
    };
    let listed = |s: &Server| {
        cli(s, &s.admin, &["runs", "list", "demo", "--limit", "100"])
            .1
            .lines()
            .count()
    };
    let before = listed(&s);
    let run = |key: &str| {
        cli(
            &s,
            &s.admin,
            &["pipeline", "run", "demo", "--idempotency-key", key],
        )
    };
    let (code, out, err) = run("nightly-2024-06-01");
    assert_eq!(code, 0, "{err}");
    let id = out.trim().to_string();
    assert_eq!(id.len(), 24, "{out}");
    let (code, again, err) = run("nightly-2024-06-01");
    assert_eq!(code, 0, "{err}");
    assert_eq!(again.trim(), id, "the same run");
    assert!(
        err.contains(&format!(
            "an earlier request with this idempotency key queued run {id}"
        )),
        "{err}"
    );
    let (code, other, _) = run("nightly-2024-06-02");
    assert_eq!(code, 0);
    assert_ne!(other.trim(), id);
    assert_eq!(listed(&s), before + 2);
    let (code, _, err) = run(&"k".repeat(256));
    assert_ne!(code, 0);
    assert!(
        err.contains("400") && err.contains("Idempotency-Key"),
        "{err}"
    );
}

/// Runs the CLI as the admin and parses its standard output as JSON.
fn cli_json(s: &Server, args: &[&str]) -> Value {
    let (code, out, err) = cli(s, &s.admin, args);
    assert_eq!(code, 0, "{args:?}: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?} printed no JSON ({e}): {out}"))
}

/// The hex of a digest the CLI printed as `sha256:<hex>`.
fn hex_of(shown: &str) -> String {
    let hex = shown
        .strip_prefix("sha256:")
        .unwrap_or_else(|| panic!("{shown}"));
    assert_eq!(hex.len(), 64, "{shown}");
    hex.to_string()
}

#[test]
fn cli_shows_versions_and_rolls_back_pipelines_and_deletes_plugins() {
    let Some(s) = Server::start(Backend::Sqlite) else {
        return;
    };
    let (code, out, err) = cli(
        &s,
        &s.admin,
        &[
            "plugin",
            "push",
            guests::GOOD_UPPER,
            "--name",
            "up",
            "--version",
            "1.0.0",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let up = hex_of(out.split_whitespace().nth(1).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.yaml");
    let yaml = |count: u32| {
        format!(
            "name: p\nsteps:\n  - id: g\n    plugin: generator@latest\n    config: {{ count: {count} }}\n  \
             - id: u\n    plugin: up@1.0.0\n    input: g\n  - id: s\n    plugin: log-sink@latest\n    input: u\n"
        )
    };
    for (count, version) in [(3, "p version 1"), (4, "p version 2")] {
        std::fs::write(&file, yaml(count)).unwrap();
        let (code, out, err) = cli(&s, &s.admin, &["pipeline", "apply", file.to_str().unwrap()]);
        assert_eq!(code, 0, "{err}");
        assert!(out.contains(version), "{out}");
    }
    // show: the newest version, each step with its pinned digest spelled sha256:<hex>.
    let (code, out, err) = cli(&s, &s.admin, &["pipeline", "show", "p"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("p version 2"), "{out}");
    let pinned = out.lines().find(|l| l.contains("up@1.0.0")).unwrap();
    assert!(pinned.ends_with(&format!("sha256:{up}")), "{out}");
    let shown = cli_json(&s, &["pipeline", "show", "p", "--json"]);
    assert_eq!(shown["latest_version"], 2);
    assert_eq!(
        shown["latest"]["definition"]["steps"][0]["config"]["count"],
        4
    );
    let first = cli_json(&s, &["pipeline", "show", "p", "--version", "1", "--json"]);
    assert_eq!(first["version"], 1);
    assert_eq!(first["definition"]["steps"][0]["config"]["count"], 3);
    // versions, as lines and as JSON.
    let versions = cli_json(&s, &["pipeline", "versions", "p", "--json"]);
    let numbers: Vec<i64> = versions
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, [2, 1], "newest first");
    let (_, out, _) = cli(&s, &s.admin, &["pipeline", "versions", "p"]);
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(out.starts_with("v2 "), "{out}");
    // rollback: a new version with version 1's definition and digests.
    let (code, out, err) = cli(
        &s,
        &s.admin,
        &["pipeline", "rollback", "p", "--version", "1"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("p version 3"), "{out}");
    let third = cli_json(&s, &["pipeline", "show", "p", "--json"])["latest"].clone();
    assert_eq!(third["version"], 3);
    assert_eq!(third["definition"], first["definition"]);
    assert_eq!(third["plugins"], first["plugins"]);
    // Listings as JSON; every digest the text form shows is sha256:<hex>.
    let pipelines = cli_json(&s, &["pipeline", "list", "--json"]);
    assert!(
        pipelines
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "p" && p["latest_version"] == 3)
    );
    let plugins = cli_json(&s, &["plugin", "list", "--json"]);
    assert!(
        plugins
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "up" && p["digest"] == format!("sha256:{up}"))
    );
    let (_, out, _) = cli(&s, &s.admin, &["plugin", "list"]);
    for line in out.lines() {
        hex_of(line.split_whitespace().last().unwrap());
    }
    let secrets = cli_json(&s, &["secret", "list", "--json"]);
    assert!(secrets.is_array(), "{secrets}");
    // delete: refused while a version pins the plugin; a spare one goes, by either spelling.
    let (code, _, err) = cli(&s, &s.admin, &["plugin", "delete", &format!("sha256:{up}")]);
    assert_ne!(code, 0);
    assert!(
        err.contains("409") && err.contains("used by pipeline versions"),
        "{err}"
    );
    let (code, out, err) = cli(
        &s,
        &s.admin,
        &[
            "plugin",
            "push",
            guests::COUNTER,
            "--name",
            "spare",
            "--version",
            "1.0.0",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let spare = hex_of(out.split_whitespace().nth(1).unwrap());
    let (code, out, err) = cli(&s, &s.admin, &["plugin", "delete", &spare]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), format!("sha256:{spare} deleted (1 binding(s))"));
    let plugins = cli_json(&s, &["plugin", "list", "--json"]);
    assert!(
        !plugins
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "spare")
    );
    let (code, _, err) = cli(&s, &s.admin, &["plugin", "delete", &spare]);
    assert_ne!(code, 0);
    assert!(err.contains("404"), "{err}");
}

#[test]
fn cli_dead_letters_page_as_json_say_there_are_more_and_stop_quietly_when_stdout_closes() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap().to_string();
    let lines: String = (0..150).map(|i| format!("not json {i}\n")).collect();
    std::fs::write(dir.path().join("in.jsonl"), lines).unwrap();
    let Some(s) = Server::start_with(Backend::Sqlite, &["--mount-root", &root]) else {
        return;
    };
    let file = dir.path().join("dl.yaml");
    std::fs::write(
        &file,
        format!(
            "name: dl\nsteps:\n  - id: read\n    plugin: file-source@latest\n    config: {{ path: /in/in.jsonl }}\n    \
             mounts: [{{ host: {root}, guest: /in }}]\n  - id: check\n    plugin: json-map@latest\n    input: read\n  \
             - id: sink\n    plugin: log-sink@latest\n    input: check\n"
        ),
    )
    .unwrap();
    let (code, _, err) = cli(&s, &s.admin, &["pipeline", "apply", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = cli(&s, &s.admin, &["pipeline", "run", "dl", "--wait"]);
    assert_eq!(code, 0, "{err}");
    let id = out.lines().next().unwrap().to_string();
    // One page of 100 as JSON, and on stderr the cursor of the next.
    let (code, out, err) = cli(
        &s,
        &s.admin,
        &["runs", "dead-letters", &id, "--limit", "100", "--json"],
    );
    assert_eq!(code, 0, "{err}");
    let page: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(page.len(), 100);
    let last = page[99]["id"].as_i64().unwrap();
    assert_eq!(err.trim(), format!("(more: --after {last})"));
    assert!(
        page[0]["reason"].as_str().unwrap().contains(": "),
        "{}",
        page[0]
    );
    assert!(
        page.iter()
            .all(|d| d["plugin"].as_str().unwrap().starts_with("sha256:"))
    );
    // The next page is the last: no hint.
    let after = last.to_string();
    let (code, out, err) = cli(
        &s,
        &s.admin,
        &["runs", "dead-letters", &id, "--after", &after, "--json"],
    );
    assert_eq!(code, 0, "{err}");
    let rest: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(rest.len(), 50);
    assert!(!err.contains("more"), "{err}");
    // The text form: id, step, value, reason, tab-separated, the reason (which has ": ") last.
    let (_, out, _) = cli(
        &s,
        &s.admin,
        &["runs", "dead-letters", &id, "--limit", "100"],
    );
    let first: Vec<&str> = out.lines().next().unwrap().splitn(4, '\t').collect();
    assert_eq!(first[0], page[0]["id"].to_string());
    assert_eq!(first[1], "check");
    assert_eq!(first[2], page[0]["value"].to_string());
    assert_eq!(first[3], page[0]["reason"].as_str().unwrap());
    let of_pipeline = cli_json(
        &s,
        &["pipeline", "dead-letters", "dl", "--unreplayed", "--json"],
    );
    assert_eq!(of_pipeline.as_array().unwrap().len(), 150);
    // Standard output closed before the CLI writes (as `| head` does once it has its lines):
    // the CLI ends quietly, without a panic.
    for args in [
        vec!["runs", "dead-letters", id.as_str()],
        vec!["runs", "logs", id.as_str()],
        vec!["plugin", "list", "--json"],
    ] {
        let mut child = Command::new(autoflow_bin())
            .args(&args)
            .env("AUTOFLOW_URL", &s.url)
            .env("AUTOFLOW_TOKEN", &s.admin)
            .env("AUTOFLOW_DATA_DIR", s.data.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
    }
}

#[test]
fn cli_shows_durations_in_ms_pages_logs_and_says_an_error_kind_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap().to_string();
    let Some(s) = Server::start_with(Backend::Sqlite, &["--mount-root", &root]) else {
        return;
    };
    let (code, out, err) = cli(&s, &s.admin, &["pipeline", "run", "demo", "--wait"]);
    assert_eq!(code, 0, "{err}");
    let id = out.lines().next().unwrap().to_string();
    let run = cli_json(&s, &["runs", "show", &id]);
    let report = &run["report"];
    assert!(report["duration_ms"].is_u64(), "{report}");
    for step in report["steps"].as_array().unwrap() {
        assert!(step["busy_ms"].is_u64(), "{step}");
    }
    assert!(!run.to_string().contains("\"secs\""), "{run}");
    let runs = cli_json(&s, &["runs", "list", "demo", "--json"]);
    assert_eq!(runs[0]["id"], id.as_str());
    assert_eq!(runs[0]["status"], "succeeded");
    let attempts = cli_json(&s, &["runs", "attempts", &id, "--json"]);
    assert_eq!(attempts[0]["status"], "succeeded");
    let logs = cli_json(&s, &["runs", "logs", &id, "--json"]);
    assert!(
        logs.as_array()
            .unwrap()
            .iter()
            .any(|l| l["message"].as_str().unwrap().starts_with("run started")),
        "{logs}"
    );
    // A log longer than a page: 1000 lines, the cursor of the rest on stderr, then the rest.
    let file = dir.path().join("long.yaml");
    std::fs::write(
        &file,
        "name: long\nsteps:\n  - id: g\n    plugin: generator@latest\n    config: { count: 1200 }\n  \
         - id: s\n    plugin: log-sink@latest\n    input: g\n",
    )
    .unwrap();
    let (code, _, err) = cli(&s, &s.admin, &["pipeline", "apply", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = cli(&s, &s.admin, &["pipeline", "run", "long", "--wait"]);
    assert_eq!(code, 0, "{err}");
    let long = out.lines().next().unwrap().to_string();
    let all = out.lines().count() - 1;
    assert!(all > 1200, "{all} lines followed");
    let (code, out, err) = cli(&s, &s.admin, &["runs", "logs", &long]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 1000);
    let page = cli_json(&s, &["runs", "logs", &long, "--json"]);
    let cursor = page[999]["id"].to_string();
    assert_eq!(err.trim(), format!("(more: --after {cursor})"));
    let (code, out, err) = cli(&s, &s.admin, &["runs", "logs", &long, "--after", &cursor]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), all - 1000, "{out}");
    assert!(!err.contains("more"), "{err}");
    // A step that fails fatally: its error names the kind once, in the run and in the CLI.
    let file = dir.path().join("bad.yaml");
    std::fs::write(
        &file,
        format!(
            "name: bad\nsteps:\n  - id: read\n    plugin: file-source@latest\n    config: {{ path: /in/missing.jsonl }}\n    \
             mounts: [{{ host: {root}, guest: /in }}]\n  - id: sink\n    plugin: log-sink@latest\n    input: read\n"
        ),
    )
    .unwrap();
    let (code, _, err) = cli(&s, &s.admin, &["pipeline", "apply", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = cli(&s, &s.admin, &["pipeline", "run", "bad", "--wait"]);
    assert_ne!(code, 0);
    let bad = out.lines().next().unwrap().to_string();
    let last = err.lines().last().unwrap();
    assert!(
        last.starts_with(&format!(
            "autoflow pipeline: run {bad} failed: step \"read\": fatal: cannot open"
        )),
        "{err}"
    );
    assert_eq!(last.matches("fatal").count(), 1, "{err}");
    let run = cli_json(&s, &["runs", "show", &bad]);
    assert_eq!(
        run["error"].as_str().unwrap().matches("fatal").count(),
        1,
        "{run}"
    );
}
