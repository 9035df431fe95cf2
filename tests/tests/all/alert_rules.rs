//! The rules of a tenant (`/v1/alert-rules`) and the rules about retries, counters, dead
//! letters and workers, against real server processes on both databases with a receiver on
//! loopback: bad rules are 422s naming the field; a tenant rule judges the pipelines it selects
//! and no other (`retries_exhausted` on a run that used its retries, `counter` on a plugin's
//! own counter), says which rule it is, and stops once deleted; `dead_letters_over` fires when
//! dead letters pile up and resolves once a replay through a fixed version takes them;
//! `worker_lost` fires when a worker is SIGKILLed mid-run, naming it, and resolves when another
//! worker finishes the run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use autoflow_tests::http_server::{Reply, TestServer};
use autoflow_tests::server::{Backend, Resp, Server, wait_for};
use serde_json::{Value, json};

use super::alerts::{WAIT, alerts, flags, gated_with, put_channel, slow_one, verified};

fn put_rule(s: &Server, name: &str, body: &Value) -> Resp {
    s.call(
        "PUT",
        &format!("/v1/alert-rules/{name}"),
        Some(&s.admin),
        Some(("application/json", body.to_string().into_bytes())),
    )
}

/// Triggers `pipeline` with `body` (`params`, `input`, ...) and waits for its end.
fn run_with(s: &Server, pipeline: &str, body: &Value) -> Value {
    let r = s.call(
        "POST",
        &format!("/v1/pipelines/{pipeline}/runs"),
        Some(&s.admin),
        Some(("application/json", body.to_string().into_bytes())),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    s.wait_run(&s.admin, r.json()["id"].as_str().unwrap())
}

fn applied(s: &Server, name: &str, yaml: &str) {
    let r = s.apply(&s.admin, name, yaml);
    assert!(r.status == 201 || r.status == 200, "{}", r.text());
}

fn a_tenant_rule_judges_the_pipelines_it_selects(s: &mut Server) {
    let receiver = TestServer::start(|_, _| Reply::status(204));
    let channel = json!({"type": "webhook", "url": receiver.url("/"), "secret": "team"});
    assert_eq!(put_channel(s, "team", channel).status, 201);
    // Bad rules: a 422 that names the field, and nothing stored.
    for (body, message) in [
        (
            json!({"when": "counter", "channels": ["team"]}),
            "counter: counter needs the counter's name",
        ),
        (
            json!({"when": "counter", "channels": ["team"], "counter": "rows"}),
            "above: counter needs above or below",
        ),
        (
            json!({"when": "run_failed", "channels": ["nope"]}),
            "channels[0]: no channel \"nope\" in the tenant",
        ),
        (
            json!({"when": "run_failed", "channels": ["team"], "pipelines": ["ok", "Bad Name"]}),
            "pipelines[1]: \"Bad Name\" is not a pipeline name or a prefix ending in *",
        ),
        (
            json!({"when": "run_exploded", "channels": ["team"]}),
            "when: unknown variant `run_exploded`",
        ),
        (
            json!({"when": "run_failed", "channels": ["team"], "max_dead_letters": 3}),
            "max_dead_letters: only for when: dead_letters_over",
        ),
    ] {
        let r = put_rule(s, "bad", &body);
        assert_eq!(r.status, 422, "{body}: {}", r.text());
        let got = r.json()["message"].as_str().unwrap().to_string();
        assert!(got.contains(message), "{body}: {got}");
    }
    assert_eq!(s.get("/v1/alert-rules/bad").status, 404);
    let exhausted = json!({"when": "retries_exhausted", "channels": ["team"],
        "severity": "critical", "pipelines": ["etl-*"]});
    let r = put_rule(s, "exhausted", &exhausted);
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["pipelines"], json!(["etl-*"]));
    assert_eq!(r.json()["when"], "retries_exhausted");
    // Set again: 200, its creation time kept, and the answer is what is stored.
    let again = put_rule(s, "exhausted", &exhausted);
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(again.json()["created_at"], r.json()["created_at"]);
    assert_eq!(again.json(), s.get("/v1/alert-rules/exhausted").json());
    let listed = s.get("/v1/alert-rules").json();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["name"], "exhausted");
    // Two pipelines that fail twice (their gate stays closed): one selected, one not.
    let gate = tempfile::tempdir_in(super::alerts::root()).unwrap();
    let retry = "retry: { max_attempts: 2, initial_backoff_ms: 10, max_backoff_ms: 10 }\n";
    for name in ["etl-orders", "adhoc"] {
        gated_with(s, name, gate.path(), retry);
    }
    let failed = s.run_and_wait(&s.admin, "etl-orders", None);
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["attempt"], 2, "{failed}");
    assert_eq!(s.run_and_wait(&s.admin, "adhoc", None)["status"], "failed");
    let got = receiver.wait_for(1, WAIT);
    let body = verified(&got[0], "team");
    assert_eq!(body["rule"], "retries_exhausted", "{body}");
    assert_eq!(body["rule_name"], "exhausted");
    assert_eq!(body["pipeline"], "etl-orders");
    assert_eq!(body["severity"], "critical");
    assert_eq!(body["run"]["id"], failed["id"]);
    let summary = body["summary"].as_str().unwrap();
    assert!(
        summary.contains("the run failed at its last attempt (2 of 2)")
            && summary.ends_with("(tenant rule exhausted)"),
        "{summary}"
    );
    assert!(alerts(s, "adhoc").is_empty(), "adhoc is not selected");
    // A plugin's own counter: log-sink counts `records_written`.
    let few = json!({"when": "counter", "counter": "records_written", "below": 3,
        "channels": ["team"], "pipelines": ["counted"]});
    assert_eq!(put_rule(s, "few-rows", &few).status, 201);
    applied(
        s,
        "counted",
        "name: counted\nparams:\n  n: { type: integer, default: 2 }\nsteps:\n  - id: gen\n    \
         plugin: generator@latest\n    config: { count: \"${params.n}\" }\n  - id: sink\n    \
         plugin: log-sink@latest\n    input: gen\n",
    );
    let two = run_with(s, "counted", &json!({"params": {"n": 2}}));
    assert_eq!(two["status"], "succeeded", "{two}");
    let listed = alerts(s, "counted");
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["rule"], "counter");
    assert_eq!(listed[0]["rule_name"], "few-rows");
    let summary = listed[0]["summary"].as_str().unwrap();
    assert!(
        summary.contains("counter records_written was 2, below 3"),
        "{summary}"
    );
    assert_eq!(
        run_with(s, "counted", &json!({"params": {"n": 5}}))["status"],
        "succeeded"
    );
    let listed = alerts(s, "counted");
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(listed[0]["state"], "resolved");
    assert_eq!(listed[0]["incident_id"], listed[1]["id"]);
    receiver.wait_for(3, WAIT);
    // Deleted: it judges nothing more.
    let r = s.call("DELETE", "/v1/alert-rules/few-rows", Some(&s.admin), None);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(s.get("/v1/alert-rules/few-rows").status, 404);
    let again = s.call("DELETE", "/v1/alert-rules/few-rows", Some(&s.admin), None);
    assert_eq!(again.status, 404);
    run_with(s, "counted", &json!({"params": {"n": 1}}));
    assert_eq!(alerts(s, "counted").len(), 2);
    let audit = s.get("/v1/audit").text();
    assert!(
        audit.contains("alert_rule.set") && audit.contains("alert_rule.delete"),
        "{audit}"
    );
}

fn a_dead_letters_rule_fires_when_they_pile_up_and_resolves_after_a_replay(s: &mut Server) {
    let receiver = TestServer::start(|_, _| Reply::status(204));
    let channel = json!({"type": "webhook", "url": receiver.url("/"), "secret": "dl"});
    assert_eq!(put_channel(s, "dl", channel).status, 201);
    let yaml = |schema: &str| {
        format!(
            "name: checked\nsteps:\n  - id: in\n    plugin: trigger-source@latest\n  \
             - id: check\n    plugin: json-schema@latest\n    input: in\n    config: {{ schema: {schema} }}\n  \
             - id: sink\n    plugin: log-sink@latest\n    input: check\n\
             alerts:\n  - {{ when: dead_letters_over, channels: [dl], max_dead_letters: 2 }}\n"
        )
    };
    let r = s.apply(
        &s.admin,
        "checked",
        "name: checked\nsteps:\n  - id: in\n    plugin: trigger-source@latest\n  \
         - id: sink\n    plugin: log-sink@latest\n    input: in\n\
         alerts:\n  - { when: dead_letters_over, channels: [dl] }\n",
    );
    assert_eq!(r.status, 422, "{}", r.text());
    let message = r.json()["message"].as_str().unwrap().to_string();
    assert!(
        message.contains("alerts[0].max_dead_letters: dead_letters_over needs max_dead_letters"),
        "{message}"
    );
    applied(s, "checked", &yaml("{ required: [ok] }"));
    let input = json!({"input": [{"ok": 1}, {"no": 2}, {"no": 3}]});
    assert_eq!(run_with(s, "checked", &input)["status"], "succeeded");
    assert!(alerts(s, "checked").is_empty(), "2 waiting is not over 2");
    let more = run_with(s, "checked", &json!({"input": [{"no": 4}]}));
    assert_eq!(more["status"], "succeeded", "{more}");
    let listed = alerts(s, "checked");
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["rule"], "dead_letters_over");
    let summary = listed[0]["summary"].as_str().unwrap();
    assert!(
        summary.contains("3 dead letters wait for a replay (over 2)"),
        "{summary}"
    );
    // A version whose schema takes them, and a replay through it: none wait, it resolves.
    applied(s, "checked", &yaml("{ type: object }"));
    let r = s.call(
        "POST",
        "/v1/pipelines/checked/dead-letters/replay",
        Some(&s.admin),
        Some((
            "application/json",
            json!({"version": 2}).to_string().into_bytes(),
        )),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let replay = s.wait_run(&s.admin, r.json()["id"].as_str().unwrap());
    assert_eq!(replay["status"], "succeeded", "{replay}");
    let waiting = s
        .get("/v1/pipelines/checked/dead-letters?replayed=false")
        .json();
    assert_eq!(waiting.as_array().unwrap().len(), 0, "{waiting}");
    let listed = alerts(s, "checked");
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(listed[0]["state"], "resolved");
    assert_eq!(listed[0]["run_id"], replay["id"]);
    let got = receiver.wait_for(2, WAIT);
    assert_eq!(verified(&got[1], "dl")["state"], "resolved");
}

/// A worker SIGKILLed while it runs a run: once its lease lapses, the tenant's `worker_lost`
/// rule fires naming it; the run finishes on another worker, which resolves it.
fn worker_lost(backend: Backend) {
    let mut flags = flags();
    flags.extend(["--worker-slots".to_string(), "0".to_string()]);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let Some(s) = Server::start_with(backend, &flags) else {
        return;
    };
    let receiver = TestServer::start(|_, _| Reply::status(204));
    let channel = json!({"type": "webhook", "url": receiver.url("/"), "secret": "ops"});
    assert_eq!(put_channel(&s, "ops", channel).status, 201);
    let r = put_rule(
        &s,
        "lost",
        &json!({"when": "worker_lost", "channels": ["ops"], "severity": "warning"}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    slow_one(&s, "slow", 3000, "", "  []\n");
    let a = s.worker(&["--lease-ms", "1500"]);
    let id = s.trigger("slow");
    let a_id = a.id.clone();
    wait_for(WAIT, "worker A to run the run", || {
        let run = s.get(&format!("/v1/runs/{id}")).json();
        run["status"] == "running" && run["worker"] == a_id.as_str()
    });
    a.kill();
    let _b = s.worker(&["--lease-ms", "1500"]);
    let run = s.wait_run(&s.admin, &id);
    assert_eq!(run["status"], "succeeded", "{run}");
    let got = receiver.wait_for(2, WAIT);
    let fired = verified(&got[0], "ops");
    assert_eq!(fired["rule"], "worker_lost", "{fired}");
    assert_eq!(fired["rule_name"], "lost");
    assert_eq!(fired["severity"], "warning");
    assert_eq!(fired["run"]["id"], id.as_str());
    let summary = fired["summary"].as_str().unwrap();
    assert!(
        summary.contains(&format!("worker {a_id} was lost during attempt 1")),
        "{summary}"
    );
    let resolved = verified(&got[1], "ops");
    assert_eq!(resolved["state"], "resolved", "{resolved}");
    assert_eq!(resolved["incident"], fired["id"]);
}

#[test]
fn worker_lost_on_sqlite_fires_once_and_resolves() {
    worker_lost(Backend::Sqlite);
}

#[test]
fn worker_lost_on_postgres_fires_once_and_resolves() {
    worker_lost(Backend::Postgres);
}

autoflow_tests::on_both_databases!(
    flags = super::flags;
    a_tenant_rule_judges_the_pipelines_it_selects,
    a_dead_letters_rule_fires_when_they_pile_up_and_resolves_after_a_replay,
);
