//! OpenLineage: a server started with `--openlineage-url` POSTs each run's `START` and its
//! `COMPLETE` (or `FAIL`, with the error) to a receiver on loopback, which the test reads back:
//! the job is the pipeline, the run id is one UUID across the run's events, the datasets are
//! the files the steps read and write, named by their host paths, and the output's row count
//! is what the sink wrote. The receiver refuses the first POST, and the event comes again.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use autoflow_tests::http_server::{Received, Reply, TestServer};
use autoflow_tests::server::{Backend, Server, wait_for};
use serde_json::Value;

/// The events the receiver took (2xx), in order.
fn taken(receiver: &TestServer, refused_first: &AtomicBool) -> Vec<Value> {
    let mut requests: Vec<Received> = receiver.requests();
    if refused_first.load(Ordering::SeqCst) {
        requests.remove(0);
    }
    requests
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

fn runs_send_their_lineage(backend: Backend) {
    let refused = Arc::new(AtomicBool::new(false));
    let receiver = {
        let refused = refused.clone();
        TestServer::start(move |_, n| {
            if n == 0 {
                refused.store(true, Ordering::SeqCst);
                Reply::status(503)
            } else {
                Reply::status(201)
            }
        })
    };
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().canonicalize().unwrap();
    std::fs::write(dir.join("in.jsonl"), "{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n").unwrap();
    let base = receiver.url("");
    let root = dir.display().to_string();
    let Some(s) = Server::start_with(
        backend,
        &[
            "--mount-root",
            &root,
            "--openlineage-url",
            &base,
            "--openlineage-api-key",
            "lineage-key",
        ],
    ) else {
        return;
    };
    let yaml = format!(
        "name: copy\nsteps:\n  - id: read\n    plugin: file-source@latest\n    \
         mounts: [{{ host: {root}, guest: /data }}]\n    config: {{ path: /data/in.jsonl }}\n  \
         - id: write\n    plugin: file-sink@latest\n    input: read\n    \
         mounts: [{{ host: {root}, guest: /data, mode: rw }}]\n    config: {{ path: /data/out.jsonl }}\n"
    );
    let r = s.apply(&s.admin, "copy", &yaml);
    assert!(r.status == 201 || r.status == 200, "{}", r.text());
    let run = s.run_and_wait(&s.admin, "copy", None);
    assert_eq!(run["status"], "succeeded", "{run}");
    wait_for(Duration::from_secs(30), "START and COMPLETE", || {
        taken(&receiver, &refused).len() >= 2
    });
    let requests = receiver.requests();
    assert_eq!(requests.len(), 3, "the refused START came again");
    for r in &requests {
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/api/v1/lineage");
        assert_eq!(r.header("authorization"), Some("Bearer lineage-key"));
        assert!(
            r.header("content-type")
                .unwrap()
                .contains("application/json")
        );
    }
    let events = taken(&receiver, &refused);
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["eventType"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["START", "COMPLETE"], "{events:?}");
    let (start, complete) = (&events[0], &events[1]);
    assert_eq!(start["run"]["runId"], complete["run"]["runId"]);
    let run_id = start["run"]["runId"].as_str().unwrap();
    assert_eq!(run_id.len(), 36, "a UUID: {run_id}");
    assert_eq!(
        complete["run"]["facets"]["autoflow_run"]["run_id"],
        run["id"]
    );
    assert_eq!(complete["job"]["name"], "copy");
    assert!(
        complete["job"]["namespace"]
            .as_str()
            .unwrap()
            .starts_with("autoflow/"),
        "{complete}"
    );
    for e in &events {
        assert_eq!(e["inputs"][0]["namespace"], "file");
        assert_eq!(
            e["inputs"][0]["name"],
            dir.join("in.jsonl").display().to_string()
        );
        assert_eq!(
            e["outputs"][0]["name"],
            dir.join("out.jsonl").display().to_string()
        );
    }
    assert_eq!(
        complete["outputs"][0]["outputFacets"]["outputStatistics"]["rowCount"], 3,
        "{complete}"
    );
    // A run that fails sends FAIL, with its error.
    std::fs::remove_file(dir.join("in.jsonl")).unwrap();
    let failed = s.run_and_wait(&s.admin, "copy", None);
    assert_eq!(failed["status"], "failed", "{failed}");
    wait_for(Duration::from_secs(30), "START and FAIL", || {
        taken(&receiver, &refused).len() >= 4
    });
    let events = taken(&receiver, &refused);
    assert_eq!(events[2]["eventType"], "START");
    let fail = &events[3];
    assert_eq!(fail["eventType"], "FAIL", "{fail}");
    assert_eq!(
        fail["run"]["facets"]["autoflow_run"]["run_id"],
        failed["id"]
    );
    assert_ne!(fail["run"]["runId"], run_id, "a run of its own");
    let message = fail["run"]["facets"]["errorMessage"]["message"]
        .as_str()
        .unwrap();
    assert!(message.contains("in.jsonl"), "{message}");
}

#[test]
fn runs_send_their_lineage_on_sqlite() {
    runs_send_their_lineage(Backend::Sqlite);
}

#[test]
fn runs_send_their_lineage_on_postgres() {
    runs_send_their_lineage(Backend::Postgres);
}

#[test]
fn a_lineage_url_that_is_not_http_is_refused_at_start() {
    let out = std::process::Command::new(autoflow_tests::autoflow_bin())
        .args([
            "server",
            "--openlineage-url",
            "ftp://catalogue",
            "--listen",
            "127.0.0.1:0",
        ])
        .env("AUTOFLOW_DATA_DIR", tempfile::tempdir().unwrap().path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--openlineage-url \"ftp://catalogue\": expected http:// or https://"),
        "{stderr}"
    );
}
