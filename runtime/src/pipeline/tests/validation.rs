//! Validation: one test per message, asserting the exact text, and collection of all problems.

use std::path::PathBuf;

use super::{FULL_YAML, one_step, problems};
use crate::pipeline::{PipelineError, ValidationPolicy, parse};

fn policy() -> ValidationPolicy {
    ValidationPolicy::default()
}

#[test]
fn the_full_example_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    let policy = ValidationPolicy {
        allowed_mount_roots: vec![dir.path().join("data")],
        base_dir: dir.path().to_path_buf(),
        ..ValidationPolicy::default()
    };
    let validated = parse(FULL_YAML, None).unwrap().validate(&policy).unwrap();
    assert_eq!(validated.steps().len(), 3);
}

#[test]
fn unknown_input() {
    let text = "name: p\nsteps:\n  - id: read\n    plugin: a@1.0.0\n  - id: paid\n    plugin: b@1.0.0\n    input: raed\n";
    assert_eq!(
        problems(text, &policy()),
        [r#"steps[1].input: no step "raed""#]
    );
}

#[test]
fn unknown_entry_of_inputs() {
    let text = "name: p\nsteps:\n  - id: a\n    plugin: a@1.0.0\n  - id: b\n    plugin: b@1.0.0\n  \
                - id: c\n    plugin: c@1.0.0\n    inputs: [a, x]\n";
    assert_eq!(
        problems(text, &policy()),
        [r#"steps[2].inputs[1]: no step "x""#]
    );
}

#[test]
fn input_listed_twice() {
    let text = "name: p\nsteps:\n  - id: a\n    plugin: a@1.0.0\n  - id: c\n    plugin: c@1.0.0\n    inputs: [a, a]\n";
    assert_eq!(
        problems(text, &policy()),
        [r#"steps[1].inputs[1]: "a" is listed twice"#]
    );
}

#[test]
fn cycle() {
    let text = "name: p\nsteps:\n  - id: read\n    plugin: a@1.0.0\n    input: paid\n  - id: paid\n    \
                plugin: b@1.0.0\n    input: read\n  - id: write\n    plugin: c@1.0.0\n    input: paid\n";
    assert_eq!(
        problems(text, &policy()),
        ["steps: cycle read -> paid -> read"]
    );
}

#[test]
fn longer_and_several_cycles() {
    // c reads b, b reads a, a reads c; e and d read each other; f is fine.
    let text = r#"{"name": "p", "steps": [
        {"id": "f", "plugin": "x@1.0.0"},
        {"id": "c", "plugin": "x@1.0.0", "input": "b"},
        {"id": "a", "plugin": "x@1.0.0", "inputs": ["c", "f"]},
        {"id": "e", "plugin": "x@1.0.0", "input": "d"},
        {"id": "b", "plugin": "x@1.0.0", "input": "a"},
        {"id": "d", "plugin": "x@1.0.0", "input": "e"}]}"#;
    assert_eq!(
        problems(text, &policy()),
        ["steps: cycle c -> a -> b -> c", "steps: cycle e -> d -> e"]
    );
}

#[test]
fn duplicate_id() {
    let text =
        "name: p\nsteps:\n  - id: read\n    plugin: a@1.0.0\n  - id: read\n    plugin: b@1.0.0\n";
    assert_eq!(
        problems(text, &policy()),
        [r#"steps[1].id: duplicate id "read""#]
    );
}

#[test]
fn invalid_id() {
    let text = "name: p\nsteps:\n  - id: Bad Id\n    plugin: a@1.0.0\n";
    assert_eq!(
        problems(text, &policy()),
        [r#"steps[0].id: invalid id "Bad Id" (use a-z, 0-9, - and _)"#]
    );
}

#[test]
fn input_and_inputs_are_exclusive() {
    let text = "name: p\nsteps:\n  - id: a\n    plugin: a@1.0.0\n  - id: b\n    plugin: b@1.0.0\n    input: a\n    inputs: [a]\n";
    assert_eq!(
        problems(text, &policy()),
        [
            r#"steps[1]: "input" and "inputs" are exclusive"#,
            r#"steps[1].inputs[0]: "a" is listed twice"#
        ]
    );
}

#[test]
fn reading_from_itself() {
    let text = "name: p\nsteps:\n  - id: a\n    plugin: a@1.0.0\n  - id: b\n    plugin: b@1.0.0\n    input: b\n";
    assert_eq!(
        problems(text, &policy()),
        ["steps[1].input: a step cannot read from itself"]
    );
    let text = "name: p\nsteps:\n  - id: a\n    plugin: a@1.0.0\n    inputs: [a]\n";
    assert_eq!(
        problems(text, &policy()),
        ["steps[0].inputs[0]: a step cannot read from itself"]
    );
}

#[test]
fn invalid_plugin_reference() {
    let text = "name: p\nsteps:\n  - id: a\n    plugin: x@@1\n";
    assert_eq!(
        problems(text, &policy()),
        [
            r#"steps[0].plugin: invalid plugin reference "x@@1" (expected name@version, name@latest, sha256:<hex> or a path to a .wasm file)"#
        ]
    );
}

#[test]
fn mount_outside_the_allowed_roots() {
    let policy = ValidationPolicy {
        allowed_mount_roots: vec![PathBuf::from("./data")],
        ..policy()
    };
    let text = one_step("    mounts: [{ host: /etc, guest: /in }]\n");
    assert_eq!(
        problems(&text, &policy),
        [r#"steps[0].mounts[0].host: "/etc" is outside the allowed mount roots (./data)"#]
    );
    let policy = ValidationPolicy {
        allowed_mount_roots: vec![PathBuf::from("/srv/a"), PathBuf::from("/srv/b")],
        ..policy
    };
    assert_eq!(
        problems(&text, &policy),
        [r#"steps[0].mounts[0].host: "/etc" is outside the allowed mount roots (/srv/a, /srv/b)"#]
    );
}

#[cfg(unix)]
#[test]
fn mount_escapes_by_dotdot_and_symlink_are_caught() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    std::os::unix::fs::symlink("/etc", dir.path().join("data/link")).unwrap();
    let root = dir.path().join("data");
    let policy = ValidationPolicy {
        allowed_mount_roots: vec![root.clone()],
        base_dir: dir.path().to_path_buf(),
        ..policy()
    };
    let outside = format!("is outside the allowed mount roots ({})", root.display());
    for host in [
        "./data/../secret",
        "data/link",
        "data/link/ssl/new-dir",
        "/etc",
    ] {
        let text = one_step(&format!(
            "    mounts: [{{ host: \"{host}\", guest: /in }}]\n"
        ));
        assert_eq!(
            problems(&text, &policy),
            [format!("steps[0].mounts[0].host: {host:?} {outside}")]
        );
    }
    // Inside, existing or not, relative or absolute: accepted and resolved.
    let canonical = dir.path().canonicalize().unwrap();
    let text = one_step(&format!(
        "    mounts:\n      - {{ host: ./data/in/../out, guest: /out, mode: rw }}\n      - {{ host: {}, guest: /d }}\n",
        root.display()
    ));
    let validated = parse(&text, None).unwrap().validate(&policy).unwrap();
    let mounts = &validated.resolved(0).unwrap().mounts;
    assert_eq!(mounts[0].host, canonical.join("data/out"));
    assert_eq!(mounts[1].host, canonical.join("data"));
}

#[test]
fn mounts_not_allowed_without_roots() {
    let text = one_step("    mounts: [{ host: ./data, guest: /in }]\n");
    assert_eq!(
        problems(&text, &policy()),
        ["steps[0].mounts[0].host: mounts are not allowed on this server"]
    );
}

#[test]
fn guest_must_be_absolute() {
    let policy = ValidationPolicy {
        allowed_mount_roots: vec![PathBuf::from("/")],
        ..policy()
    };
    let text = one_step(
        "    mounts:\n      - { host: /tmp/a, guest: in }\n      - { host: /tmp/b, guest: /x/../y }\n      \
         - { host: /tmp/c, guest: /z }\n      - { host: /tmp/d, guest: /z/ }\n      - { host: '', guest: /e }\n",
    );
    assert_eq!(
        problems(&text, &policy),
        [
            "steps[0].mounts[0].guest: must be an absolute path",
            r#"steps[0].mounts[1].guest: must not contain "..""#,
            r#"steps[0].mounts[3].guest: "/z/" is mounted twice"#,
            "steps[0].mounts[4].host: must not be empty",
        ]
    );
}

#[test]
fn limits_over_the_server_maximum() {
    let text = one_step("    limits: { memory_mb: 100000, timeout_ms: 0, fuel: 0 }\n");
    assert_eq!(
        problems(&text, &policy()),
        [
            "steps[0].limits.memory_mb: 100000 exceeds the server maximum of 4096",
            "steps[0].limits.timeout_ms: must be greater than 0",
            "steps[0].limits.fuel: must be greater than 0",
        ]
    );
    let text = format!(
        "{}limits: {{ timeout_ms: 7200000, max_output_bytes: 0 }}\n",
        one_step("")
    );
    assert_eq!(
        problems(&text, &policy()),
        [
            "limits.timeout_ms: 7200000 exceeds the server maximum of 3600000",
            "limits.max_output_bytes: must be greater than 0",
        ]
    );
    let text = one_step("    limits: { max_output_bytes: 1099511627776 }\n");
    assert_eq!(
        problems(&text, &policy()),
        ["steps[0].limits.max_output_bytes: 1099511627776 exceeds the server maximum of 268435456"]
    );
}

#[test]
fn no_steps() {
    assert_eq!(
        problems("name: p\nsteps: []\n", &policy()),
        ["steps: a pipeline needs at least one step"]
    );
}

#[test]
fn invalid_name() {
    for name in ["Orders", "-x", "a b", &"a".repeat(64)] {
        let text = format!(
            "{{\"name\": {name:?}, \"steps\": [{{\"id\": \"a\", \"plugin\": \"a@1.0.0\"}}]}}"
        );
        assert_eq!(
            problems(&text, &policy()),
            [format!(
                "name: invalid name {name:?} (use a-z, 0-9, - and _, at most 63 characters)"
            )]
        );
    }
    assert!(
        parse(
            &one_step("").replace("name: p", &format!("name: {}", "a".repeat(63))),
            None
        )
        .unwrap()
        .validate(&policy())
        .is_ok()
    );
}

#[test]
fn batch_sizes_retry_schedule_dead_letter_secrets_hosts() {
    let text = "name: p\nschedule: { cron: ' ', timezone: '' }\nsteps:\n  - id: a\n    plugin: a@1.0.0\n    \
                batch_size: 0\n    secrets: [ok_name.v2, 'not ok']\n    \
                allow_hosts: [api.example.com, '*.example.com:443', '10.0.0.1', '[::1]', 'http://x', 'a:0', '']\n\
                retry: { max_attempts: 0, initial_backoff_ms: 70000 }\nbatch_size: 65537\ndead_letter: { path: '' }\n";
    assert_eq!(
        problems(text, &policy()),
        [
            "schedule.cron: must not be empty",
            "schedule.timezone: must not be empty",
            "steps[0].batch_size: must be between 1 and 65536, got 0",
            r#"steps[0].secrets[1]: invalid secret name "not ok" (use a-z, A-Z, 0-9, -, _ and .)"#,
            r#"steps[0].allow_hosts[4]: invalid host "http://x" (expected a host name or address, optionally with :port)"#,
            r#"steps[0].allow_hosts[5]: invalid host "a:0" (expected a host name or address, optionally with :port)"#,
            r#"steps[0].allow_hosts[6]: invalid host "" (expected a host name or address, optionally with :port)"#,
            "retry.max_attempts: must be at least 1",
            "retry.initial_backoff_ms: 70000 is greater than max_backoff_ms (60000)",
            "batch_size: must be between 1 and 65536, got 65537",
            "dead_letter.path: must not be empty",
        ]
    );
}

#[test]
fn collects_every_problem_in_order() {
    let text = r#"{"name": "Bad", "steps": [
        {"id": "read", "plugin": "nope", "mounts": [{"host": "/etc", "guest": "in"}]},
        {"id": "read", "plugin": "b@1.0.0", "input": "raed", "limits": {"memory_mb": 100000}},
        {"id": "w", "plugin": "c@1.0.0", "input": "x", "inputs": ["w"]}]}"#;
    let validated = parse(text, None).unwrap().validate(&policy());
    let errors = validated.unwrap_err();
    assert_eq!(
        errors.messages(),
        [
            r#"name: invalid name "Bad" (use a-z, 0-9, - and _, at most 63 characters)"#,
            r#"steps[0].plugin: invalid plugin reference "nope" (expected name@version, name@latest, sha256:<hex> or a path to a .wasm file)"#,
            "steps[0].mounts[0].host: mounts are not allowed on this server",
            "steps[0].mounts[0].guest: must be an absolute path",
            r#"steps[1].id: duplicate id "read""#,
            r#"steps[1].input: no step "raed""#,
            "steps[1].limits.memory_mb: 100000 exceeds the server maximum of 4096",
            r#"steps[2]: "input" and "inputs" are exclusive"#,
            r#"steps[2].input: no step "x""#,
            "steps[2].inputs[0]: a step cannot read from itself",
        ]
    );
    assert_eq!(errors.to_string(), errors.messages().join("\n"));
    assert_eq!(errors.problems()[5].path(), Some("steps[1].input"));
    assert_eq!(
        serde_json::to_value(&errors.problems()[5]).unwrap(),
        serde_json::json!({"kind": "invalid", "path": "steps[1].input", "message": "no step \"raed\""})
    );
    assert!(matches!(
        errors.problems()[0],
        PipelineError::Invalid { .. }
    ));
}

#[test]
fn schedules_concurrency_labels_and_step_retries() {
    let text = "name: p\nschedule: { cron: 'every minute', timezone: Mars/Olympus, max_catchup: 0 }\nconcurrency: 0\n\
                labels: [eu, 'GPU', 'a b']\nsteps:\n  - id: a\n    plugin: a@1.0.0\n    \
                retry: { max_attempts: 0, initial_backoff_ms: 5, max_backoff_ms: 1 }\n";
    let found = problems(text, &policy());
    assert!(
        found[0].starts_with(r#"schedule.cron: invalid cron expression "every minute" ("#),
        "{found:?}"
    );
    assert_eq!(
        found[1..],
        [
            r#"schedule.timezone: unknown time zone "Mars/Olympus" (an IANA name such as UTC or Europe/Paris)"#,
            "schedule.max_catchup: must be at least 1",
            "concurrency: must be at least 1",
            r#"labels[1]: invalid label "GPU" (use a-z, 0-9, -, _, : and ., at most 63 characters)"#,
            r#"labels[2]: invalid label "a b" (use a-z, 0-9, -, _, : and ., at most 63 characters)"#,
            "steps[0].retry.max_attempts: must be at least 1",
            "steps[0].retry.initial_backoff_ms: 5 is greater than max_backoff_ms (1)",
        ]
    );
    let good = "name: p\nschedule: { cron: '0 */5 * * * *', timezone: Europe/Paris, catchup: once, overlap: queue }\n\
                concurrency: 2\nlabels: [eu, 'gpu:a100']\nsteps:\n  - id: a\n    plugin: a@1.0.0\n    \
                retry: { max_attempts: 2, then: dead_letter }\n";
    assert!(parse(good, None).unwrap().validate(&policy()).is_ok());
}

#[test]
fn connections_are_declared_once_and_granted_by_name() {
    let text = "name: p\nconnections:\n  pg: { url: 'postgres://app:${secrets.pg-pass}@db/x' }\n  'Bad Name': { url: 'nats://n' }\n  \
                ftp: { url: 'ftp://files' }\n  lite: { url: 'sqlite:///etc/passwd' }\n  open: { url: 'redis://${secrets.pw' }\n\
                steps:\n  - id: a\n    plugin: a@1.0.0\n    connections: [pg, nope]\n";
    assert_eq!(
        problems(text, &policy()),
        [
            r#"connections.Bad Name: invalid connection name "Bad Name" (use a-z, 0-9, - and _)"#,
            r#"connections.ftp.url: unsupported URL "ftp:...": expected postgres://, mysql://, mariadb://, sqlite:, nats://, redis://, amqp:// or mqtt://"#,
            r#"connections.lite.url: SQLite file "/etc/passwd": mounts are not allowed on this server"#,
            "connections.open.url: unclosed ${secrets.NAME} placeholder",
            r#"steps[0].connections[1]: no connection "nope" in the pipeline's connections"#,
        ]
    );
}
