//! The integration plugins against the machine's real services, through a real server: NATS
//! JetStream -> transform -> Postgres exactly once across a server killed mid-run; sql-source
//! resuming from its cursor on Postgres, MariaDB and SQLite; redis-sink onto a stream; a
//! connection whose password is a secret; ungranted connections refused; connection URLs that
//! would lead a driver past the host they name refused, and NATS kept to the servers checked.
//!
//! Services come from `AUTOFLOW_TEST_{POSTGRES,MYSQL,NATS,REDIS}_URL` (defaults: the machine's
//! loopback services). When one is down the test says so and passes, unless
//! `AUTOFLOW_REQUIRE_SERVICES=1` (CI), where it fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull, stream};
use autoflow_tests::guests;
use autoflow_tests::server::{Backend, Server, wait_for};
use autoflow_tests::tripwire::Tripwire;
use redis::Value as Value2;
use serde_json::Value;
use sqlx::Connection;

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

pub(super) fn pg_url() -> String {
    env_or(
        "AUTOFLOW_TEST_POSTGRES_URL",
        "postgres://postgres@127.0.0.1:5432/test",
    )
}
pub(super) fn mysql_url() -> String {
    env_or(
        "AUTOFLOW_TEST_MYSQL_URL",
        "mysql://root@127.0.0.1:3306/test",
    )
}
pub(super) fn nats_url() -> String {
    env_or("AUTOFLOW_TEST_NATS_URL", "nats://127.0.0.1:4222")
}
pub(super) fn redis_url() -> String {
    env_or("AUTOFLOW_TEST_REDIS_URL", "redis://127.0.0.1:6379")
}

/// `Some(v)` when the service answered; `None` (test skipped) or a panic under
/// `AUTOFLOW_REQUIRE_SERVICES=1` when it did not.
pub(super) fn service<T, E: std::fmt::Display>(name: &str, r: Result<T, E>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) if std::env::var("AUTOFLOW_REQUIRE_SERVICES").as_deref() == Ok("1") => {
            panic!("{name} is required (AUTOFLOW_REQUIRE_SERVICES=1) but unreachable: {e}")
        }
        Err(e) => {
            eprintln!("skipped: {name} is unreachable: {e}");
            None
        }
    }
}

/// The services run on loopback here: the operator lets connections reach it (as outbound HTTP).
pub(super) const LOOPBACK: &str = "127.0.0.1";

pub(super) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A name no other test run uses.
pub(super) fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}_{}_{nanos}", std::process::id())
}

pub(super) fn ok(r: &autoflow_tests::server::Resp, what: &str) {
    assert!(
        (200..300).contains(&r.status),
        "{what}: {} {}",
        r.status,
        r.text()
    );
}

pub(super) fn run_ok(s: &Server, pipeline: &str) -> Value {
    let run = s.run_and_wait(&s.admin, pipeline, None);
    assert_eq!(run["status"], "succeeded", "{run}");
    run
}

fn step_records_out(run: &Value, step: &str) -> u64 {
    let steps = run["report"]["steps"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let s = steps
        .iter()
        .find(|s| s["id"] == step)
        .unwrap_or_else(|| panic!("no step {step} in {run}"));
    s["records_out"].as_u64().unwrap()
}

async fn pg_count(pg: &mut sqlx::PgConnection, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(pg)
        .await
        .unwrap()
}

#[test]
fn nats_to_postgres_lands_every_message_exactly_once_across_a_killed_run() {
    const N: i64 = 2000;
    let rt = runtime();
    let Some(client) = service("NATS", rt.block_on(async_nats::connect(nats_url()))) else {
        return;
    };
    let Some(mut pg) = service(
        "PostgreSQL",
        rt.block_on(sqlx::PgConnection::connect(&pg_url())),
    ) else {
        return;
    };
    let name = unique("af_orders");
    let (stream_name, subject) = (name.to_uppercase(), format!("{name}.orders"));
    let js = jetstream::new(client);
    let consumer = rt.block_on(async {
        let stream = js
            .create_stream(stream::Config {
                name: stream_name.clone(),
                subjects: vec![subject.clone()],
                ..Default::default()
            })
            .await
            .unwrap();
        // Acks wait 10 s: longer than a run, so only a killed run's messages come back.
        let config = pull::Config {
            durable_name: Some("loader".into()),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            ack_wait: Duration::from_secs(10),
            ..Default::default()
        };
        let consumer = stream.create_consumer(config).await.unwrap();
        let mut acks = Vec::new();
        for i in 0..N {
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("autoflow-key", i.to_string().as_str());
            let body = serde_json::json!({ "id": i, "name": format!("order {i}") }).to_string();
            acks.push(
                js.publish_with_headers(subject.clone(), headers, body.into())
                    .await
                    .unwrap(),
            );
        }
        for a in acks {
            a.await.unwrap();
        }
        sqlx::query(&format!(
            "CREATE TABLE {name} (id bigint PRIMARY KEY, name text NOT NULL, doc jsonb)"
        ))
        .execute(&mut pg)
        .await
        .unwrap();
        consumer
    });

    let Some(mut s) = Server::start_with(
        Backend::Sqlite,
        &["--lease-ms", "1500", "--egress-allow-private", LOOPBACK],
    ) else {
        return;
    };
    ok(
        &s.push(
            &s.admin,
            "slow",
            "1.0.0",
            std::fs::read(guests::SLOW).unwrap(),
        ),
        "push slow",
    );
    let yaml = format!(
        "name: orders\nbatch_size: 50\nconnections:\n  bus: {{ url: \"{nats}\" }}\n  warehouse: {{ url: \"{pg}\" }}\n\
         steps:\n  - id: read\n    plugin: nats-source@latest\n    connections: [bus]\n    \
         config: {{ connection: bus, stream: {stream_name}, consumer: loader, wait_ms: 300 }}\n  \
         - id: slow\n    plugin: slow@latest\n    input: read\n    config: {{ ms: 2 }}\n  \
         - id: write\n    plugin: postgres-sink@latest\n    input: slow\n    connections: [warehouse]\n    \
         config: {{ connection: warehouse, table: {name}, key: [id] }}\n",
        nats = nats_url(),
        pg = pg_url(),
    );
    ok(&s.apply(&s.admin, "orders", &yaml), "apply");
    let first = s.trigger("orders");
    wait_for(Duration::from_secs(60), "rows to reach Postgres", || {
        rt.block_on(pg_count(&mut pg, &name)) >= 200
    });
    // Rows are in Postgres, but the run has not committed: no message is acknowledged yet.
    let info = rt.block_on(consumer.clone().info()).unwrap().clone();
    assert_eq!(
        info.ack_floor.stream_sequence, 0,
        "acks wait for the run's commit: {info:?}"
    );
    assert!(
        rt.block_on(pg_count(&mut pg, &name)) < N,
        "the run ended before it could be killed"
    );
    s.restart(); // SIGKILL mid-run, then start again: the run is taken over

    let run = s.wait_run(&s.admin, &first);
    assert_eq!(run["status"], "succeeded", "{run}");
    // The killed attempt's messages come back once their ack wait lapses; later runs take them.
    wait_for(
        Duration::from_secs(90),
        "every message to be acknowledged",
        || {
            let info = rt.block_on(consumer.clone().info()).unwrap().clone();
            if info.num_pending == 0
                && info.num_ack_pending == 0
                && info.ack_floor.stream_sequence == N as u64
            {
                return true;
            }
            run_ok(&s, "orders");
            false
        },
    );
    assert_orders_once(&rt, &mut pg, &name, N);
    rt.block_on(async {
        sqlx::query(&format!("DROP TABLE {name}"))
            .execute(&mut pg)
            .await
            .unwrap();
        js.delete_stream(&stream_name).await.unwrap();
    });
}

/// Asserts that `table` holds orders `0..n` once each (`id`, and `name` = `order {id}`).
pub(super) fn assert_orders_once(
    rt: &tokio::runtime::Runtime,
    pg: &mut sqlx::PgConnection,
    table: &str,
    n: i64,
) {
    let (count, sum): (i64, i64) = rt
        .block_on(
            sqlx::query_as(&format!("SELECT count(*), sum(id)::bigint FROM {table}"))
                .fetch_one(&mut *pg),
        )
        .unwrap();
    assert_eq!(
        (count, sum),
        (n, n * (n - 1) / 2),
        "every message exactly once"
    );
    let odd: i64 = rt
        .block_on(
            sqlx::query_scalar(&format!(
                "SELECT count(*) FROM {table} WHERE name <> 'order ' || id"
            ))
            .fetch_one(&mut *pg),
        )
        .unwrap();
    assert_eq!(odd, 0);
}

/// PostgreSQL and MariaDB connections, a folder the server may mount, and a server on SQLite
/// that may reach loopback: what the SQL plugins' tests need; `None` (skipped) when a service
/// is down, as [`service`] says.
pub(super) struct SqlServices {
    pub pg: sqlx::PgConnection,
    pub my: sqlx::MySqlConnection,
    pub files: tempfile::TempDir,
    pub server: Server,
}

pub(super) fn sql_services(rt: &tokio::runtime::Runtime) -> Option<SqlServices> {
    let pg = service(
        "PostgreSQL",
        rt.block_on(sqlx::PgConnection::connect(&pg_url())),
    )?;
    let my = service(
        "MariaDB",
        rt.block_on(sqlx::MySqlConnection::connect(&mysql_url())),
    )?;
    let files = tempfile::tempdir().unwrap();
    let root = files.path().to_str().unwrap().to_string();
    let server = Server::start_with(
        Backend::Sqlite,
        &["--mount-root", &root, "--egress-allow-private", LOOPBACK],
    )?;
    Some(SqlServices {
        pg,
        my,
        files,
        server,
    })
}

/// Source rows 1..=30, then 31..=45 after the first run: the second run reads only the new
/// ones, from the cursor the first committed; both land in Postgres through postgres-sink.
fn sql_source_resumes(s: &Server, label: &str, url: &str, exec: &dyn Fn(&str)) {
    let rt = runtime();
    let mut pg = rt.block_on(sqlx::PgConnection::connect(&pg_url())).unwrap();
    let (src, dest) = (
        unique(&format!("af_src_{label}")),
        unique(&format!("af_dest_{label}")),
    );
    exec(&format!(
        "CREATE TABLE {src} (id integer PRIMARY KEY, name varchar(40) NOT NULL)"
    ));
    let insert = |from: i32, to: i32| {
        let values: Vec<String> = (from..=to).map(|i| format!("({i}, 'row {i}')")).collect();
        exec(&format!(
            "INSERT INTO {src} (id, name) VALUES {}",
            values.join(", ")
        ));
    };
    insert(1, 30);
    rt.block_on(
        sqlx::query(&format!(
            "CREATE TABLE {dest} (id bigint PRIMARY KEY, name text)"
        ))
        .execute(&mut pg),
    )
    .unwrap();
    let pipeline = format!("copy-{label}");
    let yaml = format!(
        "name: {pipeline}\nbatch_size: 8\nconnections:\n  db: {{ url: \"{url}\" }}\n  warehouse: {{ url: \"{pg}\" }}\n\
         steps:\n  - id: read\n    plugin: sql-source@latest\n    connections: [db]\n    \
         config: {{ connection: db, table: {src}, cursor_column: id, key_column: id }}\n  \
         - id: write\n    plugin: postgres-sink@latest\n    input: read\n    connections: [warehouse]\n    \
         config: {{ connection: warehouse, table: {dest}, key: [id] }}\n",
        pg = pg_url(),
    );
    ok(&s.apply(&s.admin, &pipeline, &yaml), "apply");
    let run = run_ok(s, &pipeline);
    assert_eq!(step_records_out(&run, "read"), 30, "{label}: {run}");
    insert(31, 45);
    let run = run_ok(s, &pipeline);
    assert_eq!(
        step_records_out(&run, "read"),
        15,
        "{label}: the second run reads only new rows: {run}"
    );
    let checkpoints = s
        .get(&format!("/v1/pipelines/{pipeline}/checkpoints"))
        .json();
    assert!(
        checkpoints.to_string().contains("45"),
        "{label}: cursor at 45: {checkpoints}"
    );
    let (count, names): (i64, i64) = rt
        .block_on(
            sqlx::query_as(&format!(
                "SELECT count(*), count(*) FILTER (WHERE name = 'row ' || id) FROM {dest}"
            ))
            .fetch_one(&mut pg),
        )
        .unwrap();
    assert_eq!((count, names), (45, 45), "{label}");
    rt.block_on(sqlx::query(&format!("DROP TABLE {dest}")).execute(&mut pg))
        .unwrap();
    exec(&format!("DROP TABLE {src}"));
}

#[test]
fn sql_source_resumes_from_its_cursor_on_postgres_mariadb_and_sqlite() {
    let rt = runtime();
    let Some(pg) = service(
        "PostgreSQL",
        rt.block_on(sqlx::PgConnection::connect(&pg_url())),
    ) else {
        return;
    };
    drop(pg);
    let Some(mysql) = service(
        "MariaDB",
        rt.block_on(sqlx::MySqlConnection::connect(&mysql_url())),
    ) else {
        return;
    };
    drop(mysql);
    let files = tempfile::tempdir().unwrap();
    let root = files.path().to_str().unwrap().to_string();
    let Some(s) = Server::start_with(
        Backend::Sqlite,
        &["--mount-root", &root, "--egress-allow-private", LOOPBACK],
    ) else {
        return;
    };

    let pg_exec = |sql: &str| {
        let rt = runtime();
        let mut c = rt.block_on(sqlx::PgConnection::connect(&pg_url())).unwrap();
        rt.block_on(sqlx::query(sql).execute(&mut c)).unwrap();
    };
    sql_source_resumes(&s, "pg", &pg_url(), &pg_exec);

    let my_exec = |sql: &str| {
        let rt = runtime();
        let mut c = rt
            .block_on(sqlx::MySqlConnection::connect(&mysql_url()))
            .unwrap();
        rt.block_on(sqlx::query(sql).execute(&mut c)).unwrap();
    };
    sql_source_resumes(&s, "maria", &mysql_url(), &my_exec);

    let file = files.path().join("source.db");
    let lite_url = format!("sqlite://{}?mode=rwc", file.display());
    let lite_exec = |sql: &str| {
        let rt = runtime();
        let mut c = rt
            .block_on(sqlx::SqliteConnection::connect(&lite_url))
            .unwrap();
        rt.block_on(sqlx::query(sql).execute(&mut c)).unwrap();
    };
    sql_source_resumes(&s, "lite", &lite_url, &lite_exec);

    // A SQLite file outside the server's mount roots (its own database, say) is refused.
    let outside = format!(
        "name: peek\nconnections:\n  db: {{ url: \"sqlite://{}/autoflow.db\" }}\nsteps:\n  - id: read\n    plugin: sql-source@latest\n    \
         connections: [db]\n    config: {{ connection: db, table: tokens, cursor_column: id }}\n  \
         - id: out\n    plugin: log-sink@latest\n    input: read\n",
        s.data.path().display()
    );
    let r = s.apply(&s.admin, "peek", &outside);
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(r.text().contains("connections.db.url"), "{}", r.text());
}

#[test]
fn redis_streams_are_written_by_redis_sink_and_read_through_a_consumer_group() {
    let rt = runtime();
    let Some(client) = service("Redis", redis::Client::open(redis_url())) else {
        return;
    };
    let Some(mut conn) = service(
        "Redis",
        rt.block_on(client.get_multiplexed_async_connection()),
    ) else {
        return;
    };
    let Some(s) = Server::start_with(Backend::Sqlite, &["--egress-allow-private", LOOPBACK]) else {
        return;
    };
    let key = unique("af_events");
    let yaml = format!(
        "name: events\nconnections:\n  cache: {{ url: \"{}\" }}\nsteps:\n  - id: gen\n    plugin: generator@latest\n    config: {{ count: 25 }}\n  \
         - id: out\n    plugin: redis-sink@latest\n    input: gen\n    connections: [cache]\n    config: {{ connection: cache, stream: {key} }}\n",
        redis_url()
    );
    ok(&s.apply(&s.admin, "events", &yaml), "apply");
    run_ok(&s, "events");
    let len: i64 = rt
        .block_on(redis::cmd("XLEN").arg(&key).query_async(&mut conn))
        .unwrap();
    assert_eq!(len, 25);
    let entries: redis::streams::StreamRangeReply = rt
        .block_on(
            redis::cmd("XRANGE")
                .arg(&key)
                .arg("-")
                .arg("+")
                .query_async(&mut conn),
        )
        .unwrap();
    let first: String = entries.ids[0].get("payload").unwrap();
    assert!(
        first.starts_with('{'),
        "the record's JSON value is the payload: {first}"
    );
    // redis-source reads the stream back through a consumer group, as the records redis-sink
    // wrote. Entries are acknowledged once the run has committed.
    let read = format!(
        "name: drain\nconnections:\n  cache: {{ url: \"{}\" }}\nsteps:\n  - id: read\n    plugin: redis-source@latest\n    connections: [cache]\n    \
         config: {{ connection: cache, stream: {key}, group: loaders, wait_ms: 100 }}\n  - id: out\n    plugin: log-sink@latest\n    input: read\n",
        redis_url()
    );
    ok(&s.apply(&s.admin, "drain", &read), "apply drain");
    let run = run_ok(&s, "drain");
    assert_eq!(step_records_out(&run, "read"), 25, "{run}");
    let drained = s.logged(run["id"].as_str().unwrap(), "out");
    assert_eq!(
        drained[0],
        serde_json::from_str::<serde_json::Value>(&first).unwrap(),
        "the first entry read back as the record written"
    );
    assert_eq!(
        pending(&rt, &mut conn, &key, "loaders"),
        0,
        "every entry acknowledged after the run"
    );
    let run = run_ok(&s, "drain");
    assert_eq!(
        step_records_out(&run, "read"),
        0,
        "nothing read twice: {run}"
    );
    let _: () = rt
        .block_on(redis::cmd("DEL").arg(&key).query_async(&mut conn))
        .unwrap();
}

/// How many entries of stream `key` group `group` read and has not acknowledged (`XPENDING`).
pub(super) fn pending(
    rt: &tokio::runtime::Runtime,
    conn: &mut redis::aio::MultiplexedConnection,
    key: &str,
    group: &str,
) -> i64 {
    let summary: (i64, Value2, Value2, Value2) = rt
        .block_on(redis::cmd("XPENDING").arg(key).arg(group).query_async(conn))
        .unwrap();
    summary.0
}

#[test]
fn connections_are_granted_per_step_and_their_secrets_stay_hidden() {
    let rt = runtime();
    let Some(mut pg) = service(
        "PostgreSQL",
        rt.block_on(sqlx::PgConnection::connect(&pg_url())),
    ) else {
        return;
    };
    let Some(s) = Server::start_with(Backend::Sqlite, &["--egress-allow-private", LOOPBACK]) else {
        return;
    };
    let table = unique("af_canary");
    rt.block_on(
        sqlx::query(&format!(
            "CREATE TABLE {table} (id bigint PRIMARY KEY, status text, amount numeric)"
        ))
        .execute(&mut pg),
    )
    .unwrap();
    // Trust auth takes any password: the canary is a real part of the URL the host connects with.
    let canary = "canary-Zq81-pw";
    ok(
        &s.call(
            "PUT",
            "/v1/secrets/pg-password",
            Some(&s.admin),
            Some((
                "application/json",
                serde_json::json!({ "value": canary })
                    .to_string()
                    .into_bytes(),
            )),
        ),
        "secret",
    );
    let pg_with_password = pg_url().replacen("postgres@", "postgres:${secrets.pg-password}@", 1);
    assert!(
        pg_with_password.contains("${secrets.pg-password}"),
        "{pg_with_password}"
    );
    let yaml = |grant: &str| {
        format!(
            "name: canary\nconnections:\n  warehouse: {{ url: \"{pg_with_password}\" }}\nsteps:\n  - id: gen\n    plugin: generator@latest\n    \
             config: {{ count: 5 }}\n  - id: load\n    plugin: json-map@latest\n    input: gen\n    config: {{ select: [id, status, amount] }}\n  \
             - id: write\n    plugin: postgres-sink@latest\n    input: load\n{grant}    config: {{ connection: warehouse, table: {table}, key: [id] }}\n"
        )
    };
    // Not granted: the plugin is refused the connection, and the error says how to grant it.
    ok(&s.apply(&s.admin, "canary", &yaml("")), "apply");
    let run = s.run_and_wait(&s.admin, "canary", None);
    assert_eq!(run["status"], "failed", "{run}");
    assert!(
        run["error"]
            .as_str()
            .unwrap()
            .contains("not granted to step \"write\""),
        "{run}"
    );
    // Granted, on a server whose operator did not allow loopback: the connection is refused,
    // named, and not retried.
    let granted = yaml("    connections: [warehouse]\n");
    let Some(strict) = Server::start(Backend::Sqlite) else {
        return;
    };
    ok(
        &strict.call(
            "PUT",
            "/v1/secrets/pg-password",
            Some(&strict.admin),
            Some((
                "application/json",
                serde_json::json!({ "value": canary })
                    .to_string()
                    .into_bytes(),
            )),
        ),
        "secret",
    );
    ok(&strict.apply(&strict.admin, "canary", &granted), "apply");
    let refused = strict.run_and_wait(&strict.admin, "canary", None);
    assert_eq!(refused["status"], "failed", "{refused}");
    let error = refused["error"].as_str().unwrap();
    assert!(
        error.contains("connection refused by the egress policy: 127.0.0.1 is a loopback address"),
        "{error}"
    );
    assert!(
        error.contains("--egress-allow-private 127.0.0.1:"),
        "{error}"
    );
    assert!(!refused.to_string().contains(canary));
    // Granted and allowed: the rows land.
    ok(&s.apply(&s.admin, "canary", &granted), "apply");
    let run = run_ok(&s, "canary");
    assert_eq!(rt.block_on(pg_count(&mut pg, &table)), 5);
    let id = run["id"].as_str().unwrap();
    let seen = [
        run.to_string(),
        s.get(&format!("/v1/runs/{id}/logs")).text(),
        s.get("/v1/pipelines/canary").text(),
        s.get("/v1/secrets").text(),
    ];
    for text in seen {
        assert!(!text.contains(canary), "the canary leaked: {text}");
    }
    rt.block_on(sqlx::query(&format!("DROP TABLE {table}")).execute(&mut pg))
        .unwrap();
}

/// A legal URL still connects and works: a host name (resolved once; every address it has is
/// checked, then tried in turn) and the parameters PostgreSQL URLs may carry, which reach the
/// server (its `application_name` shows in `pg_stat_activity`, on a loopback client address).
#[test]
fn a_named_host_with_harmless_parameters_connects_to_the_checked_address() {
    let rt = runtime();
    let Some(mut pg) = service(
        "PostgreSQL",
        rt.block_on(sqlx::PgConnection::connect(&pg_url())),
    ) else {
        return;
    };
    let Some(s) = Server::start_with(
        Backend::Sqlite,
        &["--egress-allow-private", "127.0.0.1,[::1]"],
    ) else {
        return;
    };
    let table = unique("af_named");
    rt.block_on(
        sqlx::query(&format!(
            "CREATE TABLE {table} (id bigint PRIMARY KEY, status text, amount numeric)"
        ))
        .execute(&mut pg),
    )
    .unwrap();
    let app = unique("af_app");
    let named = pg_url().replacen("@127.0.0.1:", "@localhost:", 1);
    let sep = if named.contains('?') { '&' } else { '?' };
    let url = format!(
        "{named}{sep}sslmode=require&application_name={app}&connect_timeout=5&statement-cache-capacity=10"
    );
    let yaml = format!(
        "name: named\nconnections:\n  warehouse: {{ url: \"{url}\" }}\nsteps:\n  - id: gen\n    plugin: generator@latest\n    \
         config: {{ count: 3 }}\n  - id: load\n    plugin: json-map@latest\n    input: gen\n    config: {{ select: [id, status, amount] }}\n  \
         - id: write\n    plugin: postgres-sink@latest\n    input: load\n    connections: [warehouse]\n    \
         config: {{ connection: warehouse, table: {table}, key: [id] }}\n"
    );
    ok(&s.apply(&s.admin, "named", &yaml), "apply");
    run_ok(&s, "named");
    assert_eq!(rt.block_on(pg_count(&mut pg, &table)), 3);
    // The server's pool keeps its connections: they carry the URL's application_name.
    let loopback: i64 = rt
        .block_on(
            sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND host(client_addr) IN ('127.0.0.1', '::1')")
                .bind(&app)
                .fetch_one(&mut pg),
        )
        .unwrap();
    assert!(loopback >= 1, "no connection named {app} from loopback");
    // sslmode=require: every one of them is encrypted (the machine's PostgreSQL has TLS on).
    let plain: i64 = rt
        .block_on(
            sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) WHERE a.application_name = $1 AND NOT s.ssl")
                .bind(&app)
                .fetch_one(&mut pg),
        )
        .unwrap();
    assert_eq!(plain, 0, "connections named {app} without TLS");
    rt.block_on(sqlx::query(&format!("DROP TABLE {table}")).execute(&mut pg))
        .unwrap();
}

/// A worker process applies its own operator's egress policy: the same run is refused by a
/// worker started without `--egress-allow-private` and succeeds on one started with it.
#[test]
fn workers_apply_their_own_egress_policy_to_connections() {
    let rt = runtime();
    let Some(client) = service("Redis", redis::Client::open(redis_url())) else {
        return;
    };
    let Some(mut conn) = service(
        "Redis",
        rt.block_on(client.get_multiplexed_async_connection()),
    ) else {
        return;
    };
    let Some(s) = Server::start_with(Backend::Postgres, &["--worker-slots", "0"]) else {
        return;
    };
    let key = unique("af_worker_events");
    let yaml = format!(
        "name: events\nconnections:\n  cache: {{ url: \"{}\" }}\nsteps:\n  - id: gen\n    plugin: generator@latest\n    config: {{ count: 3 }}\n  \
         - id: out\n    plugin: redis-sink@latest\n    input: gen\n    connections: [cache]\n    config: {{ connection: cache, stream: {key} }}\n",
        redis_url()
    );
    ok(&s.apply(&s.admin, "events", &yaml), "apply");
    let strict = s.worker(&[]);
    let refused = s.run_and_wait(&s.admin, "events", None);
    assert_eq!(refused["status"], "failed", "{refused}");
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("connection refused by the egress policy"),
        "{refused}"
    );
    strict.kill();
    let _allowed = s.worker(&["--egress-allow-private", LOOPBACK]);
    run_ok(&s, "events");
    let len: i64 = rt
        .block_on(redis::cmd("XLEN").arg(&key).query_async(&mut conn))
        .unwrap();
    assert_eq!(len, 3);
    let _: () = rt
        .block_on(redis::cmd("DEL").arg(&key).query_async(&mut conn))
        .unwrap();
}

/// The connection URLs of [`Tripwire::redirecting_urls`] are refused by the server too, on
/// either store: `POST /v1/pipelines` answers 422 naming `connections.db.url` and the
/// parameter, even where the operator allows loopback; nothing reaches the listeners.
#[test]
fn the_server_refuses_connection_urls_that_lead_the_driver_elsewhere() {
    let wire = Tripwire::start();
    let root = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let outside = elsewhere.path().join("other.db");
    std::fs::write(&outside, b"").unwrap();
    let root_flag = root.path().to_str().unwrap();
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(s) = Server::start_with(
            backend,
            &[
                "--mount-root",
                root_flag,
                "--egress-allow-private",
                LOOPBACK,
            ],
        ) else {
            continue;
        };
        for (url, expect) in wire.redirecting_urls(root.path(), &outside) {
            let yaml = format!(
                "name: lead\nconnections:\n  db: {{ url: \"{url}\" }}\nsteps:\n  - id: read\n    plugin: sql-source@latest\n    connections: [db]\n    \
                 config: {{ connection: db, table: t, cursor_column: id }}\n  - id: out\n    plugin: log-sink@latest\n    input: read\n"
            );
            let r = s.call(
                "POST",
                "/v1/pipelines",
                Some(&s.admin),
                Some(("application/yaml", yaml.into_bytes())),
            );
            assert_eq!(r.status, 422, "{backend:?} {url}: {}", r.text());
            assert!(
                r.text().contains("connections.db.url"),
                "{backend:?} {url}: {}",
                r.text()
            );
            assert!(
                r.text().contains(&expect.replace('"', "\\\"")),
                "{backend:?} {url}: {} (expected {expect:?})",
                r.text()
            );
        }
        assert_eq!(
            s.get("/v1/pipelines/lead").status,
            404,
            "{backend:?}: nothing was stored"
        );
    }
    assert_eq!(
        wire.accepted(),
        0,
        "a listener on loopback or a Unix socket was reached"
    );
}

/// A secret's value cannot turn a URL the server accepted into one it would refuse: the URL is
/// checked again as expanded, and a host that became a socket directory fails the step
/// (`fatal`: not retried) before anything connects.
#[test]
fn a_secret_cannot_make_a_connection_host_a_socket() {
    let wire = Tripwire::start();
    let p = autoflow_tests::Project::new();
    p.write(
        "conn.yaml",
        "name: p\nconnections:\n  db: { url: \"postgres://u@${secrets.db-host}/db\" }\nsteps:\n  - id: read\n    plugin: sql-source@0.1.0\n    \
         connections: [db]\n    config: { connection: db, table: t, cursor_column: id }\n  - id: out\n    plugin: log-sink@0.1.0\n    input: read\n",
    );
    let secret = format!("db-host={}", wire.dir());
    let out = p.run(
        "conn.yaml",
        &["--secret", &secret, "--egress-allow-private", LOOPBACK],
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("connection refused by the egress policy: the URL's host must be a name or an IP address"),
        "{}",
        out.stderr
    );
    assert_eq!(wire.accepted(), 0);
}

/// A fake NATS server on an allowed loopback port: it announces the tripwire's port as another
/// server of its cluster (`connect_urls`) and drops every connection after a moment, so the
/// client reconnects. The client reconnects to the address it checked only: the announced
/// server was never checked, and the tripwire receives nothing.
#[test]
fn servers_a_nats_server_announces_are_not_connected_to() {
    use std::io::{BufRead, BufReader, Write};
    let wire = Tripwire::start();
    let fake = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let fake_port = fake.local_addr().unwrap().port();
    let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = connections.clone();
    let info = format!(
        "INFO {{\"server_id\":\"fake\",\"version\":\"2.10.0\",\"proto\":1,\"headers\":true,\"max_payload\":1048576,\
         \"connect_urls\":[\"127.0.0.1:{}\"]}}\r\n",
        wire.port
    );
    std::thread::spawn(move || {
        for conn in fake.incoming().flatten() {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let info = info.clone();
            std::thread::spawn(move || {
                let mut conn = conn;
                let _ = conn.write_all(info.as_bytes());
                let _ = conn.set_read_timeout(Some(Duration::from_millis(50)));
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let until = std::time::Instant::now() + Duration::from_millis(400);
                let mut line = String::new();
                while std::time::Instant::now() < until {
                    line.clear();
                    match reader.read_line(&mut line) {
                        Ok(0) => break,
                        Ok(_) if line.starts_with("PING") => drop(conn.write_all(b"PONG\r\n")),
                        _ => {}
                    }
                }
            });
        }
    });
    let p = autoflow_tests::Project::new();
    p.write(
        "bus.yaml",
        &format!(
            "name: p\nconnections:\n  bus: {{ url: \"nats://localhost:{fake_port}\" }}\nsteps:\n  - id: read\n    plugin: nats-source@0.1.0\n    \
             connections: [bus]\n    config: {{ connection: bus, stream: S, consumer: c, wait_ms: 100 }}\n  - id: out\n    plugin: log-sink@0.1.0\n    input: read\n"
        ),
    );
    let allow = format!("127.0.0.1:{fake_port},[::1]:{fake_port}");
    let out = p.run("bus.yaml", &["--egress-allow-private", &allow]);
    assert_ne!(out.code, 0, "{}", out.stderr);
    assert!(
        connections.load(std::sync::atomic::Ordering::SeqCst) >= 2,
        "the client reconnected: {}",
        out.stderr
    );
    assert_eq!(
        wire.accepted(),
        0,
        "the client connected to a server the fake announced: {}",
        out.stderr
    );
}
