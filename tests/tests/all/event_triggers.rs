//! Event triggers against the machine's NATS JetStream: a pipeline with a `nats` trigger on a
//! subject a stream captures gets one run per burst of messages, and that run's `nats-source`
//! reads them (three messages in a burst: one run with three records; one more message: one
//! more run with it alone); a trigger naming a connection the pipeline does not have is a 422.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use std::time::Duration;

use async_nats::jetstream::{self, stream};
use autoflow_tests::server::{Backend, Server, wait_for};
use serde_json::{Value, json};

use super::integrations::{LOOPBACK, nats_url, ok, runtime, service, unique};

const WAIT: Duration = Duration::from_secs(60);

/// The pipeline's runs started by its event trigger that have ended, oldest first.
fn ended_event_runs(s: &Server) -> Vec<Value> {
    let runs = s.get("/v1/pipelines/events/runs?limit=100").json();
    let mut runs: Vec<Value> = runs
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["trigger"] == "event")
        .filter(|r| !matches!(r["status"].as_str(), Some("queued" | "running")))
        .cloned()
        .collect();
    runs.sort_by_key(|r| r["created_at"].as_i64().unwrap());
    runs
}

#[test]
fn a_burst_of_nats_messages_starts_one_run_that_reads_them() {
    let rt = runtime();
    let Some(client) = service("NATS", rt.block_on(async_nats::connect(nats_url()))) else {
        return;
    };
    let name = unique("af_events");
    let stream_name = name.to_uppercase();
    let js = jetstream::new(client);
    rt.block_on(js.create_stream(stream::Config {
        name: stream_name.clone(),
        subjects: vec![format!("{name}.>")],
        ..Default::default()
    }))
    .unwrap();
    let Some(s) = Server::start_with(Backend::Sqlite, &["--egress-allow-private", LOOPBACK]) else {
        return;
    };
    let yaml = format!(
        "name: events\nconnections:\n  bus: {{ url: \"{nats}\" }}\n\
         triggers:\n  - nats: {{ connection: bus, subject: \"{name}.>\", debounce_ms: 300 }}\n\
         steps:\n  - id: read\n    plugin: nats-source@latest\n    connections: [bus]\n    \
         config: {{ connection: bus, stream: {stream_name}, consumer: events, wait_ms: 200 }}\n  \
         - id: sink\n    plugin: log-sink@latest\n    input: read\n",
        nats = nats_url(),
    );
    ok(&s.apply(&s.admin, "events", &yaml), "apply");
    let log = s.data.path().join("server.log");
    wait_for(WAIT, "the trigger to listen", || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("pipeline \"events\" version 1 (tenant")
    });
    assert!(ended_event_runs(&s).is_empty(), "no message, no run");
    let publish = |ids: &[i64]| {
        rt.block_on(async {
            for i in ids {
                let body = json!({ "order": i }).to_string();
                js.publish(format!("{name}.orders"), body.into())
                    .await
                    .unwrap()
                    .await
                    .unwrap();
            }
        })
    };
    // A burst of three: one run, which reads the three.
    publish(&[1, 2, 3]);
    wait_for(WAIT, "the burst's run to end", || {
        !ended_event_runs(&s).is_empty()
    });
    let first = &ended_event_runs(&s)[0];
    assert_eq!(first["status"], "succeeded", "{first}");
    let read = s.logged(first["id"].as_str().unwrap(), "sink");
    assert_eq!(
        read,
        vec![
            json!({"order": 1}),
            json!({"order": 2}),
            json!({"order": 3})
        ]
    );
    // One more message: one more run, with it alone.
    publish(&[4]);
    wait_for(WAIT, "the second run to end", || {
        ended_event_runs(&s).len() >= 2
    });
    let runs = ended_event_runs(&s);
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert_eq!(
        s.logged(runs[1]["id"].as_str().unwrap(), "sink"),
        vec![json!({"order": 4})]
    );
    // A trigger on a connection the pipeline does not have is refused, naming it.
    let bad = "name: bad\ntriggers:\n  - nats: { connection: nowhere, subject: \"a.b\" }\n\
               steps:\n  - id: gen\n    plugin: generator@latest\n  - id: sink\n    \
               plugin: log-sink@latest\n    input: gen\n";
    let r = s.apply(&s.admin, "bad", bad);
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("triggers[0].nats.connection: no connection \"nowhere\""),
        "{}",
        r.text()
    );
    let _ = rt.block_on(js.delete_stream(&stream_name));
}
