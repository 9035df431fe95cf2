//! Durable scheduling and execution against real server and worker processes: crash recovery
//! (kill -9 of the server, of a worker, and of a claimer before its first heartbeat), fencing
//! of stale attempts, three workers draining 2,000 runs on PostgreSQL, cron catch-up across a
//! downtime, retries with backoff, checkpoints, cancellation, concurrency limits and labels.
// Test code: failing loudly is its job.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]
use std::collections::BTreeSet;
use std::time::Duration;

use autoflow::store::Store;
use autoflow::store::queue::{NewRun, RunSpec};
use autoflow_tests::guests;
use autoflow_tests::server::{Backend, Server, wait_for};
use serde_json::Value;

fn read(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

fn now_ms() -> i64 {
    autoflow::store::now_ms()
}

/// generator (`count` records) -> slow (`ms` per record) -> log-sink, plus `extra` YAML.
fn slow_pipeline(name: &str, count: u32, ms: u32, extra: &str) -> String {
    format!(
        "name: {name}\nsteps:\n  - id: gen\n    plugin: generator@latest\n    config: {{ count: {count} }}\n  \
         - id: slow\n    plugin: slow@latest\n    input: gen\n    config: {{ ms: {ms} }}\n  \
         - id: sink\n    plugin: log-sink@latest\n    input: slow\n{extra}"
    )
}

/// generator (one record) -> log-sink, plus `extra` YAML.
fn quick_pipeline(name: &str, extra: &str) -> String {
    format!(
        "name: {name}\nsteps:\n  - id: gen\n    plugin: generator@latest\n    config: {{ count: 1 }}\n  \
         - id: sink\n    plugin: log-sink@latest\n    input: gen\n{extra}"
    )
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
    let r = s.push(&s.admin, name, "1.0.0", read(path));
    assert!(
        r.status == 201 || r.status == 200,
        "push {name}: {}",
        r.text()
    );
}

fn status(s: &Server, id: &str) -> String {
    s.get(&format!("/v1/runs/{id}")).json()["status"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn attempts(s: &Server, id: &str) -> Vec<Value> {
    s.get(&format!("/v1/runs/{id}/attempts"))
        .json()
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Each run ended `succeeded` exactly once: one succeeded attempt, every other one lost.
fn assert_succeeded_once(s: &Server, ids: &[String]) -> usize {
    let mut lost = 0;
    for id in ids {
        let run = s.wait_run(&s.admin, id);
        assert_eq!(run["status"], "succeeded", "{run}");
        let tries = attempts(s, id);
        let statuses: Vec<&str> = tries
            .iter()
            .map(|a| a["status"].as_str().unwrap())
            .collect();
        assert_eq!(
            statuses.iter().filter(|s| **s == "succeeded").count(),
            1,
            "run {id}: {statuses:?}"
        );
        assert_eq!(
            statuses.last(),
            Some(&"succeeded"),
            "run {id}: {statuses:?}"
        );
        assert!(
            statuses.iter().all(|s| matches!(*s, "succeeded" | "lost")),
            "run {id}: {statuses:?}"
        );
        lost += statuses.iter().filter(|s| **s == "lost").count();
    }
    lost
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The server (with its own worker) is killed while it runs runs, then started again: on
/// SQLite it takes its interrupted runs over at once, on PostgreSQL when their leases lapse.
fn server_killed_mid_run(backend: Backend) {
    let Some(mut s) = Server::start_with(backend, &["--worker-slots", "2", "--lease-ms", "1500"])
    else {
        return;
    };
    push(&s, "slow", guests::SLOW);
    apply(&s, "slow", &slow_pipeline("slow", 3, 400, ""));
    let ids: Vec<String> = (0..4).map(|_| s.trigger("slow")).collect();
    wait_for(Duration::from_secs(60), "a run to start", || {
        ids.iter().any(|id| status(&s, id) == "running")
    });
    s.restart(); // SIGKILL, then start again on the same database
    let lost = assert_succeeded_once(&s, &ids);
    assert!(lost >= 1, "the killed server held at least one run");
}

#[test]
fn server_killed_mid_run_on_sqlite_every_accepted_run_ends_once() {
    server_killed_mid_run(Backend::Sqlite);
}

#[test]
fn server_killed_mid_run_on_postgres_every_accepted_run_ends_once() {
    server_killed_mid_run(Backend::Postgres);
}

#[test]
fn postgres_workers_take_over_from_a_killed_worker_and_honour_labels() {
    let Some(s) = Server::start_with(Backend::Postgres, &["--worker-slots", "0"]) else {
        return;
    };
    push(&s, "slow", guests::SLOW);
    apply(&s, "slow", &slow_pipeline("slow", 3, 400, ""));
    apply(
        &s,
        "gpu-only",
        &quick_pipeline("gpu-only", "labels: [gpu]\n"),
    );
    let a = s.worker(&["--lease-ms", "1500", "--slots", "2"]);
    let gpu_run = s.trigger("gpu-only");
    let ids: Vec<String> = (0..3).map(|_| s.trigger("slow")).collect();
    let a_id = a.id.clone();
    wait_for(Duration::from_secs(60), "worker A to hold a run", || {
        ids.iter()
            .any(|id| s.get(&format!("/v1/runs/{id}")).json()["worker"] == a_id.as_str())
    });
    let workers = s.get("/v1/workers").json();
    assert!(
        workers
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["id"] == a_id.as_str()),
        "{workers}"
    );
    a.kill();
    let b = s.worker(&["--lease-ms", "1500"]);
    let lost = assert_succeeded_once(&s, &ids);
    assert!(lost >= 1, "the killed worker held at least one run");
    for id in &ids {
        let last = attempts(&s, id).pop().unwrap();
        assert_eq!(last["worker"], b.id.as_str());
    }
    // Neither worker has the label the pipeline needs: its run waits; one that has it runs it.
    assert_eq!(status(&s, &gpu_run), "queued");
    let gpu = s.worker(&["--labels", "gpu,eu"]);
    assert_eq!(s.wait_run(&s.admin, &gpu_run)["status"], "succeeded");
    assert_eq!(attempts(&s, &gpu_run)[0]["worker"], gpu.id.as_str());
    // SIGTERM: the worker stops cleanly and says so.
    assert!(gpu.terminate().success());
    let gone = s.get("/v1/workers").json();
    let row = gone
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["labels"] == serde_json::json!(["gpu", "eu"]))
        .cloned()
        .unwrap();
    assert!(row["stopped_at"].is_number(), "{row}");
}

/// A claimer that never heartbeats (it died at once) loses the run when its lease lapses; its
/// stale attempt can then neither renew, complete nor requeue the run.
fn stale_attempts_are_fenced(backend: Backend) {
    let Some(s) = Server::start_with(backend, &["--worker-slots", "0"]) else {
        return;
    };
    apply(&s, "quick", &quick_pipeline("quick", ""));
    let rt = runtime();
    let store = rt.block_on(Store::connect(&s.database)).unwrap();
    let id = s.trigger("quick");
    let ghost = rt
        .block_on(store.claim("ghost", &[], 300, 1))
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!((ghost.id.as_str(), ghost.attempt), (id.as_str(), 1));
    let mut taken = None;
    wait_for(
        Duration::from_secs(10),
        "the lapsed lease to be taken over",
        || {
            taken = rt
                .block_on(store.claim("w2", &[], 30_000, 1))
                .unwrap()
                .pop();
            taken.is_some()
        },
    );
    assert_eq!(taken.unwrap().attempt, 2);
    assert_eq!(rt.block_on(store.heartbeat(&id, 1, 300)).unwrap(), None);
    assert!(
        !rt.block_on(store.complete(
            &id,
            1,
            autoflow::status::RunStatus::Succeeded,
            None,
            None,
            &[]
        ))
        .unwrap()
    );
    assert!(!rt.block_on(store.retry_later(&id, 1, 0, "stale")).unwrap());
    assert!(!rt.block_on(store.release(&id, 1)).unwrap());
    assert_eq!(
        rt.block_on(store.heartbeat(&id, 2, 30_000)).unwrap(),
        Some(false)
    );
    assert!(
        rt.block_on(store.complete(
            &id,
            2,
            autoflow::status::RunStatus::Succeeded,
            None,
            None,
            &[]
        ))
        .unwrap()
    );
    let tries: Vec<(String, String)> = attempts(&s, &id)
        .iter()
        .map(|a| {
            (
                a["worker"].as_str().unwrap().into(),
                a["status"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        tries,
        [
            ("ghost".to_string(), "lost".to_string()),
            ("w2".into(), "succeeded".into())
        ]
    );
    // The same with a real worker taking over a run whose claimer died before any heartbeat.
    let id2 = s.trigger("quick");
    let ghost2 = rt
        .block_on(store.claim("ghost", &[], 500, 1))
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(ghost2.id, id2);
    let w = s.worker(&["--lease-ms", "2000"]);
    assert_eq!(s.wait_run(&s.admin, &id2)["status"], "succeeded");
    let tries = attempts(&s, &id2);
    assert_eq!(
        (tries[0]["status"].as_str(), tries[1]["worker"].as_str()),
        (Some("lost"), Some(w.id.as_str()))
    );
}

#[test]
fn stale_attempts_are_fenced_on_sqlite() {
    stale_attempts_are_fenced(Backend::Sqlite);
}

#[test]
fn stale_attempts_are_fenced_on_postgres() {
    stale_attempts_are_fenced(Backend::Postgres);
}

#[test]
fn three_postgres_workers_drain_2000_runs_each_once() {
    const RUNS: i64 = 2000;
    let Some(s) = Server::start_with(Backend::Postgres, &["--worker-slots", "0"]) else {
        return;
    };
    apply(&s, "noop", &quick_pipeline("noop", ""));
    let rt = runtime();
    let store = rt.block_on(Store::connect(&s.database)).unwrap();
    let tenant = rt
        .block_on(store.tenant_by_name("default"))
        .unwrap()
        .unwrap()
        .id;
    let spec = RunSpec {
        max_attempts: 1,
        ..RunSpec::default()
    };
    rt.block_on(async {
        for _ in 0..RUNS {
            let run = NewRun {
                tenant: &tenant,
                pipeline: "noop",
                version: 1,
                created_by: "test",
                spec: &spec,
                trigger: autoflow::status::Trigger::Api,
                fire_at: None,
                replay: None,
                idempotency: None,
                input: None,
                params: None,
                traceparent: None,
            };
            store.enqueue(&run).await.unwrap();
        }
    });
    let workers: Vec<_> = (0..3).map(|_| s.worker(&["--slots", "2"])).collect();
    let count = |sql: &str| -> i64 {
        rt.block_on(async {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(&store.pool)
                .await
                .unwrap()
        })
    };
    wait_for(Duration::from_secs(600), "2000 runs to end", || {
        count("SELECT COUNT(*) FROM runs WHERE status IN ('succeeded', 'failed', 'cancelled')")
            == RUNS
    });
    assert_eq!(
        count("SELECT COUNT(*) FROM runs WHERE status = 'succeeded'"),
        RUNS
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM run_attempts"),
        RUNS,
        "no run was claimed twice"
    );
    assert_eq!(
        count("SELECT COUNT(DISTINCT run_id) FROM run_attempts WHERE status = 'succeeded'"),
        RUNS
    );
    let busy = count("SELECT COUNT(DISTINCT worker) FROM run_attempts");
    assert_eq!(busy, 3, "every worker took part");
    drop(workers);
}

/// Three pipelines on a per-second schedule, one per catch-up policy; the server is down for
/// a few seconds; after its restart, `skip` runs no missed slot, `once` one, `all` its bound.
#[test]
fn cron_catch_up_across_a_downtime_fires_each_missed_slot_once_as_the_policy_says() {
    let Some(mut s) = Server::start(Backend::Sqlite) else {
        return;
    };
    let policies = [
        ("c-skip", "skip", 0),
        ("c-once", "once", 1),
        ("c-all", "all", 3),
    ];
    for (name, catchup, _) in policies {
        let schedule = format!(
            "schedule: {{ cron: \"* * * * * *\", catchup: {catchup}, max_catchup: 3, overlap: allow }}\n"
        );
        apply(&s, name, &quick_pipeline(name, &schedule));
    }
    let fires = |s: &Server, name: &str| {
        s.get(&format!("/v1/pipelines/{name}/fires?limit=1000"))
            .json()
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    wait_for(
        Duration::from_secs(30),
        "two fires of each schedule",
        || policies.iter().all(|(n, _, _)| fires(&s, n).len() >= 2),
    );
    s.kill();
    let killed_at = now_ms();
    // The downtime under test: the server is not running for these seconds.
    std::thread::sleep(Duration::from_secs(5));
    let resumed_at = now_ms();
    s.resume();
    wait_for(Duration::from_secs(30), "a fire after the restart", || {
        policies.iter().all(|(n, _, _)| {
            fires(&s, n)
                .iter()
                .any(|f| f["fire_at"].as_i64().unwrap() > resumed_at)
        })
    });
    for (name, _, expected) in policies {
        let all = fires(&s, name);
        let slots: BTreeSet<i64> = all.iter().map(|f| f["fire_at"].as_i64().unwrap()).collect();
        assert_eq!(slots.len(), all.len(), "{name}: a slot recorded twice");
        let catch_up: Vec<&Value> = all.iter().filter(|f| f["outcome"] == "catchup").collect();
        assert_eq!(catch_up.len(), expected, "{name}: {all:?}");
        for f in &catch_up {
            let at = f["fire_at"].as_i64().unwrap();
            assert!(
                at > killed_at - 1000 && at < resumed_at,
                "{name}: catch-up slot {at} outside the downtime"
            );
        }
        for f in &all {
            let id = f["run_id"]
                .as_str()
                .unwrap_or_else(|| panic!("{name}: no run for {f}"));
            let run = s.get(&format!("/v1/runs/{id}")).json();
            assert_eq!(run["fire_at"], f["fire_at"], "{name}");
            assert_eq!(
                run["trigger"].as_str().unwrap(),
                if f["outcome"] == "catchup" {
                    "catchup"
                } else {
                    "schedule"
                }
            );
        }
    }
}

#[test]
fn retryable_failures_are_retried_with_backoff_until_they_pass_and_fatal_ones_are_not() {
    let gate = tempfile::tempdir().unwrap();
    let root = gate.path().to_str().unwrap().to_string();
    let Some(s) = Server::start_with(Backend::Sqlite, &["--mount-root", &root]) else {
        return;
    };
    push(&s, "gate", guests::GATE);
    push(&s, "panicker", guests::PANICKER);
    let retry = "retry: { max_attempts: 8, initial_backoff_ms: 200, max_backoff_ms: 200 }\n";
    let gated = format!(
        "name: gated\nsteps:\n  - id: gen\n    plugin: generator@latest\n    config: {{ count: 2 }}\n  \
         - id: gate\n    plugin: gate@latest\n    input: gen\n    config: {{ path: /gate/open }}\n    \
         retry: {{ max_attempts: 2, initial_backoff_ms: 10, max_backoff_ms: 10 }}\n    \
         mounts: [{{ host: {root}, guest: /gate }}]\n  - id: sink\n    plugin: log-sink@latest\n    input: gate\n{retry}"
    );
    apply(&s, "gated", &gated);
    let id = s.trigger("gated");
    wait_for(Duration::from_secs(60), "a retried attempt", || {
        attempts(&s, &id).iter().any(|a| a["status"] == "retrying")
    });
    std::fs::write(gate.path().join("open"), b"").unwrap();
    let run = s.wait_run(&s.admin, &id);
    assert_eq!(run["status"], "succeeded", "{run}");
    let tries = attempts(&s, &id);
    let (last, earlier) = tries.split_last().unwrap();
    assert_eq!(last["status"], "succeeded");
    for (i, a) in earlier.iter().enumerate() {
        assert_eq!(a["status"], "retrying", "{tries:?}");
        assert!(
            a["error"]
                .as_str()
                .unwrap()
                .contains("the gate /gate/open is closed"),
            "{a}"
        );
        let waited =
            tries[i + 1]["started_at"].as_i64().unwrap() - a["finished_at"].as_i64().unwrap();
        assert!(
            waited >= 100,
            "attempt {} started {waited} ms after the previous one ended",
            i + 2
        );
    }
    // The step's own retry policy (2 calls) applies within each attempt, the pipeline's across
    // attempts: one step-level retry per failed attempt.
    let logs = s.get(&format!("/v1/runs/{id}/logs?limit=10000")).json();
    let step_retries = logs
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["step"] == "gate" && l["message"].as_str().unwrap().contains("retrying in"))
        .count();
    // (The gate may open between the two calls of the last attempt: one more retry then.)
    assert!(
        step_retries == earlier.len() || step_retries == earlier.len() + 1,
        "{step_retries} for {} attempts: {logs}",
        tries.len()
    );
    // A trap is not retryable: one attempt, failed, whatever the retry budget.
    let crash = format!(
        "name: crash\nsteps:\n  - id: gen\n    plugin: generator@latest\n    config: {{ count: 1 }}\n  \
         - id: boom\n    plugin: panicker@latest\n    input: gen\n  - id: sink\n    plugin: log-sink@latest\n    input: boom\n{retry}"
    );
    apply(&s, "crash", &crash);
    let crashed = s.run_and_wait(&s.admin, "crash", None);
    assert_eq!(crashed["status"], "failed");
    assert_eq!(attempts(&s, crashed["id"].as_str().unwrap()).len(), 1);
    // `then: dead_letter`: a batch whose retries are used up becomes dead letters and the run
    // goes on; once the downstream is back, a replay delivers them.
    std::fs::remove_file(gate.path().join("open")).unwrap();
    let parked = gated.replace("name: gated", "name: parked").replace(
        "max_attempts: 2, initial_backoff_ms: 10, max_backoff_ms: 10 }",
        "max_attempts: 2, initial_backoff_ms: 10, max_backoff_ms: 10, then: dead_letter }",
    );
    apply(&s, "parked", &parked);
    let run = s.run_and_wait(&s.admin, "parked", None);
    assert_eq!(run["status"], "succeeded", "{run}");
    let letters = s
        .get(&format!(
            "/v1/runs/{}/dead-letters",
            run["id"].as_str().unwrap()
        ))
        .json();
    let letters = letters.as_array().unwrap();
    assert_eq!(letters.len(), 2, "{letters:?}");
    assert!(
        letters.iter().all(|d| d["step"] == "gate"
            && d["reason"]
                .as_str()
                .unwrap()
                .starts_with("retries used up (2 attempts)")),
        "{letters:?}"
    );
    std::fs::write(gate.path().join("open"), b"").unwrap();
    let r = s.call(
        "POST",
        "/v1/pipelines/parked/dead-letters/replay",
        Some(&s.admin),
        Some(("application/json", b"{}".to_vec())),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let replayed = s.wait_run(&s.admin, r.json()["id"].as_str().unwrap());
    assert_eq!(replayed["status"], "succeeded");
    let sink = replayed["report"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|st| st["id"] == "sink")
        .unwrap()
        .clone();
    assert_eq!(sink["records_in"], 2, "{replayed}");
}

#[test]
fn a_source_resumes_from_the_cursor_its_last_successful_run_committed() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap().to_string();
    let file = dir.path().join("orders.jsonl");
    std::fs::write(&file, "{\"id\":1}\n{\"id\":2}\n{\"id\":3}\n").unwrap();
    let Some(s) = Server::start_with(Backend::Sqlite, &["--mount-root", &root]) else {
        return;
    };
    let yaml = format!(
        "name: inc\nsteps:\n  - id: read\n    plugin: file-source@latest\n    config: {{ path: /in/orders.jsonl }}\n    \
         mounts: [{{ host: {root}, guest: /in }}]\n  - id: sink\n    plugin: log-sink@latest\n    input: read\n"
    );
    apply(&s, "inc", &yaml);
    let ids_logged = |run: &Value| -> Vec<i64> {
        let logs = s
            .get(&format!("/v1/runs/{}/logs", run["id"].as_str().unwrap()))
            .json();
        logs.as_array()
            .unwrap()
            .iter()
            .filter(|l| l["step"] == "sink")
            .filter_map(|l| serde_json::from_str::<Value>(l["message"].as_str().unwrap()).ok())
            .map(|v| v["id"].as_i64().unwrap())
            .collect()
    };
    let first = s.run_and_wait(&s.admin, "inc", None);
    assert_eq!(ids_logged(&first), [1, 2, 3], "{first}");
    let cursor = s.get("/v1/pipelines/inc/checkpoints").json()[0]["cursor"].clone();
    assert_eq!(cursor, "27", "the byte offset after three lines");
    std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"{\"id\":4}\n{\"id\":5}\n"))
        .unwrap();
    let second = s.run_and_wait(&s.admin, "inc", None);
    assert_eq!(ids_logged(&second), [4, 5], "{second}");
    let third = s.run_and_wait(&s.admin, "inc", None);
    assert_eq!(ids_logged(&third), Vec::<i64>::new());
    // Step state (state-set) is durable: a counter goes on from where the last run left it.
    push(&s, "counter", guests::COUNTER);
    let counting = "name: counting\nsteps:\n  - id: gen\n    plugin: generator@latest\n    config: { count: 3 }\n  \
                    - id: count\n    plugin: counter@latest\n    input: gen\n  - id: sink\n    plugin: log-sink@latest\n    input: count\n";
    apply(&s, "counting", counting);
    let numbers = |run: &Value| -> Vec<i64> {
        let logs = s
            .get(&format!("/v1/runs/{}/logs", run["id"].as_str().unwrap()))
            .json();
        logs.as_array()
            .unwrap()
            .iter()
            .filter(|l| l["step"] == "sink")
            .map(|l| {
                serde_json::from_str::<Value>(l["message"].as_str().unwrap()).unwrap()["n"]
                    .as_i64()
                    .unwrap()
            })
            .collect()
    };
    assert_eq!(
        numbers(&s.run_and_wait(&s.admin, "counting", None)),
        [1, 2, 3]
    );
    // The generator resumes at its offset too: raise its total to 6 for three more records.
    apply(&s, "counting", &counting.replace("count: 3", "count: 6"));
    assert_eq!(
        numbers(&s.run_and_wait(&s.admin, "counting", None)),
        [4, 5, 6]
    );
    let state = s.get("/v1/pipelines/counting/checkpoints").json();
    let count = state
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["step"] == "count")
        .unwrap()
        .clone();
    assert_eq!(count["state"]["seen"], "Ng==", "base64 of \"6\": {count}");
}

#[test]
fn runs_are_cancelled_queued_or_running() {
    let Some(s) = Server::start_with(Backend::Sqlite, &["--worker-slots", "1"]) else {
        return;
    };
    push(&s, "slow", guests::SLOW);
    apply(&s, "long", &slow_pipeline("long", 1, 20_000, ""));
    let running = s.trigger("long");
    let queued = s.trigger("long");
    wait_for(Duration::from_secs(60), "the first run to start", || {
        status(&s, &running) == "running"
    });
    let r = s.call(
        "POST",
        &format!("/v1/runs/{queued}/cancel"),
        Some(&s.admin),
        None,
    );
    assert_eq!(
        (r.status, r.json()["status"].clone()),
        (200, "cancelled".into()),
        "{}",
        r.text()
    );
    assert_eq!(status(&s, &queued), "cancelled");
    let r = s.call(
        "POST",
        &format!("/v1/runs/{running}/cancel"),
        Some(&s.admin),
        None,
    );
    assert_eq!(
        (r.status, r.json()["status"].clone()),
        (202, "cancelling".into()),
        "{}",
        r.text()
    );
    let run = s.wait_run(&s.admin, &running);
    assert_eq!(run["status"], "cancelled", "{run}");
    assert_eq!(attempts(&s, &running)[0]["status"], "cancelled");
    let again = s.call(
        "POST",
        &format!("/v1/runs/{running}/cancel"),
        Some(&s.admin),
        None,
    );
    assert_eq!(again.status, 409, "{}", again.text());
}

#[test]
fn a_pipeline_concurrency_limit_holds_across_worker_slots() {
    let Some(s) = Server::start_with(Backend::Sqlite, &["--worker-slots", "4"]) else {
        return;
    };
    push(&s, "slow", guests::SLOW);
    apply(
        &s,
        "one-at-a-time",
        &slow_pipeline("one-at-a-time", 2, 150, "concurrency: 1\n"),
    );
    let ids: Vec<String> = (0..4).map(|_| s.trigger("one-at-a-time")).collect();
    assert_no_overlap(ids.iter().map(|id| span(&s, id)).collect());
    // A tenant limit holds across pipelines.
    let limit = s.call(
        "PUT",
        "/v1/tenants/default/limits",
        Some(&s.admin),
        Some(("application/json", br#"{"max_running": 1}"#.to_vec())),
    );
    assert_eq!(limit.status, 200, "{}", limit.text());
    apply(&s, "other", &slow_pipeline("other", 2, 150, ""));
    let ids: Vec<String> = ["other", "one-at-a-time", "other", "other"]
        .iter()
        .map(|p| s.trigger(p))
        .collect();
    assert_no_overlap(ids.iter().map(|id| span(&s, id)).collect());
    let audit = s.get("/v1/audit?limit=1000").json();
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "tenant.limits" && e["detail"] == "max_running 1")
    );
}

/// A tenant's `max_running_memory_mb` holds at claim time: two runs whose steps need 192 MiB
/// each (three steps of 64 MiB) never run at once under a ceiling of 300 MiB, on four slots.
#[test]
fn a_tenant_memory_ceiling_holds_across_worker_slots() {
    memory_ceiling_holds(Backend::Sqlite);
}

/// [`a_tenant_memory_ceiling_holds_across_worker_slots`] on PostgreSQL, where claimers take
/// turns under the tenant's advisory lock.
#[test]
fn a_tenant_memory_ceiling_holds_across_worker_slots_on_postgres() {
    memory_ceiling_holds(Backend::Postgres);
}

fn memory_ceiling_holds(backend: Backend) {
    let Some(s) = Server::start_with(backend, &["--worker-slots", "4"]) else {
        return;
    };
    push(&s, "slow", guests::SLOW);
    apply(&s, "heavy", &slow_pipeline("heavy", 2, 150, ""));
    let limit = s.call(
        "PUT",
        "/v1/tenants/default/limits",
        Some(&s.admin),
        Some((
            "application/json",
            br#"{"max_running_memory_mb": 300}"#.to_vec(),
        )),
    );
    assert_eq!(limit.status, 200, "{}", limit.text());
    let ids: Vec<String> = (0..3).map(|_| s.trigger("heavy")).collect();
    assert_no_overlap(ids.iter().map(|id| span(&s, id)).collect());
}

/// When the run's only attempt ran, once it has ended successfully.
fn span(s: &Server, id: &str) -> (i64, i64) {
    assert_eq!(s.wait_run(&s.admin, id)["status"], "succeeded");
    let a = &attempts(s, id)[0];
    (
        a["started_at"].as_i64().unwrap(),
        a["finished_at"].as_i64().unwrap(),
    )
}

fn assert_no_overlap(mut spans: Vec<(i64, i64)>) {
    spans.sort();
    for w in spans.windows(2) {
        assert!(w[1].0 >= w[0].1, "two runs overlapped: {spans:?}");
    }
}

#[test]
fn overlapping_schedule_slots_are_skipped_or_queued_as_the_policy_says() {
    let Some(s) = Server::start_with(Backend::Sqlite, &["--worker-slots", "4"]) else {
        return;
    };
    push(&s, "slow", guests::SLOW);
    for (name, overlap) in [("o-skip", "skip"), ("o-queue", "queue")] {
        let schedule = format!("schedule: {{ cron: \"* * * * * *\", overlap: {overlap} }}\n");
        apply(&s, name, &slow_pipeline(name, 1, 2500, &schedule));
    }
    let fires = |name: &str| {
        s.get(&format!("/v1/pipelines/{name}/fires?limit=1000"))
            .json()
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let ended = |name: &str| {
        s.get(&format!("/v1/pipelines/{name}/runs?status=succeeded"))
            .json()
            .as_array()
            .map_or(0, Vec::len)
    };
    wait_for(
        Duration::from_secs(90),
        "two runs of each and skipped slots",
        || {
            ended("o-queue") >= 2
                && ended("o-skip") >= 2
                && fires("o-skip").iter().any(|f| f["outcome"] == "skipped")
        },
    );
    for f in fires("o-skip") {
        assert_eq!(f["outcome"] == "skipped", f["run_id"].is_null(), "{f}");
    }
    // Queued slots all get a run, and those runs take turns.
    let queued = fires("o-queue");
    assert!(
        queued
            .iter()
            .all(|f| f["outcome"] == "schedule" && f["run_id"].is_string()),
        "{queued:?}"
    );
    let finished: Vec<String> = s
        .get("/v1/pipelines/o-queue/runs?status=succeeded")
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert_no_overlap(finished.iter().map(|id| span(&s, id)).collect());
}

#[test]
fn a_stopping_worker_hands_its_runs_back_and_another_finishes_them() {
    let Some(s) = Server::start_with(Backend::Sqlite, &["--worker-slots", "0"]) else {
        return;
    };
    push(&s, "slow", guests::SLOW);
    apply(
        &s,
        "slow",
        &slow_pipeline("slow", 1, 3000, "retry: { max_attempts: 1 }\n"),
    );
    let a = s.worker(&["--drain-secs", "0"]);
    let id = s.trigger("slow");
    wait_for(Duration::from_secs(60), "worker A to run it", || {
        status(&s, &id) == "running"
    });
    assert!(a.terminate().success(), "SIGTERM is a clean stop");
    assert_eq!(status(&s, &id), "queued", "handed back, not failed");
    let b = s.worker(&[]);
    assert_eq!(s.wait_run(&s.admin, &id)["status"], "succeeded");
    let tries: Vec<(String, String)> = attempts(&s, &id)
        .iter()
        .map(|a| {
            (
                a["status"].as_str().unwrap().into(),
                a["worker"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(tries.len(), 2, "{tries:?}");
    assert_eq!(tries[0].0, "released");
    assert_eq!(
        tries[1],
        ("succeeded".to_string(), b.id.clone()),
        "a released attempt does not use up the retry budget"
    );
}

#[test]
fn dead_letters_are_stored_listed_and_replayed_through_their_step_or_another_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap().to_string();
    std::fs::write(
        dir.path().join("in.jsonl"),
        "{\"id\":1}\n[2]\n{\"id\":3}\n\"four\"\n",
    )
    .unwrap();
    let Some(s) = Server::start_with(Backend::Sqlite, &["--mount-root", &root]) else {
        return;
    };
    push(&s, "up", guests::GOOD_UPPER);
    let yaml = format!(
        "name: dl\nsteps:\n  - id: read\n    plugin: file-source@latest\n    config: {{ path: /in/in.jsonl }}\n    \
         mounts: [{{ host: {root}, guest: /in }}]\n  - id: check\n    plugin: json-map@latest\n    input: read\n  \
         - id: sink\n    plugin: log-sink@latest\n    input: check\n"
    );
    apply(&s, "dl", &yaml);
    let pinned = s.get("/v1/pipelines/dl").json()["latest"]["plugins"].clone();
    let map_digest = pinned
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["step"] == "check")
        .unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let first = s.run_and_wait(&s.admin, "dl", None);
    assert_eq!(first["status"], "succeeded", "{first}");
    let first_id = first["id"].as_str().unwrap();
    let letters = s.get(&format!("/v1/runs/{first_id}/dead-letters")).json();
    let letters = letters.as_array().unwrap();
    let values: Vec<&Value> = letters.iter().map(|d| &d["value"]).collect();
    assert_eq!(
        values,
        [&serde_json::json!([2]), &serde_json::json!("four")]
    );
    for d in letters {
        assert_eq!(
            (d["step"].as_str(), d["attempt"].as_i64()),
            (Some("check"), Some(1))
        );
        assert!(
            d["reason"]
                .as_str()
                .unwrap()
                .starts_with("value is not a JSON object"),
            "{d}"
        );
        assert_eq!(d["plugin"], map_digest.as_str());
    }
    let open = |s: &Server| {
        s.get("/v1/pipelines/dl/dead-letters?replayed=false")
            .json()
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(open(&s), 2);
    // A replay through a plugin of the wrong kind is refused, and marks nothing.
    let wrong = s.call(
        "POST",
        "/v1/pipelines/dl/dead-letters/replay",
        Some(&s.admin),
        Some((
            "application/json",
            br#"{"plugin": "log-sink@latest"}"#.to_vec(),
        )),
    );
    assert_eq!(wrong.status, 422, "{}", wrong.text());
    assert_eq!(open(&s), 2);
    // Through the pipeline as it is: the step rejects them again, as the replay run's.
    let r = s.call(
        "POST",
        "/v1/pipelines/dl/dead-letters/replay",
        Some(&s.admin),
        Some(("application/json", b"{}".to_vec())),
    );
    assert_eq!(
        (r.status, r.json()["dead_letters"].clone()),
        (202, 2.into()),
        "{}",
        r.text()
    );
    let again = s.wait_run(&s.admin, r.json()["id"].as_str().unwrap());
    assert_eq!(
        (again["status"].as_str(), again["trigger"].as_str()),
        (Some("succeeded"), Some("replay")),
        "{again}"
    );
    let steps: Vec<&str> = again["report"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        ["check", "sink"],
        "the source does not run in a replay"
    );
    let rejected_again = s
        .get(&format!(
            "/v1/runs/{}/dead-letters",
            again["id"].as_str().unwrap()
        ))
        .json();
    assert_eq!(rejected_again.as_array().unwrap().len(), 2);
    assert!(
        s.get(&format!("/v1/runs/{first_id}/dead-letters"))
            .json()
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["replay_run"] == again["id"])
    );
    // Through another plugin (a pinned version that accepts them): they reach the sink.
    let r = s.call(
        "POST",
        "/v1/pipelines/dl/dead-letters/replay",
        Some(&s.admin),
        Some((
            "application/json",
            br#"{"step": "check", "plugin": "up@1.0.0"}"#.to_vec(),
        )),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let fixed = s.wait_run(&s.admin, r.json()["id"].as_str().unwrap());
    assert_eq!(fixed["status"], "succeeded", "{fixed}");
    let logs = s
        .get(&format!("/v1/runs/{}/logs", fixed["id"].as_str().unwrap()))
        .json();
    let sunk: Vec<&str> = logs
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["step"] == "sink")
        .map(|l| l["message"].as_str().unwrap())
        .collect();
    assert_eq!(sunk, ["[2]", "\"FOUR\""]);
    assert_eq!(open(&s), 0);
    let none = s.call(
        "POST",
        "/v1/pipelines/dl/dead-letters/replay",
        Some(&s.admin),
        Some(("application/json", b"{}".to_vec())),
    );
    assert_eq!(none.status, 400, "{}", none.text());
}

/// The workers' database connections are cut (`pg_terminate_backend`, as a restart or a
/// fail-over does) while they prepare runs, and then again and again while they claim, run and
/// end a burst of runs: no run fails for it, and an attempt the store interrupted goes back to
/// the queue without counting against the run's retries.
#[test]
fn cutting_the_workers_database_connections_fails_no_run() {
    use sqlx::Connection;
    const RUNS: usize = 150;
    let Some(s) = Server::start_with(Backend::Postgres, &["--worker-slots", "0"]) else {
        return;
    };
    apply(
        &s,
        "once",
        &quick_pipeline("once", "retry: { max_attempts: 1 }\n"),
    );
    let rt = runtime();
    let store = rt.block_on(Store::connect(&s.database)).unwrap();
    let count = |sql: &str| -> i64 {
        rt.block_on(sqlx::query_scalar::<_, i64>(sql).fetch_one(&store.pool))
            .unwrap_or(0)
    };
    let ended = "SELECT COUNT(*) FROM runs WHERE status IN ('succeeded', 'failed', 'cancelled')";

    // While a worker prepares a run, its read of the checkpoints waits on a lock; then its
    // connection is cut, three times over.
    let mut locker = rt
        .block_on(sqlx::PgConnection::connect(&s.database))
        .unwrap();
    rt.block_on(
        sqlx::raw_sql("BEGIN; LOCK TABLE checkpoints IN ACCESS EXCLUSIVE MODE")
            .execute(&mut locker),
    )
    .unwrap();
    let mut ids: Vec<String> = (0..3).map(|_| s.trigger("once")).collect();
    let workers: Vec<_> = (0..2).map(|_| s.worker(&["--slots", "4"])).collect();
    let waiting = "SELECT pid FROM pg_stat_activity WHERE datname = current_database() \
                   AND wait_event_type = 'Lock' AND query LIKE '%checkpoints%'";
    let waiters = || -> Vec<i32> {
        rt.block_on(sqlx::query_scalar::<_, i32>(waiting).fetch_all(&store.pool))
            .unwrap_or_default()
    };
    // The backends cut so far: the workers come back at once with new ones, so each round
    // waits for a waiter that is not one of these, and for the ones it cut to be gone.
    let mut cut_pids: Vec<i32> = Vec::new();
    for round in 0..3 {
        let mut fresh: Vec<i32> = Vec::new();
        wait_for(
            Duration::from_secs(60),
            &format!(
                "a worker to wait on the checkpoints (round {round}): an interrupted run goes back to the queue"
            ),
            || {
                fresh = waiters()
                    .into_iter()
                    .filter(|p| !cut_pids.contains(p))
                    .collect();
                !fresh.is_empty()
            },
        );
        let terminated: i64 = fresh
            .iter()
            .map(|pid| {
                count(&format!(
                    "SELECT COUNT(*) FROM (SELECT pg_terminate_backend({pid}) AS ok) AS t WHERE ok"
                ))
            })
            .sum();
        assert!(terminated > 0, "no backend of {fresh:?} was cut");
        cut_pids.extend(&fresh);
        let list = fresh
            .iter()
            .map(i32::to_string)
            .collect::<Vec<_>>()
            .join(",");
        wait_for(
            Duration::from_secs(30),
            "the cut backends to be gone",
            || {
                count(&format!(
                    "SELECT COUNT(*) FROM pg_stat_activity WHERE pid IN ({list})"
                )) == 0
            },
        );
    }
    rt.block_on(sqlx::raw_sql("ROLLBACK").execute(&mut locker))
        .unwrap();

    // A burst of runs, with every backend of the database cut every 20 ms until they end. The
    // burst waits on the checkpoints until the first cut (else a fast machine could end it
    // before the cutting starts).
    let mut locker = rt
        .block_on(sqlx::PgConnection::connect(&s.database))
        .unwrap();
    let locker_pid: i32 = rt
        .block_on(sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(&mut locker))
        .unwrap();
    rt.block_on(
        sqlx::raw_sql("BEGIN; LOCK TABLE checkpoints IN ACCESS EXCLUSIVE MODE")
            .execute(&mut locker),
    )
    .unwrap();
    ids.extend((0..RUNS).map(|_| s.trigger("once")));
    let mut locker = Some(locker);
    let mut cut = 0i64;
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    while count(ended) < ids.len() as i64 {
        assert!(
            std::time::Instant::now() < deadline,
            "the runs did not end within 300 s"
        );
        cut += count(&format!(
            "SELECT COUNT(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid() \
             AND pid <> {locker_pid}) AS t"
        ));
        if let Some(mut l) = locker.take() {
            rt.block_on(sqlx::raw_sql("ROLLBACK").execute(&mut l))
                .unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(cut > 0, "no connection was cut");
    let mut interrupted = 0;
    for id in &ids {
        let run = s.wait_run(&s.admin, id);
        let tries = attempts(&s, id);
        assert_eq!(
            run["status"], "succeeded",
            "run {id}: {run}; attempts {tries:?}"
        );
        for a in &tries {
            assert!(
                matches!(
                    a["status"].as_str(),
                    Some("succeeded" | "interrupted" | "lost")
                ),
                "run {id}: {tries:?}"
            );
        }
        interrupted += tries
            .iter()
            .filter(|a| a["status"] == "interrupted")
            .count();
    }
    assert!(
        interrupted >= 3,
        "each cut while preparing interrupted an attempt ({interrupted} seen)"
    );
    drop(workers);
}
