//! The step graph of a validated pipeline and the merged per-step settings.

use std::path::{Path, PathBuf};

use crate::pipeline::{
    EffectiveLimits, Limits, PluginRef, PluginVersion, ValidatedPipeline, ValidationPolicy, parse,
};

/// Steps written out of order: write <- paid <- (read, enrich), enrich <- read; plus `audit`,
/// a second source and sink on its own.
const DAG: &str = r#"
name: dag
steps:
  - { id: write, plugin: sink@1.0.0, input: paid }
  - { id: paid, plugin: filter@1.0.0, inputs: [read, enrich] }
  - { id: audit, plugin: audit@1.0.0 }
  - { id: enrich, plugin: ./enrich.wasm, input: read, limits: { timeout_ms: 5000 } }
  - { id: read, plugin: "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", batch_size: 10 }
  - { id: tap, plugin: tap@latest, input: read, limits: { memory_mb: 256, fuel: 5, max_output_bytes: 99 } }
limits: { memory_mb: 128, fuel: 1000 }
batch_size: 500
dead_letter: { path: dl/dead.jsonl }
"#;

fn validated(policy: &ValidationPolicy) -> ValidatedPipeline {
    parse(DAG, None).unwrap().validate(policy).unwrap()
}

fn ids<'a>(steps: impl IntoIterator<Item = &'a crate::pipeline::Step>) -> Vec<&'a str> {
    steps.into_iter().map(|s| s.id.as_str()).collect()
}

#[test]
fn topological_order_puts_inputs_first() {
    let v = validated(&ValidationPolicy::default());
    assert_eq!(
        ids(v.topological_order()),
        ["audit", "read", "enrich", "paid", "write", "tap"]
    );
    assert_eq!(v.topological_indices(), [2, 4, 3, 1, 0, 5]);
    // Every step comes after all of its inputs.
    let position = |id: &str| {
        v.topological_order()
            .iter()
            .position(|s| s.id == id)
            .unwrap()
    };
    for step in v.steps() {
        for input in step.input_ids() {
            assert!(
                position(input) < position(&step.id),
                "{input} before {}",
                step.id
            );
        }
    }
}

#[test]
fn upstream_downstream_roots_leaves() {
    let v = validated(&ValidationPolicy::default());
    assert_eq!(ids(v.downstream("read")), ["paid", "enrich", "tap"]);
    assert_eq!(ids(v.downstream("paid")), ["write"]);
    assert!(v.downstream("write").is_empty());
    assert!(v.downstream("nope").is_empty());
    assert_eq!(ids(v.upstream("paid")), ["read", "enrich"]);
    assert_eq!(ids(v.roots()), ["audit", "read"]);
    assert_eq!(ids(v.leaves()), ["write", "audit", "tap"]);
    assert_eq!(v.index_of("enrich"), Some(3));
    assert_eq!(
        v.step("enrich").map(|s| s.plugin.as_str()),
        Some("./enrich.wasm")
    );
    assert_eq!(v.resolved(1).unwrap().inputs, [4, 3]);
    assert_eq!(v.resolved(4).unwrap().outputs, [1, 3, 5]);
}

#[test]
fn effective_limits_merge_step_over_pipeline_over_server() {
    let defaults = EffectiveLimits {
        memory_mb: 64,
        timeout_ms: 30_000,
        fuel: None,
        max_output_bytes: 1 << 20,
    };
    let policy = ValidationPolicy {
        default_limits: defaults,
        ..ValidationPolicy::default()
    };
    let v = validated(&policy);
    let limits = |id: &str| v.effective_limits(id).unwrap();
    // Pipeline limits over server defaults.
    assert_eq!(
        limits("write"),
        EffectiveLimits {
            memory_mb: 128,
            timeout_ms: 30_000,
            fuel: Some(1000),
            max_output_bytes: 1 << 20
        }
    );
    // A step override for one field, the rest from the pipeline and server.
    assert_eq!(
        limits("enrich"),
        EffectiveLimits {
            memory_mb: 128,
            timeout_ms: 5000,
            fuel: Some(1000),
            max_output_bytes: 1 << 20
        }
    );
    assert_eq!(
        limits("tap"),
        EffectiveLimits {
            memory_mb: 256,
            timeout_ms: 30_000,
            fuel: Some(5),
            max_output_bytes: 99
        }
    );
    assert_eq!(v.effective_limits("nope"), None);
    // No pipeline limits: the server's, fuel unmetered.
    let p = parse("name: p\nsteps: [{ id: a, plugin: a@1.0.0 }]\n", None).unwrap();
    assert_eq!(p.effective_limits(&p.steps[0], &defaults), defaults);
    let partial = Limits {
        memory_mb: Some(1),
        ..Limits::default()
    };
    assert_eq!(
        partial
            .or(&Limits {
                memory_mb: Some(2),
                fuel: Some(3),
                ..Limits::default()
            })
            .fuel,
        Some(3)
    );
    // Batch sizes: step, then pipeline.
    assert_eq!(v.batch_size("read"), Some(10));
    assert_eq!(v.batch_size("write"), Some(500));
}

#[test]
fn plugin_references_and_paths_are_resolved() {
    let policy = ValidationPolicy {
        base_dir: PathBuf::from("/srv/pipelines"),
        ..ValidationPolicy::default()
    };
    let v = validated(&policy);
    let plugin = |id: &str| v.resolved(v.index_of(id).unwrap()).unwrap().plugin.clone();
    assert_eq!(
        plugin("enrich"),
        PluginRef::Path(PathBuf::from("/srv/pipelines/enrich.wasm"))
    );
    assert_eq!(
        plugin("write"),
        PluginRef::Named {
            name: "sink".into(),
            version: PluginVersion::Exact("1.0.0".into())
        }
    );
    assert_eq!(
        plugin("tap"),
        PluginRef::Named {
            name: "tap".into(),
            version: PluginVersion::Latest
        }
    );
    assert!(matches!(plugin("read"), PluginRef::Digest(hex) if hex.len() == 64));
    assert_eq!(
        v.dead_letter_path(),
        Some(Path::new("/srv/pipelines/dl/dead.jsonl"))
    );
    assert_eq!(v.into_pipeline(), parse(DAG, None).unwrap());
}

#[test]
fn a_single_step_is_root_and_leaf() {
    let v = parse("name: p\nsteps: [{ id: only, plugin: a@1.0.0 }]\n", None)
        .unwrap()
        .validate(&ValidationPolicy::default())
        .unwrap();
    assert_eq!(ids(v.roots()), ["only"]);
    assert_eq!(ids(v.leaves()), ["only"]);
    assert_eq!(ids(v.topological_order()), ["only"]);
}

#[test]
fn long_chains_and_cycles_do_not_recurse() {
    let steps = |n: usize, closed: bool| {
        let mut steps = vec![crate::pipeline::Step {
            id: "s0".into(),
            plugin: "a@1.0.0".into(),
            config: serde_json::json!({}),
            input: closed.then(|| format!("s{}", n - 1)),
            inputs: None,
            mounts: Vec::new(),
            limits: Limits::default(),
            batch_size: None,
            secrets: Vec::new(),
            allow_hosts: Vec::new(),
            connections: Vec::new(),
            retry: None,
        }];
        for i in 1..n {
            let mut step = steps[0].clone();
            step.id = format!("s{i}");
            step.input = Some(format!("s{}", i - 1));
            steps.push(step);
        }
        crate::pipeline::Pipeline {
            name: "long".into(),
            description: None,
            schedule: None,
            steps,
            limits: Limits::default(),
            retry: None,
            batch_size: None,
            dead_letter: None,
            concurrency: None,
            labels: Vec::new(),
            connections: Default::default(),
            alerts: Vec::new(),
            triggers: Vec::new(),
            params: Default::default(),
        }
    };
    let policy = ValidationPolicy::default();
    let v = steps(20_000, false).validate(&policy).unwrap();
    assert_eq!(v.topological_indices().len(), 20_000);
    assert_eq!(v.topological_order()[19_999].id, "s19999");
    let errors = steps(20_000, true)
        .validate(&policy)
        .unwrap_err()
        .messages();
    assert_eq!(errors.len(), 1);
    assert!(errors[0].starts_with("steps: cycle s0 -> s1 -> s2 -> "));
    assert!(errors[0].ends_with(" -> s19999 -> s0"));
}
