//! `alert-bench`: alert latency, from a run's end (the alert's `at`, written in the
//! transaction that ends the run) to the receiver's request, against real server processes on
//! SQLite. Runs alternate failing and passing, so that every run's end raises an alert
//! (`firing`, then `resolved`). Two ways side by side in one run: the run ends in the server's
//! own worker (its commit wakes the deliverer at once), and the baseline, the run ends in an
//! `autoflow worker` process (the server's deliverer finds it by reading the outbox, every
//! 250 ms).
//!
//! `cargo run -p autoflow-tests --bin alert-bench --release -- [RUNS]` with
//! `AUTOFLOW_BIN=target/release/autoflow` (or a debug build: latencies are of the same order).
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]
use std::sync::{Arc, Mutex};
use std::time::Duration;

use autoflow_tests::guests;
use autoflow_tests::http_server::{Reply, TestServer};
use autoflow_tests::server::{Backend, Server, wait_for};

fn percentile(sorted: &[i64], p: f64) -> i64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Latencies (ms) of `runs` alerts; `remote`: runs end in an `autoflow worker`.
fn measure(runs: usize, remote: bool) -> Vec<i64> {
    let root = tempfile::tempdir().unwrap();
    let root_s = root.path().display().to_string();
    let mut flags = vec![
        "--egress-allow-private",
        "127.0.0.1",
        "--mount-root",
        &root_s,
    ];
    if remote {
        flags.extend(["--worker-slots", "0"]);
    }
    let s = Server::start_with(Backend::Sqlite, &flags).unwrap();
    let _worker = remote.then(|| s.worker(&["--mount-root", &root_s]));
    let seen: Arc<Mutex<Vec<i64>>> = Arc::default();
    let record = seen.clone();
    let receiver = TestServer::start(move |r, _| {
        let now = autoflow::store::now_ms();
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        record
            .lock()
            .unwrap()
            .push(now - body["at"].as_i64().unwrap());
        Reply::status(200)
    });
    let body = serde_json::json!({"type": "webhook", "url": receiver.url("/"), "secret": "b"});
    let r = s.call(
        "PUT",
        "/v1/channels/bench",
        Some(&s.admin),
        Some(("application/json", body.to_string().into_bytes())),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let r = s.push(
        &s.admin,
        "gate",
        "1.0.0",
        std::fs::read(guests::GATE).unwrap(),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let yaml = format!(
        "name: bench\nretry: {{ max_attempts: 1 }}\nsteps:\n  - id: gen\n    plugin: file-source@latest\n    config: {{ path: /gate/in.jsonl }}\n    \
         mounts: [{{ host: {root_s}, guest: /gate }}]\n  \
         - id: gate\n    plugin: gate@latest\n    input: gen\n    config: {{ path: /gate/open }}\n    \
         mounts: [{{ host: {root_s}, guest: /gate }}]\n  - id: sink\n    plugin: log-sink@latest\n    input: gate\n\
         alerts:\n  - {{ when: run_failed, channels: [bench] }}\n"
    );
    let r = s.apply(&s.admin, "bench", &yaml);
    assert_eq!(r.status, 201, "{}", r.text());
    for i in 0..runs {
        let open = root.path().join("open");
        if i % 2 == 1 {
            std::fs::write(&open, b"").unwrap();
        } else {
            let _ = std::fs::remove_file(&open);
        }
        // One new line a run (file-source resumes at its cursor after a committed run).
        let line = format!("{{\"n\":{i}}}\n");
        let input = root.path().join("in.jsonl");
        let mut text = std::fs::read_to_string(&input).unwrap_or_default();
        if i % 2 == 0 || text.is_empty() {
            text.push_str(&line);
        }
        std::fs::write(&input, text).unwrap();
        let run = s.run_and_wait(&s.admin, "bench", None);
        wait_for(
            Duration::from_secs(30),
            &format!("the alert of run {run}"),
            || seen.lock().unwrap().len() > i,
        );
    }
    let mut got = seen.lock().unwrap().clone();
    got.sort_unstable();
    got
}

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100);
    println!("alert latency, run's end -> receiver's request, {runs} alerts each (SQLite)");
    println!(
        "{:<44} {:>8} {:>8} {:>8} {:>8}",
        "", "min", "median", "p99", "max"
    );
    for (name, remote) in [
        ("run ends in the server's worker (woken)", false),
        ("baseline: run ends in an autoflow worker", true),
    ] {
        let l = measure(runs, remote);
        println!(
            "{name:<44} {:>6}ms {:>6}ms {:>6}ms {:>6}ms",
            l[0],
            percentile(&l, 0.5),
            percentile(&l, 0.99),
            l[l.len() - 1]
        );
    }
}
