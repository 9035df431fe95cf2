#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Observability against real server and worker processes: `GET /metrics` parsed with a
//! Prometheus text parser and checked against the runs' own reports (on SQLite and on
//! PostgreSQL), a worker's `--metrics-listen` and the metrics token, live progress of a slow
//! run (from the server's worker, and from a remote worker on PostgreSQL) through
//! `GET /v1/runs/{id}`, the log stream's `progress` events and `autoflow runs show --follow`,
//! and `--log-format json`.
use std::io::{BufRead, BufReader};
use std::process::Command;
use std::time::Duration;

use autoflow_tests::server::{Backend, Server, wait_for};
use autoflow_tests::{autoflow_bin, guests};
use prometheus_parse::{Scrape, Value as Sample};
use serde_json::Value;

/// `GET url` with `token` (if any): status and body.
fn get(url: &str, token: Option<&str>) -> (u16, String) {
    let client = reqwest::blocking::Client::new();
    let mut req = client.get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().unwrap();
    (resp.status().as_u16(), resp.text().unwrap())
}

/// The exposition at `url`, parsed as Prometheus parses it.
fn scrape(url: &str, token: Option<&str>) -> (Scrape, String) {
    let (status, text) = get(url, token);
    assert_eq!(status, 200, "{url}: {text}");
    let lines = text.lines().map(|l| Ok(l.to_string()));
    (Scrape::parse(lines).unwrap(), text)
}

/// The sum of the samples of `metric` (a counter, gauge or untyped series, such as a
/// histogram's `_count`) whose labels include `labels`.
fn sum(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match &s.value {
            Sample::Counter(v) | Sample::Gauge(v) | Sample::Untyped(v) => *v,
            other => panic!("{metric} is not a single value: {other:?}"),
        })
        .sum()
}

/// The sum of the samples of `metric` whose labels include `labels`, read from the exposition's
/// text: for series whose label values hold braces (route templates such as `/v1/runs/{id}`),
/// which `prometheus-parse` 0.2 drops (its label pattern stops at the first `}`).
fn text_sum(text: &str, metric: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter_map(|l| l.strip_prefix(metric)?.strip_prefix('{'))
        .filter_map(|l| l.rsplit_once("} "))
        .filter(|(set, _)| {
            labels.iter().all(|(k, v)| {
                set.split("\",")
                    .any(|pair| pair.trim_end_matches('"') == format!("{k}=\"{v}"))
            })
        })
        .map(|(_, value)| value.trim().parse::<f64>().unwrap())
        .sum()
}

/// The exposition at `url` once `metric` with `labels` sums to `want` (the ends of runs are
/// counted just after they are committed, so a client may see a run end a moment before).
fn scrape_when(
    url: &str,
    token: Option<&str>,
    metric: &str,
    labels: &[(&str, &str)],
    want: f64,
) -> (Scrape, String) {
    let mut got = (
        Scrape {
            docs: Default::default(),
            samples: Vec::new(),
        },
        String::new(),
    );
    wait_for(
        Duration::from_secs(30),
        &format!("{metric} {labels:?} = {want}"),
        || {
            got = scrape(url, token);
            sum(&got.0, metric, labels) == want
        },
    );
    got
}

/// Whether a histogram `metric` is there, with buckets.
fn is_histogram(scrape: &Scrape, metric: &str) -> bool {
    scrape
        .samples
        .iter()
        .any(|s| s.metric == metric && matches!(&s.value, Sample::Histogram(b) if !b.is_empty()))
}

fn apply(s: &Server, name: &str, yaml: &str) {
    let r = s.apply(&s.admin, name, yaml);
    assert!(
        r.status == 201 || r.status == 200,
        "apply {name}: {}",
        r.text()
    );
}

fn push(s: &Server, name: &str, path: &str) {
    let r = s.push(&s.admin, name, "1.0.0", std::fs::read(path).unwrap());
    assert!(
        r.status == 201 || r.status == 200,
        "push {name}: {}",
        r.text()
    );
}

/// file-source (two JSON objects, two values that are not) -> json-map (rejects those) ->
/// log-sink.
fn rejecting_pipeline(dir: &std::path::Path) -> String {
    std::fs::write(
        dir.join("in.jsonl"),
        "{\"id\":1}\n[2]\n{\"id\":3}\n\"four\"\n",
    )
    .unwrap();
    format!(
        "name: mixed\nsteps:\n  - id: read\n    plugin: file-source@latest\n    config: {{ path: /in/in.jsonl }}\n    \
         mounts: [{{ host: {}, guest: /in }}]\n  - id: check\n    plugin: json-map@latest\n    input: read\n  \
         - id: sink\n    plugin: log-sink@latest\n    input: check\n",
        dir.display()
    )
}

/// Three runs of a pipeline that rejects records: the server's `/metrics` counts what their
/// reports say, by pipeline, step and status, and names no run.
fn metrics_count_what_the_runs_report(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap().to_string();
    let Some(s) = Server::start_with(backend, &["--mount-root", &root]) else {
        return;
    };
    apply(&s, "mixed", &rejecting_pipeline(dir.path()));
    let runs: Vec<Value> = (0..3)
        .map(|_| s.run_and_wait(&s.admin, "mixed", None))
        .collect();
    let url = format!("{}/metrics", s.url);
    let p = ("pipeline", "mixed");
    let finished = [p, ("status", "succeeded")];
    let (m, text) = scrape_when(&url, None, "autoflow_runs_finished_total", &finished, 3.0);
    assert_eq!(sum(&m, "autoflow_runs_started_total", &[p]), 3.0, "{text}");
    assert_eq!(
        sum(
            &m,
            "autoflow_runs_finished_total",
            &[p, ("status", "succeeded")]
        ),
        3.0,
        "{text}"
    );
    assert_eq!(
        sum(
            &m,
            "autoflow_run_duration_seconds_count",
            &[p, ("status", "succeeded")]
        ),
        3.0
    );
    assert!(is_histogram(&m, "autoflow_run_duration_seconds"), "{text}");
    assert!(is_histogram(&m, "autoflow_step_busy_seconds"), "{text}");
    let mut dead = 0;
    for (i, step) in ["read", "check", "sink"].into_iter().enumerate() {
        let labels = [p, ("step", step)];
        for (field, metric) in [
            ("records_in", "autoflow_step_records_in_total"),
            ("records_out", "autoflow_step_records_out_total"),
            ("rejected", "autoflow_step_records_rejected_total"),
            ("bytes_in", "autoflow_step_bytes_in_total"),
            ("bytes_out", "autoflow_step_bytes_out_total"),
        ] {
            let reported: u64 = runs
                .iter()
                .map(|r| {
                    let s = &r["report"]["steps"][i];
                    assert_eq!(s["id"], step, "{r}");
                    s[field].as_u64().unwrap()
                })
                .sum();
            assert_eq!(sum(&m, metric, &labels), reported as f64, "{step} {field}");
        }
        assert_eq!(
            sum(&m, "autoflow_step_busy_seconds_count", &labels),
            3.0,
            "{step}"
        );
        let fuel: u64 = runs
            .iter()
            .map(|r| r["report"]["steps"][i]["fuel_used"].as_u64().unwrap_or(0))
            .sum();
        assert_eq!(
            sum(&m, "autoflow_step_fuel_used_total", &labels),
            fuel as f64
        );
        let peak = runs.last().unwrap()["report"]["steps"][i]["memory_peak_bytes"]
            .as_u64()
            .unwrap();
        assert!(peak >= 65536, "at least a wasm page: {peak}");
        assert_eq!(
            sum(&m, "autoflow_step_memory_peak_bytes", &labels),
            peak as f64,
            "{step}"
        );
    }
    for r in &runs {
        dead += r["report"]["dead_letters"].as_u64().unwrap();
    }
    // The source resumes from its cursor: only the first run reads (and rejects) anything.
    assert_eq!(dead, 2, "two rejected by the first run");
    assert_eq!(sum(&m, "autoflow_dead_letters_total", &[p]), dead as f64);
    // The routes by their templates, with statuses; never a run id.
    let shows = [
        ("route", "/v1/runs/{id}"),
        ("method", "GET"),
        ("status", "200"),
    ];
    assert!(
        text_sum(&text, "autoflow_http_requests_total", &shows) >= 3.0,
        "{text}"
    );
    let triggers = [
        ("route", "/v1/pipelines/{name}/runs"),
        ("method", "POST"),
        ("status", "202"),
    ];
    assert_eq!(
        text_sum(&text, "autoflow_http_requests_total", &triggers),
        3.0,
        "{text}"
    );
    let missing = get(&format!("{}/v1/no/such/route", s.url), None).0;
    assert_eq!(missing, 404);
    let (m, text) = scrape(&url, None);
    assert_eq!(
        sum(
            &m,
            "autoflow_http_requests_total",
            &[("route", "unmatched"), ("status", "404")]
        ),
        1.0,
        "{text}"
    );
    assert!(is_histogram(&m, "autoflow_http_request_duration_seconds"));
    for r in &runs {
        let id = r["id"].as_str().unwrap();
        assert!(!text.contains(id), "a run id in the metrics: {id}");
    }
    // Compiled plugins: looked up once per step per run.
    assert!(
        sum(&m, "autoflow_compiled_cache_total", &[]) >= 9.0,
        "{text}"
    );
    assert_eq!(sum(&m, "autoflow_queue_depth", &[]), 0.0);
    assert!(is_histogram(&m, "autoflow_claim_wait_seconds"), "{text}");
    // The engine's pool: its slots (the default 256), and no instance left once the runs
    // (and the uploads' describes) are over.
    assert_eq!(
        sum(&m, "autoflow_engine_instance_slots", &[]),
        256.0,
        "{text}"
    );
    scrape_when(&url, None, "autoflow_engine_instances", &[], 0.0);
}

#[test]
fn metrics_count_what_the_runs_report_on_sqlite() {
    metrics_count_what_the_runs_report(Backend::Sqlite);
}

#[test]
fn metrics_count_what_the_runs_report_on_postgres() {
    metrics_count_what_the_runs_report(Backend::Postgres);
}

/// A free loopback port (bound and let go).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A server without a worker of its own and with a metrics token shows the queued runs; a
/// worker with `--metrics-listen` drains them and counts them on its own `/metrics`, behind
/// its token too.
fn queue_and_worker_metrics(backend: Backend) {
    let Some(s) = Server::start_with(
        backend,
        &["--worker-slots", "0", "--metrics-token", "scrape-me"],
    ) else {
        return;
    };
    let quick = "name: quick\nsteps:\n  - id: gen\n    plugin: generator@latest\n    config: { count: 2 }\n  \
                 - id: sink\n    plugin: log-sink@latest\n    input: gen\n";
    apply(&s, "quick", quick);
    let ids: Vec<String> = (0..3).map(|_| s.trigger("quick")).collect();
    let url = format!("{}/metrics", s.url);
    assert_eq!(get(&url, None).0, 401);
    assert_eq!(get(&url, Some("wrong")).0, 401);
    assert_eq!(
        get(&url, Some(&s.admin)).0,
        401,
        "an API token is not the metrics token"
    );
    let (m, text) = scrape(&url, Some("scrape-me"));
    assert_eq!(sum(&m, "autoflow_queue_depth", &[]), 3.0, "{text}");
    assert!(sum(&m, "autoflow_queue_oldest_age_seconds", &[]) >= 0.0);
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let _worker = s.worker(&["--metrics-listen", &listen, "--metrics-token", "w-token"]);
    for id in &ids {
        let run = s.wait_run(&s.admin, id);
        assert_eq!(run["status"], "succeeded", "{run}");
    }
    let wurl = format!("http://{listen}/metrics");
    assert_eq!(get(&wurl, None).0, 401);
    let p = ("pipeline", "quick");
    let finished = [p, ("status", "succeeded")];
    let (w, text) = scrape_when(
        &wurl,
        Some("w-token"),
        "autoflow_runs_finished_total",
        &finished,
        3.0,
    );
    assert_eq!(
        sum(
            &w,
            "autoflow_runs_finished_total",
            &[p, ("status", "succeeded")]
        ),
        3.0,
        "{text}"
    );
    assert_eq!(sum(&w, "autoflow_runs_started_total", &[p]), 3.0);
    // What the sinks wrote, by the runs' own reports: the generator's cursor is shared, so a
    // run that starts after another committed reads fewer records (none at all once it is at
    // its count); how many depends on how the runs overlapped.
    let written: u64 = ids
        .iter()
        .map(|id| {
            let run = s.wait_run(&s.admin, id);
            run["report"]["steps"]
                .as_array()
                .unwrap()
                .iter()
                .find(|st| st["id"] == "sink")
                .unwrap()["records_out"]
                .as_u64()
                .unwrap()
        })
        .sum();
    assert!(written >= 2, "the first run to commit wrote both records");
    assert_eq!(
        sum(
            &w,
            "autoflow_step_records_out_total",
            &[p, ("step", "sink")]
        ),
        written as f64,
        "{text}"
    );
    assert_eq!(
        sum(&w, "autoflow_claim_wait_seconds_count", &[]),
        3.0,
        "{text}"
    );
    assert!(sum(&w, "autoflow_claim_duration_seconds_count", &[]) >= 1.0);
    assert_eq!(sum(&w, "autoflow_queue_depth", &[]), 0.0);
    assert_eq!(sum(&w, "autoflow_lease_takeovers_total", &[]), 0.0);
    assert_eq!(
        sum(&w, "autoflow_engine_instance_slots", &[]),
        256.0,
        "{text}"
    );
    // The server ran none of them.
    let (m, _) = scrape(&url, Some("scrape-me"));
    assert_eq!(sum(&m, "autoflow_runs_finished_total", &[p]), 0.0);
    assert_eq!(sum(&m, "autoflow_queue_depth", &[]), 0.0);
}

#[test]
fn queue_and_worker_metrics_on_sqlite() {
    queue_and_worker_metrics(Backend::Sqlite);
}

#[test]
fn queue_and_worker_metrics_on_postgres() {
    queue_and_worker_metrics(Backend::Postgres);
}

/// generator (`count` records, one a batch) -> slow (`ms` each) -> log-sink.
fn slow_pipeline(count: u32, ms: u32) -> String {
    format!(
        "name: slowly\nsteps:\n  - id: gen\n    plugin: generator@latest\n    batch_size: 1\n    config: {{ count: {count} }}\n  \
         - id: slow\n    plugin: slow@latest\n    input: gen\n    config: {{ ms: {ms} }}\n  \
         - id: sink\n    plugin: log-sink@latest\n    input: slow\n"
    )
}

/// The `progress` events of run `id`'s log stream, read until its `end`.
fn progress_events(url: String, token: String, id: String) -> Vec<Value> {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    let resp = client
        .get(format!("{url}/v1/runs/{id}/logs?follow=true"))
        .bearer_auth(token)
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let mut events = Vec::new();
    let mut kind = String::new();
    for line in BufReader::new(resp).lines() {
        let line = line.unwrap();
        if let Some(k) = line.strip_prefix("event:") {
            kind = k.trim().to_string();
        } else if let Some(data) = line.strip_prefix("data:") {
            match kind.as_str() {
                "progress" => events.push(serde_json::from_str(data.trim()).unwrap()),
                "end" => break,
                _ => {}
            }
        }
    }
    events
}

/// The slow step's `records_out` in a progress value.
fn slow_out(progress: &Value) -> u64 {
    progress["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "slow")
        .unwrap()["records_out"]
        .as_u64()
        .unwrap()
}

/// A slow run's progress is seen while it runs, at least twice and growing, through
/// `GET /v1/runs/{id}` and as `progress` events of its log stream; `runs show --follow`
/// prints its tables until it ends.
fn progress_is_seen_while_a_run_runs(s: &Server) {
    push(s, "slow", guests::SLOW);
    apply(s, "slowly", &slow_pipeline(10, 300));
    let id = s.trigger("slowly");
    let events = {
        let (url, token, id) = (s.url.clone(), s.admin.clone(), id.clone());
        std::thread::spawn(move || progress_events(url, token, id))
    };
    let cli = Command::new(autoflow_bin())
        .args([
            "runs", "show", &id, "--follow", "--url", &s.url, "--token", &s.admin,
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut seen: Vec<u64> = Vec::new();
    let mut instances = None;
    let mut run = Value::Null;
    wait_for(Duration::from_secs(120), "the slow run to end", || {
        run = s.get(&format!("/v1/runs/{id}")).json();
        if run["status"] == "running"
            && let Some(p) = run.get("progress").filter(|p| !p.is_null())
        {
            assert_eq!(p["attempt"], 1, "{p}");
            let out = slow_out(p);
            if seen.last() != Some(&out) {
                seen.push(out);
            }
            // The engine holds an instance of each step still running (the slow one at least).
            if instances.is_none() {
                let (m, _) = scrape(&format!("{}/metrics", s.url), None);
                instances = Some(sum(&m, "autoflow_engine_instances", &[]));
            }
        }
        matches!(
            run["status"].as_str(),
            Some("succeeded" | "failed" | "cancelled")
        )
    });
    assert_eq!(run["status"], "succeeded", "{run}");
    assert!(
        seen.len() >= 2,
        "progress seen {} times: {seen:?}",
        seen.len()
    );
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "not growing: {seen:?}"
    );
    assert!(*seen.last().unwrap() <= 10);
    let alive = instances.unwrap();
    assert!(
        (1.0..=3.0).contains(&alive),
        "{alive} plugin instances alive while the run ran"
    );
    let events = events.join().unwrap();
    assert!(
        events.len() >= 2,
        "{} progress events: {events:?}",
        events.len()
    );
    let counts: Vec<u64> = events.iter().map(slow_out).collect();
    assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{counts:?}");
    assert!(counts.first() < counts.last(), "{counts:?}");
    for e in &events {
        let generator = e["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == "gen")
            .unwrap();
        assert!(generator["batches"].as_u64().unwrap() >= 1, "{e}");
        assert!(e["steps"][1]["busy_ms"].as_u64().is_some(), "{e}");
    }
    let out = cli.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tables = stdout.matches(&format!("run {id}: running")).count();
    assert!(tables >= 2, "{tables} live tables:\n{stdout}");
    assert!(stdout.contains(&format!("run {id}: succeeded")), "{stdout}");
    let last = stdout
        .rsplit(&format!("run {id}: succeeded"))
        .next()
        .unwrap();
    let slow_row = last.lines().find(|l| l.starts_with("slow ")).unwrap();
    let cells: Vec<&str> = slow_row.split_whitespace().collect();
    assert_eq!(&cells[1..3], ["10", "10"], "{slow_row}");
}

autoflow_tests::on_both_databases!(progress_is_seen_while_a_run_runs);

/// On PostgreSQL, a run on a remote worker (the server runs none) shows its progress through
/// the database.
#[test]
fn progress_of_a_remote_worker_is_seen_on_postgres() {
    let Some(s) = Server::start_with(Backend::Postgres, &["--worker-slots", "0"]) else {
        return;
    };
    push(&s, "slow", guests::SLOW);
    apply(&s, "slowly", &slow_pipeline(8, 300));
    let worker = s.worker(&[]);
    let id = s.trigger("slowly");
    let mut seen: Vec<u64> = Vec::new();
    let mut instances = None;
    let mut run = Value::Null;
    wait_for(Duration::from_secs(120), "the slow run to end", || {
        run = s.get(&format!("/v1/runs/{id}")).json();
        if run["status"] == "running"
            && let Some(p) = run.get("progress").filter(|p| !p.is_null())
        {
            let out = slow_out(p);
            if seen.last() != Some(&out) {
                seen.push(out);
            }
            // The engine holds an instance of each step still running (the slow one at least).
            if instances.is_none() {
                let (m, _) = scrape(&format!("{}/metrics", s.url), None);
                instances = Some(sum(&m, "autoflow_engine_instances", &[]));
            }
        }
        matches!(
            run["status"].as_str(),
            Some("succeeded" | "failed" | "cancelled")
        )
    });
    assert_eq!(run["status"], "succeeded", "{run}");
    let attempts = s.get(&format!("/v1/runs/{id}/attempts")).json();
    assert_eq!(attempts[0]["worker"], worker.id.as_str(), "{attempts}");
    assert!(
        seen.len() >= 2,
        "progress seen {} times: {seen:?}",
        seen.len()
    );
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "not growing: {seen:?}"
    );
}

/// `--log-format json`: every line of the server's own log is a JSON object, and the lines
/// written for a run carry its run, tenant and step ids.
#[test]
fn json_logs_carry_run_step_and_tenant_ids() {
    let Some(s) = Server::start_with(Backend::Sqlite, &["--log-format", "json"]) else {
        return;
    };
    let quick = "name: quick\nsteps:\n  - id: gen\n    plugin: generator@latest\n    config: { count: 2 }\n  \
                 - id: sink\n    plugin: log-sink@latest\n    input: gen\n";
    apply(&s, "quick", quick);
    let run = s.run_and_wait(&s.admin, "quick", None);
    assert_eq!(run["status"], "succeeded");
    let id = run["id"].as_str().unwrap();
    let log = s.data.path().join("server.log");
    let mut lines: Vec<Value> = Vec::new();
    wait_for(Duration::from_secs(30), "the run's end in the log", || {
        let text = std::fs::read_to_string(&log).unwrap();
        lines = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect();
        lines
            .iter()
            .any(|l| l["fields"]["message"] == "run attempt ended" && l["span"]["run"] == id)
    });
    let ended = lines
        .iter()
        .find(|l| l["fields"]["message"] == "run attempt ended" && l["span"]["run"] == id)
        .unwrap();
    assert_eq!(ended["fields"]["status"], "succeeded", "{ended}");
    assert!(
        ended["span"]["tenant"]
            .as_str()
            .is_some_and(|t| !t.is_empty()),
        "{ended}"
    );
    assert_eq!(ended["span"]["pipeline"], "quick");
    let step = lines
        .iter()
        .find(|l| l["fields"]["message"] == "step ended" && l["span"]["step"] == "sink")
        .unwrap_or_else(|| panic!("no step line: {lines:?}"));
    let spans = step["spans"].as_array().unwrap();
    assert_eq!(spans[0]["run"], id, "{step}");
    assert_eq!(spans[0]["name"], "run");
    assert_eq!(step["fields"]["outcome"], "succeeded");
}
