//! `mqtt-sink` and `mqtt-source` against the machine's real Mosquitto through a real server:
//! a group's first run subscribes its session; what the sink publishes the source then reads
//! back as the same records, in order, each once; a failed run's messages are sent again by the
//! broker and read by the next run. The broker comes from `AUTOFLOW_TEST_MQTT_URL` (default
//! `mqtt://127.0.0.1:1883`); a broker that is down skips the test, unless
//! `AUTOFLOW_REQUIRE_SERVICES=1`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use autoflow_tests::guests;
use autoflow_tests::server::{Backend, Server};
use serde_json::Value;

use super::integrations::{LOOPBACK, ok, run_ok, service, unique};

fn mqtt_url() -> String {
    std::env::var("AUTOFLOW_TEST_MQTT_URL").unwrap_or_else(|_| "mqtt://127.0.0.1:1883".into())
}

/// The generator's orders `0..n` under `seed`.
fn orders(seed: u64, n: u64) -> Vec<Value> {
    (0..n)
        .map(|id| {
            let mut text = String::new();
            generator::write_order(&mut text, seed, id);
            serde_json::from_str(&text).unwrap()
        })
        .collect()
}

fn records_out(run: &Value, step: &str) -> u64 {
    let steps = run["report"]["steps"].as_array().unwrap();
    steps.iter().find(|s| s["id"] == step).unwrap()["records_out"]
        .as_u64()
        .unwrap()
}

#[test]
fn what_mqtt_sink_publishes_mqtt_source_reads_once_and_a_failed_run_reads_again() {
    let addr = mqtt_url()
        .trim_start_matches("mqtt://")
        .trim_end_matches('/')
        .to_string();
    if service("Mosquitto", std::net::TcpStream::connect(&addr)).is_none() {
        return;
    }
    let Some(s) = Server::start_with(Backend::Sqlite, &["--egress-allow-private", LOOPBACK]) else {
        return;
    };
    let (topic, group) = (unique("af/orders"), unique("af-loader"));
    let url = mqtt_url();
    let reader = |name: &str, then: &str| {
        format!(
            "name: {name}\nconnections:\n  broker: {{ url: \"{url}\" }}\nsteps:\n  - id: read\n    plugin: mqtt-source@latest\n    \
             connections: [broker]\n    config: {{ connection: broker, topic: \"{topic}/#\", group: {group}, wait_ms: 300 }}\n{then}"
        )
    };
    let publisher = |name: &str, seed: u64, count: u64| {
        format!(
            "name: {name}\nconnections:\n  broker: {{ url: \"{url}\" }}\nsteps:\n  - id: gen\n    plugin: generator@latest\n    \
             config: {{ count: {count}, seed: {seed} }}\n  - id: out\n    plugin: mqtt-sink@latest\n    input: gen\n    \
             connections: [broker]\n    config: {{ connection: broker, topic: \"{topic}/eu\" }}\n"
        )
    };
    let drain = reader(
        "drain",
        "  - id: out\n    plugin: log-sink@latest\n    input: read\n",
    );
    ok(&s.apply(&s.admin, "drain", &drain), "apply drain");
    // The first run subscribes the group's session: nothing was there yet.
    let run = run_ok(&s, "drain");
    assert_eq!(records_out(&run, "read"), 0, "{run}");

    ok(
        &s.apply(&s.admin, "publish", &publisher("publish", 0, 25)),
        "apply publish",
    );
    run_ok(&s, "publish");
    let run = run_ok(&s, "drain");
    assert_eq!(records_out(&run, "read"), 25, "{run}");
    let read = s.logged(run["id"].as_str().unwrap(), "out");
    assert_eq!(read, orders(0, 25), "every record as published, in order");
    let run = run_ok(&s, "drain");
    assert_eq!(records_out(&run, "read"), 0, "nothing read twice: {run}");

    // A run that fails after reading: the broker sends its messages again to the next run.
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
        "  - id: boom\n    plugin: panicker@latest\n    input: read\n  - id: out\n    plugin: log-sink@latest\n    input: boom\n",
    );
    ok(&s.apply(&s.admin, "broken", &broken), "apply broken");
    ok(
        &s.apply(&s.admin, "publish-more", &publisher("publish-more", 1, 10)),
        "apply publish-more",
    );
    run_ok(&s, "publish-more");
    let run = s.run_and_wait(&s.admin, "broken", None);
    assert_eq!(run["status"], "failed", "{run}");
    let run = run_ok(&s, "drain");
    assert_eq!(records_out(&run, "read"), 10, "{run}");
    let read = s.logged(run["id"].as_str().unwrap(), "out");
    assert_eq!(read, orders(1, 10), "the failed run's messages, again");
    let run = run_ok(&s, "drain");
    assert_eq!(records_out(&run, "read"), 0, "{run}");
}
