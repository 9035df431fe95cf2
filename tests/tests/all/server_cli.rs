//! The CLI against a real server: `autoflow token create` (straight into the database),
//! `autoflow plugin push|list`, `autoflow pipeline apply|list|run`, `autoflow runs list|show|logs`.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]
use std::process::Command;

use autoflow_tests::server::{Backend, Server};
use autoflow_tests::{autoflow_bin, guests};

fn cli(s: &Server, token: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(autoflow_bin())
        .args(args)
        .env("AUTOFLOW_URL", &s.url)
        .env("AUTOFLOW_TOKEN", token)
        .env("AUTOFLOW_DATA_DIR", s.data.path())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
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
