//! `message-sink`, the one sink behind `nats-sink` and `redis-sink`, against the machine's real
//! NATS JetStream and Redis through a real server: the connection's URL picks the service, the
//! config names the destination as `subject` or `stream`, and the old names keep their configs.
//! Services as in [`super::integrations`] (a service that is down skips the test, unless
//! `AUTOFLOW_REQUIRE_SERVICES=1`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use async_nats::jetstream::{self, stream};
use autoflow_tests::server::{Backend, Server};
use serde_json::Value;

use super::integrations::{LOOPBACK, nats_url, ok, redis_url, run_ok, runtime, service, unique};

/// A pipeline `name`: 25 generated orders -> `plugin` on connection `to` (at `url`) with
/// `destination` (`subject: x` or `stream: x`).
fn pipeline(name: &str, plugin: &str, url: &str, destination: &str) -> String {
    let config = match destination {
        "" => "connection: to".to_string(),
        d => format!("connection: to, {d}"),
    };
    format!(
        "name: {name}\nconnections:\n  to: {{ url: \"{url}\" }}\nsteps:\n  - id: gen\n    plugin: generator@latest\n    \
         config: {{ count: 25 }}\n  - id: out\n    plugin: {plugin}\n    input: gen\n    connections: [to]\n    \
         config: {{ {config} }}\n"
    )
}

/// The `messages_published` counter of step `out` in `run`'s report.
fn published(run: &Value) -> u64 {
    let steps = run["report"]["steps"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let out = steps.iter().find(|s| s["id"] == "out").unwrap();
    out["counters"]["messages_published"].as_u64().unwrap_or(0)
}

#[test]
fn message_sink_publishes_to_nats_or_redis_as_the_connection_says() {
    let rt = runtime();
    let Some(nats) = service("NATS", rt.block_on(async_nats::connect(nats_url()))) else {
        return;
    };
    let Some(redis) = service("Redis", redis::Client::open(redis_url())) else {
        return;
    };
    let Some(mut conn) = service(
        "Redis",
        rt.block_on(redis.get_multiplexed_async_connection()),
    ) else {
        return;
    };
    let Some(s) = Server::start_with(Backend::Sqlite, &["--egress-allow-private", LOOPBACK]) else {
        return;
    };
    let name = unique("af_sink");
    let (stream_name, subject) = (name.to_uppercase(), format!("{name}.out"));
    let js = jetstream::new(nats);
    rt.block_on(js.create_stream(stream::Config {
        name: stream_name.clone(),
        subjects: vec![subject.clone()],
        ..Default::default()
    }))
    .unwrap();

    // A NATS connection: each record is a message on the subject, stored by the stream.
    let to_nats = pipeline(
        "to-nats",
        "message-sink@latest",
        &nats_url(),
        &format!("subject: {subject}"),
    );
    ok(&s.apply(&s.admin, "to-nats", &to_nats), "apply to-nats");
    let run = run_ok(&s, "to-nats");
    assert_eq!(published(&run), 25, "{run}");
    let (stored, first) = rt.block_on(async {
        let mut stream = js.get_stream(&stream_name).await.unwrap();
        let stored = stream.info().await.unwrap().state.messages;
        let first = stream.get_raw_message(1).await.unwrap();
        (stored, first)
    });
    assert_eq!(stored, 25);
    assert_eq!(first.subject.as_str(), subject);
    let order: Value = serde_json::from_slice(&first.payload).unwrap();
    assert!(
        order.is_object(),
        "the record's JSON value is the payload: {order}"
    );

    // A Redis connection: each record is an entry of the stream, `stream` naming its key.
    let to_redis = pipeline(
        "to-redis",
        "message-sink@latest",
        &redis_url(),
        &format!("stream: {name}"),
    );
    ok(&s.apply(&s.admin, "to-redis", &to_redis), "apply to-redis");
    let run = run_ok(&s, "to-redis");
    assert_eq!(published(&run), 25, "{run}");
    let len: i64 = rt
        .block_on(redis::cmd("XLEN").arg(&name).query_async(&mut conn))
        .unwrap();
    assert_eq!(len, 25);
    let entries: redis::streams::StreamRangeReply = rt
        .block_on(
            redis::cmd("XRANGE")
                .arg(&name)
                .arg("-")
                .arg("+")
                .query_async(&mut conn),
        )
        .unwrap();
    let payload: String = entries.ids[0].get("payload").unwrap();
    assert!(payload.starts_with('{'), "{payload}");

    // One destination, named either way: both, or neither, is refused when applied.
    for destination in [format!("subject: {subject}, stream: {name}"), String::new()] {
        let bad = pipeline("bad", "message-sink@latest", &redis_url(), &destination);
        let r = s.apply(&s.admin, "bad", &bad);
        assert_eq!(r.status, 422, "{destination}: {}", r.text());
        assert!(r.text().contains("steps[1].config"), "{}", r.text());
    }
    // The old names keep their own configs: `nats-sink` takes a subject, not a stream.
    let old = pipeline(
        "old",
        "nats-sink@latest",
        &nats_url(),
        &format!("stream: {name}"),
    );
    let r = s.apply(&s.admin, "old", &old);
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(r.text().contains("steps[1].config"), "{}", r.text());

    rt.block_on(async {
        js.delete_stream(&stream_name).await.unwrap();
        let _: () = redis::cmd("DEL")
            .arg(&name)
            .query_async(&mut conn)
            .await
            .unwrap();
    });
}
