//! Turns a validated pipeline into a [`Plan`]: resolves and loads every plugin, checks each
//! step's plugin kind against its place in the DAG (a `trigger-source` step is fed the run's
//! input), and checks each config against the plugin's JSON Schema. Every problem is collected
//! and named by its place.
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use super::plan::{Injection, Plan, PlannedStep, RetrySettings};
use crate::engine::bindings::Metadata;
use crate::engine::{Engine, Mount, Plugin, PluginKind, Sandbox, StepHost};
use crate::pipeline::{MountMode, PipelineError, ValidatedPipeline, ValidationErrors};
use crate::registry::LocalPlugins;

/// The name (in its metadata) of the built-in step that hands on a run's input records: a
/// transform allowed without inputs, fed by the runtime ([`Plan::inject`]).
pub const TRIGGER_SOURCE: &str = "trigger-source";

/// Builds the plan of `pipeline`. `secrets` are the values of the secrets steps may be granted.
pub async fn prepare(
    engine: &Engine,
    pipeline: &ValidatedPipeline,
    plugins: &LocalPlugins,
    base_dir: &Path,
    secrets: &BTreeMap<String, String>,
) -> Result<Plan, ValidationErrors> {
    let mut problems = Vec::new();
    let mut loaded: Vec<Option<Arc<Plugin>>> = Vec::new();
    for i in 0..pipeline.steps().len() {
        let Some(resolved) = pipeline.resolved(i) else {
            loaded.push(None);
            continue;
        };
        let place = format!("steps[{i}].plugin");
        let plugin = plugins
            .resolve(&resolved.plugin, base_dir)
            .and_then(|r| engine.load(&r.digest, &r.bytes).map_err(|e| e.to_string()));
        match plugin {
            Ok(p) => loaded.push(Some(p)),
            Err(e) => {
                problems.push(PipelineError::invalid(place, e));
                loaded.push(None);
            }
        }
    }
    // The step fed with the run's input (a `trigger-source` at the head of the DAG), by index.
    let mut fed: Option<usize> = None;
    let check_values = crate::pipeline::params::check_values(&pipeline.pipeline().params);
    for (i, plugin) in loaded.iter().enumerate() {
        let (Some(plugin), Some(step), Some(resolved)) =
            (plugin, pipeline.steps().get(i), pipeline.resolved(i))
        else {
            continue;
        };
        let meta = match describe(engine, plugin).await {
            Ok(meta) => meta,
            Err(e) => {
                problems.push(PipelineError::invalid(format!("steps[{i}].config"), e));
                continue;
            }
        };
        let (has_inputs, has_consumers) =
            (!resolved.inputs.is_empty(), !resolved.outputs.is_empty());
        let trigger_fed =
            meta.name == TRIGGER_SOURCE && plugin.kind == PluginKind::Transform && !has_inputs;
        let kind = if trigger_fed {
            match fed {
                Some(first) => Some(format!(
                    "a pipeline reads its trigger's records once; steps[{first}] already does"
                )),
                None => {
                    fed = Some(i);
                    (!has_consumers)
                        .then(|| "nothing reads from this step (add a sink)".to_string())
                }
            }
        } else {
            kind_problem(plugin.kind, has_inputs, has_consumers)
                .map(|problem| format!("\"{}\" is a {}; {problem}", step.plugin, plugin.kind))
        };
        if let Some(problem) = kind {
            problems.push(PipelineError::invalid(
                format!("steps[{i}].plugin"),
                problem,
            ));
        }
        // `${params.NAME}` stands for a value of its type: checked with the defaults.
        let config = crate::pipeline::params::substitute(&step.config, &check_values);
        if let Err(e) = check_config_against(&meta, &config) {
            problems.push(PipelineError::invalid(format!("steps[{i}].config"), e));
        }
    }
    check_named_outputs(engine, pipeline, &loaded, &check_values, &mut problems).await;
    if !problems.is_empty() {
        return Err(ValidationErrors(problems));
    }
    let mut steps = Vec::new();
    let order = pipeline.topological_indices();
    let position = |orig: usize| order.iter().position(|&o| o == orig).unwrap_or(orig);
    for &i in order {
        let (Some(step), Some(resolved), Some(Some(plugin))) =
            (pipeline.steps().get(i), pipeline.resolved(i), loaded.get(i))
        else {
            continue;
        };
        steps.push(PlannedStep {
            id: step.id.clone(),
            plugin: plugin.clone(),
            config: step.config.to_string(),
            inputs: resolved.inputs.iter().map(|&j| position(j)).collect(),
            input_outputs: resolved.input_outputs.clone(),
            limits: resolved.limits,
            mounts: resolved
                .mounts
                .iter()
                .map(|m| Mount {
                    host: m.host.clone(),
                    guest: m.guest.clone(),
                    writable: m.mode == MountMode::Rw,
                })
                .collect(),
            secrets: step
                .secrets
                .iter()
                .filter_map(|name| secrets.get(name).map(|v| (name.clone(), v.clone())))
                .collect(),
            connections: step
                .connections
                .iter()
                .filter_map(|name| {
                    let c = pipeline.pipeline().connections.get(name)?;
                    let kind = crate::integrations::ConnectionUrl::read(&c.url).ok()?.kind;
                    Some((
                        name.clone(),
                        crate::integrations::Grant {
                            kind,
                            url: c.url.clone(),
                        },
                    ))
                })
                .collect(),
            allow_hosts: step.allow_hosts.clone(),
            state: BTreeMap::new(),
            cursor: None,
            retry: step.retry.as_ref().map(RetrySettings::from),
            batch_size: resolved.batch_size,
        });
    }
    let retry = pipeline.pipeline().retry.as_ref().map(RetrySettings::from);
    Ok(Plan {
        steps,
        retry: retry.unwrap_or_default(),
        // The trigger's records come with the run; until then (and for a run without input)
        // the step gets none.
        inject: fed.map(|i| Injection {
            step: position(i),
            records: Vec::new(),
        }),
    })
}

/// Checks every `input: STEP.OUTPUT` against the outputs STEP's plugin declares for its config
/// (0.2.0 transforms; sources and 0.1.0 transforms have only their default output).
async fn check_named_outputs(
    engine: &Engine,
    pipeline: &ValidatedPipeline,
    loaded: &[Option<Arc<Plugin>>],
    check_values: &crate::pipeline::params::ParamValues,
    problems: &mut Vec<PipelineError>,
) {
    let mut declared: BTreeMap<usize, Result<Vec<String>, String>> = BTreeMap::new();
    for (j, step) in pipeline.steps().iter().enumerate() {
        let Some(resolved) = pipeline.resolved(j) else {
            continue;
        };
        for (k, (&i, output)) in resolved
            .inputs
            .iter()
            .zip(&resolved.input_outputs)
            .enumerate()
        {
            let (Some(output), Some(Some(plugin)), Some(upstream)) =
                (output, loaded.get(i), pipeline.steps().get(i))
            else {
                continue;
            };
            if let std::collections::btree_map::Entry::Vacant(slot) = declared.entry(i) {
                let config = crate::pipeline::params::substitute(&upstream.config, check_values);
                slot.insert(step_outputs(engine, plugin, &config.to_string()).await);
            }
            let place = if step.input.is_some() {
                format!("steps[{j}].input")
            } else {
                format!("steps[{j}].inputs[{k}]")
            };
            let problem = match &declared[&i] {
                Ok(names) if names.contains(output) => continue,
                Ok(names) if names.is_empty() => format!(
                    "step {:?} has no output {output:?} (it has only its default output: read it as {:?})",
                    upstream.id, upstream.id
                ),
                Ok(names) => format!(
                    "step {:?} has no output {output:?} (its outputs: {})",
                    upstream.id,
                    names.join(", ")
                ),
                Err(e) => format!("step {:?}: {e}", upstream.id),
            };
            problems.push(PipelineError::invalid(place, problem));
        }
    }
}

/// The named outputs of a step of `plugin` with `config` (JSON text), asked of a throwaway
/// instance.
pub async fn step_outputs(
    engine: &Engine,
    plugin: &Plugin,
    config: &str,
) -> Result<Vec<String>, String> {
    let failed = |e| format!("cannot ask the plugin for its outputs: {e}");
    let mut inst = throwaway(engine, plugin, "outputs").await.map_err(failed)?;
    inst.outputs(config).await.map_err(failed)
}

/// Why a plugin of `kind` cannot sit where a step with / without inputs and consumers sits.
fn kind_problem(kind: PluginKind, has_inputs: bool, has_consumers: bool) -> Option<&'static str> {
    match (kind, has_inputs, has_consumers) {
        (PluginKind::Source, true, _) => Some("a source cannot have inputs"),
        (PluginKind::Source, false, false) => Some("nothing reads from this source"),
        (PluginKind::Transform, false, _) => Some("a transform needs an input"),
        (PluginKind::Transform, true, false) => {
            Some("nothing reads from this transform (add a sink)")
        }
        (PluginKind::Sink, false, _) => Some("a sink needs an input"),
        (PluginKind::Sink, true, true) => Some("a sink has no output to read from"),
        _ => None,
    }
}

/// Checks `config` against the JSON Schema `meta` publishes (none: any config is accepted);
/// the error lists every violation with its place in the config, joined by `; `, or says
/// what is wrong with the schema itself.
pub fn check_config_against(meta: &Metadata, config: &serde_json::Value) -> Result<(), String> {
    let Some(validator) = config_validator(meta)? else {
        return Ok(());
    };
    let errors: Vec<String> = validator
        .iter_errors(config)
        .map(|e| {
            let at = e.instance_path.to_string();
            if at.is_empty() {
                e.to_string()
            } else {
                format!("{at}: {e}")
            }
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

/// Instantiates `plugin` in a throwaway sandbox (the engine's describe limits, no grants) and
/// calls `describe`.
pub async fn describe(engine: &Engine, plugin: &Plugin) -> Result<Metadata, String> {
    let failed = |e| format!("cannot describe the plugin: {e}");
    let mut inst = throwaway(engine, plugin, "describe")
        .await
        .map_err(failed)?;
    inst.describe().await.map_err(failed)
}

/// An instance of `plugin` in a sandbox of the engine's describe limits and no grants, for a
/// question asked before any run (`describe`, `outputs`).
async fn throwaway(
    engine: &Engine,
    plugin: &Plugin,
    purpose: &str,
) -> Result<crate::engine::StepInstance, crate::engine::StepError> {
    let logs: crate::engine::LogSink = Arc::new(|_| {});
    let sandbox = Sandbox {
        limits: engine.config().describe_limits,
        mounts: Vec::new(),
        host: StepHost::new(purpose, logs),
    };
    engine.instantiate(plugin, sandbox).await
}

/// The validator of the plugin's config schema, `None` when it publishes none; an error when
/// the schema is not JSON or not a valid JSON Schema.
pub fn config_validator(meta: &Metadata) -> Result<Option<jsonschema::Validator>, String> {
    let Some(schema_text) = &meta.config_schema else {
        return Ok(None);
    };
    let schema: serde_json::Value = serde_json::from_str(schema_text)
        .map_err(|e| format!("the plugin's config schema is not JSON: {e}"))?;
    jsonschema::validator_for(&schema)
        .map(Some)
        .map_err(|e| format!("the plugin's config schema is invalid: {e}"))
}
