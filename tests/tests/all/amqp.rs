//! `amqp-sink` and `amqp-source` against the machine's real RabbitMQ through a real server:
//! what the sink publishes the source reads back as the same records; a failed run gives back
//! what it read; nothing is read twice once acknowledged; and a server killed mid-run loses no
//! message (the broker requeues what the dead connection held), every one landing in Postgres
//! exactly once.
//!
//! The broker comes from `AUTOFLOW_TEST_AMQP_URL` (default `amqp://guest:guest@127.0.0.1:5672/%2f`);
//! a broker that is down skips the test, unless `AUTOFLOW_REQUIRE_SERVICES=1`. The counts of
//! messages held unacknowledged are read with `rabbitmqctl`, which AMQP itself does not report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::time::Duration;

use autoflow_tests::guests;
use autoflow_tests::server::{Backend, Server, wait_for};
use lapin::options::{BasicGetOptions, BasicPublishOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use sqlx::Connection;

use super::integrations::{
    LOOPBACK, assert_orders_once, ok, pg_url, run_ok, runtime, service, unique,
};

fn amqp_url() -> String {
    std::env::var("AUTOFLOW_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// Messages of `queue` ready to be delivered, and delivered but not acknowledged, as the broker
/// counts them (`rabbitmqctl list_queues`).
fn counts(queue: &str) -> (u64, u64) {
    let out = std::process::Command::new("rabbitmqctl")
        .args([
            "list_queues",
            "--quiet",
            "--no-table-headers",
            "name",
            "messages_ready",
            "messages_unacknowledged",
        ])
        .output()
        .expect("rabbitmqctl runs");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 3 && f[0] == queue).then(|| (f[1].parse().unwrap(), f[2].parse().unwrap()))
        })
        .next()
        .unwrap_or_else(|| panic!("no queue {queue} in: {text}"))
}

/// The records of step `step` of `run`'s report, in and out.
fn records_out(run: &serde_json::Value, step: &str) -> u64 {
    let steps = run["report"]["steps"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let s = steps.iter().find(|s| s["id"] == step).unwrap();
    s["records_out"].as_u64().unwrap()
}

/// A pipeline `name` that reads `queue` into `then` (YAML of the steps after `read`).
fn reader(name: &str, queue: &str, then: &str) -> String {
    format!(
        "name: {name}\nbatch_size: 50\nconnections:\n  broker: {{ url: \"{}\" }}\nsteps:\n  - id: read\n    plugin: amqp-source@latest\n    \
         connections: [broker]\n    config: {{ connection: broker, queue: {queue}, wait_ms: 200 }}\n{then}",
        amqp_url()
    )
}

#[test]
fn what_amqp_sink_publishes_amqp_source_reads_back_and_a_failed_run_gives_it_back() {
    let rt = runtime();
    let Some(conn) = service(
        "RabbitMQ",
        rt.block_on(lapin::Connection::connect(
            &amqp_url(),
            lapin::ConnectionProperties::default(),
        )),
    ) else {
        return;
    };
    let Some(s) = Server::start_with(Backend::Sqlite, &["--egress-allow-private", LOOPBACK]) else {
        return;
    };
    let queue = unique("af_orders");
    let publish = format!(
        "name: publish\nconnections:\n  broker: {{ url: \"{}\" }}\nsteps:\n  - id: gen\n    plugin: generator@latest\n    config: {{ count: 25 }}\n  \
         - id: out\n    plugin: amqp-sink@latest\n    input: gen\n    connections: [broker]\n    config: {{ connection: broker, queue: {queue} }}\n",
        amqp_url()
    );
    ok(&s.apply(&s.admin, "publish", &publish), "apply publish");
    let run = run_ok(&s, "publish");
    assert_eq!(records_out(&run, "gen"), 25);
    // The queue was declared on first use, durable, and holds the 25 messages.
    assert_eq!(counts(&queue), (25, 0));
    // What is in it, read without acknowledging (the channel's close puts it back).
    let published: Vec<serde_json::Value> = rt.block_on(async {
        let ch = conn.create_channel().await.unwrap();
        let mut values = Vec::new();
        while let Some(m) = ch
            .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: false })
            .await
            .unwrap()
        {
            values.push(serde_json::from_slice(&m.delivery.data).unwrap());
        }
        ch.close(200, "peeked".into()).await.unwrap();
        values
    });
    assert_eq!(published.len(), 25);
    wait_for(Duration::from_secs(10), "the peeked messages back", || {
        counts(&queue) == (25, 0)
    });

    // A run that fails after reading gives every message back to the queue.
    ok(
        &s.push(
            &s.admin,
            "panicker",
            "1.0.0",
            std::fs::read(guests::PANICKER).unwrap(),
        ),
        "push panicker",
    );
    let broken = reader(
        "broken",
        &queue,
        "  - id: boom\n    plugin: panicker@latest\n    input: read\n  \
         - id: out\n    plugin: log-sink@latest\n    input: boom\n",
    );
    ok(&s.apply(&s.admin, "broken", &broken), "apply broken");
    let run = s.run_and_wait(&s.admin, "broken", None);
    assert_eq!(run["status"], "failed", "{run}");
    wait_for(
        Duration::from_secs(10),
        "the failed run's messages back",
        || counts(&queue) == (25, 0),
    );

    // A run that succeeds reads them all, as the records written, and acknowledges them.
    let drain = reader(
        "drain",
        &queue,
        "  - id: out\n    plugin: log-sink@latest\n    input: read\n",
    );
    ok(&s.apply(&s.admin, "drain", &drain), "apply drain");
    let run = run_ok(&s, "drain");
    assert_eq!(records_out(&run, "read"), 25, "{run}");
    let mut drained = s.logged(run["id"].as_str().unwrap(), "out");
    let mut expected = published.clone();
    let key = |v: &serde_json::Value| v.to_string();
    drained.sort_by_key(key);
    expected.sort_by_key(key);
    assert_eq!(
        drained, expected,
        "every message read back as the record written"
    );
    wait_for(
        Duration::from_secs(10),
        "every message acknowledged",
        || counts(&queue) == (0, 0),
    );
    let run = run_ok(&s, "drain");
    assert_eq!(records_out(&run, "read"), 0, "nothing read twice: {run}");

    // A destination no queue takes fails the run, naming it, instead of losing the records.
    let nowhere = format!(
        "name: nowhere\nconnections:\n  broker: {{ url: \"{}\" }}\nsteps:\n  - id: gen\n    plugin: generator@latest\n    config: {{ count: 3 }}\n  \
         - id: out\n    plugin: amqp-sink@latest\n    input: gen\n    connections: [broker]\n    \
         config: {{ connection: broker, exchange: amq.direct, routing_key: {queue}_unbound }}\n",
        amqp_url()
    );
    ok(&s.apply(&s.admin, "nowhere", &nowhere), "apply nowhere");
    let run = s.run_and_wait(&s.admin, "nowhere", None);
    assert_eq!(run["status"], "failed", "{run}");
    let error = run["error"].as_str().unwrap_or_default().to_string();
    assert!(
        error.contains("amq.direct/") && error.contains("no queue takes it"),
        "{run}"
    );
    rt.block_on(async {
        let ch = conn.create_channel().await.unwrap();
        ch.queue_delete(queue.as_str().into(), Default::default())
            .await
            .unwrap();
    });
}

#[test]
fn a_server_killed_mid_run_loses_no_message_and_lands_each_once() {
    const N: i64 = 600;
    let rt = runtime();
    let Some(conn) = service(
        "RabbitMQ",
        rt.block_on(lapin::Connection::connect(
            &amqp_url(),
            lapin::ConnectionProperties::default(),
        )),
    ) else {
        return;
    };
    let Some(mut pg) = service(
        "PostgreSQL",
        rt.block_on(sqlx::PgConnection::connect(&pg_url())),
    ) else {
        return;
    };
    let name = unique("af_amqp_orders");
    rt.block_on(async {
        let ch = conn.create_channel().await.unwrap();
        ch.confirm_select(Default::default()).await.unwrap();
        ch.queue_declare(
            name.as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
        let mut confirms = Vec::new();
        for i in 0..N {
            let mut headers = BTreeMap::new();
            headers.insert(
                "autoflow-key".into(),
                AMQPValue::LongString(i.to_string().into()),
            );
            let body = serde_json::json!({ "id": i, "name": format!("order {i}") }).to_string();
            confirms.push(
                ch.basic_publish(
                    "".into(),
                    name.as_str().into(),
                    BasicPublishOptions::default(),
                    body.as_bytes(),
                    lapin::BasicProperties::default().with_headers(FieldTable::from(headers)),
                )
                .await
                .unwrap(),
            );
        }
        for c in confirms {
            assert!(c.await.unwrap().is_ack());
        }
        sqlx::query(&format!(
            "CREATE TABLE {name} (id bigint PRIMARY KEY, name text NOT NULL)"
        ))
        .execute(&mut pg)
        .await
        .unwrap();
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
    let steps = format!(
        // 10 ms a record: the 600 take 6 s, time enough to read the broker's counts (rabbitmqctl
        // takes a second or more on a loaded machine) and kill the server before the last row.
        "  - id: slow\n    plugin: slow@latest\n    input: read\n    config: {{ ms: 10 }}\n  \
         - id: write\n    plugin: postgres-sink@latest\n    input: slow\n    connections: [warehouse]\n    \
         config: {{ connection: warehouse, table: {name}, key: [id] }}\n"
    );
    let yaml = reader("orders", &name, &steps).replace(
        "connections:\n  broker:",
        &format!(
            "connections:\n  warehouse: {{ url: \"{}\" }}\n  broker:",
            pg_url()
        ),
    );
    ok(&s.apply(&s.admin, "orders", &yaml), "apply");
    let first = s.trigger("orders");
    let rows = |pg: &mut sqlx::PgConnection| -> i64 {
        rt.block_on(sqlx::query_scalar(&format!("SELECT count(*) FROM {name}")).fetch_one(pg))
            .unwrap()
    };
    wait_for(Duration::from_secs(60), "rows to reach Postgres", || {
        rows(&mut pg) >= 100
    });
    // Rows are in Postgres, but the run has not committed: what it read is held, unacknowledged.
    let (ready, unacked) = counts(&name);
    assert!(
        unacked > 0,
        "held until the run commits: {ready} ready, {unacked} held"
    );
    assert_eq!(ready + unacked, N as u64, "nothing acknowledged yet");
    assert!(rows(&mut pg) < N, "the run ended before it could be killed");
    s.restart(); // SIGKILL mid-run: the broker requeues what the dead connection held

    let run = s.wait_run(&s.admin, &first);
    assert_eq!(run["status"], "succeeded", "{run}");
    wait_for(
        Duration::from_secs(90),
        "every message acknowledged",
        || {
            if counts(&name) == (0, 0) {
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
        let ch = conn.create_channel().await.unwrap();
        ch.queue_delete(name.as_str().into(), Default::default())
            .await
            .unwrap();
    });
}
