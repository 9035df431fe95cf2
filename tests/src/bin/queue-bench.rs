//! `queue-bench`: how fast the durable queue drains, against real server and worker processes.
//!
//! - 10,000 no-op runs (one generated record into a log sink) queued up front, then drained by
//!   `autoflow worker` processes: on SQLite with one worker, on PostgreSQL with one and with
//!   three; beside them, in the same run, a minimal `FOR UPDATE SKIP LOCKED` loop on
//!   PostgreSQL (three connections claiming and completing rows of a bare table), the floor
//!   of what the database allows;
//! - the end-to-end time of a 40-step chain (generator -> 38 json-map -> log-sink): from the
//!   trigger's answer to the run's end as a client sees it, and the run's own time.
//!
//! With `telemetry` as the third argument (`-- RUNS SLOTS telemetry [ROUNDS]`), only the cost of
//! metrics and live progress: the drain with workers that record neither and with workers
//! that record both, taking turns (see [`telemetry_cost`]).
//!
//! `cargo run -p autoflow-tests --bin queue-bench --release -- [RUNS] [SLOTS]` with
//! `AUTOFLOW_BIN=target/release/autoflow` (build it first: `cargo build --release -p autoflow`).
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]
use std::time::{Duration, Instant};

use autoflow::store::Store;
use autoflow::store::queue::{NewRun, RunSpec};
use autoflow_tests::server::{Backend, Server};

const NOOP: &str = "name: noop\nsteps:\n  - id: gen\n    plugin: generator@latest\n    config: { count: 1 }\n  - id: out\n    plugin: log-sink@latest\n    input: gen\n";

fn count(rt: &tokio::runtime::Runtime, store: &Store, sql: &str) -> i64 {
    rt.block_on(sqlx::query_scalar::<_, i64>(sql).fetch_one(&store.pool))
        .unwrap()
}

/// What a drain measured.
#[derive(Debug, Clone, Copy)]
struct Drained {
    /// Runs a second, wall clock.
    per_sec: f64,
    /// The workers' CPU time over the drain (from their start), seconds.
    cpu: f64,
    /// Runs drained.
    runs: i64,
}

/// Queues `runs` no-op runs, starts `workers` workers, and times the drain; runs/s.
fn drain(
    rt: &tokio::runtime::Runtime,
    backend: Backend,
    runs: i64,
    workers: usize,
    slots: usize,
) -> Option<f64> {
    drain_with(rt, backend, runs, workers, slots, &[], "").map(|d| d.per_sec)
}

/// [`drain`] with `flags` for each worker, `what` naming them in its line.
fn drain_with(
    rt: &tokio::runtime::Runtime,
    backend: Backend,
    runs: i64,
    workers: usize,
    slots: usize,
    flags: &[&str],
    what: &str,
) -> Option<Drained> {
    let s = Server::start_with(backend, &["--worker-slots", "0"])?;
    let r = s.apply(&s.admin, "noop", NOOP);
    assert_eq!(r.status, 201, "{}", r.text());
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
        for _ in 0..runs {
            let run = NewRun {
                tenant: &tenant,
                pipeline: "noop",
                version: 1,
                created_by: "bench",
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
    let slots = slots.to_string();
    let started = Instant::now();
    let mut args = vec!["--slots", slots.as_str()];
    args.extend_from_slice(flags);
    let pool: Vec<_> = (0..workers).map(|_| s.worker(&args)).collect();
    let ready = started.elapsed();
    let t = Instant::now();
    while count(
        rt,
        &store,
        "SELECT COUNT(*) FROM runs WHERE status IN ('succeeded', 'failed', 'cancelled')",
    ) < runs
    {
        std::thread::sleep(Duration::from_millis(20));
        assert!(
            t.elapsed() < Duration::from_secs(1800),
            "the drain did not end"
        );
    }
    let took = t.elapsed();
    let failed = count(
        rt,
        &store,
        "SELECT COUNT(*) FROM runs WHERE status <> 'succeeded'",
    );
    let twice = count(
        rt,
        &store,
        "SELECT COUNT(*) - COUNT(DISTINCT run_id) FROM run_attempts",
    );
    let cpu: f64 = pool.iter().map(|w| w.cpu_seconds()).sum();
    drop(pool);
    let per_sec = runs as f64 / took.as_secs_f64();
    println!(
        "{:<10} {} worker(s) x {slots} slots{what}: {runs} runs in {:.2} s = {per_sec:.0} runs/s, {:.0} runs per worker CPU-second (workers up in {:.2} s; {failed} not succeeded, {twice} claimed twice)",
        format!("{backend:?}"),
        workers,
        took.as_secs_f64(),
        runs as f64 / cpu.max(1e-9),
        ready.as_secs_f64()
    );
    Some(Drained { per_sec, cpu, runs })
}

/// The cost of metrics and live progress on the drain: the same drain with workers that
/// record neither (`--progress-interval-ms 0`, no `--metrics-listen`) and with workers that
/// record both (`--metrics-listen`, progress every 100 ms, the shortest interval), taking
/// turns, `rounds` times each, on SQLite and on PostgreSQL (one worker).
fn telemetry_cost(rt: &tokio::runtime::Runtime, runs: i64, slots: usize, rounds: usize) {
    let off: &[&str] = &["--progress-interval-ms", "0"];
    let on: &[&str] = &[
        "--progress-interval-ms",
        "100",
        "--metrics-listen",
        "127.0.0.1:0",
    ];
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let (mut offs, mut ons) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            offs.extend(drain_with(
                rt,
                backend,
                runs,
                1,
                slots,
                off,
                " [telemetry off]",
            ));
            ons.extend(drain_with(
                rt,
                backend,
                runs,
                1,
                slots,
                on,
                " [telemetry on] ",
            ));
        }
        let total = |d: &[Drained]| {
            let runs: i64 = d.iter().map(|d| d.runs).sum();
            let wall: f64 = d.iter().map(|d| d.runs as f64 / d.per_sec).sum();
            let cpu: f64 = d.iter().map(|d| d.cpu).sum();
            (runs as f64 / wall, runs as f64 / cpu.max(1e-9))
        };
        if offs.is_empty() || ons.is_empty() {
            continue;
        }
        let ((off_wall, off_cpu), (on_wall, on_cpu)) = (total(&offs), total(&ons));
        println!(
            "{:<10} telemetry off: {off_wall:.0} runs/s, {off_cpu:.0} runs/CPU-s; on: {on_wall:.0} runs/s ({:+.1} %), {on_cpu:.0} runs/CPU-s ({:+.1} %)",
            format!("{backend:?}"),
            (on_wall / off_wall - 1.0) * 100.0,
            (on_cpu / off_cpu - 1.0) * 100.0
        );
    }
}

/// The floor: three connections claiming and completing rows of a bare table.
fn skip_locked_floor(rt: &tokio::runtime::Runtime, runs: i64) -> Option<f64> {
    let s = Server::start_with(Backend::Postgres, &["--worker-slots", "0"])?;
    let store = rt.block_on(Store::connect(&s.database)).unwrap();
    rt.block_on(async {
        sqlx::raw_sql("CREATE TABLE bench_jobs (id BIGSERIAL PRIMARY KEY, status TEXT NOT NULL, lease BIGINT)")
            .execute(&store.pool)
            .await
            .unwrap();
        for _ in 0..runs {
            sqlx::query("INSERT INTO bench_jobs (status) VALUES ('queued')").execute(&store.pool).await.unwrap();
        }
    });
    let t = Instant::now();
    rt.block_on(async {
        let tasks: Vec<_> = (0..3)
            .map(|_| {
                let pool = store.pool.clone();
                tokio::spawn(async move {
                    loop {
                        let claimed: Option<i64> = sqlx::query_scalar(
                            "UPDATE bench_jobs SET status = 'running', lease = 1 WHERE id = \
                             (SELECT id FROM bench_jobs WHERE status = 'queued' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) \
                             RETURNING id",
                        )
                        .fetch_optional(&pool)
                        .await
                        .unwrap();
                        let Some(id) = claimed else { break };
                        sqlx::query("UPDATE bench_jobs SET status = 'done' WHERE id = $1").bind(id).execute(&pool).await.unwrap();
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
    let per_sec = runs as f64 / t.elapsed().as_secs_f64();
    println!(
        "Postgres   bare SKIP LOCKED loop, 3 connections: {runs} rows in {:.2} s = {per_sec:.0} rows/s",
        t.elapsed().as_secs_f64()
    );
    Some(per_sec)
}

/// A 40-step chain: median of `n` runs, client-observed and as the run records it.
fn chain(n: usize) {
    let Some(s) = Server::start_with(Backend::Sqlite, &["--worker-slots", "2"]) else {
        return;
    };
    let mut yaml = String::from(
        "name: chain\nsteps:\n  - id: s0\n    plugin: generator@latest\n    config: { count: 1 }\n",
    );
    for i in 1..39 {
        yaml.push_str(&format!(
            "  - id: s{i}\n    plugin: json-map@latest\n    input: s{}\n",
            i - 1
        ));
    }
    yaml.push_str("  - id: s39\n    plugin: log-sink@latest\n    input: s38\n");
    let r = s.apply(&s.admin, "chain", &yaml);
    assert_eq!(r.status, 201, "{}", r.text());
    let mut seen = Vec::new();
    let mut own = Vec::new();
    for i in 0..=n {
        let t = Instant::now();
        let id = s.trigger("chain");
        let run = loop {
            let run = s.get(&format!("/v1/runs/{id}")).json();
            if matches!(run["status"].as_str(), Some("succeeded" | "failed")) {
                break run;
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        assert_eq!(run["status"], "succeeded", "{run}");
        if i > 0 {
            // (the first run warms the compiled-plugin cache)
            seen.push(t.elapsed());
            own.push(Duration::from_millis(
                (run["finished_at"].as_i64().unwrap() - run["started_at"].as_i64().unwrap()) as u64,
            ));
        }
    }
    seen.sort();
    own.sort();
    println!(
        "40-step chain (SQLite, {n} runs): trigger to end seen by a client, median {:.1} ms (min {:.1}); claimed to completed, median {} ms",
        seen[n / 2].as_secs_f64() * 1000.0,
        seen[0].as_secs_f64() * 1000.0,
        own[n / 2].as_millis()
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let runs: i64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let slots: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(4);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    if args.get(3).map(String::as_str) == Some("telemetry") {
        let rounds = args.get(4).and_then(|a| a.parse().ok()).unwrap_or(2);
        println!(
            "# queue-bench telemetry: {runs} no-op runs, metrics and progress off and on, {rounds} rounds each"
        );
        telemetry_cost(&rt, runs, slots, rounds);
        return;
    }
    println!("# queue-bench: {runs} no-op runs queued up front, then drained");
    drain(&rt, Backend::Sqlite, runs, 1, slots);
    drain(&rt, Backend::Postgres, runs, 1, slots);
    drain(&rt, Backend::Postgres, runs, 3, slots);
    skip_locked_floor(&rt, runs);
    chain(20);
}
