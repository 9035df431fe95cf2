//! `api-bench`: load on a real server on loopback, on SQLite and on PostgreSQL: requests/s and
//! latency (median, p99) of triggering a run (`POST /v1/pipelines/{name}/runs`) and of reading
//! one (`GET /v1/runs/{id}`), with `CONCURRENCY` clients for `SECONDS` each.
//!
//! `cargo run -p autoflow-tests --bin api-bench --release -- [SECONDS] [CONCURRENCY]`
//! (build the `autoflow` binary first: it starts `target/debug/autoflow`, or
//! `AUTOFLOW_BIN`).
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]
use std::sync::Arc;
use std::time::{Duration, Instant};

use autoflow_tests::server::{Backend, Server};

/// The smallest pipeline a run can be: a source of no records into a sink.
const TINY: &str = "name: tiny\nsteps:\n  - id: gen\n    plugin: generator@latest\n    config: { count: 1 }\n  - id: out\n    plugin: log-sink@latest\n    input: gen\n";

struct Figures {
    requests: usize,
    errors: usize,
    per_sec: f64,
    median: Duration,
    p99: Duration,
}

async fn load(
    client: reqwest::Client,
    concurrency: usize,
    seconds: u64,
    make: Arc<dyn Fn(&reqwest::Client) -> reqwest::RequestBuilder + Send + Sync>,
) -> Figures {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let client = client.clone();
        let make = make.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0;
            while Instant::now() < deadline {
                let t = Instant::now();
                match make(&client).send().await {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        lat.push(t.elapsed());
                    }
                    _ => errors += 1,
                }
            }
            (lat, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (lat, e) = t.await.unwrap();
        all.extend(lat);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort();
    let pick = |q: f64| {
        all.get(((all.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or_default()
    };
    Figures {
        requests: all.len(),
        errors,
        per_sec: all.len() as f64 / elapsed,
        median: pick(0.5),
        p99: pick(0.99),
    }
}

fn print(db: &str, what: &str, f: &Figures) {
    println!(
        "{db:<9} {what:<28} {:>8.0} req/s  median {:>7.2} ms  p99 {:>7.2} ms  ({} requests, {} errors)",
        f.per_sec,
        f.median.as_secs_f64() * 1e3,
        f.p99.as_secs_f64() * 1e3,
        f.requests,
        f.errors
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seconds: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(10);
    let concurrency: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(16);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    for (db, backend) in [("sqlite", Backend::Sqlite), ("postgres", Backend::Postgres)] {
        let Some(s) = Server::start(backend) else {
            continue;
        };
        assert_eq!(s.apply(&s.admin, "tiny", TINY).status, 201);
        let run = s.run_and_wait(&s.admin, "tiny", None);
        let id = run["id"].as_str().unwrap().to_string();
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(concurrency)
            .build()
            .unwrap();
        let (url, token) = (s.url.clone(), s.admin.clone());
        let trigger: Arc<dyn Fn(&reqwest::Client) -> reqwest::RequestBuilder + Send + Sync> = {
            let (url, token) = (url.clone(), token.clone());
            Arc::new(move |c: &reqwest::Client| {
                c.post(format!("{url}/v1/pipelines/tiny/runs"))
                    .bearer_auth(&token)
            })
        };
        let read: Arc<dyn Fn(&reqwest::Client) -> reqwest::RequestBuilder + Send + Sync> =
            Arc::new(move |c: &reqwest::Client| {
                c.get(format!("{url}/v1/runs/{id}")).bearer_auth(&token)
            });
        let f = rt.block_on(load(client.clone(), concurrency, seconds, trigger));
        print(db, "POST /v1/pipelines/tiny/runs", &f);
        // Let the executor drain the queue, so the reads below do not compete with it.
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(300) {
            let queued = s
                .get("/v1/pipelines/tiny/runs?status=queued&limit=1")
                .json();
            if queued.as_array().is_some_and(|a| a.is_empty()) {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        println!(
            "{db:<9} executor drained the backlog in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        let f = rt.block_on(load(client, concurrency, seconds, read));
        print(db, "GET /v1/runs/{id}", &f);
    }
}
