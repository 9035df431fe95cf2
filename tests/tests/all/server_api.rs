//! The REST API against a real server process on loopback, on SQLite and on PostgreSQL (the
//! same scenarios; see `autoflow_tests::server`): the registry, pipelines and versions, pinned
//! runs, tenants, roles and tokens, restarts; deep definitions refused at once, failed
//! authentications limited per address and counted in the audit log, idempotent triggers and
//! replays.
// Test code: failing loudly is its job.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]
use autoflow_tests::guests;
use std::time::{Duration, Instant};

use autoflow_tests::server::{Backend, Resp, Server};
use serde_json::{Value, json};

fn read(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

/// The digest of `bytes` as the API spells it, `sha256:<hex>`.
fn sha256_digest(bytes: &[u8]) -> String {
    autoflow::digest::spelled(&autoflow::registry::cache::digest_of(bytes))
}

/// generator -> up (a test transform, `up@latest`) -> log-sink.
const UP_PIPELINE: &str = r#"
name: upper
steps:
  - id: gen
    plugin: generator@latest
    config: { count: 5 }
  - id: up
    plugin: up@latest
    input: gen
  - id: show
    plugin: log-sink@latest
    input: up
retry: { max_attempts: 3, initial_backoff_ms: 10, max_backoff_ms: 10 }
"#;

fn step_digest(run: &Value, step: &str) -> String {
    let steps = run["report"]["steps"]
        .as_array()
        .unwrap_or_else(|| panic!("no report: {run}"));
    let s = steps
        .iter()
        .find(|s| s["id"] == step)
        .unwrap_or_else(|| panic!("no step {step}: {run}"));
    s["digest"].as_str().unwrap().to_string()
}

fn registry_upload_dedupe_conflict_download_delete(s: &mut Server) {
    let upper = read(guests::GOOD_UPPER);
    let digest = sha256_digest(&upper);
    let r = s.push(&s.admin, "up", "1.0.0", upper.clone());
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["digest"], digest);
    assert_eq!(r.json()["kind"], "transform");
    let blobs = s.blob_count();
    let again = s.push(&s.admin, "up", "1.0.0", upper.clone());
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(again.json()["digest"], digest);
    assert_eq!(s.blob_count(), blobs, "the same bytes are stored once");
    let other = s.push(&s.admin, "up", "1.0.0", read(guests::RETRY_ONCE));
    assert_eq!(other.status, 409, "{}", other.text());
    assert_eq!(other.json()["error"], "conflict");
    let content = s.get(&format!("/v1/plugins/{digest}/content"));
    assert_eq!(content.status, 200);
    assert_eq!(content.bytes, upper, "download gives the same bytes");
    let list = s.get("/v1/plugins").json();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for builtin in [
        "generator",
        "json-filter",
        "log-sink",
        "file-source",
        "file-sink",
        "json-map",
        "up",
    ] {
        assert!(names.contains(&builtin), "{builtin} missing from {names:?}");
    }
    // Used by a pipeline version: delete refused.
    assert_eq!(s.apply(&s.admin, "upper", UP_PIPELINE).status, 201);
    let del = s.call(
        "DELETE",
        &format!("/v1/plugins/{digest}"),
        Some(&s.admin),
        None,
    );
    assert_eq!(del.status, 409, "{}", del.text());
    assert!(
        del.json()["message"].as_str().unwrap().contains("upper@1"),
        "{}",
        del.text()
    );
    // Unused: deleted.
    let spare = s.push(&s.admin, "spare", "0.1.0", read(guests::CONFIG_CHECK));
    let spare_digest = spare.json()["digest"].as_str().unwrap().to_string();
    let del = s.call(
        "DELETE",
        &format!("/v1/plugins/{spare_digest}"),
        Some(&s.admin),
        None,
    );
    assert_eq!(del.status, 200, "{}", del.text());
    assert_eq!(s.get(&format!("/v1/plugins/{spare_digest}")).status, 404);
    // Built-ins stay.
    let generator = list
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "generator")
        .unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        s.call(
            "DELETE",
            &format!("/v1/plugins/{generator}"),
            Some(&s.admin),
            None
        )
        .status,
        409
    );
}

/// Percent-encodes a query value (every byte outside `A-Za-z0-9-._~`).
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A component that exports `exports` (each an empty instance) and imports `imports`.
fn component(imports: &[&str], exports: &[&str]) -> Vec<u8> {
    let mut wat = String::from("(component\n");
    for (i, name) in imports.iter().enumerate() {
        wat += &format!("(import \"{name}\" (instance $i{i} (export \"get\" (func))))\n");
    }
    for (i, name) in exports.iter().enumerate() {
        wat += &format!("(instance $e{i}) (export \"{name}\" (instance $e{i}))\n");
    }
    wat += ")";
    wat::parse_str(&wat).unwrap()
}

fn bad_uploads_are_refused_and_nothing_is_stored(s: &mut Server) {
    let upper = read(guests::GOOD_UPPER);
    let core = wat::parse_str("(module (func (export \"f\")))").unwrap();
    let other_world = wat::parse_str(
        r#"(component
            (core module $m (func (export "f")))
            (core instance $i (instantiate $m))
            (func $f (canon lift (core func $i "f")))
            (export "run" (func $f)))"#,
    )
    .unwrap();
    let with = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = upper.clone();
        f(&mut b);
        b
    };
    let cap = 2 << 20; // the test server runs with --max-plugin-mb 2
    let blobs = s.blob_count();
    let plugins = s.get("/v1/plugins").json().as_array().unwrap().len();
    let (ok_name, ok_version) = ("bad", "1.0.0");
    let body_cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("empty", vec![], 400),
        ("one byte", b"x".to_vec(), 422),
        ("truncated in half", upper[..upper.len() / 2].to_vec(), 422),
        (
            "truncated by one byte",
            upper[..upper.len() - 1].to_vec(),
            422,
        ),
        ("only the magic", b"\0asm".to_vec(), 422),
        ("not wasm", b"#!/bin/sh\necho hi\n".to_vec(), 422),
        ("JSON", br#"{"name": "bad"}"#.to_vec(), 422),
        ("WAT text", b"(component)".to_vec(), 422),
        (
            // Its whole text is over the 2 MiB cap: the first MiB of it.
            "a valid plugin as WAT text",
            wasmprinter::print_bytes(&upper)
                .unwrap()
                .into_bytes()
                .into_iter()
                .take(1 << 20)
                .collect(),
            422,
        ),
        (
            "gzip magic",
            with(&|b| b.splice(0..0, [0x1f, 0x8b, 8, 0]).for_each(drop)),
            422,
        ),
        ("an unknown wasm version", with(&|b| b[4] = 0x7f), 422),
        (
            "trailing garbage",
            with(&|b| b.extend_from_slice(b"garbage")),
            422,
        ),
        ("an empty core module", b"\0asm\x01\0\0\0".to_vec(), 422),
        ("a core module", core, 422),
        ("an empty component", b"\0asm\x0d\0\x01\0".to_vec(), 422),
        ("another world", other_world, 422),
        (
            "an unknown import",
            component(
                &["acme:vault/secrets@1.0.0"],
                &["autoflow:plugin/transform@0.1.0"],
            ),
            422,
        ),
        (
            "two worlds",
            component(
                &[],
                &[
                    "autoflow:plugin/transform@0.1.0",
                    "autoflow:plugin/sink@0.1.0",
                ],
            ),
            422,
        ),
        (
            "an unsupported WIT version",
            component(&[], &["autoflow:plugin/transform@0.3.0"]),
            422,
        ),
        (
            "a world with no functions",
            component(&[], &["autoflow:plugin/transform@0.1.0"]),
            422,
        ),
        ("over the cap", vec![0u8; 3 << 20], 413),
        ("one byte over the cap", vec![0u8; cap + 1], 413),
    ];
    let query_cases: Vec<(&str, String, u16)> = vec![
        ("no query", String::new(), 400),
        ("no version", "?name=bad".into(), 400),
        ("no name", "?version=1.0.0".into(), 400),
        ("an empty name", "?name=&version=1.0.0".into(), 400),
        ("an empty version", "?name=bad&version=".into(), 400),
        (
            "capitals in the name",
            "?name=Bad_Name&version=1.0.0".into(),
            400,
        ),
        (
            "a name starting with a dash",
            "?name=-bad&version=1.0.0".into(),
            400,
        ),
        (
            "a slash in the name",
            format!("?name={}&version=1.0.0", encode("a/b")),
            400,
        ),
        (
            "an @ in the name",
            format!("?name={}&version=1.0.0", encode("a@b")),
            400,
        ),
        (
            "a space in the name",
            format!("?name={}&version=1.0.0", encode("a b")),
            400,
        ),
        (
            "a non-ASCII name",
            format!("?name={}&version=1.0.0", encode("caf\u{e9}")),
            400,
        ),
        (
            "a 64-character name",
            format!("?name={}&version=1.0.0", "a".repeat(64)),
            400,
        ),
        ("version 1", "?name=bad&version=1".into(), 400),
        ("version 1.0", "?name=bad&version=1.0".into(), 400),
        ("version v1.0.0", "?name=bad&version=v1.0.0".into(), 400),
        ("version 01.0.0", "?name=bad&version=01.0.0".into(), 400),
        ("version 1.0.0.0", "?name=bad&version=1.0.0.0".into(), 400),
        ("version 1.0.x", "?name=bad&version=1.0.x".into(), 400),
        ("version latest", "?name=bad&version=latest".into(), 400),
        (
            "an empty pre-release",
            "?name=bad&version=1.0.0-".into(),
            400,
        ),
        (
            "a space in the version",
            format!("?name=bad&version={}", encode(" 1.0.0")),
            400,
        ),
    ];
    let total = body_cases.len() + query_cases.len();
    assert!(total >= 43, "{total} cases");
    let query = format!("?name={ok_name}&version={ok_version}");
    let cases = body_cases
        .into_iter()
        .map(|(what, bytes, status)| (what, query.clone(), bytes, status))
        .chain(
            query_cases
                .into_iter()
                .map(|(what, q, status)| (what, q, upper.clone(), status)),
        );
    for (what, query, bytes, status) in cases {
        let r = s.call(
            "POST",
            &format!("/v1/plugins{query}"),
            Some(&s.admin),
            Some(("application/wasm", bytes)),
        );
        assert_eq!(r.status, status, "{what}: {}", r.text());
        let v = r.json();
        assert!(v["error"].is_string(), "{what}: {}", r.text());
        assert!(
            !v["message"].as_str().unwrap_or("").is_empty(),
            "{what}: {}",
            r.text()
        );
    }
    let msg = s.push(
        &s.admin,
        "bad",
        "1.0.0",
        component(
            &["acme:vault/secrets@1.0.0"],
            &["autoflow:plugin/transform@0.1.0"],
        ),
    );
    assert!(
        msg.json()["message"]
            .as_str()
            .unwrap()
            .contains("imports something the host does not provide"),
        "{}",
        msg.text()
    );
    assert_eq!(s.blob_count(), blobs, "no blob stored");
    assert_eq!(
        s.get("/v1/plugins").json().as_array().unwrap().len(),
        plugins,
        "no plugin registered"
    );
    // The good bytes under the same query are accepted afterwards: nothing was half-stored.
    assert_eq!(s.push(&s.admin, ok_name, ok_version, upper).status, 201);
}

fn pipelines_versions_rollback_and_pinned_runs(s: &mut Server) {
    let a = s
        .push(&s.admin, "up", "1.0.0", read(guests::GOOD_UPPER))
        .json()["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let v1 = s.apply(&s.admin, "upper", UP_PIPELINE);
    assert_eq!(v1.status, 201, "{}", v1.text());
    assert_eq!(v1.json()["version"], 1);
    let pin = v1.json()["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["step"] == "up")
        .unwrap()
        .clone();
    assert_eq!(pin["digest"], a);
    assert_eq!(pin["reference"], "up@latest");
    let same = s.apply(&s.admin, "upper", UP_PIPELINE);
    assert_eq!(
        (same.status, same.json()["version"].clone()),
        (200, json!(1)),
        "unchanged: no new version"
    );
    // A newer up@latest: the same text pins new bytes in a new version.
    let b = s
        .push(&s.admin, "up", "1.1.0", read(guests::RETRY_ONCE))
        .json()["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let v2 = s.apply(&s.admin, "upper", UP_PIPELINE);
    assert_eq!(
        (v2.status, v2.json()["version"].clone()),
        (201, json!(2)),
        "{}",
        v2.text()
    );
    let versions = s.get("/v1/pipelines/upper/versions").json();
    let numbers: Vec<i64> = versions["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, vec![2, 1]);
    let old = s.get("/v1/pipelines/upper/versions/1").json();
    assert_eq!(
        old["plugins"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["step"] == "up")
            .unwrap()["digest"],
        a
    );
    // Runs of each version run exactly their pinned bytes.
    let run1 = s.run_and_wait(&s.admin, "upper", Some(1));
    assert_eq!(run1["status"], "succeeded", "{run1}");
    assert_eq!(step_digest(&run1, "up"), a);
    let run2 = s.run_and_wait(&s.admin, "upper", None);
    assert_eq!(run2["status"], "succeeded", "{run2}");
    assert_eq!(run2["version"], 2);
    assert_eq!(step_digest(&run2, "up"), b);
    let up = run1["report"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "up")
        .unwrap()
        .clone();
    assert_eq!(
        (up["records_in"].clone(), up["records_out"].clone()),
        (json!(5), json!(5))
    );
    // Rollback: a new version equal to version 1.
    let rb = s.call(
        "POST",
        "/v1/pipelines/upper/rollback",
        Some(&s.admin),
        Some(("application/json", br#"{"version": 1}"#.to_vec())),
    );
    assert_eq!(
        (rb.status, rb.json()["version"].clone()),
        (201, json!(3)),
        "{}",
        rb.text()
    );
    let run3 = s.run_and_wait(&s.admin, "upper", None);
    assert_eq!(step_digest(&run3, "up"), a);
    // Runs listing and logs.
    let listed = s
        .get("/v1/pipelines/upper/runs?status=succeeded&limit=2")
        .json();
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
    assert_eq!(listed[0]["id"], run3["id"]);
    let logs = s
        .get(&format!("/v1/runs/{}/logs", run1["id"].as_str().unwrap()))
        .json();
    let lines = logs.as_array().unwrap();
    assert!(
        lines
            .iter()
            .any(|l| l["source"] == "host"
                && l["message"].as_str().unwrap().starts_with("run started")),
        "{logs}"
    );
    assert!(
        lines
            .iter()
            .filter(|l| l["source"] == "plugin" && l["step"] == "show")
            .count()
            >= 5,
        "{logs}"
    );
    // POST creates only; JSON works too; bad definitions name the place.
    let dup = s.call(
        "POST",
        "/v1/pipelines",
        Some(&s.admin),
        Some(("application/yaml", UP_PIPELINE.as_bytes().to_vec())),
    );
    assert_eq!(dup.status, 409, "{}", dup.text());
    let as_json = json!({"name": "j", "steps": [
        {"id": "g", "plugin": "generator@0.1.0", "config": {"count": 1}},
        {"id": "s", "plugin": "log-sink@latest", "input": "g"}]});
    let created = s.call(
        "POST",
        "/v1/pipelines",
        Some(&s.admin),
        Some(("application/json", as_json.to_string().into_bytes())),
    );
    assert_eq!(created.status, 201, "{}", created.text());
    let bad = s.apply(&s.admin, "b", "name: b\nsteps:\n  - id: a\n    plugin: generator@latest\n  - id: s\n    plugin: log-sink@latest\n    input: raed\n");
    assert_eq!(bad.status, 422);
    assert!(
        bad.json()["message"]
            .as_str()
            .unwrap()
            .contains("steps[1].input: no step \"raed\""),
        "{}",
        bad.text()
    );
    let mount = s.apply(&s.admin, "m", "name: m\nsteps:\n  - id: a\n    plugin: generator@latest\n    mounts: [{ host: /tmp, guest: /x }]\n  - id: s\n    plugin: log-sink@latest\n    input: a\n");
    assert!(
        mount.json()["message"]
            .as_str()
            .unwrap()
            .contains("mounts are not allowed on this server"),
        "{}",
        mount.text()
    );
    let unknown = s.apply(&s.admin, "u", "name: u\nsteps:\n  - id: a\n    plugin: nope@1.0.0\n  - id: s\n    plugin: log-sink@latest\n    input: a\n");
    assert_eq!(unknown.status, 422);
    assert!(
        unknown.json()["message"]
            .as_str()
            .unwrap()
            .contains("steps[0].plugin"),
        "{}",
        unknown.text()
    );
    let wrong_kind = s.apply(&s.admin, "k", "name: k\nsteps:\n  - id: a\n    plugin: log-sink@latest\n  - id: s\n    plugin: log-sink@latest\n    input: a\n");
    assert_eq!(wrong_kind.status, 422, "{}", wrong_kind.text());
    // Every stored version has its audit entry (written in the version's own transaction);
    // refused ones have none.
    let audit = s.get("/v1/audit?limit=1000").json();
    let targets: Vec<String> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"].as_str().unwrap().starts_with("pipeline."))
        .map(|e| {
            format!(
                "{} {}",
                e["action"].as_str().unwrap(),
                e["target"].as_str().unwrap()
            )
        })
        .collect();
    for expected in [
        "pipeline.apply upper@1",
        "pipeline.apply upper@2",
        "pipeline.rollback upper@3",
        "pipeline.apply j@1",
    ] {
        assert!(
            targets.iter().any(|t| t == expected),
            "{expected} not in {targets:?}"
        );
    }
    assert!(
        !targets
            .iter()
            .any(|t| t.ends_with(" b@1") || t.ends_with(" k@1")),
        "{targets:?}"
    );
}

/// Every route of the API (from `/openapi.json`, which is generated from the router) that names
/// an object answers 404 to another tenant's token; the listing routes show none of them.
fn tenants_are_isolated_on_every_route(s: &mut Server) {
    let digest = s
        .push(&s.admin, "up", "1.0.0", read(guests::GOOD_UPPER))
        .json()["digest"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(s.apply(&s.admin, "upper", UP_PIPELINE).status, 201);
    let run = s.run_and_wait(&s.admin, "upper", None);
    let run_id = run["id"].as_str().unwrap();
    let tokens = s.get("/v1/tokens").json();
    let admin_id = tokens[0]["id"].as_str().unwrap().to_string();
    let b = s.create_tenant("tenant-b");
    let doc = s.call("GET", "/openapi.json", None, None).json();
    let mut walked = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        if !path.contains('{') {
            continue;
        }
        let concrete = path
            .replace("{digest}", &digest)
            .replace("{name}", "upper")
            .replace("{version}", "1")
            .replace("{tenant}", "default")
            .replace("{pipeline}", "upper")
            .replace(
                "{id}",
                if path.starts_with("/v1/tokens") {
                    &admin_id
                } else {
                    run_id
                },
            );
        assert!(
            !concrete.contains('{'),
            "a parameter of {path} this test does not know"
        );
        for method in ops.as_object().unwrap().keys() {
            let method = method.to_uppercase();
            if method == "PUT" {
                // PUT /v1/pipelines/{name} creates or updates the caller's own pipeline of that
                // name: tenant B's "upper" is checked below to be B's own.
                continue;
            }
            // Each with a body the route would accept from tenant A.
            let mut variants = vec![];
            if method != "POST" || concrete.ends_with("/runs") {
                variants.push((concrete.clone(), None));
            }
            if method == "POST" {
                variants.push((
                    concrete.clone(),
                    Some(("application/json", br#"{"version": 1}"#.to_vec())),
                ));
            }
            if concrete.ends_with("/logs") {
                variants.push((format!("{concrete}?follow=true"), None));
            }
            for (path, body) in variants {
                let r = s.call(&method, &path, Some(&b), body);
                assert_eq!(
                    r.status,
                    404,
                    "{method} {path} with another tenant's token: {}",
                    r.text()
                );
                assert_eq!(r.json()["error"], "not_found");
                walked += 1;
            }
        }
    }
    assert!(walked >= 14, "walked {walked} routes");
    // Tenant A's objects are all still there.
    assert_eq!(s.get(&format!("/v1/plugins/{digest}")).status, 200);
    assert_eq!(s.get(&format!("/v1/runs/{run_id}")).status, 200);
    assert_eq!(s.get("/v1/pipelines/upper").json()["latest_version"], 1);
    assert_eq!(
        s.get("/v1/tokens")
            .json()
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["revoked_at"].is_null())
            .count(),
        tokens
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["revoked_at"].is_null())
            .count()
    );
    let theirs = s.call("GET", "/v1/plugins", Some(&b), None).json();
    assert!(
        !theirs.as_array().unwrap().iter().any(|p| p["name"] == "up"),
        "{theirs}"
    );
    assert!(
        theirs
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "generator"),
        "built-ins in every tenant"
    );
    let pipelines = s.call("GET", "/v1/pipelines", Some(&b), None).json();
    assert_eq!(pipelines, json!([]));
    let their_tokens = s.call("GET", "/v1/tokens", Some(&b), None).json();
    assert!(
        !their_tokens
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"] == admin_id.as_str()),
        "{their_tokens}"
    );
    let their_audit = s.call("GET", "/v1/audit?limit=1000", Some(&b), None).json();
    assert!(
        !their_audit
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "plugin.upload" && e["target"] == "up@1.0.0"),
        "{their_audit}"
    );
    // The same name in tenant B is its own pipeline.
    assert_eq!(
        s.push(&b, "up", "1.0.0", read(guests::RETRY_ONCE)).status,
        201
    );
    assert_eq!(s.apply(&b, "upper", UP_PIPELINE).json()["version"], 1);
    assert_eq!(s.get("/v1/pipelines/upper").json()["latest_version"], 1);
}

fn roles_and_token_lifecycle(s: &mut Server) {
    let (viewer, viewer_id) = s.create_token(&s.admin, "viewer", None);
    let (editor, _) = s.create_token(&s.admin, "editor", None);
    assert_eq!(
        s.call("GET", "/v1/plugins", Some(&viewer), None).status,
        200
    );
    assert_eq!(
        s.call("GET", "/v1/pipelines/demo", Some(&viewer), None)
            .status,
        200
    );
    let upper = read(guests::GOOD_UPPER);
    assert_eq!(s.push(&viewer, "up", "1.0.0", upper.clone()).status, 403);
    assert_eq!(s.apply(&viewer, "upper", UP_PIPELINE).status, 403);
    assert_eq!(
        s.call("POST", "/v1/pipelines/demo/runs", Some(&viewer), None)
            .status,
        403
    );
    assert_eq!(
        s.call(
            "POST",
            "/v1/pipelines/demo/rollback",
            Some(&viewer),
            Some(("application/json", br#"{"version":1}"#.to_vec()))
        )
        .status,
        403
    );
    assert_eq!(s.call("GET", "/v1/tokens", Some(&viewer), None).status, 403);
    assert_eq!(s.call("GET", "/v1/audit", Some(&viewer), None).status, 403);
    assert_eq!(s.push(&editor, "up", "1.0.0", upper).status, 201);
    assert_eq!(s.call("GET", "/v1/tokens", Some(&editor), None).status, 403);
    // Revoked and expired tokens, and none at all: 401.
    assert_eq!(
        s.call(
            "DELETE",
            &format!("/v1/tokens/{viewer_id}"),
            Some(&s.admin),
            None
        )
        .status,
        200
    );
    let r = s.call("GET", "/v1/plugins", Some(&viewer), None);
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (401, json!("unauthorized"))
    );
    let (short, _) = s.create_token(&s.admin, "viewer", Some(1));
    assert_eq!(s.call("GET", "/v1/plugins", Some(&short), None).status, 200);
    // It expires one second after its creation: poll until then, with a deadline.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while s.call("GET", "/v1/plugins", Some(&short), None).status != 401 {
        assert!(
            std::time::Instant::now() < deadline,
            "the token did not expire"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(s.call("GET", "/v1/plugins", None, None).status, 401);
    let forged = format!("{}x", &s.admin[..s.admin.len() - 1]);
    assert_eq!(
        s.call("GET", "/v1/plugins", Some(&forged), None).status,
        401
    );
    assert_eq!(
        s.call("GET", "/v1/plugins", Some("af_nothing"), None)
            .status,
        401
    );
    // The audit log has the changes and the failures, with the remote address.
    let audit = s.get("/v1/audit?limit=1000").json();
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for a in [
        "token.create",
        "token.revoke",
        "plugin.upload",
        "auth.failed",
    ] {
        assert!(actions.contains(&a), "{a} not in {actions:?}");
    }
    let failed = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "auth.failed")
        .unwrap();
    assert!(
        failed["remote"].as_str().unwrap().starts_with("127.0.0.1:"),
        "{failed}"
    );
}

fn restart_keeps_plugins_versions_runs_and_logs(s: &mut Server) {
    let digest = s
        .push(&s.admin, "up", "1.0.0", read(guests::GOOD_UPPER))
        .json()["digest"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(s.apply(&s.admin, "upper", UP_PIPELINE).status, 201);
    let run = s.run_and_wait(&s.admin, "upper", None);
    let id = run["id"].as_str().unwrap().to_string();
    let logs_before = s.get(&format!("/v1/runs/{id}/logs")).json();
    let plugins_before = s.get("/v1/plugins").json();
    let version_before = s.get("/v1/pipelines/upper/versions/1").json();
    s.restart();
    assert_eq!(s.get("/v1/plugins").json(), plugins_before);
    assert_eq!(
        s.get(&format!("/v1/plugins/{digest}/content")).bytes,
        read(guests::GOOD_UPPER)
    );
    assert_eq!(
        s.get("/v1/pipelines/upper/versions/1").json(),
        version_before
    );
    assert_eq!(s.get(&format!("/v1/runs/{id}")).json(), run);
    assert_eq!(s.get(&format!("/v1/runs/{id}/logs")).json(), logs_before);
    assert!(logs_before.as_array().unwrap().len() > 5);
    let again = s.run_and_wait(&s.admin, "upper", None);
    assert_eq!(again["status"], "succeeded");
    assert_eq!(step_digest(&again, "up"), digest);
}

fn demo_runs_and_logs_follow_as_events(s: &mut Server) {
    assert_eq!(s.call("GET", "/healthz", None, None).status, 200);
    let missing = s.get("/v1/nothing");
    assert_eq!(
        (missing.status, missing.json()["error"].clone()),
        (404, json!("not_found"))
    );
    let r = s.call("POST", "/v1/pipelines/demo/runs", Some(&s.admin), None);
    assert_eq!(r.status, 202, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_string();
    let events = s.get(&format!("/v1/runs/{id}/logs?follow=true")).text();
    assert!(events.contains("event: end\ndata: succeeded"), "{events}");
    assert!(events.contains("paid order: "), "{events}");
    let run = s.get(&format!("/v1/runs/{id}")).json();
    assert_eq!(run["status"], "succeeded");
    let steps = run["report"]["steps"].as_array().unwrap();
    assert_eq!(steps[0]["records_out"], 20);
    assert!(steps.iter().all(|s| {
        s["digest"]
            .as_str()
            .is_some_and(|d| d.len() == 71 && d.starts_with("sha256:"))
    }));
    assert!(steps.iter().all(|s| s["fuel_used"].is_number()), "{run}");
}

/// Built-in plugins only: generator -> log-sink.
const PLAIN_PIPELINE: &str = "name: NAME\nsteps:\n  - id: g\n    plugin: generator@latest\n    config: { count: 2 }\n  \
                              - id: s\n    plugin: log-sink@latest\n    input: g\n";

fn plain_pipeline(name: &str) -> String {
    PLAIN_PIPELINE.replace("NAME", name)
}

/// 100,000 nested `[` in a 100 KB body (under the 256 KiB cap), as YAML and as JSON: refused
/// with 422 naming the limit, about as fast as a normal apply (before the pre-scan, the YAML one
/// took tens of seconds of CPU).
fn deeply_nested_definitions_are_refused_at_once(s: &mut Server) {
    let started = Instant::now();
    let normal = s.call(
        "POST",
        "/v1/pipelines",
        Some(&s.admin),
        Some(("application/yaml", plain_pipeline("normal").into_bytes())),
    );
    let normal_took = started.elapsed();
    assert_eq!(normal.status, 201, "{}", normal.text());
    let deep = "[".repeat(100_000);
    let cases = [
        (
            "application/yaml",
            deep.clone(),
            "line 1, column 65: nesting depth exceeds 64 levels (it reaches 100000)",
        ),
        (
            "application/json",
            format!("{{\"name\": \"deep\", \"steps\": {deep}"),
            "line 1, column 90: nesting depth exceeds 64 levels (it reaches 100001)",
        ),
        (
            "application/yaml",
            format!("name: deep\nsteps: {deep}"),
            "line 2, column 71: nesting depth exceeds 64 levels (it reaches 100001)",
        ),
    ];
    for (ct, body, message) in cases {
        let started = Instant::now();
        let r = s.call(
            "POST",
            "/v1/pipelines",
            Some(&s.admin),
            Some((ct, body.into_bytes())),
        );
        let took = started.elapsed();
        assert_eq!(
            (r.status, r.json()["error"].clone()),
            (422, json!("invalid")),
            "{ct}: {}",
            r.text()
        );
        assert_eq!(r.json()["message"], message, "{ct}");
        assert!(
            took < normal_took * 10 + Duration::from_secs(1),
            "{ct}: refusing took {took:?}, a normal apply {normal_took:?}"
        );
        eprintln!("{ct}: 100,000 levels refused in {took:?} (a normal apply: {normal_took:?})");
    }
    // The same through PUT, and nothing was stored.
    let r = s.call(
        "PUT",
        "/v1/pipelines/deep",
        Some(&s.admin),
        Some(("application/yaml", deep.into_bytes())),
    );
    assert_eq!(r.status, 422, "{}", r.text());
    let names: Vec<String> = s
        .get("/v1/pipelines")
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    assert!(!names.iter().any(|n| n == "deep"), "{names:?}");
    assert_eq!(
        s.get("/healthz").status,
        200,
        "the server is still answering"
    );
}

/// 200 requests with wrong tokens from one address: the first ones get 401, the rest 429 with
/// `Retry-After`, and the audit log holds one counted entry for them, below the admin's own
/// actions on its first page.
fn failed_authentications_are_limited_and_counted_once(s: &mut Server) {
    use autoflow::auth::limiter::{MAX_FAILURES, WINDOW};
    let (_, before) = s.create_token(&s.admin, "viewer", None);
    let guesser = s.from_address("127.0.0.2".parse().unwrap());
    let answers: Vec<Resp> = (0..200)
        .map(|i| {
            let token = if i % 2 == 0 {
                format!("af_{i:012x}_guess")
            } else {
                "nonsense".to_string()
            };
            guesser.call_with("GET", "/v1/plugins", Some(&token), None, &[])
        })
        .collect();
    let statuses: Vec<u16> = answers.iter().map(|r| r.status).collect();
    let limit = MAX_FAILURES as usize;
    assert!(statuses[..limit].iter().all(|&c| c == 401), "{statuses:?}");
    assert!(statuses[limit..].iter().all(|&c| c == 429), "{statuses:?}");
    for r in &answers[limit..] {
        assert_eq!(r.json()["error"], "too_many_requests", "{}", r.text());
        let wait: u64 = r
            .header("retry-after")
            .unwrap_or_else(|| panic!("no Retry-After: {:?}", r.headers))
            .parse()
            .unwrap();
        assert!(
            (1..=WINDOW.as_secs()).contains(&wait),
            "Retry-After: {wait}"
        );
    }
    // While the address is refused, a good token from it is refused too: no token is checked.
    let good = guesser.call_with("GET", "/v1/plugins", Some(&s.admin), None, &[]);
    assert_eq!(good.status, 429, "{}", good.text());
    // Another address is not affected.
    let (_, after) = s.create_token(&s.admin, "viewer", None);
    let audit = s.get("/v1/audit").json();
    let entries = audit.as_array().unwrap();
    let failed: Vec<&Value> = entries
        .iter()
        .filter(|e| {
            e["action"] == "auth.failed" && e["remote"].as_str().unwrap().starts_with("127.0.0.2:")
        })
        .collect();
    assert!(
        (1..=2).contains(&failed.len()),
        "one entry per address and window: {failed:?}"
    );
    let counted: i64 = failed.iter().map(|e| e["count"].as_i64().unwrap()).sum();
    assert_eq!(
        counted,
        statuses.iter().filter(|&&c| c == 401).count() as i64,
        "{failed:?}"
    );
    assert_eq!(
        failed[0]["detail"], "unknown token, malformed token",
        "{failed:?}"
    );
    for id in [&before, &after] {
        assert!(
            entries
                .iter()
                .any(|e| e["action"] == "token.create" && e["target"] == id.as_str()),
            "{id} not on the first page: {audit}"
        );
    }
    assert!(
        entries.iter().all(|e| e["count"].as_i64() >= Some(1)),
        "{audit}"
    );
}

/// POST with the admin token and an optional Idempotency-Key.
fn post_keyed(s: &Server, path: &str, key: Option<&str>, body: Option<&str>) -> Resp {
    let headers: Vec<(&str, &str)> = key.map(|k| ("Idempotency-Key", k)).into_iter().collect();
    s.call_with(
        "POST",
        path,
        Some(&s.admin),
        body.map(|b| ("application/json", b.as_bytes().to_vec())),
        &headers,
    )
}

fn run_ids(s: &Server, pipeline: &str) -> Vec<String> {
    let runs = s
        .get(&format!("/v1/pipelines/{pipeline}/runs?limit=1000"))
        .json();
    runs.as_array()
        .unwrap_or_else(|| panic!("{runs}"))
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

/// A trigger repeated with its Idempotency-Key answers the first run and queues no other, also
/// after a restart and when the repeats come all at once; another key is another run; the key
/// with another request is 422; bad keys are 400; after 24 hours, or in another tenant, the key
/// names a new run.
fn a_trigger_with_an_idempotency_key_queues_one_run(s: &mut Server) {
    for name in ["idem", "other"] {
        assert_eq!(s.apply(&s.admin, name, &plain_pipeline(name)).status, 201);
    }
    let path = "/v1/pipelines/idem/runs";
    let first = post_keyed(s, path, Some("order-42"), None);
    assert_eq!(first.status, 202, "{}", first.text());
    assert_eq!(first.header("idempotent-replayed"), None);
    let id = first.json()["id"].as_str().unwrap().to_string();
    for body in [None, Some("  "), Some(r#"{"version": null}"#)] {
        let again = post_keyed(s, path, Some("order-42"), body);
        assert_eq!(
            (again.status, again.header("idempotent-replayed")),
            (202, Some("true")),
            "{body:?}: {}",
            again.text()
        );
        assert_eq!(again.json()["id"], id.as_str());
        assert_eq!(
            (
                again.json()["pipeline"].clone(),
                again.json()["version"].clone()
            ),
            (json!("idem"), json!(1))
        );
    }
    assert_eq!(run_ids(s, "idem"), std::slice::from_ref(&id));
    // Another key, another run.
    let second = post_keyed(s, path, Some("order-43"), None);
    assert_eq!(second.status, 202, "{}", second.text());
    assert_ne!(second.json()["id"], id.as_str());
    assert_eq!(run_ids(s, "idem").len(), 2);
    // The key with another request: refused, nothing queued.
    for (path, body) in [
        (path, Some(r#"{"version": 1}"#)),
        ("/v1/pipelines/other/runs", None),
    ] {
        let r = post_keyed(s, path, Some("order-42"), body);
        assert_eq!(
            (r.status, r.json()["message"].clone()),
            (
                422,
                json!("Idempotency-Key reused with a different request")
            ),
            "{path}: {}",
            r.text()
        );
    }
    assert_eq!(run_ids(s, "idem").len(), 2);
    assert!(run_ids(s, "other").is_empty());
    // Keys: 1 to 255 printable ASCII characters.
    let longest = "k".repeat(255);
    for bad in ["", "tab\there", &"k".repeat(256)] {
        let r = post_keyed(s, path, Some(bad), None);
        assert_eq!(
            (r.status, r.json()["error"].clone()),
            (400, json!("bad_request")),
            "{bad:?}: {}",
            r.text()
        );
    }
    assert_eq!(post_keyed(s, path, Some(&longest), None).status, 202);
    assert_eq!(run_ids(s, "idem").len(), 3);
    // Eight at once with one key: one run, which all eight answer.
    let shared: &Server = s;
    let burst: Vec<Resp> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..8)
            .map(|_| scope.spawn(|| post_keyed(shared, path, Some("burst"), None)))
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    assert!(
        burst.iter().all(|r| r.status == 202),
        "{:?}",
        burst.iter().map(Resp::text).collect::<Vec<_>>()
    );
    let ids: Vec<Value> = burst.iter().map(|r| r.json()["id"].clone()).collect();
    assert!(ids.iter().all(|i| *i == ids[0]), "{ids:?}");
    assert_eq!(
        burst
            .iter()
            .filter(|r| r.header("idempotent-replayed").is_none())
            .count(),
        1,
        "one of them queued it"
    );
    let listed = run_ids(s, "idem");
    assert_eq!(listed.len(), 4, "{listed:?}");
    assert!(listed.iter().any(|l| *l == ids[0]));
    // The key is in the database: a retry after the server was killed finds the run.
    s.restart();
    let retried = post_keyed(s, path, Some("order-42"), None);
    assert_eq!(
        (retried.status, retried.json()["id"].clone()),
        (202, json!(id)),
        "{}",
        retried.text()
    );
    // Older than the window, the key may name a new run.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = autoflow::store::Store::connect(&s.database).await.unwrap();
        let aged = sqlx::query("UPDATE idempotency_keys SET created_at = created_at - $1 WHERE idempotency_key = 'order-42'")
            .bind(autoflow::store::idempotency::WINDOW_MS + 1)
            .execute(&store.pool)
            .await
            .unwrap();
        assert_eq!(aged.rows_affected(), 1);
    });
    let renewed = post_keyed(s, path, Some("order-42"), None);
    assert_eq!(
        (renewed.status, renewed.header("idempotent-replayed")),
        (202, None),
        "{}",
        renewed.text()
    );
    let renewed_id = renewed.json()["id"].as_str().unwrap().to_string();
    assert_ne!(renewed_id, id);
    assert_eq!(
        post_keyed(s, path, Some("order-42"), None).json()["id"],
        renewed_id.as_str()
    );
    assert_eq!(run_ids(s, "idem").len(), 5);
    // Keys are per tenant.
    let b = s.create_tenant("tenant-b");
    assert_eq!(
        s.call(
            "PUT",
            "/v1/pipelines/idem",
            Some(&b),
            Some(("application/yaml", plain_pipeline("idem").into_bytes()))
        )
        .status,
        201
    );
    let theirs = s.call_with(
        "POST",
        path,
        Some(&b),
        None,
        &[("Idempotency-Key", "order-42")],
    );
    assert_eq!(
        (theirs.status, theirs.header("idempotent-replayed")),
        (202, None),
        "{}",
        theirs.text()
    );
    assert_ne!(theirs.json()["id"], renewed_id.as_str());
    assert_eq!(run_ids(s, "idem").len(), 5);
}

/// `POST /v1/pipeline-check` with `yaml` (and `?name=`); the answer's JSON.
fn check(s: &Server, yaml: &str, name: Option<&str>) -> Value {
    let path = match name {
        Some(n) => format!("/v1/pipeline-check?name={n}"),
        None => "/v1/pipeline-check".to_string(),
    };
    let r = s.call(
        "POST",
        &path,
        Some(&s.admin),
        Some(("application/yaml", yaml.as_bytes().to_vec())),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

/// (line, column, message) of each problem of a check.
fn problems(answer: &Value) -> Vec<(Value, Value, String)> {
    answer["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["line"].clone(),
                p["column"].clone(),
                p["message"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// A definition is checked without being stored: a valid one with the digests it would pin,
/// an invalid one with each problem at its line and column, in the words of the 422 that
/// applying it gets.
fn a_definition_is_checked_with_each_problem_at_its_place(s: &mut Server) {
    let good = "name: checked\nsteps:\n  - id: gen\n    plugin: generator@latest\n    config: { count: 3 }\n  - id: show\n    plugin: log-sink@latest\n    input: gen\n";
    let a = check(s, good, None);
    assert_eq!(a["valid"], true, "{a}");
    assert_eq!(a["problems"], json!([]));
    assert_eq!(a["pipeline"]["name"], "checked");
    let pins = a["pins"].as_array().unwrap();
    assert_eq!(pins.len(), 2);
    assert!(
        pins[0]["digest"].as_str().unwrap().starts_with("sha256:"),
        "{a}"
    );
    assert_eq!(
        s.call("GET", "/v1/pipelines/checked", Some(&s.admin), None)
            .status,
        404,
        "a check stores nothing"
    );

    // Two problems of validation, each at the node its path names.
    let bad = good
        .replace(
            "input: gen",
            "input: gen\n    mounts:\n      - host: /nowhere\n        guest: /in",
        )
        .replace(
            "  - id: show\n",
            "  - id: show\n    limits:\n      memory_mb: 0\n",
        );
    let a = check(s, &bad, None);
    assert_eq!(a["valid"], false, "{a}");
    let found = problems(&a);
    assert!(found.len() >= 2, "{a}");
    let applied = s.call(
        "POST",
        "/v1/pipelines",
        Some(&s.admin),
        Some(("application/yaml", bad.as_bytes().to_vec())),
    );
    assert_eq!(applied.status, 422);
    let joined: Vec<&str> = found.iter().map(|p| p.2.as_str()).collect();
    assert_eq!(
        applied.json()["message"],
        joined.join("; "),
        "the same words as the 422"
    );
    let lines: Vec<&str> = bad.lines().collect();
    for (line, column, message) in &found {
        let (line, column) = (
            line.as_u64().unwrap() as usize,
            column.as_u64().unwrap() as usize,
        );
        let path = message.split(": ").next().unwrap();
        let key = path.rsplit('.').next().unwrap();
        let key = key.split('[').next().unwrap();
        assert!(
            lines[line - 1][column - 1..].starts_with(key),
            "{message:?} placed at {line}:{column}: {:?}",
            lines[line - 1]
        );
    }

    // A parse error where the parser saw it (the badly indented `plugin:` continues the id's
    // text, so the step lacks its plugin); an unknown plugin at its step's `plugin:`.
    let a = check(
        s,
        "name: x\nsteps:\n  - id: a\n   plugin: generator@latest\n",
        None,
    );
    let found = problems(&a);
    assert_eq!(found.len(), 1, "{a}");
    let said = format!(
        "line {}, column {}: ",
        found[0].0.as_u64().unwrap(),
        found[0].1.as_u64().unwrap()
    );
    assert!(found[0].2.starts_with(&said), "{a}");
    assert_eq!(found[0].0, 3, "the step that lacks its plugin: {a}");
    let a = check(
        s,
        &good.replace("generator@latest", "genrator@latest"),
        None,
    );
    let found = problems(&a);
    assert_eq!(found.len(), 1, "{a}");
    assert_eq!(
        (found[0].0.clone(), found[0].1.clone()),
        (json!(4), json!(5)),
        "{a}"
    );
    assert!(found[0].2.contains("genrator"), "{a}");

    // The name the definition must have.
    let a = check(s, good, Some("other"));
    let found = problems(&a);
    assert_eq!(found.len(), 1, "{a}");
    assert_eq!(
        (found[0].0.clone(), found[0].1.clone()),
        (json!(1), json!(1)),
        "{a}"
    );
}

/// The list of pipelines shows each one's schedule with its next slot and, with `?recent=N`,
/// its newest runs; a count over the most is refused.
fn the_list_shows_schedules_and_recent_runs(s: &mut Server) {
    let nightly = "name: nightly\nschedule: { cron: \"0 0 3 * * *\", timezone: Europe/Paris }\nsteps:\n  - id: gen\n    plugin: generator@latest\n    config: { count: 1 }\n  - id: show\n    plugin: log-sink@latest\n    input: gen\n";
    assert_eq!(s.apply(&s.admin, "nightly", nightly).status, 201);
    let first = s.run_and_wait(&s.admin, "demo", None);
    let second = s.run_and_wait(&s.admin, "demo", None);
    let list = s
        .call("GET", "/v1/pipelines?recent=20", Some(&s.admin), None)
        .json();
    let by_name = |name: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap()
            .clone()
    };
    let demo = by_name("demo");
    assert_eq!(demo["schedule"], Value::Null);
    let recent: Vec<&str> = demo["recent_runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        recent,
        [
            second["id"].as_str().unwrap(),
            first["id"].as_str().unwrap()
        ]
    );
    assert_eq!(demo["recent_runs"][0]["status"], "succeeded");
    let n = by_name("nightly");
    assert_eq!(n["schedule"]["cron"], "0 0 3 * * *");
    assert_eq!(n["schedule"]["timezone"], "Europe/Paris");
    let next = n["schedule"]["next_fire_at"].as_i64().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    assert!(next > now && next <= now + 25 * 3600 * 1000, "{n}");
    assert_eq!(n["recent_runs"], json!([]));
    let shown = s
        .call("GET", "/v1/pipelines/nightly", Some(&s.admin), None)
        .json();
    assert_eq!(
        shown["schedule"], n["schedule"],
        "the same schedule, the same next slot"
    );
    let plain = s.call("GET", "/v1/pipelines", Some(&s.admin), None).json();
    assert!(plain[0].get("recent_runs").is_none(), "{plain}");
    let r = s.call("GET", "/v1/pipelines?recent=51", Some(&s.admin), None);
    assert_eq!(r.status, 422, "{}", r.text());
}

autoflow_tests::on_both_databases!(
    a_definition_is_checked_with_each_problem_at_its_place,
    the_list_shows_schedules_and_recent_runs,
    deeply_nested_definitions_are_refused_at_once,
    failed_authentications_are_limited_and_counted_once,
    a_trigger_with_an_idempotency_key_queues_one_run,
    registry_upload_dedupe_conflict_download_delete,
    bad_uploads_are_refused_and_nothing_is_stored,
    pipelines_versions_rollback_and_pinned_runs,
    tenants_are_isolated_on_every_route,
    roles_and_token_lifecycle,
    restart_keeps_plugins_versions_runs_and_logs,
    demo_runs_and_logs_follow_as_events,
    a_plugin_whose_describe_spins_is_refused_at_its_deadline,
    tenant_ceilings_refuse_pipelines_over_them,
);

/// Every route of the OpenAPI document is served (none answers "no such route").
#[test]
fn openapi_lists_only_served_routes() {
    let Some(s) = Server::start(autoflow_tests::server::Backend::Sqlite) else {
        return;
    };
    let doc = s.call("GET", "/openapi.json", None, None).json();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 15);
    for (path, ops) in paths {
        let concrete = path
            .replace("{digest}", &"0".repeat(64))
            .replace("{name}", "x")
            .replace("{version}", "1")
            .replace("{id}", "x");
        for method in ops.as_object().unwrap().keys() {
            let r = s.call(&method.to_uppercase(), &concrete, Some(&s.admin), None);
            assert_ne!(r.json()["message"], "no such route", "{method} {path}");
            assert_ne!(r.status, 405, "{method} {path}");
        }
    }
}

/// `PUT /v1/tenants/{name}/limits` with `body` as the operator.
fn set_limits(s: &Server, tenant: &str, body: Value) -> Resp {
    s.call(
        "PUT",
        &format!("/v1/tenants/{tenant}/limits"),
        Some(&s.admin),
        Some(("application/json", body.to_string().into_bytes())),
    )
}

/// generator -> json-map x `maps` -> log-sink, each step with `limits` (YAML flow map, or "").
fn chain(name: &str, maps: usize, limits: &str) -> String {
    let limits = if limits.is_empty() {
        String::new()
    } else {
        format!("\n    limits: {limits}")
    };
    let mut yaml = format!(
        "name: {name}\nsteps:\n  - id: gen\n    plugin: generator@latest\n    config: {{ count: 3 }}{limits}\n"
    );
    let mut input = "gen".to_string();
    for i in 0..maps {
        yaml.push_str(&format!(
            "  - id: map{i}\n    plugin: json-map@latest\n    input: {input}{limits}\n"
        ));
        input = format!("map{i}");
    }
    yaml.push_str(&format!(
        "  - id: sink\n    plugin: log-sink@latest\n    input: {input}{limits}\n"
    ));
    yaml
}

/// The operator's ceilings on a tenant: a pipeline over any of them is refused when applied
/// (422 naming the ceiling and the place), other tenants are not bound by them, and a run of a
/// version applied before the ceilings were lowered fails naming them.
fn tenant_ceilings_refuse_pipelines_over_them(s: &mut Server) {
    let acme = s.create_tenant("acme");
    let ceilings = json!({
        "max_step_memory_mb": 128,
        "max_running_memory_mb": 200,
        "max_output_bytes": 1048576,
        "max_fuel": 1000000000u64,
    });
    let r = set_limits(s, "acme", ceilings.clone());
    assert_eq!(r.status, 200, "{}", r.text());
    let shown = s.get("/v1/tenants/acme/limits").json();
    for (field, value) in ceilings.as_object().unwrap() {
        assert_eq!(&shown[field], value, "{field}: {shown}");
    }
    assert_eq!(shown["max_running"], 0);
    // acme's own admin cannot see or lift them.
    let theirs = s.call("GET", "/v1/tenants/acme/limits", Some(&acme), None);
    assert_eq!(theirs.status, 404, "{}", theirs.text());
    let over = [
        (
            chain("big", 1, "{ memory_mb: 256 }"),
            "steps[0].limits.memory_mb: 256 exceeds the tenant's max_step_memory_mb of 128",
        ),
        (
            chain("loud", 1, "{ max_output_bytes: 2097152 }"),
            "steps[0].limits.max_output_bytes: 2097152 exceeds the tenant's max_output_bytes of 1048576",
        ),
        (
            chain("hungry", 1, "{ fuel: 5000000000 }"),
            "steps[0].limits.fuel: 5000000000 exceeds the tenant's max_fuel of 1000000000",
        ),
        (
            chain("long", 2, ""),
            "steps: the steps need 256 MiB together (their memory_mb), over the tenant's max_running_memory_mb of 200",
        ),
    ];
    for (yaml, message) in &over {
        let name = yaml.lines().next().unwrap().trim_start_matches("name: ");
        let r = s.apply(&acme, name, yaml);
        assert_eq!(r.status, 422, "{name}: {}", r.text());
        assert!(
            r.json()["message"].as_str().unwrap().contains(message),
            "{name}: {}",
            r.text()
        );
        assert_eq!(
            s.call("GET", &format!("/v1/pipelines/{name}"), Some(&acme), None)
                .status,
            404,
            "{name} was not kept"
        );
        // The operator's own tenant has no ceilings.
        assert_eq!(
            s.apply(&s.admin, name, yaml).status,
            201,
            "{name} in default"
        );
    }
    // Within them: applied, and it runs; what it leaves unset is lowered to the ceilings (the
    // default 16 MiB of output to 1 MiB).
    let fits = chain("fits", 0, "{ memory_mb: 96 }");
    let r = s.apply(&acme, "fits", &fits);
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(s.run_and_wait(&acme, "fits", None)["status"], "succeeded");
    let plain = chain("plain", 1, "");
    assert_eq!(s.apply(&acme, "plain", &plain).status, 201);
    // Lowered below what an applied version sets: its next run fails, naming the ceiling;
    // one that sets nothing runs within the new ceiling.
    let r = set_limits(s, "acme", json!({ "max_step_memory_mb": 48 }));
    assert_eq!(r.status, 200, "{}", r.text());
    let run = s.run_and_wait(&acme, "fits", None);
    assert_eq!(run["status"], "failed", "{run}");
    let error = run["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("over the tenant's ceilings")
            && error.contains(
                "steps[0].limits.memory_mb: 96 exceeds the tenant's max_step_memory_mb of 48"
            ),
        "{run}"
    );
    assert_eq!(s.run_and_wait(&acme, "plain", None)["status"], "succeeded");
    let audit = s.get("/v1/audit?limit=100").json();
    assert!(
        audit.as_array().unwrap().iter().any(|e| e["action"] == "tenant.limits"
            && e["detail"] == "max_step_memory_mb 128, max_running_memory_mb 200, max_output_bytes 1048576, max_fuel 1000000000"),
        "{audit}"
    );
}

/// A plugin whose `describe` never answers is refused at upload at the describe deadline (a
/// second by default, `--describe-timeout-ms`), not the step's 30 s, and nothing is stored.
fn a_plugin_whose_describe_spins_is_refused_at_its_deadline(s: &mut Server) {
    let backend = s.backend;
    let blobs = s.blob_count();
    let start = Instant::now();
    let r = s.push(&s.admin, "spinner", "1.0.0", read(guests::DESCRIBE_SPIN));
    let took = start.elapsed();
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(
        r.json()["message"],
        "cannot describe the plugin: timeout: the call did not finish within 1000 ms"
    );
    assert!(took < Duration::from_secs(10), "the upload took {took:?}");
    assert_eq!(s.blob_count(), blobs, "nothing stored");
    let listed = s.get("/v1/plugins").text();
    assert!(!listed.contains("spinner"), "{listed}");
    let Some(quick) = Server::start_with(backend, &["--describe-timeout-ms", "200"]) else {
        return;
    };
    let r = quick.push(
        &quick.admin,
        "spinner",
        "1.0.0",
        read(guests::DESCRIBE_SPIN),
    );
    assert_eq!(
        r.json()["message"],
        "cannot describe the plugin: timeout: the call did not finish within 200 ms"
    );
}

/// The router enforces the least role the OpenAPI document gives each route: a caller below it
/// gets 403 naming the role before the handler runs (so before a bad body is even read), and a
/// caller at the role gets past the check.
#[test]
fn every_route_refuses_a_caller_below_its_documented_role() {
    let Some(s) = Server::start(autoflow_tests::server::Backend::Sqlite) else {
        return;
    };
    let (viewer, _) = s.create_token(&s.admin, "viewer", None);
    let (editor, _) = s.create_token(&s.admin, "editor", None);
    let doc = s.call("GET", "/openapi.json", None, None).json();
    let mut guarded = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        let concrete = path
            .replace("{digest}", &"0".repeat(64))
            .replace("{name}", "x")
            .replace("{version}", "1")
            .replace("{id}", "x");
        for (method, op) in ops.as_object().unwrap() {
            let method = method.to_uppercase();
            let role = op["x-autoflow-role"].as_str().unwrap();
            let below: &[&str] = match role {
                "admin" => &[&viewer, &editor],
                "editor" => &[&viewer],
                _ => &[],
            };
            for token in below {
                let garbage = Some(("application/json", b"{ not json".to_vec()));
                let r = s.call(&method, &concrete, Some(token), garbage);
                assert_eq!(
                    (r.status, r.json()["message"].as_str()),
                    (403, Some(format!("this needs the {role} role").as_str())),
                    "{method} {path}: {}",
                    r.text()
                );
                guarded += 1;
            }
            let at_role = match role {
                "admin" => Some(s.admin.as_str()),
                "editor" => Some(editor.as_str()),
                "viewer" => Some(viewer.as_str()),
                _ => None,
            };
            if let Some(token) = at_role {
                let r = s.call(&method, &concrete, Some(token), None);
                assert!(
                    r.status != 403 || r.json()["message"] != format!("this needs the {role} role"),
                    "{method} {path} refused a caller with the {role} role: {}",
                    r.text()
                );
            }
        }
    }
    assert!(guarded >= 20, "only {guarded} refusals checked");
}

/// A replay of dead letters repeated with its Idempotency-Key answers the first replay run (its
/// dead letters are marked replayed by then, so without the key the repeat would be refused).
fn a_replay_with_an_idempotency_key_queues_one_run(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap().to_string();
    std::fs::write(dir.path().join("in.jsonl"), "{\"id\":1}\n[2]\n\"three\"\n").unwrap();
    let Some(s) = Server::start_with(backend, &["--mount-root", &root]) else {
        return;
    };
    let yaml = format!(
        "name: dl\nsteps:\n  - id: read\n    plugin: file-source@latest\n    config: {{ path: /in/in.jsonl }}\n    \
         mounts: [{{ host: {root}, guest: /in }}]\n  - id: check\n    plugin: json-map@latest\n    input: read\n  \
         - id: sink\n    plugin: log-sink@latest\n    input: check\n"
    );
    assert_eq!(s.apply(&s.admin, "dl", &yaml).status, 201);
    assert_eq!(s.run_and_wait(&s.admin, "dl", None)["status"], "succeeded");
    let path = "/v1/pipelines/dl/dead-letters/replay";
    let first = post_keyed(&s, path, Some("replay-1"), Some("{}"));
    assert_eq!(
        (first.status, first.json()["dead_letters"].clone()),
        (202, json!(2)),
        "{}",
        first.text()
    );
    let again = post_keyed(&s, path, Some("replay-1"), Some("{ }"));
    assert_eq!(
        (again.status, again.header("idempotent-replayed")),
        (202, Some("true")),
        "{}",
        again.text()
    );
    assert_eq!(again.json(), first.json(), "the first answer again");
    // Without the key it is not the first answer: nothing is left to replay, or (once the first
    // replay's run has rejected the same records again) a new replay of those.
    let unkeyed = post_keyed(&s, path, None, Some("{}"));
    let again_replayed = match unkeyed.status {
        400 => 0,
        202 => {
            assert_ne!(
                unkeyed.json()["id"],
                first.json()["id"],
                "{}",
                unkeyed.text()
            );
            1
        }
        other => panic!("an unkeyed replay: {other} {}", unkeyed.text()),
    };
    let as_trigger = post_keyed(&s, "/v1/pipelines/dl/runs", Some("replay-1"), None);
    assert_eq!(as_trigger.status, 422, "{}", as_trigger.text());
    let runs = s.get("/v1/pipelines/dl/runs?limit=1000").json();
    let replays = runs
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["trigger"] == "replay")
        .count();
    assert_eq!(
        replays,
        1 + again_replayed,
        "one replay for the key: {runs}"
    );
}

#[test]
fn a_replay_with_an_idempotency_key_queues_one_run_sqlite() {
    a_replay_with_an_idempotency_key_queues_one_run(Backend::Sqlite);
}

#[test]
fn a_replay_with_an_idempotency_key_queues_one_run_postgres() {
    a_replay_with_an_idempotency_key_queues_one_run(Backend::Postgres);
}
