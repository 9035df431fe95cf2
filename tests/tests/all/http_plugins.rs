//! The `http-source` and `http-sink` built-ins, run by `autoflow run` against a real loopback
//! HTTP server (allowed by the operator with `--egress-allow-private`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use std::time::Duration;

use autoflow_tests::http_server::{Reply, TestServer};
use autoflow_tests::{Project, json_lines};
use serde_json::json;

#[test]
fn http_source_follows_pages() {
    let server = TestServer::start(|req, _| match req.path.as_str() {
        "/items?page=1" => Reply::json(
            200,
            &json!({"data": [{"id": 1}, {"id": 2}], "next": "/items?page=2"}),
        ),
        // A relative next link, then the last page (next: null).
        "/items?page=2" => Reply::json(
            200,
            &json!({"data": [{"id": 3}, {"id": 4}], "next": "?page=3"}),
        ),
        "/items?page=3" => Reply::json(200, &json!({"data": [{"id": 5}], "next": null})),
        _ => Reply::status(404),
    });
    let p = Project::new();
    let host = format!("127.0.0.1:{}", server.port);
    p.write(
        "pages.yaml",
        &format!(
            "name: pages
steps:
  - id: read
    plugin: http-source@0.1.0
    config: {{ url: \"{}\", items: /data, next: /next }}
    allow_hosts: [\"{host}\"]
  - id: write
    plugin: file-sink@0.1.0
    input: read
    config: {{ path: /out/items.jsonl }}
    mounts: [{{ host: ./data/out, guest: /out, mode: rw }}]
",
            server.url("/items?page=1")
        ),
    );
    let out = p.run("pages.yaml", &["--egress-allow-private", &host]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let items = json_lines(&p.read("data/out/items.jsonl"));
    let ids: Vec<i64> = items.iter().map(|v| v["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, vec![1, 2, 3, 4, 5]);
    let paths: Vec<String> = server.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(
        paths,
        vec!["/items?page=1", "/items?page=2", "/items?page=3"]
    );
    assert!(server.requests().iter().all(|r| r.method == "GET"));
}

/// file-source (3 records) -> http-sink POSTing to `path` of `server`.
fn sink_run(server: &TestServer, path: &str) -> (Project, autoflow_tests::RunOutput) {
    let p = Project::new();
    p.write("data/in/x.jsonl", "{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n");
    let host = format!("127.0.0.1:{}", server.port);
    p.write(
        "post.yaml",
        &format!(
            "name: post
steps:
  - id: read
    plugin: file-source@0.1.0
    config: {{ path: /in/x.jsonl }}
    mounts: [{{ host: ./data/in, guest: /in }}]
  - id: post
    plugin: http-sink@0.1.0
    input: read
    config: {{ url: \"{}\", initial_backoff_ms: 20, max_backoff_ms: 200,
              headers: {{ x-token: abc, authorization: {{ secret: api_token, prefix: \"Bearer \" }} }} }}
    allow_hosts: [\"{host}\"]
    secrets: [api_token]
",
            server.url(path)
        ),
    );
    let out = p.run(
        "post.yaml",
        &[
            "--egress-allow-private",
            &host,
            "--secret",
            "api_token=s3cret",
        ],
    );
    (p, out)
}

#[test]
fn http_sink_retries_a_503_then_succeeds() {
    let server = TestServer::start(|req, i| match (req.path.as_str(), i) {
        ("/in", 0) => Reply::status(503),
        ("/in", 1) => Reply::status(503).with_header("retry-after", "0"),
        ("/in", _) => Reply::status(200),
        _ => Reply::status(404),
    });
    let (_p, out) = sink_run(&server, "/in");
    assert_eq!(out.code, 0, "{}", out.stderr);
    let reqs = server.wait_for(3, Duration::from_secs(5));
    assert_eq!(reqs.len(), 3, "{reqs:?}");
    for r in &reqs {
        assert_eq!(r.method, "POST");
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.header("x-token"), Some("abc"));
        assert_eq!(
            r.header("authorization"),
            Some("Bearer s3cret"),
            "a header from a granted secret"
        );
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body, json!([{"n": 1}, {"n": 2}, {"n": 3}]));
    }
    assert!(
        out.stderr.contains("status 503 (attempt 1); retrying in"),
        "{}",
        out.stderr
    );
}

#[test]
fn http_sink_fails_on_a_permanent_400() {
    let server = TestServer::start(|_, _| Reply::status(400));
    let (_p, out) = sink_run(&server, "/in");
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("run failed: step \"post\""),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("status 400"), "{}", out.stderr);
    assert_eq!(server.requests().len(), 1, "a 400 is not retried");
}

/// The server passes `--egress-allow-private` to its worker's engine, and a refusal is in the
/// run's log and error.
#[test]
fn a_server_run_reads_pages_and_logs_refusals() {
    use autoflow_tests::server::{Backend, Server};
    let api = TestServer::start(|req, _| match req.path.as_str() {
        "/a" => Reply::json(200, &json!([{"id": 1}])).with_header("link", "</b>; rel=\"next\""),
        "/b" => Reply::json(200, &json!([{"id": 2}])),
        _ => Reply::status(404),
    });
    let host = format!("127.0.0.1:{}", api.port);
    let s = Server::start_with(Backend::Sqlite, &["--egress-allow-private", &host]).unwrap();
    let pipeline = |name: &str, url: &str, allow: &str| {
        format!(
            "name: {name}
steps:
  - id: read
    plugin: http-source@0.1.0
    config: {{ url: \"{url}\" }}
    allow_hosts: [\"{allow}\"]
  - id: show
    plugin: log-sink@0.1.0
    input: read
"
        )
    };
    assert_eq!(
        s.apply(&s.admin, "pages", &pipeline("pages", &api.url("/a"), &host))
            .status,
        201
    );
    let run = s.run_and_wait(&s.admin, "pages", None);
    assert_eq!(run["status"], "succeeded", "{run}");
    let logs = s
        .get(&format!("/v1/runs/{}/logs", run["id"].as_str().unwrap()))
        .json();
    let shown: Vec<&str> = logs
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["step"] == "show")
        .map(|l| l["message"].as_str().unwrap())
        .collect();
    assert_eq!(shown, [r#"{"id":1}"#, r#"{"id":2}"#], "{logs}");
    // The next run resumes from the committed cursor: the last page, its one item already read.
    api.requests.lock().unwrap().clear();
    let again = s.run_and_wait(&s.admin, "pages", None);
    assert_eq!(again["status"], "succeeded", "{again}");
    let paths: Vec<String> = api.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(paths, ["/b"], "resumed at the last page");
    let logs = s
        .get(&format!("/v1/runs/{}/logs", again["id"].as_str().unwrap()))
        .json();
    assert!(
        !logs.as_array().unwrap().iter().any(|l| l["step"] == "show"),
        "nothing new to show: {logs}"
    );

    // localhost on another port is listed by the step but its address (127.0.0.1 on that port)
    // is not allowed by the operator: refused before connecting, and said why.
    let url = format!("http://localhost:{}/a", api.port + 1);
    let local = format!("localhost:{}", api.port + 1);
    assert_eq!(
        s.apply(&s.admin, "local", &pipeline("local", &url, &local))
            .status,
        201
    );
    let run = s.run_and_wait(&s.admin, "local", None);
    assert_eq!(run["status"], "failed", "{run}");
    assert!(
        run.to_string().contains("destination-ip-prohibited"),
        "{run}"
    );
    let logs = s
        .get(&format!("/v1/runs/{}/logs", run["id"].as_str().unwrap()))
        .json();
    assert!(
        logs.as_array().unwrap().iter().any(|l| l["step"] == "read"
            && l["level"] == "warn"
            && l["message"]
                .as_str()
                .unwrap()
                .contains("(localhost) is a loopback address")),
        "{logs}"
    );
    assert!(
        api.requests().iter().all(|r| r.path == "/b"),
        "the refused run did not reach the API"
    );
}
