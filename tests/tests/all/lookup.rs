//! `lookup` against the machine's real PostgreSQL, MariaDB and a SQLite file, through a real
//! server: generated orders are enriched with their country's row, orders whose country has no
//! row are dead-lettered, and what reaches the sink is compared record by record with a
//! reference computed in the test from the generator's own output. Services as in
//! [`super::integrations`]. The HTTP form is run the same way against a real loopback HTTP
//! server (allowed by the operator with `--egress-allow-private`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use autoflow_tests::http_server::{Reply, TestServer};
use autoflow_tests::server::{Backend, Server};
use serde_json::{Value, json};
use sqlx::Connection;

use super::integrations::{
    SqlServices, mysql_url, ok, pg_url, run_ok, runtime, sql_services, unique,
};

const N: u64 = 60;
/// The countries the table knows; the generator also makes JP, CA, GB and CH orders.
const KNOWN: &[(&str, &str, &str)] = &[
    ("DE", "Germany", "EU"),
    ("FR", "France", "EU"),
    ("NL", "Netherlands", "EU"),
    ("ES", "Spain", "EU"),
    ("IT", "Italy", "EU"),
    ("US", "United States", "NA"),
];

fn check(s: &Server, label: &str, url: &str, table: &str) {
    let name = format!("enrich-{label}");
    let yaml = format!(
        "name: {name}\nbatch_size: 16\nconnections:\n  db: {{ url: \"{url}\" }}\nsteps:\n  - id: gen\n    plugin: generator@latest\n    \
         config: {{ count: {N} }}\n  - id: enrich\n    plugin: lookup@latest\n    input: gen\n    connections: [db]\n    \
         config: {{ connection: db, table: {table}, key: country, column: code, columns: [name, region], into: place, missing: reject }}\n  \
         - id: out\n    plugin: log-sink@latest\n    input: enrich\n"
    );
    ok(&s.apply(&s.admin, &name, &yaml), "apply");
    let run = run_ok(s, &name);
    let mut expected = Vec::new();
    let mut unknown = 0;
    for id in 0..N {
        let mut text = String::new();
        generator::write_order(&mut text, 0, id);
        let mut order: Value = serde_json::from_str(&text).unwrap();
        let country = order["country"].as_str().unwrap().to_string();
        match KNOWN.iter().find(|(code, _, _)| *code == country) {
            Some((_, name, region)) => {
                order["place"] = json!({ "name": name, "region": region });
                expected.push(order);
            }
            None => unknown += 1,
        }
    }
    assert!(unknown > 0 && !expected.is_empty(), "both kinds of order");
    let logged = s.logged(run["id"].as_str().unwrap(), "out");
    assert_eq!(
        logged, expected,
        "{label}: every known order enriched, in order"
    );
    let steps = run["report"]["steps"].as_array().unwrap();
    let enrich = steps.iter().find(|s| s["id"] == "enrich").unwrap();
    assert_eq!(enrich["rejected"], unknown, "{label}: {run}");
    // One query per batch of 16 at most: 4 batches, and fewer once the countries are cached.
    let queries = enrich["counters"]["lookup_queries"].as_u64().unwrap();
    assert!((1..=4).contains(&queries), "{label}: {queries} queries");
    let dead = s
        .get(&format!(
            "/v1/runs/{}/dead-letters",
            run["id"].as_str().unwrap()
        ))
        .json();
    let reasons = dead.to_string();
    assert!(
        reasons.contains(&format!("no row in \\\"{table}\\\" with code = JP"))
            || reasons.contains(&format!("no row in \\\"{table}\\\" with code = CA"))
            || reasons.contains(&format!("no row in \\\"{table}\\\" with code = GB")),
        "{label}: {dead}"
    );
}

fn rows_sql(table: &str) -> String {
    let values: Vec<String> = KNOWN
        .iter()
        .map(|(c, n, r)| format!("('{c}', '{n}', '{r}')"))
        .collect();
    format!(
        "INSERT INTO {table} (code, name, region) VALUES {}",
        values.join(", ")
    )
}

#[test]
fn lookup_enriches_records_from_postgres_mariadb_and_sqlite() {
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
    let table = unique("af_countries");
    let create = format!(
        "CREATE TABLE {table} (code varchar(2) PRIMARY KEY, name varchar(40) NOT NULL, region varchar(2))"
    );
    for sql in [create.clone(), rows_sql(&table)] {
        rt.block_on(sqlx::query(&sql).execute(&mut pg)).unwrap();
        rt.block_on(sqlx::query(&sql).execute(&mut my)).unwrap();
    }
    check(&s, "pg", &pg_url, &table);
    check(&s, "maria", &my_url, &table);
    let lite_url = format!(
        "sqlite://{}?mode=rwc",
        files.path().join("ref.db").display()
    );
    {
        let mut c = rt
            .block_on(sqlx::SqliteConnection::connect(&lite_url))
            .unwrap();
        for sql in [create, rows_sql(&table)] {
            rt.block_on(sqlx::query(&sql).execute(&mut c)).unwrap();
        }
    }
    check(&s, "lite", &lite_url, &table);
    let drop = format!("DROP TABLE {table}");
    rt.block_on(sqlx::query(&drop).execute(&mut pg)).unwrap();
    rt.block_on(sqlx::query(&drop).execute(&mut my)).unwrap();
}

/// What the loopback API knows of an order: every id but the multiples of 5.
fn order_item(id: u64) -> Option<Value> {
    (!id.is_multiple_of(5))
        .then(|| json!({ "order_id": id, "score": (id * 37) % 101, "note": "unused" }))
}

/// The ids a request of the API asked for: `/orders?ids=1,2,3`.
fn asked_ids(path: &str) -> Vec<u64> {
    let ids = path
        .strip_prefix("/orders?ids=")
        .unwrap_or_else(|| panic!("{path}"));
    ids.split(',').map(|i| i.parse().unwrap()).collect()
}

#[test]
fn lookup_enriches_records_from_an_http_api_one_request_per_batch() {
    let api = TestServer::start(|req, _| {
        if !req.path.starts_with("/orders?ids=") {
            return Reply::status(404);
        }
        let items: Vec<Value> = asked_ids(&req.path)
            .into_iter()
            .filter_map(order_item)
            .collect();
        Reply::json(200, &Value::Array(items))
    });
    let host = format!("127.0.0.1:{}", api.port);
    let s = Server::start_with(Backend::Sqlite, &["--egress-allow-private", &host]).unwrap();
    let url = api.url("/orders?ids={keys}");
    // Order ids are unique: every batch brings new keys, so each costs exactly one request.
    let yaml = format!(
        "name: enrich-http\nbatch_size: 16\nsteps:\n  - id: gen\n    plugin: generator@latest\n    \
         config: {{ count: {N} }}\n  - id: enrich\n    plugin: lookup@latest\n    input: gen\n    \
         allow_hosts: [\"{host}\"]\n    \
         config: {{ http: {{ url: \"{url}\", match: order_id }}, key: id, columns: [score], into: extra, missing: reject }}\n  \
         - id: out\n    plugin: log-sink@latest\n    input: enrich\n"
    );
    ok(&s.apply(&s.admin, "enrich-http", &yaml), "apply");
    let run = run_ok(&s, "enrich-http");
    let mut expected = Vec::new();
    let mut unknown = 0;
    for id in 0..N {
        let mut text = String::new();
        generator::write_order(&mut text, 0, id);
        let mut order: Value = serde_json::from_str(&text).unwrap();
        match order_item(id) {
            Some(item) => {
                order["extra"] = json!({ "score": item["score"] });
                expected.push(order);
            }
            None => unknown += 1,
        }
    }
    let logged = s.logged(run["id"].as_str().unwrap(), "out");
    assert_eq!(logged, expected, "every known order enriched, in order");
    let steps = run["report"]["steps"].as_array().unwrap();
    let enrich = steps.iter().find(|s| s["id"] == "enrich").unwrap();
    assert_eq!(enrich["rejected"], unknown, "{run}");
    let requests = api.requests();
    let batches = N.div_ceil(16);
    assert_eq!(
        requests.len() as u64,
        batches,
        "one request per batch: {requests:?}"
    );
    assert_eq!(enrich["counters"]["lookup_queries"], batches, "{run}");
    let asked: Vec<u64> = requests.iter().flat_map(|r| asked_ids(&r.path)).collect();
    assert_eq!(
        asked,
        (0..N).collect::<Vec<_>>(),
        "each id asked once, batch by batch"
    );
    assert!(requests.iter().all(|r| r.method == "GET"));
    let dead = s
        .get(&format!(
            "/v1/runs/{}/dead-letters",
            run["id"].as_str().unwrap()
        ))
        .json();
    assert!(
        dead.to_string().contains("no item with order_id = 5 from "),
        "{dead}"
    );
}
