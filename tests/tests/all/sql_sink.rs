//! `sql-sink` against the machine's real PostgreSQL, MariaDB and a SQLite file, through a real
//! server: generated orders are inserted, then upserted on their key by a second run with other
//! content, and each database holds exactly the second run's orders, compared field by field
//! with the generator's own output computed in the test. A key column the table lacks is
//! refused at the first write, naming it. Services as in [`super::integrations`].
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use autoflow_tests::server::Server;
use sqlx::{Connection, Row};

use super::integrations::{
    SqlServices, mysql_url, ok, pg_url, run_ok, runtime, sql_services, unique,
};

const N: u64 = 40;

/// Order `id` of the generator under `seed`, as JSON.
fn order(seed: u64, id: u64) -> serde_json::Value {
    let mut text = String::new();
    generator::write_order(&mut text, seed, id);
    serde_json::from_str(&text).unwrap()
}

/// A pipeline `name` writing `N` orders of `seed` into `table` through `sql-sink` at `url`.
fn pipeline(name: &str, url: &str, table: &str, seed: u64, key: &str) -> String {
    format!(
        "name: {name}\nbatch_size: 16\nconnections:\n  db: {{ url: \"{url}\" }}\nsteps:\n  - id: gen\n    plugin: generator@latest\n    \
         config: {{ count: {N}, seed: {seed} }}\n  - id: write\n    plugin: sql-sink@latest\n    input: gen\n    connections: [db]\n    \
         config: {{ connection: db, table: {table}, key: [{key}], columns: [id, status, amount, items, created_at] }}\n"
    )
}

/// The rows of `table` as (id, status, amount, items, created_at), by id.
type Rows = Vec<(i64, String, f64, i64, String)>;

fn check(s: &Server, label: &str, url: &str, table: &str, read: &dyn Fn() -> Rows) {
    let first = format!("load-{label}");
    let yaml = pipeline(&first, url, table, 1, "id");
    ok(&s.apply(&s.admin, &first, &yaml), "apply");
    run_ok(s, &first);
    assert_eq!(read().len(), N as usize, "{label}: inserted");
    // Same ids, other content (another pipeline: the generator resumes from its cursor):
    // every row updated in place.
    let second = format!("reload-{label}");
    let yaml = pipeline(&second, url, table, 2, "id");
    ok(&s.apply(&s.admin, &second, &yaml), "apply");
    run_ok(s, &second);
    let rows = read();
    let expected: Rows = (0..N)
        .map(|id| {
            let o = order(2, id);
            (
                id as i64,
                o["status"].as_str().unwrap().to_string(),
                o["amount"].as_f64().unwrap(),
                o["items"].as_i64().unwrap(),
                o["created_at"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        rows, expected,
        "{label}: the second run's orders, once each"
    );
    assert_ne!(order(1, 3), order(2, 3), "the two runs' orders differ");

    // A key the table does not have: refused at the first write, naming the column.
    let bad = format!("bad-{label}");
    ok(
        &s.apply(
            &s.admin,
            &bad,
            &pipeline(&bad, url, table, 1, "sku").replace("columns: [id,", "columns: [sku, id,"),
        ),
        "apply bad",
    );
    let run = s.run_and_wait(&s.admin, &bad, None);
    assert_eq!(run["status"], "failed", "{run}");
    let error = run["error"].as_str().unwrap_or_default();
    assert!(error.contains("has no column \"sku\""), "{label}: {run}");
}

#[test]
fn sql_sink_inserts_and_upserts_on_postgres_mariadb_and_sqlite() {
    let rt = runtime();
    let Some(SqlServices {
        mut pg,
        mut my,
        files,
        server: s,
    }) = sql_services(&rt)
    else {
        return;
    };
    let (pg_url, my_url) = (pg_url(), mysql_url());
    let table = unique("af_sink");
    let select = format!("SELECT id, status, amount, items, created_at FROM {table} ORDER BY id");

    let create = format!(
        "CREATE TABLE {table} (id bigint PRIMARY KEY, status varchar(20) NOT NULL, amount double precision, \
         items integer, created_at text)"
    );
    rt.block_on(sqlx::query(&create).execute(&mut pg)).unwrap();
    let read_pg = || -> Rows {
        let rt = runtime();
        let mut c = rt.block_on(sqlx::PgConnection::connect(&pg_url)).unwrap();
        rt.block_on(sqlx::query(&select).fetch_all(&mut c))
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r.get(0),
                    r.get(1),
                    r.get(2),
                    i64::from(r.get::<i32, _>(3)),
                    r.get(4),
                )
            })
            .collect()
    };
    check(&s, "pg", &pg_url, &table, &read_pg);
    rt.block_on(sqlx::query(&format!("DROP TABLE {table}")).execute(&mut pg))
        .unwrap();

    rt.block_on(sqlx::query(&create).execute(&mut my)).unwrap();
    let read_my = || -> Rows {
        let rt = runtime();
        let mut c = rt
            .block_on(sqlx::MySqlConnection::connect(&my_url))
            .unwrap();
        rt.block_on(sqlx::query(&select).fetch_all(&mut c))
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r.get(0),
                    r.get(1),
                    r.get(2),
                    i64::from(r.get::<i32, _>(3)),
                    r.get(4),
                )
            })
            .collect()
    };
    check(&s, "maria", &my_url, &table, &read_my);
    rt.block_on(sqlx::query(&format!("DROP TABLE {table}")).execute(&mut my))
        .unwrap();

    let lite_url = format!(
        "sqlite://{}?mode=rwc",
        files.path().join("sink.db").display()
    );
    let create_lite = format!(
        "CREATE TABLE {table} (id INTEGER PRIMARY KEY, status TEXT NOT NULL, amount REAL, items INTEGER, created_at TEXT)"
    );
    {
        let mut c = rt
            .block_on(sqlx::SqliteConnection::connect(&lite_url))
            .unwrap();
        rt.block_on(sqlx::query(&create_lite).execute(&mut c))
            .unwrap();
    }
    let read_lite = || -> Rows {
        let rt = runtime();
        let mut c = rt
            .block_on(sqlx::SqliteConnection::connect(&lite_url))
            .unwrap();
        rt.block_on(sqlx::query(&select).fetch_all(&mut c))
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
            .collect()
    };
    check(&s, "lite", &lite_url, &table, &read_lite);
}
