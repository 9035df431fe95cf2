//! Bad pipeline files: each is refused before anything runs, with an error that names the
//! file, the place and the reason, and exit code 2.
// Test code: failing loudly is its job.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]
use autoflow_tests::Project;

/// Runs `yaml` as `bad.yaml`: exit code 2, nothing run; its error text.
fn refused(yaml: &str) -> String {
    refused_file("bad.yaml", yaml)
}

/// Runs `text` as the pipeline file `name`: exit code 2, nothing run; its error text.
fn refused_file(name: &str, text: &str) -> String {
    let p = Project::new();
    p.write("data/in/x.jsonl", "{}\n");
    p.write(name, text);
    let out = p.run(name, &[]);
    assert_eq!(out.code, 2, "expected a refusal, got: {}", out.stderr);
    assert!(
        !p.path().join("data/out/x.jsonl").exists(),
        "nothing may run"
    );
    out.stderr.trim_end().to_string()
}

const SOURCE: &str = "
  - id: read
    plugin: file-source@0.1.0
    config: { path: /in/x.jsonl }
    mounts: [{ host: ./data/in, guest: /in }]";

#[test]
fn unknown_input_step() {
    let err = refused(&format!(
        "name: p\nsteps:{SOURCE}\n  - id: out\n    plugin: log-sink@0.1.0\n    input: raed\n"
    ));
    assert_eq!(err, r#"bad.yaml: steps[1].input: no step "raed""#);
}

#[test]
fn a_cycle() {
    let err = refused(
        "name: p\nsteps:
  - id: a
    plugin: json-filter@0.1.0
    input: b
    config: { field: x, op: exists }
  - id: b
    plugin: json-map@0.1.0
    input: a
",
    );
    assert_eq!(err, "bad.yaml: steps: cycle a -> b -> a");
}

#[test]
fn an_unknown_plugin() {
    let err = refused(&format!(
        "name: p\nsteps:{SOURCE}\n  - id: out\n    plugin: no-such-sink@1.0.0\n    input: read\n"
    ));
    assert!(
        err.starts_with(
            r#"bad.yaml: steps[1].plugin: unknown plugin "no-such-sink@1.0.0" (built-in plugins: "#
        ),
        "{err}"
    );
    assert!(err.contains("file-sink@0.1.0"), "{err}");
}

#[test]
fn a_config_that_breaks_the_plugin_schema() {
    let err = refused(&format!(
        "name: p\nsteps:{SOURCE}\n  - id: keep\n    plugin: json-filter@0.1.0\n    input: read\n    config: {{ field: 7, equals: paid }}\n  - id: out\n    plugin: log-sink@0.1.0\n    input: keep\n    config: {{ level: loud }}\n"
    ));
    assert_eq!(
        err,
        concat!(
            r#"bad.yaml: steps[1].config: /field: 7 is not of type "string""#,
            "\n",
            r#"bad.yaml: steps[2].config: /level: "loud" is not one of "trace", "debug" or 3 other candidates"#,
        )
    );
}

#[test]
fn a_mount_outside_the_allowed_roots() {
    let err = refused(
        "name: p\nsteps:
  - id: read
    plugin: file-source@0.1.0
    config: { path: /etc/passwd }
    mounts: [{ host: /etc, guest: /etc }]
  - id: out
    plugin: log-sink@0.1.0
    input: read
",
    );
    assert_eq!(
        err,
        r#"bad.yaml: steps[0].mounts[0].host: "/etc" is outside the allowed mount roots (.)"#
    );
}

#[test]
fn a_malformed_yaml_line() {
    let err =
        refused("name: p\nsteps:\n  - id: read\n    plugin: file-source@0.1.0\n   config: {}\n");
    assert_eq!(
        err,
        "bad.yaml: line 5, column 4: did not find expected '-' indicator, while parsing a block collection at line 3 column 3"
    );
}

#[test]
fn a_misspelt_field_is_named_with_its_place() {
    let err = refused("name: p\nsteps:\n  - id: read\n    plugn: file-source@0.1.0\n");
    assert!(
        err.starts_with("bad.yaml: line 4, column 5: steps[0]: unknown field `plugn`"),
        "{err}"
    );
}

#[test]
fn a_transform_without_a_sink_after_it() {
    let err = refused(&format!(
        "name: p\nsteps:{SOURCE}\n  - id: keep\n    plugin: json-filter@0.1.0\n    input: read\n    config: {{ field: a, op: exists }}\n"
    ));
    assert_eq!(
        err,
        r#"bad.yaml: steps[1].plugin: "json-filter@0.1.0" is a transform; nothing reads from this transform (add a sink)"#
    );
}

#[test]
fn a_definition_nested_too_deep_is_refused_at_once() {
    let deep = "[".repeat(100_000);
    let started = std::time::Instant::now();
    assert_eq!(
        refused(&deep),
        "bad.yaml: line 1, column 65: nesting depth exceeds 64 levels (it reaches 100000)"
    );
    // Under a key, where libyaml took about 17 s of CPU for it before the pre-scan.
    assert_eq!(
        refused(&format!("name: p\nsteps: {deep}")),
        "bad.yaml: line 2, column 71: nesting depth exceeds 64 levels (it reaches 100001)"
    );
    let json = format!("{{\"name\": \"p\", \"steps\": {deep}");
    assert_eq!(
        refused_file("bad.json", &json),
        "bad.json: line 1, column 87: nesting depth exceeds 64 levels (it reaches 100001)"
    );
    let elapsed = started.elapsed();
    // Unbounded, the second one takes tens of seconds; each case is one process start here.
    assert!(elapsed < std::time::Duration::from_secs(20), "{elapsed:?}");
}

/// Connection URLs whose query parameters (or a host that is no name or address) would send the
/// driver past the host the URL names, to a port on loopback, a Unix socket or a file outside
/// the mount roots: each is refused before anything runs, naming `connections.db.url` and the
/// parameter, and the listeners receive nothing.
#[test]
fn connection_urls_that_lead_the_driver_elsewhere() {
    let wire = autoflow_tests::tripwire::Tripwire::start();
    let p = Project::new();
    let elsewhere = tempfile::tempdir().unwrap();
    let outside = elsewhere.path().join("other.db");
    std::fs::write(&outside, b"").unwrap();
    for (url, expect) in wire.redirecting_urls(p.path(), &outside) {
        let sql = url.starts_with("postgres")
            || url.starts_with("mysql")
            || url.starts_with("mariadb")
            || url.starts_with("sqlite");
        let read = if sql {
            "plugin: sql-source@0.1.0\n    connections: [db]\n    config: { connection: db, table: t, cursor_column: id }"
        } else {
            "plugin: nats-source@0.1.0\n    connections: [db]\n    config: { connection: db, stream: s, consumer: c }"
        };
        p.write(
            "conn.yaml",
            &format!(
                "name: p\nconnections:\n  db: {{ url: \"{url}\" }}\nsteps:\n  - id: read\n    {read}\n  \
                 - id: out\n    plugin: log-sink@0.1.0\n    input: read\n"
            ),
        );
        let out = p.run("conn.yaml", &[]);
        assert_eq!(
            out.code, 2,
            "{url}: expected a refusal, got: {}",
            out.stderr
        );
        let err = out.stderr.trim_end();
        assert!(
            err.starts_with("conn.yaml: connections.db.url: ") && !err.contains('\n'),
            "{url}: {err}"
        );
        assert!(err.contains(&expect), "{url}: {err} (expected {expect:?})");
        assert!(
            !err.contains(":p@"),
            "the URL's credentials are not shown: {err}"
        );
    }
    assert_eq!(
        wire.accepted(),
        0,
        "a listener on loopback or a Unix socket was reached"
    );
}
