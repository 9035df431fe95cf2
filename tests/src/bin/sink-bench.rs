//! `sink-bench`: records per second into PostgreSQL through the `postgres-sink` plugin, against
//! a plain sqlx batched insert of the same rows in the same run, and NATS -> Postgres.
//!
//! - baseline: the generator's records made natively, their fields bound to a multi-row
//!   `INSERT` of 1,024 rows per statement, one transaction per batch (sqlx, one connection);
//! - the same rows as postgres-sink sends them: text values cast in the statement, through
//!   sqlx's `Any` driver as the host does (what the wasm boundary and plugin add is the rest);
//! - `postgres-sink`: `autoflow run` of generator -> json-map (select the same fields) ->
//!   postgres-sink, plain insert and upsert on `id`; the run's own time from its report;
//! - NATS -> Postgres: the same records published to a JetStream stream first (not timed),
//!   then `autoflow run` of nats-source -> json-map -> postgres-sink (upsert).
//!
//! `cargo run -p autoflow-tests --bin sink-bench --release -- [ROWS]` with
//! `AUTOFLOW_BIN=target/release/autoflow` (build it first: `cargo build --release -p autoflow`).
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]
use std::time::{Duration, Instant};

use autoflow_tests::Project as Scratch;
use sqlx::{Connection, PgConnection, QueryBuilder};

const BATCH: usize = 1024;
const COLUMNS: &str =
    "(id bigint PRIMARY KEY, \"user\" text, email text, status text, amount double precision)";

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

/// The generator's records 0..n, as the rows the sink writes.
fn rows(n: u64) -> Vec<(i64, String, String, String, f64)> {
    (0..n)
        .map(|id| {
            let mut text = String::new();
            generator::write_order(&mut text, 0, id);
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            let s = |k: &str| v[k].as_str().unwrap().to_string();
            (
                v["id"].as_i64().unwrap(),
                s("user"),
                s("email"),
                s("status"),
                v["amount"].as_f64().unwrap(),
            )
        })
        .collect()
}

async fn baseline(
    pg: &mut PgConnection,
    table: &str,
    rows: &[(i64, String, String, String, f64)],
    upsert: bool,
) -> Duration {
    let started = Instant::now();
    for chunk in rows.chunks(BATCH) {
        let mut tx = pg.begin().await.unwrap();
        let mut q = QueryBuilder::new(format!(
            "INSERT INTO {table} (id, \"user\", email, status, amount) "
        ));
        q.push_values(chunk, |mut b, r| {
            b.push_bind(r.0)
                .push_bind(&r.1)
                .push_bind(&r.2)
                .push_bind(&r.3)
                .push_bind(r.4);
        });
        if upsert {
            q.push(" ON CONFLICT (id) DO UPDATE SET \"user\" = EXCLUDED.\"user\", email = EXCLUDED.email, status = EXCLUDED.status, amount = EXCLUDED.amount");
        }
        q.build().execute(&mut *tx).await.unwrap();
        tx.commit().await.unwrap();
    }
    started.elapsed()
}

fn duration(ms: &serde_json::Value) -> Duration {
    Duration::from_millis(ms.as_u64().unwrap())
}

/// The same rows the way postgres-sink sends them: every value as text, cast in the statement
/// to its column's type, through sqlx's `Any` driver (what the host uses).
async fn baseline_text(
    pool: &sqlx::AnyPool,
    table: &str,
    rows: &[(i64, String, String, String, f64)],
) -> Duration {
    let started = Instant::now();
    for chunk in rows.chunks(BATCH) {
        let mut tx = pool.begin().await.unwrap();
        let types = ["bigint", "text", "text", "text", "double precision"];
        let tuples: Vec<String> = (0..chunk.len())
            .map(|r| {
                let cells: Vec<String> = types
                    .iter()
                    .enumerate()
                    .map(|(c, t)| format!("${}::{t}", r * 5 + c + 1))
                    .collect();
                format!("({})", cells.join(", "))
            })
            .collect();
        let sql = format!(
            "INSERT INTO {table} (id, \"user\", email, status, amount) VALUES {}",
            tuples.join(", ")
        );
        let mut q = sqlx::query::<sqlx::Any>(&sql);
        for r in chunk {
            q = q
                .bind(r.0.to_string())
                .bind(r.1.clone())
                .bind(r.2.clone())
                .bind(r.3.clone())
                .bind(r.4.to_string());
        }
        q.execute(&mut *tx).await.unwrap();
        tx.commit().await.unwrap();
    }
    started.elapsed()
}

/// Runs `yaml` with `autoflow run`: the run's own duration, and the time step `write` spent in
/// its calls (the sink's work with the database's, without the upstream steps').
fn run(dir: &Scratch, yaml: &str) -> (Duration, Duration) {
    dir.write("p.yaml", yaml);
    let out = dir.run("p.yaml", &["--json", "--egress-allow-private", "127.0.0.1"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let steps = report["steps"].as_array().unwrap();
    let write = steps.iter().find(|s| s["id"] == "write").unwrap();
    (
        duration(&report["duration_ms"]),
        duration(&write["busy_ms"]),
    )
}

fn min2(a: (Duration, Duration), b: (Duration, Duration)) -> (Duration, Duration) {
    (a.0.min(b.0), a.1.min(b.1))
}

fn per_sec(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .map_or(100_000, |a| a.parse().unwrap());
    let pg_url = env_or(
        "AUTOFLOW_TEST_POSTGRES_URL",
        "postgres://postgres@127.0.0.1:5432/test",
    );
    let nats_url = env_or("AUTOFLOW_TEST_NATS_URL", "nats://127.0.0.1:4222");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut pg = rt.block_on(PgConnection::connect(&pg_url)).unwrap();
    let all = rows(n);
    let dir = Scratch::new();
    let exec = |pg: &mut PgConnection, sql: &str| {
        rt.block_on(sqlx::query(sql).execute(pg))
            .map(|_| ())
            .unwrap()
    };
    let fresh = |pg: &mut PgConnection, t: &str| {
        exec(pg, &format!("DROP TABLE IF EXISTS {t}"));
        exec(pg, &format!("CREATE TABLE {t} {COLUMNS}"));
    };
    let sink_yaml = |table: &str, key: &str| {
        format!(
            "name: bench\nbatch_size: {BATCH}\nconnections:\n  pg: {{ url: \"{pg_url}\" }}\nsteps:\n  \
             - id: gen\n    plugin: generator@latest\n    config: {{ count: {n} }}\n  \
             - id: map\n    plugin: json-map@latest\n    input: gen\n    config: {{ select: [id, user, email, status, amount] }}\n  \
             - id: write\n    plugin: postgres-sink@latest\n    input: map\n    connections: [pg]\n    \
             config: {{ connection: pg, table: {table}{key} }}\n"
        )
    };
    println!("{n} rows, batches of {BATCH}, one transaction per batch; best of 3 per line\n");
    sqlx::any::install_default_drivers();
    let any = rt
        .block_on(
            sqlx::any::AnyPoolOptions::new()
                .max_connections(1)
                .connect(&pg_url),
        )
        .unwrap();
    let mut base = Duration::MAX;
    let mut base_upsert = Duration::MAX;
    let mut text = Duration::MAX;
    let (mut insert, mut upsert) = (
        (Duration::MAX, Duration::MAX),
        (Duration::MAX, Duration::MAX),
    );
    for _ in 0..3 {
        fresh(&mut pg, "bench_plain");
        base = base.min(rt.block_on(baseline(&mut pg, "bench_plain", &all, false)));
        base_upsert = base_upsert.min(rt.block_on(baseline(&mut pg, "bench_plain", &all, true))); // every row again: updates
        fresh(&mut pg, "bench_plain");
        text = text.min(rt.block_on(baseline_text(&any, "bench_plain", &all)));
        fresh(&mut pg, "bench_sink");
        insert = min2(insert, run(&dir, &sink_yaml("bench_sink", "")));
        upsert = min2(upsert, run(&dir, &sink_yaml("bench_sink", ", key: [id]"))); // every row again: updates
    }
    let ratio = |d: Duration| base.as_secs_f64() / d.as_secs_f64();
    println!(
        "| path | whole run, records/s | vs plain sqlx | sink step alone, records/s | vs plain sqlx |"
    );
    println!("|---|---|---|---|---|");
    println!(
        "| plain sqlx batched INSERT (native) | {:.0} | 1.00 | | |",
        per_sec(n, base)
    );
    println!(
        "| the same, values as text cast in SQL, sqlx Any (as the host sends them) | {:.0} | {:.2} | | |",
        per_sec(n, text),
        ratio(text)
    );
    println!(
        "| plain sqlx batched upsert on id, rows exist (native) | {:.0} | {:.2} | | |",
        per_sec(n, base_upsert),
        ratio(base_upsert)
    );
    for (name, (run, sink)) in [
        ("generator -> json-map -> postgres-sink, INSERT", insert),
        ("the same, upsert on id (rows exist)", upsert),
    ] {
        println!(
            "| {name} | {:.0} | {:.2} | {:.0} | {:.2} |",
            per_sec(n, run),
            ratio(run),
            per_sec(n, sink),
            ratio(sink)
        );
    }

    // NATS -> Postgres.
    let stream = "BENCH_ORDERS";
    rt.block_on(async {
        let js = async_nats::jetstream::new(async_nats::connect(&nats_url).await.unwrap());
        let _ = js.delete_stream(stream).await;
        js.create_stream(async_nats::jetstream::stream::Config {
            name: stream.into(),
            subjects: vec!["bench.orders".into()],
            ..Default::default()
        })
        .await
        .unwrap();
        let mut pending = Vec::new();
        for id in 0..n {
            let mut text = String::new();
            generator::write_order(&mut text, 0, id);
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("autoflow-key", id.to_string().as_str());
            pending.push(
                js.publish_with_headers("bench.orders", headers, text.into())
                    .await
                    .unwrap(),
            );
            if pending.len() >= 4096 {
                for p in pending.drain(..) {
                    p.await.unwrap();
                }
            }
        }
        for p in pending {
            p.await.unwrap();
        }
    });
    fresh(&mut pg, "bench_nats");
    let yaml = format!(
        "name: bench-nats\nbatch_size: {BATCH}\nconnections:\n  pg: {{ url: \"{pg_url}\" }}\n  bus: {{ url: \"{nats_url}\" }}\nsteps:\n  \
         - id: read\n    plugin: nats-source@latest\n    connections: [bus]\n    config: {{ connection: bus, stream: {stream}, consumer: bench, max_messages: {n}, wait_ms: 200 }}\n  \
         - id: map\n    plugin: json-map@latest\n    input: read\n    config: {{ select: [id, user, email, status, amount] }}\n  \
         - id: write\n    plugin: postgres-sink@latest\n    input: map\n    connections: [pg]\n    config: {{ connection: pg, table: bench_nats, key: [id] }}\n"
    );
    let (d, sink) = run(&dir, &yaml);
    let landed: i64 = rt
        .block_on(sqlx::query_scalar("SELECT count(*) FROM bench_nats").fetch_one(&mut pg))
        .unwrap();
    assert_eq!(landed, i64::try_from(n).unwrap());
    println!(
        "| NATS JetStream -> json-map -> postgres-sink (upsert) | {:.0} | {:.2} | {:.0} | {:.2} |",
        per_sec(n, d),
        ratio(d),
        per_sec(n, sink),
        ratio(sink)
    );
    for t in ["bench_plain", "bench_sink", "bench_nats"] {
        exec(&mut pg, &format!("DROP TABLE {t}"));
    }
    rt.block_on(async {
        let js = async_nats::jetstream::new(async_nats::connect(&nats_url).await.unwrap());
        js.delete_stream(stream).await.unwrap();
    });
}
