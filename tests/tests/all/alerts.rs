//! Alerts against real server processes on both databases, receivers on loopback: a failing
//! run sends one signed webhook (its signature checked here, independently of the server's
//! code), further failing runs send nothing new, the next success sends `resolved`; a receiver
//! that answers 500 three times gets retries until it takes it, with the history visible; a
//! delivery that keeps failing ends `failed`, visible; a server SIGKILLed in the middle of the
//! first delivery attempt delivers it once after its restart; a Slack-shaped body and a test send;
//! a channel over its rate (`max_per_hour`) holds further deliveries back, pending and visible;
//! `/metrics` counts the delivery attempts by outcome;
//! a `rejected_over` rule fires above its threshold and not below; an `sla_missed` rule fires
//! at its deadline while a slow run goes on, and its success resolves it; a `schedule_lag`
//! rule fires on slots skipped behind a slow run and resolves on one that starts in time, and so
//! does the tenant's own rule over it; bad rules are 422s; a
//! signed webhook trigger queues one run per delivery id, an unsigned or badly signed one none,
//! and its body (JSON lines, an array or a document) is the run's input, fed to its
//! `trigger-source` step; a run's parameters reach its steps' configs, and bad ones are named.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use std::time::Duration;

use autoflow_tests::guests;
use autoflow_tests::http_server::{Received, Reply, TestServer};
use autoflow_tests::server::{Server, wait_for};
use autoflow_tests::smtp_server::SmtpServer;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The servers' flags: loopback receivers allowed, mounts under one root, quick retries.
pub(crate) fn flags() -> Vec<String> {
    let root = root();
    vec![
        "--egress-allow-private".into(),
        "127.0.0.1".into(),
        "--mount-root".into(),
        root.display().to_string(),
        "--alert-retry-ms".into(),
        "100".into(),
        "--alert-max-attempts".into(),
        "5".into(),
    ]
}

pub(crate) fn root() -> std::path::PathBuf {
    let root = std::env::temp_dir().join("autoflow-alert-tests");
    std::fs::create_dir_all(&root).unwrap();
    root
}

pub(crate) const WAIT: Duration = Duration::from_secs(60);

/// HMAC-SHA256, written here from RFC 2104 so that the test does not trust the server's own.
fn hmac(key: &[u8], message: &[u8]) -> String {
    let mut k = [0u8; 64];
    k[..key.len()].copy_from_slice(key);
    let inner = Sha256::new()
        .chain_update(k.map(|b| b ^ 0x36))
        .chain_update(message)
        .finalize();
    let outer = Sha256::new()
        .chain_update(k.map(|b| b ^ 0x5c))
        .chain_update(inner)
        .finalize();
    outer.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks `r`'s `Autoflow-Signature` (`t=..,v1=..`) against `secret`; its body as JSON.
pub(crate) fn verified(r: &Received, secret: &str) -> Value {
    let header = r
        .header("autoflow-signature")
        .unwrap_or_else(|| panic!("no signature: {:?}", r.headers));
    let (mut t, mut v1) = (None, None);
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", x)) => t = Some(x.to_string()),
            Some(("v1", x)) => v1 = Some(x.to_string()),
            _ => {}
        }
    }
    let t = t.expect("t=");
    let now = autoflow::store::now_ms() / 1000;
    assert!(
        (now - t.parse::<i64>().unwrap()).abs() < 300,
        "timestamp {t} far from now"
    );
    let mut signed = format!("{t}.").into_bytes();
    signed.extend_from_slice(&r.body);
    assert_eq!(
        v1.as_deref(),
        Some(hmac(secret.as_bytes(), &signed).as_str())
    );
    assert_ne!(
        hmac(b"wrong", &signed),
        v1.unwrap(),
        "another key gives another signature"
    );
    serde_json::from_slice(&r.body).unwrap()
}

pub(crate) fn put_channel(s: &Server, name: &str, body: Value) -> autoflow_tests::server::Resp {
    s.call(
        "PUT",
        &format!("/v1/channels/{name}"),
        Some(&s.admin),
        Some(("application/json", body.to_string().into_bytes())),
    )
}

/// gen (2 records) -> gate (fails while `dir/open` is missing) -> log-sink, with `alerts`.
fn gated(s: &Server, name: &str, dir: &std::path::Path, alerts: &str) {
    gated_with(s, name, dir, &format!("alerts:\n{alerts}"));
}

/// gen (2 records) -> gate (fails while `dir/open` is missing) -> log-sink, then `extra`
/// (top-level YAML).
pub(crate) fn gated_with(s: &Server, name: &str, dir: &std::path::Path, extra: &str) {
    let r = s.push(
        &s.admin,
        "gate",
        "1.0.0",
        std::fs::read(guests::GATE).unwrap(),
    );
    assert!(r.status == 201 || r.status == 200, "{}", r.text());
    let yaml = format!(
        "name: {name}\nsteps:\n  - id: gen\n    plugin: generator@latest\n    config: {{ count: 2 }}\n  \
         - id: gate\n    plugin: gate@latest\n    input: gen\n    config: {{ path: /gate/open }}\n    \
         mounts: [{{ host: {}, guest: /gate }}]\n  - id: sink\n    plugin: log-sink@latest\n    input: gate\n\
         {extra}",
        dir.display()
    );
    let r = s.apply(&s.admin, name, &yaml);
    assert!(r.status == 201 || r.status == 200, "{}", r.text());
}

pub(crate) fn alerts(s: &Server, pipeline: &str) -> Vec<Value> {
    let r = s.get(&format!("/v1/alerts?pipeline={pipeline}"));
    assert_eq!(r.status, 200, "{}", r.text());
    r.json().as_array().unwrap().clone()
}

fn deliveries(s: &Server, alert: &str) -> Vec<Value> {
    let r = s.get(&format!("/v1/alerts/{alert}/deliveries"));
    assert_eq!(r.status, 200, "{}", r.text());
    r.json().as_array().unwrap().clone()
}

fn wait_delivery(s: &Server, alert: &str, status: &str) -> Vec<Value> {
    let mut got = Vec::new();
    wait_for(WAIT, &format!("alert {alert} {status}"), || {
        got = deliveries(s, alert);
        got.iter().all(|d| d["status"] == status)
    });
    got
}

fn a_failing_run_sends_one_signed_webhook_and_the_next_success_resolves_it(s: &mut Server) {
    let receiver = TestServer::start(|_, _| Reply::status(204));
    let r = put_channel(
        s,
        "ops",
        json!({"type": "webhook", "url": receiver.url("/hooks/autoflow?token=abc"), "secret": "s3cret"}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let shown = s.get("/v1/channels/ops");
    assert_eq!(shown.status, 200);
    assert_eq!(shown.json()["type"], "webhook");
    assert_eq!(
        shown.json()["target"],
        format!("http://127.0.0.1:{}", receiver.port)
    );
    let listed = s.get("/v1/channels").text();
    for secret in ["s3cret", "token=abc", "/hooks"] {
        assert!(
            !listed.contains(secret) && !shown.text().contains(secret),
            "{listed}"
        );
    }
    let gate = tempfile::tempdir_in(root()).unwrap();
    gated(
        s,
        "flaky",
        gate.path(),
        "  - { when: run_failed, channels: [ops], severity: critical }\n",
    );
    let first = s.run_and_wait(&s.admin, "flaky", None);
    assert_eq!(first["status"], "failed", "{first}");
    let got = receiver.wait_for(1, WAIT);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].method, "POST");
    assert_eq!(got[0].path, "/hooks/autoflow?token=abc");
    let body = verified(&got[0], "s3cret");
    assert_eq!(body["state"], "firing", "{body}");
    assert_eq!(body["type"], "alert.firing");
    assert_eq!(body["rule"], "run_failed");
    assert_eq!(body["severity"], "critical");
    assert_eq!(body["pipeline"], "flaky");
    assert_eq!(body["run"]["id"], first["id"]);
    assert!(
        body["run"]["url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/v1/runs/{}", first["id"].as_str().unwrap())),
        "{body}"
    );
    assert_eq!(body["step"], "gate");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("the gate /gate/open is closed"),
        "{body}"
    );
    let alert_id = body["id"].as_str().unwrap().to_string();
    assert_eq!(got[0].header("autoflow-alert"), Some(alert_id.as_str()));
    // Five more failing runs: the incident is open, nothing new is written or sent.
    for _ in 0..5 {
        assert_eq!(s.run_and_wait(&s.admin, "flaky", None)["status"], "failed");
    }
    let listed = alerts(s, "flaky");
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["id"], alert_id.as_str());
    // The next success resolves it: one `resolved`, naming the incident.
    std::fs::write(gate.path().join("open"), b"").unwrap();
    let passed = s.run_and_wait(&s.admin, "flaky", None);
    assert_eq!(passed["status"], "succeeded", "{passed}");
    let got = receiver.wait_for(2, WAIT);
    assert_eq!(got.len(), 2, "{got:?}");
    let resolved = verified(&got[1], "s3cret");
    assert_eq!(resolved["state"], "resolved", "{resolved}");
    assert_eq!(resolved["incident"], alert_id.as_str());
    assert_eq!(resolved["run"]["id"], passed["id"]);
    assert_ne!(
        got[0].header("autoflow-delivery"),
        got[1].header("autoflow-delivery")
    );
    // Another success: nothing more.
    assert_eq!(
        s.run_and_wait(&s.admin, "flaky", None)["status"],
        "succeeded"
    );
    let listed = alerts(s, "flaky");
    assert_eq!(listed.len(), 2, "{listed:?}");
    let history = wait_delivery(s, &alert_id, "delivered");
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["channel"], "ops");
    assert_eq!(history[0]["attempts"], 1);
    assert_eq!(history[0]["history"][0]["http_status"], 204);
    assert_eq!(receiver.requests().len(), 2);
}

fn a_receiver_that_fails_three_times_gets_retries_and_one_that_keeps_failing_is_visible(
    s: &mut Server,
) {
    let flaky = TestServer::start(|_, i| {
        if i < 3 {
            Reply::json(500, &json!({"error": "busy"}))
        } else {
            Reply::status(200)
        }
    });
    let broken = TestServer::start(|_, _| Reply::status(503));
    for (name, url) in [("flaky", flaky.url("/")), ("broken", broken.url("/"))] {
        let r = put_channel(s, name, json!({"type": "webhook", "url": url}));
        assert_eq!(r.status, 201, "{}", r.text());
        assert!(
            r.json()["secret"].as_str().unwrap().starts_with("whsec_"),
            "a made-up secret is shown once: {}",
            r.text()
        );
        assert!(s.get(&format!("/v1/channels/{name}")).json()["secret"].is_null());
    }
    let gate = tempfile::tempdir_in(root()).unwrap();
    gated(
        s,
        "down",
        gate.path(),
        "  - { when: run_failed, channels: [flaky, broken] }\n",
    );
    assert_eq!(s.run_and_wait(&s.admin, "down", None)["status"], "failed");
    let got = flaky.wait_for(4, WAIT);
    assert_eq!(got.len(), 4);
    let ids: Vec<_> = got.iter().map(|r| r.header("autoflow-delivery")).collect();
    assert!(ids.iter().all(|i| i.is_some() && *i == ids[0]), "{ids:?}");
    let alert = alerts(s, "down")[0]["id"].as_str().unwrap().to_string();
    let mut all = Vec::new();
    wait_for(WAIT, "both deliveries settled", || {
        all = deliveries(s, &alert);
        all.iter().all(|d| d["status"] != "pending")
    });
    let by = |name: &str| all.iter().find(|d| d["channel"] == name).unwrap().clone();
    let ok = by("flaky");
    assert_eq!(ok["status"], "delivered", "{ok}");
    assert_eq!(ok["attempts"], 4);
    let codes: Vec<_> = ok["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["http_status"].clone())
        .collect();
    assert_eq!(codes, [json!(500), json!(500), json!(500), json!(200)]);
    assert_eq!(ok["history"][0]["response"], "{\"error\":\"busy\"}");
    assert_eq!(ok["history"][0]["error"], "the receiver answered 500");
    let failed = by("broken");
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["attempts"], 5);
    assert_eq!(failed["last_error"], "the receiver answered 503");
    assert_eq!(broken.requests().len(), 5);
    // The retries backed off: 100, 200, 400 ms at least between the flaky receiver's tries.
    let at: Vec<i64> = ok["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["at"].as_i64().unwrap())
        .collect();
    for (w, min) in at.windows(2).zip([100, 200, 400]) {
        assert!(w[1] - w[0] >= min, "{at:?}");
    }
    assert_eq!(
        alerts(s, "down")[0]["deliveries"].as_array().unwrap().len(),
        2
    );
    // The metrics count the same attempts.
    for (channel, outcome, n) in [
        ("flaky", "retry", 3.0),
        ("flaky", "delivered", 1.0),
        ("broken", "retry", 4.0),
        ("broken", "failed", 1.0),
    ] {
        let got = metric(s, "autoflow_alert_deliveries_total", &[channel, outcome]);
        assert_eq!(got, n, "{channel} {outcome}");
    }
    let timed = metric(s, "autoflow_alert_delivery_seconds_count", &["flaky"]);
    assert_eq!(timed, 4.0);
}

/// The sum of the `name{...}` samples of the server's `/metrics` whose labels hold each of
/// `values` (as `="value"`).
fn metric(s: &Server, name: &str, values: &[&str]) -> f64 {
    let text = s.get("/metrics").text();
    text.lines()
        .filter_map(|l| l.strip_prefix(name)?.strip_prefix('{'))
        .filter(|l| values.iter().all(|v| l.contains(&format!("=\"{v}\""))))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

fn an_alert_outlives_a_sigkill_between_the_runs_end_and_its_delivery(s: &mut Server) {
    // The receiver is blocked at first: it accepts the connection and never answers, so the
    // server is killed in the middle of the first attempt, which it never records.
    let blocker = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = blocker.local_addr().unwrap().port();
    let (held_tx, held) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (stream, _) = blocker.accept().unwrap();
        held_tx.send(stream).unwrap();
        // The listener is dropped here: the port is free for the real receiver.
    });
    let r = put_channel(
        s,
        "later",
        json!({"type": "webhook", "url": format!("http://127.0.0.1:{port}/in"), "secret": "k"}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let gate = tempfile::tempdir_in(root()).unwrap();
    gated(
        s,
        "crashy",
        gate.path(),
        "  - { when: run_failed, channels: [later] }\n",
    );
    let run = s.run_and_wait(&s.admin, "crashy", None);
    assert_eq!(run["status"], "failed");
    let stream = held
        .recv_timeout(WAIT)
        .expect("the first attempt to connect");
    let alert = alerts(s, "crashy")[0]["id"].as_str().unwrap().to_string();
    let before = deliveries(s, &alert);
    assert_eq!(before[0]["status"], "pending", "{before:?}");
    assert_eq!(before[0]["attempts"], 0, "{before:?}");
    s.kill();
    drop(stream);
    let receiver = TestServer::start_on(port, |_, _| Reply::status(200));
    s.resume();
    let after = wait_delivery(s, &alert, "delivered");
    let got = receiver.requests();
    assert_eq!(got.len(), 1, "delivered once: {got:?}");
    let body = verified(&got[0], "k");
    assert_eq!(body["id"], alert.as_str());
    assert_eq!(body["run"]["id"], run["id"]);
    let history = after[0]["history"].as_array().unwrap();
    assert_eq!(history.len(), 1, "{history:?}");
    assert_eq!(history[0]["http_status"], 200);
}

fn a_slack_channel_gets_blocks_and_a_test_send(s: &mut Server) {
    let slack =
        TestServer::start(|_, _| Reply::status(200).with_header("content-type", "text/plain"));
    let r = put_channel(
        s,
        "team",
        json!({"type": "slack", "url": slack.url("/services/T000/B000/XXXX")}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert!(r.json()["secret"].is_null());
    let tested = s.call("POST", "/v1/channels/team/test", Some(&s.admin), None);
    assert_eq!(tested.status, 200, "{}", tested.text());
    assert_eq!(tested.json()["delivered"], true, "{}", tested.text());
    assert_eq!(tested.json()["http_status"], 200);
    let got = slack.wait_for(1, WAIT);
    let test: Value = serde_json::from_slice(&got[0].body).unwrap();
    assert!(
        test["text"]
            .as_str()
            .unwrap()
            .contains("a test of channel team"),
        "{test}"
    );
    let gate = tempfile::tempdir_in(root()).unwrap();
    gated(
        s,
        "loud",
        gate.path(),
        "  - { when: run_failed, channels: [team], severity: warning }\n",
    );
    let run = s.run_and_wait(&s.admin, "loud", None);
    let id = run["id"].as_str().unwrap();
    let got = slack.wait_for(2, WAIT);
    assert_eq!(got[1].path, "/services/T000/B000/XXXX");
    assert_eq!(got[1].header("content-type"), Some("application/json"));
    let body: Value = serde_json::from_slice(&got[1].body).unwrap();
    assert!(
        body["text"]
            .as_str()
            .unwrap()
            .contains("pipeline loud: the run failed"),
        "{body}"
    );
    let blocks = body["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    let fields: Vec<&str> = blocks[1]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["text"].as_str().unwrap())
        .collect();
    assert!(fields.contains(&"*Pipeline*\nloud (v1)"), "{fields:?}");
    assert!(fields.contains(&"*Step*\ngate"), "{fields:?}");
    assert!(
        fields.contains(&"*Rule*\nrun_failed (warning)"),
        "{fields:?}"
    );
    assert!(
        fields.iter().any(
            |f| f.starts_with("*Run*\n<http://") && f.contains(&format!("/v1/runs/{id}|{id}>"))
        ),
        "{fields:?}"
    );
    assert!(
        blocks[2]["text"]["text"]
            .as_str()
            .unwrap()
            .contains("the gate /gate/open is closed"),
        "{body}"
    );
    let button = &blocks[3]["elements"][0];
    assert!(
        button["url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/v1/runs/{id}")),
        "{body}"
    );
    // Channel URLs obey the egress policy: a private address the operator did not allow
    // (only 127.0.0.1 is) is refused, and so is a URL that is not http(s).
    let r = put_channel(
        s,
        "bad",
        json!({"type": "webhook", "url": "http://10.1.2.3:8080/x"}),
    );
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(
        r.json()["message"].as_str().unwrap().contains(
            "url: 10.1.2.3 is a private address; the operator can allow it with --egress-allow-private 10.1.2.3:8080"
        ),
        "{}",
        r.text()
    );
    let r = put_channel(
        s,
        "bad",
        json!({"type": "slack", "url": "ftp://example.com/x"}),
    );
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(
        r.json()["message"].as_str().unwrap().starts_with("url:"),
        "{}",
        r.text()
    );
    let r = put_channel(
        s,
        "bad",
        json!({"type": "pager", "url": "https://example.com"}),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(s.get("/v1/channels/bad").status, 404);
    assert_eq!(
        s.call("DELETE", "/v1/channels/team", Some(&s.admin), None)
            .status,
        200
    );
    assert_eq!(s.get("/v1/channels/team").status, 404);
}

fn a_rejected_over_rule_fires_above_its_threshold_and_not_below(s: &mut Server) {
    let receiver = TestServer::start(|_, _| Reply::status(200));
    let r = put_channel(
        s,
        "dq",
        json!({"type": "webhook", "url": receiver.url("/"), "secret": "dq"}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let data = tempfile::tempdir_in(root()).unwrap();
    let write = |broken: usize| {
        let mut text = String::new();
        for i in 0..10 {
            if i < broken {
                text.push_str(&format!("broken {i}\n"));
            } else {
                text.push_str(&format!("{{\"id\":{i}}}\n"));
            }
        }
        // Appended: file-source resumes at its cursor, so each run reads the ten new lines.
        use std::io::Write;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(data.path().join("in.jsonl"))
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    };
    let yaml = |alerts: &str| {
        format!(
            "name: quality\nsteps:\n  - id: read\n    plugin: file-source@latest\n    config: {{ path: /in/in.jsonl }}\n    \
             mounts: [{{ host: {}, guest: /in }}]\n  - id: json\n    plugin: json-filter@latest\n    input: read\n    \
             config: {{ field: id, op: exists }}\n  - id: out\n    plugin: log-sink@latest\n    input: json\n\
             alerts:\n{alerts}",
            data.path().display()
        )
    };
    // Bad rules: 422 naming the field, nothing stored.
    for (rules, message) in [
        (
            "  - { when: run_exploded, channels: [dq] }\n",
            "alerts[0].when: unknown variant `run_exploded`",
        ),
        (
            "  - { when: run_failed, channels: [nope] }\n",
            "alerts[0].channels[0]: no channel \"nope\" in the tenant",
        ),
        (
            "  - { when: rejected_over, channels: [dq] }\n",
            "alerts[0].max_rejected: rejected_over needs max_rejected or max_rejected_ratio",
        ),
        (
            "  - { when: run_failed, channels: [dq], max_duration_ms: 5 }\n",
            "alerts[0].max_duration_ms: only for when: duration_over",
        ),
    ] {
        let r = s.apply(&s.admin, "quality", &yaml(rules));
        assert_eq!(r.status, 422, "{rules}: {}", r.text());
        let got = r.json()["message"].as_str().unwrap().to_string();
        assert!(got.contains(message), "{rules}: {got}");
        assert_eq!(s.get("/v1/pipelines/quality").status, 404);
    }
    let r = s.apply(
        &s.admin,
        "quality",
        &yaml("  - { when: rejected_over, channels: [dq], max_rejected_ratio: 0.2 }\n  - { when: zero_records, channels: [dq] }\n"),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    // 1 of 10 rejected: below the ratio, no alert.
    write(1);
    let run = s.run_and_wait(&s.admin, "quality", None);
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(alerts(s, "quality").len(), 0);
    // 5 of 10: above it.
    write(5);
    let run = s.run_and_wait(&s.admin, "quality", None);
    assert_eq!(run["status"], "succeeded", "{run}");
    let listed = alerts(s, "quality");
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["rule"], "rejected_over");
    assert_eq!(listed[0]["state"], "firing");
    let got = receiver.wait_for(1, WAIT);
    let body = verified(&got[0], "dq");
    assert_eq!(body["rule"], "rejected_over");
    assert!(
        body["summary"]
            .as_str()
            .unwrap()
            .contains("5 of 10 records rejected (over a ratio of 0.2)"),
        "{body}"
    );
    // 10 of 10: still firing (no new alert), and now zero records written fires too.
    write(10);
    s.run_and_wait(&s.admin, "quality", None);
    let listed = alerts(s, "quality");
    assert_eq!(
        listed
            .iter()
            .map(|a| a["rule"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["zero_records", "rejected_over"]
    );
    // Back below: both resolve.
    write(0);
    s.run_and_wait(&s.admin, "quality", None);
    let listed = alerts(s, "quality");
    assert_eq!(listed.len(), 4, "{listed:?}");
    assert!(
        listed[..2].iter().all(|a| a["state"] == "resolved"),
        "{listed:?}"
    );
    receiver.wait_for(4, WAIT);
}

fn a_signed_webhook_trigger_queues_one_run_per_delivery(s: &mut Server) {
    let r = s.call(
        "PUT",
        "/v1/secrets/hook-key",
        Some(&s.admin),
        Some((
            "application/json",
            json!({"value": "hk"}).to_string().into_bytes(),
        )),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let yaml = "name: hooked\nsteps:\n  - id: gen\n    plugin: generator@latest\n    config: { count: 1 }\n  \
                - id: sink\n    plugin: log-sink@latest\n    input: gen\ntriggers:\n  - webhook: { secret: hook-key }\n";
    let r = s.apply(&s.admin, "hooked", yaml);
    assert_eq!(r.status, 201, "{}", r.text());
    let body = br#"{"event":"push"}"#.to_vec();
    let now = autoflow::store::now_ms() / 1000;
    let signed = |key: &[u8], t: i64| {
        let mut m = format!("{t}.").into_bytes();
        m.extend_from_slice(&body);
        format!("t={t},v1={}", hmac(key, &m))
    };
    let post = |headers: &[(&str, &str)]| {
        s.call_with(
            "POST",
            "/v1/hooks/default/hooked",
            None,
            Some(("application/json", body.clone())),
            headers,
        )
    };
    let runs = || {
        s.get("/v1/pipelines/hooked/runs")
            .json()
            .as_array()
            .unwrap()
            .len()
    };
    let good = signed(b"hk", now);
    let wrong_key = signed(b"nope", now);
    let stale = signed(b"hk", now - 3600);
    for (headers, why) in [
        (vec![], "no Autoflow-Signature header"),
        (
            vec![("autoflow-signature", wrong_key.as_str())],
            "the signature does not match",
        ),
        (
            vec![("autoflow-signature", stale.as_str())],
            "timestamp is more than 300 s from now",
        ),
    ] {
        let r = post(&headers);
        assert_eq!(r.status, 401, "{}", r.text());
        assert!(
            r.json()["message"].as_str().unwrap().contains(why),
            "{}",
            r.text()
        );
    }
    assert_eq!(runs(), 0, "a refused request queues nothing");
    let first = post(&[("autoflow-signature", &good), ("autoflow-delivery", "d-1")]);
    assert_eq!(first.status, 202, "{}", first.text());
    let again = post(&[("autoflow-signature", &good), ("autoflow-delivery", "d-1")]);
    assert_eq!(again.status, 202, "{}", again.text());
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.json()["id"], first.json()["id"]);
    let other = post(&[("autoflow-signature", &good), ("autoflow-delivery", "d-2")]);
    assert_eq!(other.status, 202);
    assert_ne!(other.json()["id"], first.json()["id"]);
    assert_eq!(runs(), 2);
    let run = s.wait_run(&s.admin, first.json()["id"].as_str().unwrap());
    assert_eq!(run["status"], "succeeded", "{run}");
    let r = s.call_with(
        "POST",
        "/v1/hooks/default/nothing",
        None,
        Some(("application/json", body.clone())),
        &[("autoflow-signature", &good)],
    );
    assert_eq!(r.status, 404, "{}", r.text());
}

fn a_webhook_triggers_body_is_the_runs_input(s: &mut Server) {
    let r = s.call(
        "PUT",
        "/v1/secrets/intake-key",
        Some(&s.admin),
        Some((
            "application/json",
            json!({"value": "ik"}).to_string().into_bytes(),
        )),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let yaml = "name: intake\nsteps:\n  - id: in\n    plugin: trigger-source@latest\n  \
                - id: sink\n    plugin: log-sink@latest\n    input: in\n\
                triggers:\n  - webhook: { secret: intake-key }\n";
    let r = s.apply(&s.admin, "intake", yaml);
    assert_eq!(r.status, 201, "{}", r.text());
    let post = |body: &[u8], delivery: &str| {
        let t = autoflow::store::now_ms() / 1000;
        let mut m = format!("{t}.").into_bytes();
        m.extend_from_slice(body);
        let signature = format!("t={t},v1={}", hmac(b"ik", &m));
        s.call_with(
            "POST",
            "/v1/hooks/default/intake",
            None,
            Some(("application/x-ndjson", body.to_vec())),
            &[
                ("autoflow-signature", &signature),
                ("autoflow-delivery", delivery),
            ],
        )
    };
    let runs = || {
        s.get("/v1/pipelines/intake/runs")
            .json()
            .as_array()
            .unwrap()
            .len()
    };
    // JSON lines: one record per line, handed on as written (compact).
    let lines =
        b"{\"order\": 1, \"sku\": \"a\"}\n{\"order\": 2}\n\n{\"order\": 3, \"tags\": [\"x\"]}\n";
    let r = post(lines, "lines");
    assert_eq!(r.status, 202, "{}", r.text());
    let run = s.wait_run(&s.admin, r.json()["id"].as_str().unwrap());
    assert_eq!(run["status"], "succeeded", "{run}");
    let id = run["id"].as_str().unwrap();
    assert_eq!(
        s.logged(id, "sink"),
        vec![
            json!({"order": 1, "sku": "a"}),
            json!({"order": 2}),
            json!({"order": 3, "tags": ["x"]})
        ]
    );
    let steps = run["report"]["steps"].as_array().unwrap();
    let fed = steps.iter().find(|st| st["id"] == "in").unwrap();
    assert_eq!(fed["records_out"], 3, "{run}");
    // An array: one record per element; a single document: one record.
    for (body, want) in [
        (
            &b"[{\"n\": 1}, {\"n\": 2}]"[..],
            vec![json!({"n": 1}), json!({"n": 2})],
        ),
        (&b"{\"n\": 9}"[..], vec![json!({"n": 9})]),
    ] {
        let r = post(body, &format!("d-{}", body.len()));
        assert_eq!(r.status, 202, "{}", r.text());
        let run = s.wait_run(&s.admin, r.json()["id"].as_str().unwrap());
        assert_eq!(run["status"], "succeeded", "{run}");
        assert_eq!(s.logged(run["id"].as_str().unwrap(), "sink"), want);
    }
    // A body that is not JSON is refused, naming its line, and queues nothing.
    let before = runs();
    let r = post(b"{\"ok\": 1}\n{\"broken\": \n", "bad");
    assert_eq!(r.status, 422, "{}", r.text());
    let message = r.json()["message"].as_str().unwrap().to_string();
    assert!(message.starts_with("line 2 of the JSON lines"), "{message}");
    assert_eq!(runs(), before, "a refused body queues nothing");
    // The input is sealed at rest: the database does not hold it in clear text.
    let sealed = s.column_bytes("SELECT sealed FROM run_inputs");
    assert_eq!(sealed.len(), 3, "one input per accepted delivery");
    assert!(
        sealed.iter().all(|v| !v.windows(5).any(|w| w == b"order")),
        "the input is sealed in the database"
    );
    // The API's trigger takes records too; without them the step gets none.
    let body = json!({"input": [{"via": "api"}]}).to_string().into_bytes();
    let r = s.call(
        "POST",
        "/v1/pipelines/intake/runs",
        Some(&s.admin),
        Some(("application/json", body)),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let run = s.wait_run(&s.admin, r.json()["id"].as_str().unwrap());
    assert_eq!(
        s.logged(run["id"].as_str().unwrap(), "sink"),
        vec![json!({"via": "api"})]
    );
    let run = s.run_and_wait(&s.admin, "intake", None);
    assert_eq!(run["status"], "succeeded", "{run}");
    assert!(s.logged(run["id"].as_str().unwrap(), "sink").is_empty());
}

fn a_run_takes_its_parameters_and_a_bad_one_is_named(s: &mut Server) {
    let yaml = "name: sized\nparams:\n  n: { type: integer, default: 2 }\n  tag: { type: string }\n\
                steps:\n  - id: gen\n    plugin: generator@latest\n    config: { count: \"${params.n}\" }\n  \
                - id: sink\n    plugin: log-sink@latest\n    input: gen\n    config: { prefix: \"${params.tag}/${params.n}: \" }\n";
    let r = s.apply(&s.admin, "sized", yaml);
    assert_eq!(r.status, 201, "{}", r.text());
    let trigger = |body: Value| {
        s.call(
            "POST",
            "/v1/pipelines/sized/runs",
            Some(&s.admin),
            Some(("application/json", body.to_string().into_bytes())),
        )
    };
    let r = trigger(json!({"params": {"n": 3, "tag": "eu"}}));
    assert_eq!(r.status, 202, "{}", r.text());
    let run = s.wait_run(&s.admin, r.json()["id"].as_str().unwrap());
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["params"], json!({"n": 3, "tag": "eu"}), "{run}");
    let lines = s.logged(run["id"].as_str().unwrap(), "sink");
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(
        lines
            .iter()
            .all(|l| l.as_str().unwrap().starts_with("eu/3: {")),
        "{lines:?}"
    );
    // Text is read as the parameter's type; the default fills what is not given. (The
    // generator's cursor is at 3 now, so this run emits nothing more.)
    let r = trigger(json!({"params": {"tag": "us", "n": "5"}}));
    assert_eq!(r.status, 202, "{}", r.text());
    let run = s.wait_run(&s.admin, r.json()["id"].as_str().unwrap());
    assert_eq!(run["params"], json!({"n": 5, "tag": "us"}), "{run}");
    let lines = s.logged(run["id"].as_str().unwrap(), "sink");
    assert_eq!(lines.len(), 2, "records 3 and 4 of 5: {lines:?}");
    assert!(
        lines
            .iter()
            .all(|l| l.as_str().unwrap().starts_with("us/5: {")),
        "{lines:?}"
    );
    let r = trigger(json!({"params": {"tag": "x"}}));
    assert_eq!(r.status, 202, "{}", r.text());
    let run = s.wait_run(&s.admin, r.json()["id"].as_str().unwrap());
    assert_eq!(
        run["params"],
        json!({"n": 2, "tag": "x"}),
        "the default: {run}"
    );
    let runs = || {
        s.get("/v1/pipelines/sized/runs")
            .json()
            .as_array()
            .unwrap()
            .len()
    };
    let before = runs();
    for (body, want) in [
        (
            json!({}),
            "params.tag: missing (a string without a default)",
        ),
        (
            json!({"params": {"tag": "eu", "n": "many"}}),
            "params.n: \"many\" is not an integer",
        ),
        (
            json!({"params": {"tag": "eu", "colour": "red"}}),
            "params.colour: the pipeline declares no parameter \"colour\"",
        ),
    ] {
        let r = trigger(body);
        assert_eq!(r.status, 422, "{}", r.text());
        assert_eq!(r.json()["message"], want, "{}", r.text());
    }
    assert_eq!(runs(), before, "a refused trigger queues nothing");
    // A reference to an undeclared parameter, and a scheduled pipeline with a parameter
    // without a default, are refused when applied.
    let r = s.apply(
        &s.admin,
        "typo",
        "name: typo\nsteps:\n  - id: gen\n    plugin: generator@latest\n    config: { count: \"${params.m}\" }\n  \
         - id: sink\n    plugin: log-sink@latest\n    input: gen\n",
    );
    assert_eq!(r.status, 422, "{}", r.text());
    let message = r.json()["message"].as_str().unwrap().to_string();
    assert!(
        message.contains("steps[0].config: ${params.m} names no parameter"),
        "{message}"
    );
    let r = s.apply(
        &s.admin,
        "nightly",
        "name: nightly\nschedule: { cron: \"0 0 3 * * *\" }\nparams:\n  day: { type: date }\nsteps:\n  \
         - id: gen\n    plugin: generator@latest\n  - id: sink\n    plugin: log-sink@latest\n    input: gen\n",
    );
    assert_eq!(r.status, 422, "{}", r.text());
    let message = r.json()["message"].as_str().unwrap().to_string();
    assert!(message.contains("params.day.default: needed"), "{message}");
    // A replay of dead letters runs with the parameters of the run that rejected them.
    let yaml = "name: checked\nparams:\n  tag: { type: string }\nsteps:\n  - id: in\n    plugin: trigger-source@latest\n  \
                - id: check\n    plugin: json-schema@latest\n    input: in\n    config: { schema: { required: [ok] } }\n  \
                - id: sink\n    plugin: log-sink@latest\n    input: check\n    config: { prefix: \"${params.tag}: \" }\n";
    assert_eq!(s.apply(&s.admin, "checked", yaml).status, 201);
    let body = json!({"params": {"tag": "eu"}, "input": [{"ok": 1}, {"no": 2}]});
    let r = s.call(
        "POST",
        "/v1/pipelines/checked/runs",
        Some(&s.admin),
        Some(("application/json", body.to_string().into_bytes())),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let run = s.wait_run(&s.admin, r.json()["id"].as_str().unwrap());
    assert_eq!(
        s.logged(run["id"].as_str().unwrap(), "sink"),
        vec![json!("eu: {\"ok\":1}")]
    );
    let r = s.call(
        "POST",
        "/v1/pipelines/checked/dead-letters/replay",
        Some(&s.admin),
        Some(("application/json", b"{}".to_vec())),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let replayed = s.wait_run(&s.admin, r.json()["id"].as_str().unwrap());
    assert_eq!(replayed["trigger"], "replay", "{replayed}");
    assert_eq!(replayed["params"], json!({"tag": "eu"}), "{replayed}");
}

fn an_email_channel_sends_a_text_and_an_html_part_over_starttls(s: &mut Server) {
    let smtp = SmtpServer::start("alerts", "s3cret");
    let mail = |password: &str, ca: bool| {
        let mut c = json!({
            "type": "email", "host": "127.0.0.1", "port": smtp.port,
            "username": "alerts", "password": password,
            "from": "autoflow@example.com", "to": ["ops@example.com", "oncall@example.com"],
        });
        if ca {
            c["ca_cert"] = json!(smtp.ca_pem);
        }
        c
    };
    let r = put_channel(s, "mail", mail("s3cret", true));
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        r.json()["target"],
        format!("smtp://127.0.0.1:{}", smtp.port)
    );
    let shown = s.get("/v1/channels/mail");
    assert_eq!(shown.json()["type"], "email", "{}", shown.text());
    assert!(!shown.text().contains("s3cret"), "{}", shown.text());
    // A test send: over STARTTLS, authenticated, taken.
    let tested = s.call("POST", "/v1/channels/mail/test", Some(&s.admin), None);
    assert_eq!(tested.status, 200, "{}", tested.text());
    assert_eq!(tested.json()["delivered"], true, "{}", tested.text());
    assert!(
        tested.json()["response"]
            .as_str()
            .unwrap()
            .contains("queued as autoflow-test-001"),
        "{}",
        tested.text()
    );
    let got = smtp.wait_for(1, WAIT);
    assert_eq!(got[0]["tls"], true, "{}", got[0]);
    assert_eq!(got[0]["user"], "alerts");
    assert_eq!(
        got[0]["headers"]["Subject"],
        "[Autoflow] TEST: a test of channel mail"
    );
    // A wrong password, and a server whose CA the channel does not trust: not sent, and why.
    for (name, config, why) in [
        ("wrong", mail("nope", true), "535"),
        ("untrusted", mail("s3cret", false), "TLS with 127.0.0.1"),
    ] {
        assert_eq!(put_channel(s, name, config).status, 201);
        let tested = s.call(
            "POST",
            &format!("/v1/channels/{name}/test"),
            Some(&s.admin),
            None,
        );
        assert_eq!(tested.json()["delivered"], false, "{}", tested.text());
        assert!(
            tested.json()["error"].as_str().unwrap().contains(why),
            "{name}: {}",
            tested.text()
        );
    }
    // A failing run: one e-mail to both recipients, a text and an HTML part, read back by
    // Python's e-mail parser.
    let gate = tempfile::tempdir_in(root()).unwrap();
    gated(
        s,
        "mailed",
        gate.path(),
        "  - { when: run_failed, channels: [mail] }\n",
    );
    let run = s.run_and_wait(&s.admin, "mailed", None);
    let id = run["id"].as_str().unwrap();
    let got = smtp.wait_for(2, WAIT);
    assert_eq!(got.len(), 2, "{got:?}");
    let m = &got[1];
    assert_eq!(m["mail_from"], "autoflow@example.com");
    assert_eq!(
        m["rcpt_tos"],
        json!(["ops@example.com", "oncall@example.com"])
    );
    assert_eq!(m["content_type"], "multipart/alternative");
    assert_eq!(
        m["headers"]["Subject"],
        "[Autoflow] FIRING: pipeline mailed: the run failed"
    );
    assert_eq!(m["headers"]["To"], "ops@example.com, oncall@example.com");
    let alert = alerts(s, "mailed")[0]["id"].as_str().unwrap().to_string();
    assert_eq!(m["headers"]["Autoflow-Alert"], alert.as_str());
    let types: Vec<&str> = m["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["text/plain", "text/html"]);
    let text = m["parts"][0]["text"].as_str().unwrap();
    let html = m["parts"][1]["text"].as_str().unwrap();
    for line in [
        "Pipeline: mailed (v1)",
        "Step: gate",
        "Rule: run_failed (error)",
        "the gate /gate/open is closed",
    ] {
        assert!(text.contains(line), "{line:?} in {text}");
    }
    let link = format!("/v1/runs/{id}");
    assert!(text.contains(&link), "{text}");
    assert!(
        html.contains(&format!("{link}\">{id}</a>"))
            && html.contains("<th align=\"left\">Step</th><td>gate</td>"),
        "{html}"
    );
    let history = wait_delivery(s, &alert, "delivered");
    assert!(
        history[0]["history"][0]["response"]
            .as_str()
            .unwrap()
            .contains("queued as autoflow-test-002"),
        "{history:?}"
    );
    // The next success: "resolved".
    std::fs::write(gate.path().join("open"), b"").unwrap();
    assert_eq!(
        s.run_and_wait(&s.admin, "mailed", None)["status"],
        "succeeded"
    );
    let got = smtp.wait_for(3, WAIT);
    assert_eq!(
        got[2]["headers"]["Subject"],
        "[Autoflow] RESOLVED: pipeline mailed: resolved: run_failed passes again"
    );
    // Bad configurations are 422s naming the field.
    for (config, why) in [
        (
            json!({"type": "email", "host": "127.0.0.1", "from": "a@example.com", "to": []}),
            "to: needs at least one address",
        ),
        (
            json!({"type": "email", "host": "10.1.2.3", "from": "a@example.com", "to": ["b@example.com"]}),
            "host: 10.1.2.3 is a private address",
        ),
        (
            json!({"type": "email", "host": "127.0.0.1", "from": "a@example.com", "to": ["b@example.com"], "username": "u", "password": "p", "tls": "none"}),
            "tls: a password is not sent unencrypted",
        ),
    ] {
        let r = put_channel(s, "bad", config);
        assert_eq!(r.status, 422, "{}", r.text());
        assert!(
            r.json()["message"].as_str().unwrap().contains(why),
            "{}",
            r.text()
        );
    }
}

/// gen (one record) -> slow (`ms` on it) -> log-sink, with `schedule` and `alerts` lines.
pub(crate) fn slow_one(s: &Server, name: &str, ms: u64, schedule: &str, alerts: &str) {
    let r = s.push(
        &s.admin,
        "slow",
        "1.0.0",
        std::fs::read(guests::SLOW).unwrap(),
    );
    assert!(r.status == 201 || r.status == 200, "{}", r.text());
    let yaml = format!(
        "name: {name}\n{schedule}steps:\n  - id: gen\n    plugin: generator@latest\n    config: {{ count: 1 }}\n  \
         - id: slow\n    plugin: slow@latest\n    input: gen\n    config: {{ ms: {ms} }}\n  \
         - id: sink\n    plugin: log-sink@latest\n    input: slow\nalerts:\n{alerts}"
    );
    let r = s.apply(&s.admin, name, &yaml);
    assert!(r.status == 201 || r.status == 200, "{}", r.text());
}

fn an_sla_rule_fires_when_a_slow_run_misses_its_deadline_and_its_success_resolves_it(
    s: &mut Server,
) {
    let receiver = TestServer::start(|_, _| Reply::status(204));
    let r = put_channel(
        s,
        "sla",
        json!({"type": "webhook", "url": receiver.url("/"), "secret": "k"}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    // A deadline 3 s from now (UTC, to the second), away from midnight so that it is today's.
    let day_ms = 86_400_000;
    wait_for(WAIT, "a time away from midnight", || {
        autoflow::store::now_ms() % day_ms < day_ms - 20_000
    });
    let due = autoflow::store::now_ms() + 3_000;
    let secs = due % day_ms / 1000;
    let deadline = format!(
        "{:02}:{:02}:{:02}",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    );
    slow_one(
        s,
        "late",
        6_000,
        "",
        &format!("  - {{ when: sla_missed, deadline: \"{deadline}\", channels: [sla] }}\n"),
    );
    let r = s.call("POST", "/v1/pipelines/late/runs", Some(&s.admin), None);
    assert_eq!(r.status, 202, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_string();
    let got = receiver.wait_for(1, WAIT);
    let fired = verified(&got[0], "k");
    assert_eq!(fired["state"], "firing", "{fired}");
    assert_eq!(fired["rule"], "sla_missed");
    assert_eq!(
        fired["summary"],
        format!("pipeline late: no successful run by {deadline} (UTC) today")
    );
    assert_eq!(
        fired["run"]["id"],
        id.as_str(),
        "it names the run still going"
    );
    assert!(fired["at"].as_i64().unwrap() >= due - 1_000, "{fired}");
    let status = s.get(&format!("/v1/runs/{id}")).json()["status"].clone();
    assert!(
        status == "running" || status == "queued",
        "the deadline passed while the run was going: {status}"
    );
    assert_eq!(s.wait_run(&s.admin, &id)["status"], "succeeded");
    let got = receiver.wait_for(2, WAIT);
    let resolved = verified(&got[1], "k");
    assert_eq!(resolved["state"], "resolved", "{resolved}");
    assert_eq!(resolved["incident"], fired["id"]);
    // The watch keeps looking: the day's deadline is judged once, nothing more is sent.
    let third = s.run_and_wait(&s.admin, "late", None);
    assert_eq!(third["status"], "succeeded");
    assert_eq!(alerts(s, "late").len(), 2);
    // Bad rules are 422s naming the field.
    for (rule, why) in [
        (
            "{ when: sla_missed, channels: [sla] }",
            "alerts[0].deadline: sla_missed needs a deadline",
        ),
        (
            "{ when: sla_missed, deadline: \"25:61\", channels: [sla] }",
            "alerts[0].deadline: \"25:61\" is not a time of day",
        ),
        (
            "{ when: schedule_lag, max_lag_ms: 5, channels: [sla] }",
            "alerts[0].when: schedule_lag needs the pipeline's schedule",
        ),
    ] {
        let yaml = format!(
            "name: badrule\nsteps:\n  - id: gen\n    plugin: generator@latest\n  - id: sink\n    \
             plugin: log-sink@latest\n    input: gen\nalerts:\n  - {rule}\n"
        );
        let r = s.apply(&s.admin, "badrule", &yaml);
        assert_eq!(r.status, 422, "{}", r.text());
        let message = r.json()["message"].as_str().unwrap().to_string();
        assert!(message.contains(why), "{why}: {message}");
    }
}

fn a_schedule_lag_rule_fires_on_a_slot_that_did_not_start_and_resolves_on_one_that_did(
    s: &mut Server,
) {
    let receiver = TestServer::start(|_, _| Reply::status(204));
    let r = put_channel(
        s,
        "lag",
        json!({"type": "webhook", "url": receiver.url("/"), "secret": "k"}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    // The tenant's own rule, judged by the clock on the scheduled pipelines it selects.
    let tenant_receiver = TestServer::start(|_, _| Reply::status(204));
    let channel = json!({"type": "webhook", "url": tenant_receiver.url("/"), "secret": "t"});
    assert_eq!(put_channel(s, "tenant-lag", channel).status, 201);
    let rule = json!({"when": "schedule_lag", "max_lag_ms": 1000, "channels": ["tenant-lag"],
        "pipelines": ["lag*"]});
    let r = s.call(
        "PUT",
        "/v1/alert-rules/lagging",
        Some(&s.admin),
        Some(("application/json", rule.to_string().into_bytes())),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    // A slot every 2 s; the first run takes 5 s, so the next slots are skipped (overlap: skip)
    // and do not start: the rule fires. The runs after it read no record and start in time.
    slow_one(
        s,
        "laggy",
        5_000,
        "schedule: { cron: \"*/2 * * * * *\", overlap: skip }\n",
        "  - { when: schedule_lag, max_lag_ms: 1000, channels: [lag], severity: warning }\n",
    );
    let got = receiver.wait_for(1, WAIT);
    let fired = verified(&got[0], "k");
    assert_eq!(fired["state"], "firing", "{fired}");
    assert_eq!(fired["rule"], "schedule_lag");
    assert_eq!(fired["severity"], "warning");
    assert!(
        fired["summary"]
            .as_str()
            .unwrap()
            .contains("did not start within 1000 ms"),
        "{fired}"
    );
    let got = receiver.wait_for(2, WAIT);
    let resolved = verified(&got[1], "k");
    assert_eq!(resolved["state"], "resolved", "{resolved}");
    assert_eq!(resolved["incident"], fired["id"]);
    let got = tenant_receiver.wait_for(2, WAIT);
    let (fired, resolved) = (verified(&got[0], "t"), verified(&got[1], "t"));
    assert_eq!(fired["rule_name"], "lagging", "{fired}");
    assert_eq!(fired["pipeline"], "laggy");
    assert_eq!(fired["state"], "firing");
    assert_eq!(resolved["state"], "resolved", "{resolved}");
    assert_eq!(resolved["incident"], fired["id"]);
    // The schedule's fires show the skipped slots the rule saw.
    let fires = s.get("/v1/pipelines/laggy/fires").json();
    assert!(
        fires
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["outcome"] == "skipped"),
        "{fires}"
    );
    // Stop the schedule.
    slow_one(
        s,
        "laggy",
        1,
        "",
        "  - { when: run_failed, channels: [lag] }\n",
    );
}

fn a_channel_over_its_rate_holds_its_deliveries_back_visible(s: &mut Server) {
    let receiver = TestServer::start(|_, _| Reply::status(204));
    let r = put_channel(
        s,
        "calm",
        json!({"type": "webhook", "url": receiver.url("/"), "max_per_hour": 2}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["max_per_hour"], 2);
    assert_eq!(s.get("/v1/channels/calm").json()["max_per_hour"], 2);
    // Three pipelines fail: three incidents, three alerts for the channel.
    let gate = tempfile::tempdir_in(root()).unwrap();
    for name in ["storm-a", "storm-b", "storm-c"] {
        gated(
            s,
            name,
            gate.path(),
            "  - { when: run_failed, channels: [calm] }\n",
        );
        assert_eq!(s.run_and_wait(&s.admin, name, None)["status"], "failed");
    }
    let held = |s: &Server| {
        ["storm-a", "storm-b", "storm-c"]
            .iter()
            .flat_map(|p| alerts(s, p))
            .flat_map(|a| deliveries(s, a["id"].as_str().unwrap()))
            .filter(|d| {
                d["last_error"]
                    .as_str()
                    .is_some_and(|e| e.starts_with("rate-limited: channel calm took 2 sends"))
            })
            .collect::<Vec<_>>()
    };
    let mut waiting = Vec::new();
    wait_for(WAIT, "the third delivery to be held back", || {
        waiting = held(s);
        !waiting.is_empty()
    });
    assert_eq!(receiver.requests().len(), 2, "two sends in the hour");
    let d = &waiting[0];
    assert_eq!(d["status"], "pending", "held, not dropped: {d}");
    assert_eq!(d["attempts"], 0, "{d}");
    let later = d["next_at"].as_i64().unwrap() - autoflow::store::now_ms();
    assert!(later > 50 * 60_000, "it waits for the window to move: {d}");
    let held_back = metric(
        s,
        "autoflow_alert_deliveries_total",
        &["calm", "rate_limited"],
    );
    assert!(held_back >= 1.0, "{held_back}");
    let sent = metric(s, "autoflow_alert_deliveries_total", &["calm", "delivered"]);
    assert_eq!(sent, 2.0);
    let r = put_channel(
        s,
        "calm",
        json!({"type": "webhook", "url": receiver.url("/"), "max_per_hour": 0}),
    );
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .starts_with("max_per_hour: 0 is not")
    );
}

autoflow_tests::on_both_databases!(
    flags = super::flags;
    a_failing_run_sends_one_signed_webhook_and_the_next_success_resolves_it,
    a_receiver_that_fails_three_times_gets_retries_and_one_that_keeps_failing_is_visible,
    an_alert_outlives_a_sigkill_between_the_runs_end_and_its_delivery,
    a_slack_channel_gets_blocks_and_a_test_send,
    an_email_channel_sends_a_text_and_an_html_part_over_starttls,
    a_channel_over_its_rate_holds_its_deliveries_back_visible,
    an_sla_rule_fires_when_a_slow_run_misses_its_deadline_and_its_success_resolves_it,
    a_schedule_lag_rule_fires_on_a_slot_that_did_not_start_and_resolves_on_one_that_did,
    a_rejected_over_rule_fires_above_its_threshold_and_not_below,
    a_signed_webhook_trigger_queues_one_run_per_delivery,
    a_webhook_triggers_body_is_the_runs_input,
    a_run_takes_its_parameters_and_a_bad_one_is_named,
);
