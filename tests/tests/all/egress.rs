//! Outbound HTTP from a real component (`tests/guests/egress`) through `autoflow run`, against
//! a real loopback HTTP server: the step's `allow_hosts`, the refusal of loopback, private and
//! link-local addresses unless the operator allows them (`--egress-allow-private`), redirects
//! checked again, and the body cap. Every refusal names its reason in the run's log.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use std::time::{Duration, Instant};

use autoflow_tests::http_server::{Reply, TestServer};
use autoflow_tests::{Project, RunOutput, guests, json_lines};

/// Runs guest `egress` with `config` (YAML flow mapping) and `allow_hosts`, writing its record
/// to `data/out/got.jsonl`; `operator` is the `--egress-allow-private` value, if any.
fn fetch(p: &Project, config: &str, allow: &[&str], operator: Option<&str>) -> RunOutput {
    let allow: Vec<String> = allow.iter().map(|h| format!("{h:?}")).collect();
    p.write(
        "fetch.yaml",
        &format!(
            "name: egress
steps:
  - id: fetch
    plugin: {}
    config: {config}
    allow_hosts: [{}]
    # Room for a body at the cap (16 MiB) and the copies a growing buffer makes.
    limits: {{ memory_mb: 256 }}
  - id: out
    plugin: file-sink@0.1.0
    input: fetch
    config: {{ path: /out/got.jsonl }}
    mounts: [{{ host: ./data/out, guest: /out, mode: rw }}]
",
            guests::EGRESS,
            allow.join(", ")
        ),
    );
    match operator {
        Some(o) => p.run("fetch.yaml", &["--egress-allow-private", o]),
        None => p.run("fetch.yaml", &[]),
    }
}

fn ok_server() -> TestServer {
    TestServer::start(|req, _| match req.path.as_str() {
        "/ok" => Reply::json(200, &serde_json::json!({"hello": "world"})),
        "/big" => Reply {
            streamed: true,
            ..Reply::json(200, &serde_json::json!("x".repeat(17 << 20)))
        },
        "/loop" => Reply::status(302).with_header("location", "/loop"),
        "/big-declared" => Reply::json(200, &serde_json::json!("x".repeat(17 << 20))),
        p if p.starts_with("/to/") => {
            Reply::status(302).with_header("location", &p["/to/".len()..])
        }
        _ => Reply::status(404),
    })
}

fn assert_failed_with(out: &RunOutput, code: &str, reason: &str) {
    assert_eq!(out.code, 1, "the run should fail:\n{}", out.stderr);
    assert!(
        out.stderr.contains("run failed: step \"fetch\""),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(code),
        "no error code {code:?} in:\n{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(reason),
        "no reason {reason:?} in:\n{}",
        out.stderr
    );
}

#[test]
fn an_allowed_request_succeeds() {
    let server = ok_server();
    let p = Project::new();
    let host = format!("127.0.0.1:{}", server.port);
    let out = fetch(
        &p,
        &format!("{{ url: \"{}\" }}", server.url("/ok")),
        &[host.as_str()],
        Some(&host),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let got = json_lines(&p.read("data/out/got.jsonl"));
    assert_eq!(got, vec![serde_json::json!({"status": 200, "len": 17})]);
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].header("host"), Some(host.as_str()));
}

#[test]
fn a_host_outside_the_allow_list_is_refused() {
    let server = ok_server();
    let p = Project::new();
    let host = format!("127.0.0.1:{}", server.port);
    let out = fetch(
        &p,
        "{ url: \"http://example.com/data\" }",
        &[host.as_str()],
        Some(&host),
    );
    assert_failed_with(
        &out,
        "http-request-denied",
        r#"egress refused: host "example.com" (port 80) is not in allow_hosts of step "fetch""#,
    );
    // The same host on another port than the one listed is refused too.
    let other = format!("http://127.0.0.1:{}/ok", server.port + 1);
    let out = fetch(
        &p,
        &format!("{{ url: \"{other}\" }}"),
        &[host.as_str()],
        Some(&host),
    );
    assert_failed_with(
        &out,
        "http-request-denied",
        "is not in allow_hosts of step \"fetch\"",
    );
    assert!(server.requests().is_empty());
}

#[test]
fn loopback_is_refused_unless_the_operator_allows_it() {
    let server = ok_server();
    let p = Project::new();
    let host = format!("127.0.0.1:{}", server.port);
    let out = fetch(
        &p,
        &format!("{{ url: \"{}\" }}", server.url("/ok")),
        &[host.as_str()],
        None,
    );
    assert_failed_with(
        &out,
        "destination-ip-prohibited",
        "egress refused: 127.0.0.1 is a loopback address; the operator can allow it with --egress-allow-private",
    );
    // Allowing another port does not allow this one.
    let other = format!("127.0.0.1:{}", server.port + 1);
    let out = fetch(
        &p,
        &format!("{{ url: \"{}\" }}", server.url("/ok")),
        &[host.as_str()],
        Some(&other),
    );
    assert_failed_with(
        &out,
        "destination-ip-prohibited",
        "127.0.0.1 is a loopback address",
    );
    // An IPv6 literal: the same.
    let url = format!("http://[::1]:{}/ok", server.port);
    let out = fetch(
        &p,
        &format!("{{ url: \"{url}\" }}"),
        &[format!("[::1]:{}", server.port).as_str()],
        None,
    );
    assert_failed_with(
        &out,
        "destination-ip-prohibited",
        "egress refused: ::1 is a loopback address",
    );
    assert!(
        server.requests().is_empty(),
        "a refused request reached the server"
    );
}

#[test]
fn redirects_are_followed_five_times_at_most() {
    let server = ok_server();
    let p = Project::new();
    let host = format!("127.0.0.1:{}", server.port);
    let out = fetch(
        &p,
        &format!("{{ url: \"{}\" }}", server.url("/loop")),
        &[host.as_str()],
        Some(&host),
    );
    assert_failed_with(&out, "too-many-redirects", "more than 5 redirects");
    assert_eq!(server.requests().len(), 6, "the request and 5 redirects");
}

#[test]
fn a_name_that_resolves_to_loopback_is_refused() {
    let server = ok_server();
    let p = Project::new();
    let url = format!("http://localhost:{}/ok", server.port);
    let out = fetch(
        &p,
        &format!("{{ url: \"{url}\" }}"),
        &[format!("localhost:{}", server.port).as_str()],
        None,
    );
    assert_failed_with(
        &out,
        "destination-ip-prohibited",
        "(localhost) is a loopback address",
    );
    assert!(
        server.requests().is_empty(),
        "a refused request reached the server"
    );
    // An operator entry naming the address also allows a name that resolves to it.
    let operator = format!("127.0.0.1:{},[::1]:{}", server.port, server.port);
    let out = fetch(
        &p,
        &format!("{{ url: \"{url}\" }}"),
        &[format!("localhost:{}", server.port).as_str()],
        Some(&operator),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn the_metadata_address_is_refused_without_connecting() {
    let p = Project::new();
    let started = Instant::now();
    let out = fetch(
        &p,
        "{ url: \"http://169.254.169.254/latest/meta-data/\" }",
        &["169.254.169.254"],
        None,
    );
    assert_failed_with(
        &out,
        "destination-ip-prohibited",
        "egress refused: 169.254.169.254 is a link-local address",
    );
    // Refused before any connection attempt (which would hang until a timeout).
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn a_redirect_to_a_private_address_is_refused_on_the_second_hop() {
    let server = ok_server();
    let p = Project::new();
    let host = format!("127.0.0.1:{}", server.port);
    // 127.0.0.2 is loopback too (and reachable on Linux): only the check stops it.
    let target = format!("http://127.0.0.2:{}/ok", server.port);
    let second = format!("127.0.0.2:{}", server.port);
    let allow = [host.as_str(), second.as_str()];
    let out = fetch(
        &p,
        &format!("{{ url: \"{}\" }}", server.url(&format!("/to/{target}"))),
        &allow,
        Some(&host),
    );
    assert_failed_with(
        &out,
        "destination-ip-prohibited",
        "egress refused: 127.0.0.2 is a loopback address",
    );
    assert_eq!(
        server.requests().len(),
        1,
        "only the first hop reaches the server"
    );

    let allow = [host.as_str(), "10.0.0.1"];
    let started = Instant::now();
    let out = fetch(
        &p,
        &format!("{{ url: \"{}\" }}", server.url("/to/http://10.0.0.1/admin")),
        &allow,
        Some(&host),
    );
    assert_failed_with(
        &out,
        "destination-ip-prohibited",
        "egress refused: 10.0.0.1 is a private address",
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn a_response_over_the_body_cap_fails() {
    let server = ok_server();
    let p = Project::new();
    let host = format!("127.0.0.1:{}", server.port);
    // Streamed without a length: cut at the cap while reading.
    let out = fetch(
        &p,
        &format!("{{ url: \"{}\" }}", server.url("/big")),
        &[host.as_str()],
        Some(&host),
    );
    assert_failed_with(
        &out,
        "http-response-body-size",
        "exceeds the cap of 16777216 bytes",
    );
    // Declared too long: refused at the headers.
    let out = fetch(
        &p,
        &format!("{{ url: \"{}\" }}", server.url("/big-declared")),
        &[host.as_str()],
        Some(&host),
    );
    assert_failed_with(
        &out,
        "http-response-body-size",
        "exceeds the cap of 16777216 bytes",
    );
}

#[test]
fn a_request_over_the_body_cap_fails() {
    let server = ok_server();
    let p = Project::new();
    let host = format!("127.0.0.1:{}", server.port);
    let config = format!(
        "{{ url: \"{}\", post_bytes: {} }}",
        server.url("/ok"),
        (16 << 20) + 1
    );
    let out = fetch(&p, &config, &[host.as_str()], Some(&host));
    assert_failed_with(
        &out,
        "http-request-body-size",
        "egress refused: request body to \"127.0.0.1\" of 16777217 bytes exceeds the cap",
    );
    assert!(server.requests().is_empty());
}

#[test]
fn https_goes_through_tls_to_the_checked_address() {
    // The test server speaks plain HTTP: the TLS handshake (SNI = the URL's host) fails, named.
    let server = ok_server();
    let p = Project::new();
    let host = format!("127.0.0.1:{}", server.port);
    let url = format!("https://127.0.0.1:{}/ok", server.port);
    let out = fetch(
        &p,
        &format!("{{ url: \"{url}\" }}"),
        &[host.as_str()],
        Some(&host),
    );
    assert_failed_with(&out, "tls-protocol-error", "request to https://127.0.0.1");
}

#[test]
fn an_invalid_operator_entry_is_refused_at_start() {
    let p = Project::new();
    let out = fetch(
        &p,
        "{ url: \"http://example.com/\" }",
        &["example.com"],
        Some("http://10.0.0.1"),
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains(r#"--egress-allow-private: invalid entry "http://10.0.0.1""#),
        "{}",
        out.stderr
    );
}
