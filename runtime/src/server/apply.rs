//! Applying a pipeline on the server: parse, validate with the server policy, pin every
//! plugin reference to a digest of the tenant's registry (`name@latest` resolved now), and
//! check the pinned plan (plugin kinds against the DAG, configs against the plugins' schemas).
//! Running a stored version goes through [`pinned_plan`] again, with the stored digests.
use std::collections::BTreeMap;

use crate::api::{ApiError, ApiResult, AppState};
use crate::executor::{self, Plan};
use crate::pipeline::{self, Format, Pipeline, PluginRef, PluginVersion, ValidatedPipeline};
use crate::registry::LocalPlugins;
use crate::store::pipelines::Pin;

/// Parses a pipeline text; the error lists the problem with its place.
pub fn parse(text: &str, format: Format) -> ApiResult<Pipeline> {
    pipeline::parse(text, Some(format)).map_err(|e| ApiError::Invalid(e.to_string()))
}

fn validate(state: &AppState, pipeline: Pipeline) -> ApiResult<ValidatedPipeline> {
    pipeline
        .validate(&state.settings.policy)
        .map_err(|e| ApiError::Invalid(e.messages().join("; ")))
}

/// The digest `reference` (`name@version`, `name@latest` or `sha256:...`) names in the tenant's
/// registry: `Ok(None)` when there is no such plugin, `Err` with the reason when the reference
/// is malformed or a file path.
pub async fn resolve(state: &AppState, tenant: &str, reference: &str) -> ApiResult<Result<Option<String>, String>> {
    Ok(Ok(match reference.parse::<PluginRef>() {
        Ok(PluginRef::Named { name, version: PluginVersion::Exact(v) }) => state.store.plugin(tenant, &name, &v).await?.map(|p| p.digest),
        Ok(PluginRef::Named { name, version: PluginVersion::Latest }) => state
            .store
            .plugins(tenant, Some(&name))
            .await?
            .into_iter()
            .max_by(|a, b| pipeline::version_order(&a.version, &b.version))
            .map(|p| p.digest),
        Ok(PluginRef::Digest(hex)) => state.store.plugins_by_digest(tenant, &hex).await?.into_iter().next().map(|p| p.digest),
        Ok(PluginRef::Path(_)) => {
            return Ok(Err("file paths are not allowed on the server; push the plugin and name it name@version".into()));
        }
        Err(e) => return Ok(Err(e.to_string())),
    }))
}

/// Resolves every step's plugin reference in the tenant's registry.
pub async fn pin(state: &AppState, tenant: &str, pipeline: &Pipeline) -> ApiResult<Vec<Pin>> {
    let mut pins = Vec::new();
    let mut problems = Vec::new();
    for (i, step) in pipeline.steps.iter().enumerate() {
        let place = format!("steps[{i}].plugin");
        match resolve(state, tenant, &step.plugin).await? {
            Ok(Some(digest)) => pins.push(Pin { step: step.id.clone(), reference: step.plugin.clone(), digest }),
            Ok(None) => problems.push(format!("{place}: no plugin \"{}\" in the registry", step.plugin)),
            Err(e) => problems.push(format!("{place}: {e}")),
        }
    }
    if problems.is_empty() { Ok(pins) } else { Err(ApiError::Invalid(problems.join("; "))) }
}

/// The plan of `pipeline` with each step's plugin replaced by its pinned digest.
pub async fn pinned_plan(state: &AppState, pipeline: &Pipeline, pins: &[Pin]) -> ApiResult<(ValidatedPipeline, Plan)> {
    let mut pinned = pipeline.clone();
    for step in &mut pinned.steps {
        let pin = pins
            .iter()
            .find(|p| p.step == step.id)
            .ok_or_else(|| ApiError::internal(format!("step {:?} has no pinned plugin", step.id)))?;
        step.plugin = format!("sha256:{}", pin.digest);
    }
    let validated = validate(state, pinned)?;
    let plugins = LocalPlugins { blob_dir: Some(state.blobs.dir().to_path_buf()) };
    let base_dir = state.settings.policy.base_dir.clone();
    let plan = executor::prepare::prepare(&state.engine, &validated, &plugins, &base_dir, &BTreeMap::new())
        .await
        .map_err(|e| ApiError::Invalid(e.messages().join("; ")))?;
    Ok((validated, plan))
}

/// Everything up to storing: the parsed pipeline (checked against `name` if given), its
/// canonical JSON and its pins. The plan is built once to check it, then dropped.
pub async fn check(state: &AppState, tenant: &str, text: &str, format: Format, name: Option<&str>) -> ApiResult<(Pipeline, serde_json::Value, Vec<Pin>)> {
    let pipeline = parse(text, format)?;
    if let Some(name) = name
        && pipeline.name != name
    {
        return Err(ApiError::BadRequest(format!(
            "the definition is named {:?} but the URL names {name:?}",
            pipeline.name
        )));
    }
    let validated = validate(state, pipeline)?;
    let pipeline = validated.into_pipeline();
    let pins = pin(state, tenant, &pipeline).await?;
    pinned_plan(state, &pipeline, &pins).await?;
    let json = serde_json::to_value(&pipeline).map_err(ApiError::internal)?;
    Ok((pipeline, json, pins))
}
