#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The built-in transforms end to end: a pipeline chaining json-schema, split, flatten, mask,
//! dedupe and jq through `autoflow run`, compared record by record with a reference computed
//! here; and dedupe's window and aggregate's open windows carried across runs on a server
//! (SQLite and PostgreSQL), since `autoflow run` keeps no step state between runs.
use std::collections::HashSet;

use autoflow_tests::server::{Backend, Server};
use autoflow_tests::{Project, json_lines};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

const SECRET: &str = "s3cret-mask-key";

/// 120 orders of 0 to 3 items (some of quantity 0), every 7th line repeated (a re-delivered
/// order), plus a broken line, an order without items and one whose items are not an array.
fn orders() -> (String, Vec<Value>) {
    let mut text = String::new();
    let mut values = Vec::new();
    for i in 0..120u64 {
        let items: Vec<Value> = (0..i % 4)
            .map(|k| json!({ "sku": format!("S{}", (i + k) % 9), "qty": (i * 3 + k) % 5, "price": 0.5 + ((i + k) % 7) as f64 }))
            .collect();
        let v = json!({
            "id": i,
            "customer": { "name": format!("Customer {}", i % 23), "email": format!("c{}@example.com", i % 23) },
            "card": format!("4000{:012}", i * 7919),
            "items": items,
        });
        let line = v.to_string();
        text.push_str(&line);
        text.push('\n');
        values.push(v.clone());
        if i % 7 == 3 {
            text.push_str(&line);
            text.push('\n');
            values.push(v);
        }
        if i == 40 {
            text.push_str("{not json\n");
            text.push_str("{\"id\":1000,\"customer\":{}}\n");
            text.push_str("{\"id\":1001,\"items\":\"none\"}\n");
        }
    }
    (text, values)
}

fn hmac_hex(text: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(text.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What the pipeline should write, computed in plain Rust from the valid orders.
fn reference(values: &[Value]) -> Vec<Value> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for order in values {
        for item in order["items"].as_array().unwrap() {
            // dedupe: key [id, item_sku]
            if !seen.insert((order["id"].to_string(), item["sku"].to_string())) {
                continue;
            }
            let qty = item["qty"].as_u64().unwrap();
            if qty == 0 {
                continue;
            }
            let name: String = order["customer"]["name"]
                .as_str()
                .unwrap()
                .chars()
                .take(3)
                .collect();
            out.push(json!({
                "id": order["id"],
                "sku": item["sku"],
                "total": qty as f64 * item["price"].as_f64().unwrap(),
                "who": hmac_hex(order["customer"]["email"].as_str().unwrap()),
                "name": name,
                "card": "****",
            }));
        }
    }
    out
}

const PIPELINE: &str = r#"
name: transforms
steps:
  - id: read
    plugin: file-source@0.1.0
    config: { path: /in/orders.jsonl }
    mounts: [{ host: ./data/in, guest: /in }]
  - id: valid
    plugin: json-schema@0.1.0
    input: read
    config:
      schema: { type: object, required: [id, items], properties: { items: { type: array } } }
  - id: lines
    plugin: split@0.1.0
    input: valid
    config: { field: items, keep: [id, customer, card], as: item }
  - id: flat
    plugin: flatten@0.1.0
    input: lines
    config: { separator: "_" }
  - id: pii
    plugin: mask@0.1.0
    input: flat
    secrets: [mask-key]
    config:
      secret: mask-key
      fields: { customer_email: hash, customer_name: { truncate: 3 }, card: { redact: "****" } }
  - id: once
    plugin: dedupe@0.1.0
    input: pii
    config: { key: [id, item_sku] }
  - id: shape
    plugin: jq@0.1.0
    input: once
    config:
      program: 'select(.item_qty > 0) | {id, sku: .item_sku, total: (.item_qty * .item_price), who: .customer_email, name: .customer_name, card}'
  - id: write
    plugin: file-sink@0.1.0
    input: shape
    config: { path: /out/lines.jsonl }
    mounts: [{ host: ./data/out, guest: /out, mode: rw }]
batch_size: 16
dead_letter: { path: ./rejected.jsonl }
"#;

#[test]
fn split_flatten_mask_dedupe_jq_match_a_reference_record_by_record() {
    let p = Project::new();
    let (input, values) = orders();
    p.write("data/in/orders.jsonl", &input);
    p.write("pipeline.yaml", PIPELINE);
    let secret = format!("mask-key={SECRET}");
    let out = p.run("pipeline.yaml", &["--secret", &secret]);
    assert_eq!(out.code, 0, "{}", out.stderr);

    let want = reference(&values);
    let got = json_lines(&p.read("data/out/lines.jsonl"));
    assert!(want.len() > 100, "{}", want.len());
    assert_eq!(got.len(), want.len(), "{}", out.stderr);
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(g), keys(w), "record {i}: {g}");
        for k in ["id", "sku", "who", "name", "card"] {
            assert_eq!(g[k], w[k], "record {i}, {k}: {g} vs {w}");
        }
        let (a, b) = (g["total"].as_f64().unwrap(), w["total"].as_f64().unwrap());
        assert!((a - b).abs() < 1e-9, "record {i}, total: {g} vs {w}");
    }
    // The secret never reaches the output.
    assert!(!p.read("data/out/lines.jsonl").contains(SECRET));

    // The three bad lines are dead letters of the validating step, with their reasons.
    let letters = json_lines(&p.read("rejected.jsonl"));
    let reasons: Vec<(&str, &str)> = letters
        .iter()
        .map(|l| (l["step"].as_str().unwrap(), l["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(
        reasons.iter().all(|(step, _)| *step == "valid"),
        "{reasons:?}"
    );
    assert!(
        reasons[0].1.starts_with("value is not valid JSON"),
        "{reasons:?}"
    );
    assert_eq!(
        reasons[1].1,
        r#"at / (required): "items" is a required property"#
    );
    assert_eq!(
        reasons[2].1,
        r#"at /items (type): "none" is not of type "array""#
    );

    // Without the secret the mask step does not open, and says why.
    let out = p.run("pipeline.yaml", &[]);
    assert_ne!(out.code, 0);
    assert!(
        out.stderr
            .contains(r#"the secret \"mask-key\" is not granted to this step"#)
            || out
                .stderr
                .contains(r#"the secret "mask-key" is not granted to this step"#),
        "{}",
        out.stderr
    );
}

/// Runs `pipeline` and returns the ids the log sink wrote, in order.
fn logged_ids(s: &Server, pipeline: &str) -> Vec<i64> {
    let run = s.run_and_wait(&s.admin, pipeline, None);
    assert_eq!(run["status"], "succeeded", "{run}");
    s.logged(run["id"].as_str().unwrap(), "sink")
        .iter()
        .filter_map(|v| v["id"].as_i64())
        .collect()
}

fn dedupe_across_runs(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap().to_string();
    let file = dir.path().join("events.jsonl");
    let lines = |ids: &[i64]| {
        ids.iter()
            .map(|i| format!("{{\"id\":{i}}}\n"))
            .collect::<String>()
    };
    std::fs::write(&file, lines(&[1, 2, 1, 3, 4, 5])).unwrap();
    let Some(s) = Server::start_with(backend, &["--mount-root", &root]) else {
        return;
    };
    let yaml = format!(
        "name: once\nsteps:\n  - id: read\n    plugin: file-source@latest\n    config: {{ path: /in/events.jsonl }}\n    \
         mounts: [{{ host: {root}, guest: /in }}]\n  - id: once\n    plugin: dedupe@latest\n    input: read\n    \
         config: {{ key: id, window: 4 }}\n  - id: sink\n    plugin: log-sink@latest\n    input: once\nbatch_size: 2\n"
    );
    let r = s.apply(&s.admin, "once", &yaml);
    assert!(r.status == 201 || r.status == 200, "{}", r.text());
    assert_eq!(logged_ids(&s, "once"), [1, 2, 3, 4, 5]);
    // The next run reads only the new lines (the source's cursor); dedupe remembers the last
    // four keys (2, 3, 4, 5): 1 has left the window, 5 and 3 have not.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .and_then(|mut f| std::io::Write::write_all(&mut f, lines(&[5, 1, 3, 6, 6]).as_bytes()))
        .unwrap();
    assert_eq!(logged_ids(&s, "once"), [1, 6]);
    let checkpoints = s.get("/v1/pipelines/once/checkpoints").json();
    let state = checkpoints
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["step"] == "once")
        .unwrap()["state"]
        .clone();
    let names: Vec<&String> = state.as_object().unwrap().keys().collect();
    assert_eq!(names, ["dedupe.meta", "dedupe.seg.0"], "{state}");
    use base64::Engine as _;
    let seg = base64::engine::general_purpose::STANDARD
        .decode(state["dedupe.seg.0"].as_str().unwrap())
        .unwrap();
    assert_eq!(seg.len(), 4 * 8, "four 8-byte hashes: {state}");
    // The window is now 4, 5, 1, 6: 6 is dropped again, 3 has left it.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .and_then(|mut f| std::io::Write::write_all(&mut f, lines(&[6, 3, 7]).as_bytes()))
        .unwrap();
    assert_eq!(logged_ids(&s, "once"), [3, 7]);
}

#[test]
fn dedupe_carries_its_window_across_runs_on_sqlite() {
    dedupe_across_runs(Backend::Sqlite);
}

#[test]
fn dedupe_carries_its_window_across_runs_on_postgres() {
    dedupe_across_runs(Backend::Postgres);
}

#[test]
fn throttle_paces_records_to_its_rate_and_passes_them_all_in_order() {
    let Some(s) = Server::start(Backend::Sqlite) else {
        return;
    };
    // 40 records at 100 a second, bursts of 5: the last one leaves 350 ms after the first.
    let yaml = "name: paced\nbatch_size: 8\nsteps:\n  - id: gen\n    plugin: generator@latest\n    config: { count: 40 }\n  \
                - id: pace\n    plugin: throttle@latest\n    input: gen\n    config: { per_second: 100, burst: 5 }\n  \
                - id: out\n    plugin: log-sink@latest\n    input: pace\n";
    let r = s.apply(&s.admin, "paced", yaml);
    assert!(r.status < 300, "{}", r.text());
    let run = s.run_and_wait(&s.admin, "paced", None);
    assert_eq!(run["status"], "succeeded", "{run}");
    let ids: Vec<i64> = s
        .logged(run["id"].as_str().unwrap(), "out")
        .iter()
        .map(|v| v["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, (0..40).collect::<Vec<_>>());
    let steps = run["report"]["steps"].as_array().unwrap();
    let pace = steps.iter().find(|s| s["id"] == "pace").unwrap();
    // It slept (time spent between batches counts toward the rate too), and the last record
    // left no sooner than the rate allows.
    let waited = pace["counters"]["throttled_ms"].as_u64().unwrap_or(0);
    assert!(waited > 0, "{pace}");
    let took = run["finished_at"].as_i64().unwrap() - run["started_at"].as_i64().unwrap();
    assert!(took >= 340, "the run took {took} ms");
}

/// aggregate on a server: read -> agg (100 ms windows on `t`: count, sum) -> gate (fails while
/// `gate/open` is missing) -> log-sink. A window closed in one run is passed on; the open one
/// goes on in the next run from the step state; a failed run commits neither the state nor the
/// source's cursor, so the run after it counts the same records once.
fn aggregate_across_runs(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap().to_string();
    let file = dir.path().join("events.jsonl");
    let gate = dir.path().join("gate");
    std::fs::create_dir_all(&gate).unwrap();
    std::fs::write(gate.join("open"), "").unwrap();
    let append = |ts: &[(i64, i64)]| {
        let text: String = ts
            .iter()
            .map(|(t, v)| format!("{{\"t\":{t},\"v\":{v}}}\n"))
            .collect();
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&file)
            .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()))
            .unwrap();
    };
    let Some(s) = Server::start_with(backend, &["--mount-root", &root]) else {
        return;
    };
    let r = s.push(
        &s.admin,
        "gate",
        "1.0.0",
        std::fs::read(autoflow_tests::guests::GATE).unwrap(),
    );
    assert!(r.status == 201 || r.status == 200, "{}", r.text());
    let yaml = format!(
        "name: windows\nsteps:\n  - id: read\n    plugin: file-source@latest\n    config: {{ path: /in/events.jsonl }}\n    \
         mounts: [{{ host: {root}, guest: /in }}]\n  - id: agg\n    plugin: aggregate@latest\n    input: read\n    \
         config: {{ window: {{ size_ms: 100, time_field: t }}, aggregates: {{ n: {{ op: count }}, total: {{ op: sum, field: v }} }} }}\n  \
         - id: gate\n    plugin: gate@latest\n    input: agg\n    config: {{ path: /in/gate/open }}\n    mounts: [{{ host: {root}, guest: /in }}]\n  \
         - id: sink\n    plugin: log-sink@latest\n    input: gate\nbatch_size: 2\n"
    );
    let r = s.apply(&s.admin, "windows", &yaml);
    assert!(r.status == 201 || r.status == 200, "{}", r.text());
    let windows = |run: &Value| -> Vec<(i64, i64, i64)> {
        s.logged(run["id"].as_str().unwrap(), "sink")
            .iter()
            .map(|w| {
                (
                    w["window_start"].as_i64().unwrap(),
                    w["n"].as_i64().unwrap(),
                    w["total"].as_i64().unwrap(),
                )
            })
            .collect()
    };
    // Run 1: [0,100) closes when t=150 comes; [100,200) stays open, in the state.
    append(&[(10, 1), (20, 2), (150, 4)]);
    let run = s.run_and_wait(&s.admin, "windows", None);
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(windows(&run), [(0, 2, 3)]);
    // Run 2 closes [100,200) with t=150 from run 1 and t=160, but its gate is shut: it fails.
    append(&[(160, 8), (250, 16)]);
    std::fs::remove_file(gate.join("open")).unwrap();
    let run = s.run_and_wait(&s.admin, "windows", None);
    assert_eq!(run["status"], "failed", "{run}");
    // Run 3 rereads t=160 and t=250 from the committed cursor, over run 1's committed windows:
    // [100,200) counts each record once.
    std::fs::write(gate.join("open"), "").unwrap();
    let run = s.run_and_wait(&s.admin, "windows", None);
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(windows(&run), [(100, 2, 12)]);
    // Run 4: [200,300) from run 3's state, closed by t=420.
    append(&[(270, 32), (420, 64)]);
    let run = s.run_and_wait(&s.admin, "windows", None);
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(windows(&run), [(200, 2, 48)]);
}

#[test]
fn aggregate_carries_its_open_windows_across_runs_and_a_failed_run_counts_nothing_on_sqlite() {
    aggregate_across_runs(Backend::Sqlite);
}

#[test]
fn aggregate_carries_its_open_windows_across_runs_and_a_failed_run_counts_nothing_on_postgres() {
    aggregate_across_runs(Backend::Postgres);
}
