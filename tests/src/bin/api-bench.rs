//! `api-bench`: load on a real server on loopback, on SQLite and on PostgreSQL: requests/s and
//! latency (median, p99) of triggering a run (`POST /v1/pipelines/{name}/runs`) and of reading
//! one (`GET /v1/runs/{id}`), with `CONCURRENCY` clients for `SECONDS` each.
//!
//! `cargo run -p autoflow-tests --bin api-bench --release -- [SECONDS] [CONCURRENCY]`
//! (build the `autoflow` binary first: it starts `target/debug/autoflow`, or
//! `AUTOFLOW_BIN`).
//!
//! `api-bench people [SECONDS] [CONCURRENCY]`: sign-ins (`POST /v1/login`, argon2id at the
//! server's parameters) per second and their latency, then `GET /v1/runs/{id}` with a bearer
//! token and with a session cookie side by side (in alternating rounds), each also per second
//! of the server's CPU time.
//!
//! `api-bench hooks [SECONDS] [CONCURRENCY]`: signed webhook triggers
//! (`POST /v1/hooks/{tenant}/{pipeline}`, a body of 10 JSON lines sealed with the run, a fresh
//! `Autoflow-Delivery` each) beside the API's trigger of the same pipeline without input
//! (bearer token), in alternating rounds: accepted per second and per second of the server's
//! CPU time.
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

/// The server's CPU time so far (user + system), from `/proc`.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command's closing parenthesis; utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

type MakeRequest = Arc<dyn Fn(&reqwest::Client) -> reqwest::RequestBuilder + Send + Sync>;

/// `load`, with the server's CPU seconds it cost.
fn measured(
    rt: &tokio::runtime::Runtime,
    pid: u32,
    client: &reqwest::Client,
    concurrency: usize,
    seconds: u64,
    make: MakeRequest,
) -> (Figures, f64) {
    let cpu = cpu_seconds(pid);
    let f = rt.block_on(load(client.clone(), concurrency, seconds, make));
    (f, cpu_seconds(pid) - cpu)
}

fn print_cpu(db: &str, what: &str, f: &Figures, cpu: f64) {
    print(db, what, f);
    println!(
        "{db:<9} {what:<28} {:>8.0} req per server CPU-second ({cpu:.2} CPU-s)",
        f.requests as f64 / cpu.max(1e-9)
    );
}

fn people(seconds: u64, concurrency: usize) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let password = "a long benchmark password";
    for (db, backend) in [("sqlite", Backend::Sqlite), ("postgres", Backend::Postgres)] {
        let Some(s) = Server::start(backend) else {
            continue;
        };
        let pid = s.pid().unwrap();
        let mut add = std::process::Command::new(autoflow_tests::autoflow_bin())
            .args([
                "user",
                "add",
                "bench",
                "--role",
                "admin",
                "--password-stdin",
            ])
            .args(["--database", &s.database])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(
            &mut add.stdin.take().unwrap(),
            format!("{password}\n").as_bytes(),
        )
        .unwrap();
        assert!(add.wait().unwrap().success());
        assert_eq!(s.apply(&s.admin, "tiny", TINY).status, 201);
        let run = s.run_and_wait(&s.admin, "tiny", None);
        let id = run["id"].as_str().unwrap().to_string();
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(concurrency)
            .build()
            .unwrap();
        let url = s.url.clone();
        let body = serde_json::json!({ "name": "bench", "password": password }).to_string();
        let login: MakeRequest = {
            let url = url.clone();
            Arc::new(move |c: &reqwest::Client| {
                c.post(format!("{url}/v1/login"))
                    .header("content-type", "application/json")
                    .body(body.clone())
            })
        };
        for c in [1, concurrency] {
            let (f, cpu) = measured(&rt, pid, &client, c, seconds, login.clone());
            print_cpu(db, &format!("POST /v1/login (x{c})"), &f, cpu);
        }
        let signed_in = rt.block_on(login(&client).send()).unwrap();
        let cookie = signed_in
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with("autoflow_session="))
            .and_then(|c| c.split(';').next())
            .unwrap()
            .to_string();
        let bearer: MakeRequest = {
            let (url, id, token) = (url.clone(), id.clone(), s.admin.clone());
            Arc::new(move |c: &reqwest::Client| {
                c.get(format!("{url}/v1/runs/{id}")).bearer_auth(&token)
            })
        };
        let session: MakeRequest = Arc::new(move |c: &reqwest::Client| {
            c.get(format!("{url}/v1/runs/{id}"))
                .header("cookie", &cookie)
        });
        let rounds = 3;
        let per_round = (seconds / rounds).max(1);
        let mut totals = [
            (0usize, 0.0f64, 0.0f64, Vec::new()),
            (0, 0.0, 0.0, Vec::new()),
        ];
        for _ in 0..rounds {
            for (i, make) in [&bearer, &session].into_iter().enumerate() {
                let (f, cpu) = measured(&rt, pid, &client, concurrency, per_round, make.clone());
                totals[i].0 += f.requests;
                totals[i].1 += f.per_sec;
                totals[i].2 += cpu;
                totals[i].3.push(f);
            }
        }
        for (i, what) in ["GET /v1/runs/{id} bearer", "GET /v1/runs/{id} session"]
            .into_iter()
            .enumerate()
        {
            for f in &totals[i].3 {
                print(db, what, f);
            }
            println!(
                "{db:<9} {what:<28} mean {:>8.0} req/s, {:>8.0} req per server CPU-second",
                totals[i].1 / rounds as f64,
                totals[i].0 as f64 / totals[i].2.max(1e-9)
            );
        }
    }
}

/// `Autoflow-Signature` of `body` at unix time `t` under `key`.
fn signature(key: &[u8], t: i64, body: &[u8]) -> String {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("t={t},v1={hex}")
}

fn hooks(seconds: u64, concurrency: usize) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    const HOOKED: &str = "name: hooked\nsteps:\n  - id: in\n    plugin: trigger-source@latest\n  \
                          - id: out\n    plugin: log-sink@latest\n    input: in\n\
                          triggers:\n  - webhook: { secret: bench-hook }\n";
    let body: Arc<Vec<u8>> = Arc::new(
        (0..10)
            .map(|i| {
                format!(
                    "{{\"order\":{i},\"sku\":\"a-{i}\",\"qty\":{}}}\n",
                    i % 3 + 1
                )
            })
            .collect::<String>()
            .into_bytes(),
    );
    for (db, backend) in [("sqlite", Backend::Sqlite), ("postgres", Backend::Postgres)] {
        // No worker here: the runs stay queued, so only accepting them is measured.
        let Some(s) = Server::start_with(backend, &["--worker-slots", "0"]) else {
            continue;
        };
        let pid = s.pid().unwrap();
        let secret = serde_json::json!({ "value": "bench-key" }).to_string();
        let r = s.call(
            "PUT",
            "/v1/secrets/bench-hook",
            Some(&s.admin),
            Some(("application/json", secret.into_bytes())),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(s.apply(&s.admin, "hooked", HOOKED).status, 201);
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(concurrency)
            .build()
            .unwrap();
        let counter = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let hook: MakeRequest = {
            let (url, body) = (s.url.clone(), body.clone());
            Arc::new(move |c: &reqwest::Client| {
                let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let t = autoflow::store::now_ms() / 1000;
                c.post(format!("{url}/v1/hooks/default/hooked"))
                    .header("autoflow-signature", signature(b"bench-key", t, &body))
                    .header("autoflow-delivery", format!("bench-{n}"))
                    .body(body.as_ref().clone())
            })
        };
        let api: MakeRequest = {
            let (url, token) = (s.url.clone(), s.admin.clone());
            Arc::new(move |c: &reqwest::Client| {
                c.post(format!("{url}/v1/pipelines/hooked/runs"))
                    .bearer_auth(&token)
            })
        };
        let rounds = 3;
        let per_round = (seconds / rounds).max(1);
        let mut totals = [(0usize, 0.0f64, 0.0f64), (0, 0.0, 0.0)];
        for _ in 0..rounds {
            for (i, make) in [&hook, &api].into_iter().enumerate() {
                let (f, cpu) = measured(&rt, pid, &client, concurrency, per_round, make.clone());
                print(db, ["hook, 10 records", "API trigger, no input"][i], &f);
                totals[i].0 += f.requests;
                totals[i].1 += f.per_sec;
                totals[i].2 += cpu;
            }
        }
        for (i, what) in ["hook, 10 records", "API trigger, no input"]
            .into_iter()
            .enumerate()
        {
            println!(
                "{db:<9} {what:<28} mean {:>8.0} accepted/s, {:>8.0} per server CPU-second",
                totals[i].1 / rounds as f64,
                totals[i].0 as f64 / totals[i].2.max(1e-9)
            );
        }
        println!(
            "{db:<9} hook / API trigger: {:.2} per wall second, {:.2} per server CPU-second",
            totals[0].1 / totals[1].1.max(1e-9),
            (totals[0].0 as f64 / totals[0].2.max(1e-9))
                / (totals[1].0 as f64 / totals[1].2.max(1e-9))
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("hooks") {
        let seconds = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(9);
        let concurrency = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(8);
        return hooks(seconds, concurrency);
    }
    if args.get(1).map(String::as_str) == Some("people") {
        let seconds = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(9);
        let concurrency = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(16);
        return people(seconds, concurrency);
    }
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
