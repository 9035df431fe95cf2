//! Event triggers against the machine's NATS JetStream and Redis, and a folder: a pipeline with
//! a `nats` trigger on a subject a stream captures gets one run per burst of messages, and that
//! run's `nats-source` reads them (three messages in a burst: one run with three records; one
//! more message: one more run with it alone); entries added to a Redis stream start runs the
//! same way, and their `redis-source` reads the entries; lines appended to a file in a watched folder start a run whose `file-source` reads
//! them; a trigger naming a connection the pipeline does not have, or a folder outside the
//! mount roots, is a 422.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use std::time::Duration;

use async_nats::jetstream::{self, stream};
use autoflow_tests::server::{Backend, Server, wait_for};
use serde_json::{Value, json};

use super::integrations::{LOOPBACK, nats_url, ok, runtime, service, unique};

const WAIT: Duration = Duration::from_secs(60);

/// The runs of `pipeline` started by its event trigger that have ended, oldest first.
fn ended_runs_of(s: &Server, pipeline: &str) -> Vec<Value> {
    let runs = s
        .get(&format!("/v1/pipelines/{pipeline}/runs?limit=100"))
        .json();
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

fn ended_event_runs(s: &Server) -> Vec<Value> {
    ended_runs_of(s, "events")
}

/// Waits until the server's log says `pipeline`'s trigger listens.
fn wait_listening(s: &Server, pipeline: &str) {
    let log = s.data.path().join("server.log");
    wait_for(
        WAIT,
        &format!("the trigger of {pipeline} to listen"),
        || {
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .contains(&format!("pipeline \"{pipeline}\" version 1 (tenant"))
        },
    );
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
    wait_listening(&s, "events");
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

#[test]
fn entries_added_to_a_redis_stream_start_one_run_per_burst() {
    let rt = runtime();
    let Some(client) = service(
        "Redis",
        redis::Client::open(super::integrations::redis_url()),
    ) else {
        return;
    };
    let Some(mut conn) = service(
        "Redis",
        rt.block_on(client.get_multiplexed_async_connection()),
    ) else {
        return;
    };
    let key = unique("af_events_stream");
    let Some(s) = Server::start_with(Backend::Sqlite, &["--egress-allow-private", LOOPBACK]) else {
        return;
    };
    let yaml = format!(
        "name: redis-events\nconnections:\n  cache: {{ url: \"{url}\" }}\n\
         triggers:\n  - redis: {{ connection: cache, stream: {key}, debounce_ms: 300 }}\n\
         steps:\n  - id: read\n    plugin: redis-source@latest\n    connections: [cache]\n    \
         config: {{ connection: cache, stream: {key}, group: loaders, wait_ms: 200 }}\n  \
         - id: sink\n    plugin: log-sink@latest\n    input: read\n",
        url = super::integrations::redis_url(),
    );
    ok(&s.apply(&s.admin, "redis-events", &yaml), "apply");
    wait_listening(&s, "redis-events");
    // Entries of plain fields, as any producer adds them (XADD key * order 1 sku a).
    let add = |conn: &mut redis::aio::MultiplexedConnection, orders: &[i64]| {
        rt.block_on(async {
            for i in orders {
                let _: String = redis::AsyncCommands::xadd(
                    conn,
                    &key,
                    "*",
                    &[("order", i.to_string()), ("sku", format!("s{i}"))],
                )
                .await
                .unwrap();
            }
        })
    };
    add(&mut conn, &[1, 2]);
    wait_for(WAIT, "the burst's run", || {
        !ended_runs_of(&s, "redis-events").is_empty()
    });
    add(&mut conn, &[3]);
    wait_for(WAIT, "the second burst's run", || {
        ended_runs_of(&s, "redis-events").len() >= 2
    });
    let runs = ended_runs_of(&s, "redis-events");
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert!(runs.iter().all(|r| r["status"] == "succeeded"), "{runs:?}");
    // The runs' redis-source read the entries, each once, as objects of their fields.
    let read = |run: &Value| s.logged(run["id"].as_str().unwrap(), "sink");
    assert_eq!(
        read(&runs[0]),
        vec![
            json!({"order": "1", "sku": "s1"}),
            json!({"order": "2", "sku": "s2"})
        ]
    );
    assert_eq!(read(&runs[1]), vec![json!({"order": "3", "sku": "s3"})]);
    assert_eq!(
        super::integrations::pending(&rt, &mut conn, &key, "loaders"),
        0,
        "every entry acknowledged after its run"
    );
    let _: () = rt
        .block_on(redis::AsyncCommands::del(&mut conn, &key))
        .unwrap();
}

#[test]
fn lines_appended_in_a_watched_folder_start_a_run_that_reads_them() {
    let root = tempfile::tempdir().unwrap();
    let folder = root.path().join("incoming");
    std::fs::create_dir(&folder).unwrap();
    let orders = folder.join("orders.jsonl");
    std::fs::write(&orders, "{\"order\":1}\n{\"order\":2}\n").unwrap();
    let root_arg = root.path().display().to_string();
    let Some(s) = Server::start_with(Backend::Sqlite, &["--mount-root", &root_arg]) else {
        return;
    };
    let yaml = format!(
        "name: files\ntriggers:\n  - file: {{ path: {dir}, poll_ms: 100, debounce_ms: 300 }}\n\
         steps:\n  - id: read\n    plugin: file-source@latest\n    config: {{ path: /in/orders.jsonl }}\n    \
         mounts: [{{ host: {dir}, guest: /in }}]\n  - id: sink\n    plugin: log-sink@latest\n    input: read\n",
        dir = folder.display(),
    );
    ok(&s.apply(&s.admin, "files", &yaml), "apply");
    wait_listening(&s, "files");
    assert!(
        ended_runs_of(&s, "files").is_empty(),
        "what was there is the baseline"
    );
    let append = |text: &str| {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&orders)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    };
    append("{\"order\":3}\n");
    wait_for(WAIT, "the file's run", || {
        !ended_runs_of(&s, "files").is_empty()
    });
    let first = &ended_runs_of(&s, "files")[0];
    assert_eq!(
        s.logged(first["id"].as_str().unwrap(), "sink"),
        vec![
            json!({"order": 1}),
            json!({"order": 2}),
            json!({"order": 3})
        ]
    );
    append("{\"order\":4}\n{\"order\":5}\n");
    wait_for(WAIT, "the second run", || {
        ended_runs_of(&s, "files").len() >= 2
    });
    let second = &ended_runs_of(&s, "files")[1];
    assert_eq!(
        s.logged(second["id"].as_str().unwrap(), "sink"),
        vec![json!({"order": 4}), json!({"order": 5})]
    );
    // A folder outside the mount roots is refused.
    let bad = "name: badfiles\ntriggers:\n  - file: { path: /etc }\nsteps:\n  - id: gen\n    \
               plugin: generator@latest\n  - id: sink\n    plugin: log-sink@latest\n    input: gen\n";
    let r = s.apply(&s.admin, "badfiles", bad);
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("triggers[0].file.path: "),
        "{}",
        r.text()
    );
}
