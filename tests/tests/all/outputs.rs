//! `autoflow:plugin@0.2.0` transforms end to end: `route` sends records to three branches
//! (`input: STEP.OUTPUT`) that write three files matching a reference record by record; a
//! 0.1.0 component (the Python example, built from source) runs in one pipeline with 0.2.0
//! ones; `sample`'s reservoir is passed on at the end of the run (`finish`); and a step reading
//! an output its upstream step does not have is refused with its place.
// Test code: failing loudly is its job.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]
use autoflow_tests::{Project, json_lines, lang_component, plugin_check};
use serde_json::{Value, json};

const COUNTRIES: [&str; 5] = ["DE", "FR", "US", "JP", "BR"];

/// 600 orders as JSON lines, and the same as values.
fn orders() -> (String, Vec<Value>) {
    let values: Vec<Value> = (0..600)
        .map(|i| json!({"id": i, "country": COUNTRIES[i % 5], "amount": i * 37 % 1000}))
        .collect();
    let text = values.iter().map(|v| format!("{v}\n")).collect();
    (text, values)
}

/// Where `route` (mode first) sends each order: `eu` (DE, FR), else `big` (amount >= 500),
/// else the default output.
fn reference(values: &[Value]) -> [Vec<Value>; 3] {
    let mut out: [Vec<Value>; 3] = Default::default();
    for v in values {
        let i = if ["DE", "FR"].contains(&v["country"].as_str().unwrap()) {
            0
        } else if v["amount"].as_u64().unwrap() >= 500 {
            1
        } else {
            2
        };
        out[i].push(v.clone());
    }
    out
}

/// The pipeline: read -> [middle] -> route -> three file sinks (eu, big, rest); `middle` is a
/// step reading `read` whose output route reads, or none.
fn routing_pipeline(middle: Option<&str>) -> String {
    let (middle_step, route_input) = match middle {
        Some(plugin) => (
            format!(
                "  - {{ id: fp, plugin: {plugin}, input: read, limits: {{ memory_mb: 128 }} }}\n"
            ),
            "fp",
        ),
        None => (String::new(), "read"),
    };
    format!(
        "name: routing
batch_size: 64
steps:
  - {{ id: read, plugin: file-source@0.1.0, config: {{ path: /in/orders.jsonl }}, mounts: [{{ host: ./data/in, guest: /in }}] }}
{middle_step}  - id: route
    plugin: route@0.1.0
    input: {route_input}
    config:
      routes:
        - {{ output: eu, when: {{ field: country, op: in, value: [DE, FR] }} }}
        - {{ output: big, when: {{ field: amount, op: gte, value: 500 }} }}
  - {{ id: eu, plugin: file-sink@0.1.0, input: route.eu, config: {{ path: /out/eu.jsonl }}, mounts: [{{ host: ./data/out, guest: /out, mode: rw }}] }}
  - {{ id: big, plugin: file-sink@0.1.0, input: route.big, config: {{ path: /out/big.jsonl }}, mounts: [{{ host: ./data/out, guest: /out, mode: rw }}] }}
  - {{ id: rest, plugin: file-sink@0.1.0, input: route, config: {{ path: /out/rest.jsonl }}, mounts: [{{ host: ./data/out, guest: /out, mode: rw }}] }}
"
    )
}

/// Runs the routing pipeline and returns the three files' records.
fn run_routing(p: &Project, middle: Option<&str>) -> [Vec<Value>; 3] {
    p.write("routing.yaml", &routing_pipeline(middle));
    let out = p.run("routing.yaml", &[]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    ["eu", "big", "rest"].map(|name| json_lines(&p.read(&format!("data/out/{name}.jsonl"))))
}

#[test]
fn route_sends_each_record_to_its_branch_and_three_files_match_a_reference() {
    let p = Project::new();
    let (text, values) = orders();
    p.write("data/in/orders.jsonl", &text);
    let written = run_routing(&p, None);
    let expected = reference(&values);
    for (name, (got, want)) in ["eu", "big", "rest"]
        .iter()
        .zip(written.iter().zip(&expected))
    {
        assert!(!want.is_empty(), "{name}: the reference has records");
        assert_eq!(got, want, "{name}: record by record, in order");
    }
    assert_eq!(written.iter().map(Vec::len).sum::<usize>(), values.len());
}

#[test]
fn a_0_1_0_component_and_0_2_0_components_run_in_one_pipeline() {
    let Some(python) = lang_component("plugins", "python", "fingerprint") else {
        return;
    };
    let report = plugin_check(&python);
    assert_eq!(report["contract"], "0.1.0");
    assert_eq!(report["world"], "transform-plugin");
    let p = Project::new();
    let (text, values) = orders();
    p.write("data/in/orders.jsonl", &text);
    let written = run_routing(&p, Some(&python.display().to_string()));
    let expected = reference(&values);
    for (name, (got, want)) in ["eu", "big", "rest"]
        .iter()
        .zip(written.iter().zip(&expected))
    {
        assert_eq!(got.len(), want.len(), "{name}");
        for (g, w) in got.iter().zip(want) {
            // The 0.1.0 step added its fingerprint; the rest is the order as read.
            let fp = g["fp"]
                .as_str()
                .unwrap_or_else(|| panic!("{name}: no fp in {g}"));
            assert!(
                fp.len() == 8 && fp.chars().all(|c| c.is_ascii_hexdigit()),
                "{g}"
            );
            let mut without = g.clone();
            without.as_object_mut().unwrap().remove("fp");
            assert_eq!(&without, w, "{name}");
        }
    }
}

#[test]
fn a_reservoir_sample_is_passed_on_when_the_input_ends() {
    let p = Project::new();
    let (text, values) = orders();
    p.write("data/in/orders.jsonl", &text);
    let pipeline = |seed: u32, batch: u32| {
        format!(
            "name: reservoir
batch_size: {batch}
steps:
  - {{ id: read, plugin: file-source@0.1.0, config: {{ path: /in/orders.jsonl }}, mounts: [{{ host: ./data/in, guest: /in }}] }}
  - {{ id: sample, plugin: sample@0.1.0, input: read, config: {{ reservoir: 50, seed: {seed} }} }}
  - {{ id: write, plugin: file-sink@0.1.0, input: sample, config: {{ path: /out/sample-{seed}-{batch}.jsonl }}, mounts: [{{ host: ./data/out, guest: /out, mode: rw }}] }}
"
        )
    };
    let mut samples = Vec::new();
    for (seed, batch) in [(1, 64), (1, 7), (2, 64)] {
        p.write("reservoir.yaml", &pipeline(seed, batch));
        let out = p.run("reservoir.yaml", &[]);
        assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
        let kept = json_lines(&p.read(&format!("data/out/sample-{seed}-{batch}.jsonl")));
        assert_eq!(kept.len(), 50, "exactly the reservoir's size");
        let ids: Vec<u64> = kept.iter().map(|v| v["id"].as_u64().unwrap()).collect();
        assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "in the order read: {ids:?}"
        );
        for v in &kept {
            assert_eq!(
                v,
                &values[v["id"].as_u64().unwrap() as usize],
                "records as read"
            );
        }
        samples.push(ids);
    }
    assert_eq!(
        samples[0], samples[1],
        "the batch size does not change the sample"
    );
    assert_ne!(samples[0], samples[2], "another seed, another sample");
}

#[test]
fn reading_an_output_a_step_does_not_have_is_refused_at_its_place() {
    let p = Project::new();
    let (text, _) = orders();
    p.write("data/in/orders.jsonl", &text);
    let cases = [
        (
            "input: route.big",
            "input: route.bgi",
            r#"steps[3].input: step "route" has no output "bgi" (its outputs: eu, big)"#,
        ),
        (
            "input: route.eu",
            "input: read.eu",
            r#"steps[2].input: step "read" has no output "eu" (it has only its default output: read it as "read")"#,
        ),
        (
            "input: route.eu",
            "input: route.Eu",
            r#"steps[2].input: invalid output name "Eu" in "route.Eu""#,
        ),
    ];
    for (written, typo, expected) in cases {
        p.write("bad.yaml", &routing_pipeline(None).replace(written, typo));
        let out = p.run("bad.yaml", &[]);
        assert_ne!(out.code, 0, "{typo}");
        assert!(out.stderr.contains(expected), "{typo}: {}", out.stderr);
    }
    assert!(
        !p.path().join("data/out/rest.jsonl").exists(),
        "nothing ran"
    );
}
