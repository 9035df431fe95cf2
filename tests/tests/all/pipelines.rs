//! Pipelines end to end through `autoflow run`: filter + map with fan-out, CSV to JSON lines,
//! dead letters, input records and parameters given on the command line; outputs compared
//! record by record.
// Test code: failing loudly is its job.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]
use autoflow_tests::{Project, json_lines};
use serde_json::{Value, json};

/// 200 orders with a deterministic mix of statuses and amounts, plus two broken lines.
fn orders() -> (String, Vec<Value>) {
    let statuses = ["paid", "pending", "refunded", "paid", "failed"];
    let mut text = String::new();
    let mut values = Vec::new();
    for i in 0..200u32 {
        let v = json!({
            "id": i,
            "customer": format!("c{}", i % 17),
            "status": statuses[(i % 5) as usize],
            "amount": f64::from(i * 7 % 250) + 0.5,
            "note": "x".repeat((i % 13) as usize),
        });
        text.push_str(&v.to_string());
        text.push('\n');
        if i == 50 || i == 150 {
            text.push_str(&format!("broken line {i}\n"));
        }
        values.push(v);
    }
    (text, values)
}

#[test]
fn filter_and_map_fan_out_to_two_sinks() {
    let p = Project::new();
    let (input, values) = orders();
    p.write("data/in/orders.jsonl", &input);
    p.write(
        "pipeline.yaml",
        r#"
name: fan-out
steps:
  - id: read
    plugin: file-source@0.1.0
    config: { path: /in/orders.jsonl }
    mounts: [{ host: ./data/in, guest: /in }]
  - id: paid
    plugin: json-filter@0.1.0
    input: read
    config: { field: status, equals: paid }
  - id: slim
    plugin: json-map@0.1.0
    input: paid
    config: { select: [id, customer, amount], rename: { amount: total }, set: { currency: EUR } }
  - id: all-paid
    plugin: file-sink@0.1.0
    input: slim
    config: { path: /out/paid.jsonl }
    mounts: [{ host: ./data/out, guest: /out, mode: rw }]
  - id: big
    plugin: json-filter@0.1.0
    input: slim
    config: { all: [ { field: total, op: gte, value: 100 }, { not: { field: customer, equals: c3 } } ] }
  - id: big-paid
    plugin: file-sink@0.1.0
    input: big
    config: { path: /out/big.jsonl }
    mounts: [{ host: ./data/out, guest: /out, mode: rw }]
batch_size: 16
"#,
    );
    let out = p.run("pipeline.yaml", &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);

    let expected_paid: Vec<Value> = values
        .iter()
        .filter(|v| v["status"] == "paid")
        .map(|v| json!({ "id": v["id"], "customer": v["customer"], "total": v["amount"], "currency": "EUR" }))
        .collect();
    let expected_big: Vec<Value> = expected_paid
        .iter()
        .filter(|v| v["total"].as_f64().unwrap() >= 100.0 && v["customer"] != "c3")
        .cloned()
        .collect();
    let paid = json_lines(&p.read("data/out/paid.jsonl"));
    let big = json_lines(&p.read("data/out/big.jsonl"));
    assert_eq!(paid.len(), expected_paid.len());
    for (i, (got, want)) in paid.iter().zip(&expected_paid).enumerate() {
        assert_eq!(got, want, "paid record {i}");
    }
    assert!(!expected_big.is_empty() && expected_big.len() < expected_paid.len());
    assert_eq!(big, expected_big);
    // Key order follows the map's `select`, then `set`.
    let first = p
        .read("data/out/paid.jsonl")
        .lines()
        .next()
        .unwrap()
        .to_string();
    assert!(
        first.starts_with(r#"{"id":0,"customer":"c0","total":0.5,"currency":"EUR"}"#),
        "{first}"
    );
    // The summary names every step with its counts.
    assert!(
        out.stderr.contains("run fan-out: succeeded"),
        "{}",
        out.stderr
    );
    let read_row = out.stderr.lines().find(|l| l.starts_with("read ")).unwrap();
    assert!(read_row.contains(" 202 "), "{read_row}");
}

#[test]
fn csv_to_json_lines() {
    let p = Project::new();
    p.write(
        "data/in/people.csv",
        "name,age,city,member\nAda,36,\"London, UK\",true\n\"Bob \"\"the\"\" Builder\",41,Paris,false\nCy,,\"multi\nline\",true\n",
    );
    p.write(
        "csv.json",
        r#"{
  "name": "csv-to-jsonl",
  "steps": [
    { "id": "read", "plugin": "file-source@0.1.0", "config": { "path": "/in/people.csv" },
      "mounts": [{ "host": "./data/in", "guest": "/in", "mode": "ro" }] },
    { "id": "write", "plugin": "file-sink@0.1.0", "input": "read", "config": { "path": "/out/people.jsonl" },
      "mounts": [{ "host": "./data/out", "guest": "/out", "mode": "rw" }] }
  ]
}"#,
    );
    let out = p.run("csv.json", &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let got = p.read("data/out/people.jsonl");
    let want = concat!(
        r#"{"name":"Ada","age":36,"city":"London, UK","member":true}"#,
        "\n",
        r#"{"name":"Bob \"the\" Builder","age":41,"city":"Paris","member":false}"#,
        "\n",
        r#"{"name":"Cy","age":"","city":"multi\nline","member":true}"#,
        "\n",
    );
    assert_eq!(got, want);
}

#[test]
fn rejected_records_land_in_the_dead_letter_file_with_reasons() {
    let p = Project::new();
    let (input, _) = orders();
    p.write("data/in/orders.jsonl", &input);
    p.write(
        "dl.yaml",
        r#"
name: with-dead-letters
steps:
  - id: read
    plugin: file-source@0.1.0
    config: { path: /in/orders.jsonl }
    mounts: [{ host: ./data/in, guest: /in }]
  - id: paid
    plugin: json-filter@0.1.0
    input: read
    config: { field: status, equals: paid }
  - id: out
    plugin: log-sink@0.1.0
    input: paid
    config: { level: debug }
dead_letter: { path: ./rejected/orders.jsonl }
"#,
    );
    let out = p.run("dl.yaml", &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let letters = json_lines(&p.read("rejected/orders.jsonl"));
    assert_eq!(letters.len(), 2, "{letters:?}");
    for (letter, n) in letters.iter().zip([50, 150]) {
        assert_eq!(letter["step"], "paid");
        assert_eq!(letter["value"], format!("broken line {n}"));
        let reason = letter["reason"].as_str().unwrap();
        assert!(reason.starts_with("value is not valid JSON"), "{reason}");
        assert!(letter["plugin"].as_str().unwrap().starts_with("sha256:"));
    }
    assert!(
        out.stderr.contains("dead letters: 2 written to"),
        "{}",
        out.stderr
    );
}

#[test]
fn the_shipped_example_runs_as_it_is() {
    let root = autoflow_tests::workspace_root();
    let p = Project::new();
    for f in [
        "examples/orders-clean.yaml",
        "examples/data/in/orders.jsonl",
    ] {
        p.write(f, &std::fs::read_to_string(root.join(f)).unwrap());
    }
    std::fs::create_dir_all(p.path().join("examples/data/out")).unwrap();
    let out = p.run("examples/orders-clean.yaml", &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let paid = json_lines(&p.read("examples/data/out/paid.jsonl"));
    assert!(!paid.is_empty());
    assert!(
        paid.iter()
            .all(|v| v.get("total").is_some() && v.get("status").is_none())
    );
}

#[test]
fn fan_in_merges_two_sources() {
    let p = Project::new();
    let a: String = (0..300)
        .map(|i| format!("{{\"id\":{i},\"from\":\"a\"}}\n"))
        .collect();
    let b: String = (0..250)
        .map(|i| format!("{{\"id\":{i},\"from\":\"b\"}}\n"))
        .collect();
    p.write("data/in/a.jsonl", &a);
    p.write("data/in/b.jsonl", &b);
    p.write(
        "merge.yaml",
        r#"
name: merge
batch_size: 7
steps:
  - { id: a, plugin: file-source@0.1.0, config: { path: /in/a.jsonl }, mounts: [{ host: ./data/in, guest: /in }] }
  - { id: b, plugin: file-source@0.1.0, config: { path: /in/b.jsonl }, mounts: [{ host: ./data/in, guest: /in }] }
  - { id: tag, plugin: json-map@0.1.0, inputs: [a, b], config: { set: { merged: true } } }
  - { id: out, plugin: file-sink@0.1.0, input: tag, config: { path: /out/all.jsonl }, mounts: [{ host: ./data/out, guest: /out, mode: rw }] }
"#,
    );
    let out = p.run("merge.yaml", &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let mut got: Vec<(String, u64)> = json_lines(&p.read("data/out/all.jsonl"))
        .iter()
        .map(|v| {
            assert_eq!(v["merged"], true);
            (
                v["from"].as_str().unwrap().to_string(),
                v["id"].as_u64().unwrap(),
            )
        })
        .collect();
    got.sort();
    let mut want: Vec<(String, u64)> = (0..300)
        .map(|i| ("a".to_string(), i))
        .chain((0..250).map(|i| ("b".to_string(), i)))
        .collect();
    want.sort();
    assert_eq!(got, want);
    // Each source's own order is kept through the merge.
    let text = p.read("data/out/all.jsonl");
    let a_ids: Vec<u64> = json_lines(&text)
        .iter()
        .filter(|v| v["from"] == "a")
        .map(|v| v["id"].as_u64().unwrap())
        .collect();
    assert!(a_ids.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn a_forty_step_chain_runs() {
    let p = Project::new();
    let mut yaml = String::from(
        "name: chain\nsteps:\n  - { id: s0, plugin: generator@0.1.0, config: { count: 500, seed: 7 } }\n",
    );
    for i in 1..39 {
        yaml.push_str(&format!("  - {{ id: s{i}, plugin: json-map@0.1.0, input: s{}, config: {{ set: {{ hop: {i} }} }} }}\n", i - 1));
    }
    yaml.push_str("  - { id: out, plugin: file-sink@0.1.0, input: s38, config: { path: /out/chain.jsonl }, mounts: [{ host: ./data/out, guest: /out, mode: rw }] }\n");
    p.write("chain.yaml", &yaml);
    let out = p.run("chain.yaml", &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let rows = json_lines(&p.read("data/out/chain.jsonl"));
    assert_eq!(rows.len(), 500);
    assert!(rows.iter().all(|r| r["hop"] == 38));
}

#[test]
fn a_local_run_takes_input_records_and_parameters() {
    let p = Project::new();
    p.write(
        "orders.jsonl",
        "{\"id\": 1, \"region\": \"eu\"}\n{\"id\": 2, \"region\": \"us\"}\n{\"id\": 3, \"region\": \"eu\"}\n",
    );
    p.write(
        "pipeline.yaml",
        r#"
name: by-region
params:
  region: { type: string }
  day: { type: date, default: "2026-12-01" }
steps:
  - id: in
    plugin: trigger-source@latest
  - id: keep
    plugin: json-filter@latest
    input: in
    config: { field: region, equals: "${params.region}" }
  - id: out
    plugin: file-sink@latest
    input: keep
    config: { path: "/out/${params.region}-${params.day}.jsonl" }
    mounts: [{ host: ./out, guest: /out, mode: rw }]
"#,
    );
    std::fs::create_dir_all(p.path().join("out")).unwrap();
    let args = ["--input", "orders.jsonl", "--param", "region=eu"];
    let out = p.run("pipeline.yaml", &args);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let written = json_lines(&p.read("out/eu-2026-12-01.jsonl"));
    assert_eq!(
        written,
        vec![
            json!({"id": 1, "region": "eu"}),
            json!({"id": 3, "region": "eu"})
        ]
    );
    // A missing parameter, a bad value and a broken input file are refused before anything
    // runs, each named.
    let out = p.run("pipeline.yaml", &["--input", "orders.jsonl"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("params.region: missing (a string without a default)"),
        "{}",
        out.stderr
    );
    let out = p.run(
        "pipeline.yaml",
        &["--param", "region=eu", "--param", "day=tomorrow"],
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("params.day: \"tomorrow\" is not a date (YYYY-MM-DD)"),
        "{}",
        out.stderr
    );
    p.write("broken.jsonl", "{\"id\": 1}\n{\"id\": \n");
    let out = p.run(
        "pipeline.yaml",
        &["--input", "broken.jsonl", "--param", "region=eu"],
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("--input broken.jsonl: line 2 of the JSON lines"),
        "{}",
        out.stderr
    );
}
