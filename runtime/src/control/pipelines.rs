//! The door to apply a pipeline version: parse, validate with the server policy, pin every
//! plugin reference to a digest of the tenant's registry (`name@latest` resolved now), check
//! the pinned plan (plugin kinds against the DAG, configs against the plugins' schemas), then
//! store the version with its audit entry. Running a stored version goes through
//! [`pinned_plan`] again, with the stored digests.
use std::collections::BTreeMap;

use super::{ControlError, ControlResult, Core};
use crate::executor::{self, Plan};
use crate::pipeline::{
    self, AlertRule, Format, Pipeline, PluginRef, PluginVersion, TenantLimits, ValidatedPipeline,
};
use crate::registry::LocalPlugins;
use crate::store::audit::NewAudit;
use crate::store::pipelines::{Pin, VersionRow};

/// Parses a pipeline text; the error lists the problem with its place.
pub fn parse(text: &str, format: Format) -> ControlResult<Pipeline> {
    pipeline::parse(text, Some(format)).map_err(|e| ControlError::Invalid(e.to_string()))
}

fn validate(core: &Core, pipeline: Pipeline) -> ControlResult<ValidatedPipeline> {
    pipeline
        .validate(&core.policy)
        .map_err(|e| ControlError::Problems(e.messages()))
}

/// The tenant's ceilings, or (422, naming each ceiling) the refusal of a pipeline that goes
/// over them.
pub async fn within_ceilings(
    core: &Core,
    tenant: &str,
    pipeline: &ValidatedPipeline,
) -> ControlResult<TenantLimits> {
    let ceilings = core.store.tenant_limits(tenant).await?;
    let problems = ceilings.check(pipeline.pipeline(), &core.policy.default_limits);
    if problems.is_empty() {
        Ok(ceilings)
    } else {
        Err(ControlError::Problems(
            problems.iter().map(ToString::to_string).collect(),
        ))
    }
}

/// The digest `reference` (`name@version`, `name@latest` or `sha256:...`) names in the tenant's
/// registry: `Ok(None)` when there is no such plugin, `Err` with the reason when the reference
/// is malformed or a file path.
pub async fn resolve(
    core: &Core,
    tenant: &str,
    reference: &str,
) -> ControlResult<Result<Option<String>, String>> {
    Ok(Ok(match reference.parse::<PluginRef>() {
        Ok(PluginRef::Named {
            name,
            version: PluginVersion::Exact(v),
        }) => core
            .store
            .plugin(tenant, &name, &v)
            .await?
            .map(|p| p.digest),
        Ok(PluginRef::Named {
            name,
            version: PluginVersion::Latest,
        }) => core
            .store
            .plugins(tenant, Some(&name))
            .await?
            .into_iter()
            .max_by(|a, b| pipeline::version_order(&a.version, &b.version))
            .map(|p| p.digest),
        Ok(PluginRef::Digest(hex)) => core
            .store
            .plugins_by_digest(tenant, &hex)
            .await?
            .into_iter()
            .next()
            .map(|p| p.digest),
        Ok(PluginRef::Path(_)) => {
            return Ok(Err("file paths are not allowed on the server; push the plugin and name it name@version".into()));
        }
        Err(e) => return Ok(Err(e.to_string())),
    }))
}

/// Resolves every step's plugin reference in the tenant's registry.
pub async fn pin(core: &Core, tenant: &str, pipeline: &Pipeline) -> ControlResult<Vec<Pin>> {
    let mut pins = Vec::new();
    let mut problems = Vec::new();
    for (i, step) in pipeline.steps.iter().enumerate() {
        let place = format!("steps[{i}].plugin");
        match resolve(core, tenant, &step.plugin).await? {
            Ok(Some(digest)) => pins.push(Pin {
                step: step.id.clone(),
                reference: step.plugin.clone(),
                digest,
            }),
            Ok(None) => problems.push(format!(
                "{place}: no plugin \"{}\" in the registry",
                step.plugin
            )),
            Err(e) => problems.push(format!("{place}: {e}")),
        }
    }
    if problems.is_empty() {
        Ok(pins)
    } else {
        Err(ControlError::Problems(problems))
    }
}

/// The plan of `pipeline` with each step's plugin replaced by its pinned digest.
pub async fn pinned_plan(
    core: &Core,
    pipeline: &Pipeline,
    pins: &[Pin],
) -> ControlResult<(ValidatedPipeline, Plan)> {
    let mut pinned = pipeline.clone();
    for step in &mut pinned.steps {
        let pin = pins.iter().find(|p| p.step == step.id).ok_or_else(|| {
            ControlError::internal(format!("step {:?} has no pinned plugin", step.id))
        })?;
        step.plugin = format!("sha256:{}", pin.digest);
    }
    let validated = validate(core, pinned)?;
    let plugins = LocalPlugins {
        blob_dir: Some(core.blobs.dir().to_path_buf()),
    };
    let plan = executor::prepare::prepare(
        &core.engine,
        &validated,
        &plugins,
        &core.policy.base_dir,
        &BTreeMap::new(),
    )
    .await
    .map_err(|e| ControlError::Problems(e.messages()))?;
    Ok((validated, plan))
}

/// Everything up to storing: the parsed pipeline (checked against `name` if given), its
/// canonical JSON and its pins. The plan is built once to check it, then dropped.
pub async fn check(
    core: &Core,
    tenant: &str,
    text: &str,
    format: Format,
    name: Option<&str>,
) -> ControlResult<(Pipeline, serde_json::Value, Vec<Pin>)> {
    let pipeline = parse(text, format)?;
    if let Some(name) = name
        && pipeline.name != name
    {
        return Err(ControlError::BadRequest(format!(
            "the definition is named {:?} but the URL names {name:?}",
            pipeline.name
        )));
    }
    let validated = validate(core, pipeline)?;
    within_ceilings(core, tenant, &validated).await?;
    let pipeline = validated.into_pipeline();
    check_channels(core, tenant, &pipeline.alerts, |i| format!("alerts[{i}].")).await?;
    let pins = pin(core, tenant, &pipeline).await?;
    pinned_plan(core, &pipeline, &pins).await?;
    let json = serde_json::to_value(&pipeline).map_err(ControlError::internal)?;
    Ok((pipeline, json, pins))
}

/// Every channel `rules` name exists in the tenant: a 422 naming each missing one at its
/// field, `{at(i)}channels[j]` for rule `i`.
pub(super) async fn check_channels(
    core: &Core,
    tenant: &str,
    rules: &[AlertRule],
    at: impl Fn(usize) -> String,
) -> ControlResult<()> {
    if rules.is_empty() {
        return Ok(());
    }
    let known: std::collections::BTreeSet<String> = core
        .store
        .channels(tenant)
        .await?
        .into_iter()
        .map(|c| c.name)
        .collect();
    let mut problems = Vec::new();
    for (i, rule) in rules.iter().enumerate() {
        for (j, name) in rule.channels.iter().enumerate() {
            if !known.contains(name) {
                problems.push(format!(
                    "{}channels[{j}]: no channel {name:?} in the tenant (PUT /v1/channels/{name} makes it)",
                    at(i)
                ));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ControlError::Problems(problems))
    }
}

/// What to store as a pipeline's new version.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    /// A definition as written (YAML or JSON), checked and pinned now; `name`, when given, is
    /// the name the definition must have.
    Text {
        /// The text.
        text: &'a str,
        /// Its format.
        format: Format,
        /// The name it must have.
        name: Option<&'a str>,
    },
    /// Version `n` of pipeline `name` again: the same definition and digests (a roll-back).
    Version {
        /// The pipeline.
        name: &'a str,
        /// The version.
        version: i64,
    },
}

/// How a pipeline version is to be stored.
#[derive(Debug, Clone, Copy)]
pub enum Mode {
    /// Only if the pipeline does not exist yet (else [`ControlError::Conflict`]).
    Create,
    /// A new version, unless it equals the newest one (then that one is the answer).
    Update,
    /// A new version, always (a roll-back).
    Always,
}

/// What applying did.
#[derive(Debug, Clone)]
pub struct Applied {
    /// The version that is now the newest.
    pub version: VersionRow,
    /// Whether it was stored now (`false`: it equalled the newest one, nothing changed).
    pub created: bool,
}

/// The door to a new pipeline version: checks and pins `source` in `tenant`, then stores it,
/// by `actor`, with `audit` (whose target the store sets to `name@version`).
pub async fn apply(
    core: &Core,
    tenant: &str,
    actor: &str,
    source: Source<'_>,
    mode: Mode,
    audit: NewAudit<'_>,
) -> ControlResult<Applied> {
    let (name, json, pins) = match source {
        Source::Text { text, format, name } => {
            let (pipeline, json, pins) = check(core, tenant, text, format, name).await?;
            (pipeline.name, json, pins)
        }
        Source::Version { name, version } => {
            let old = core.store.version(tenant, name, Some(version)).await?;
            let old = old.ok_or_else(|| {
                ControlError::NotFound(format!("no version {version} of pipeline {name:?}"))
            })?;
            (name.to_string(), old.definition, old.plugins)
        }
    };
    if matches!(mode, Mode::Update)
        && let Some(latest) = core.store.version(tenant, &name, None).await?
        && latest.definition == json
        && same_pins(&latest, &pins)
    {
        return Ok(Applied {
            version: latest,
            created: false,
        });
    }
    let created = core
        .store
        .create_version(
            tenant,
            &name,
            &json,
            &pins,
            actor,
            matches!(mode, Mode::Create),
            audit,
        )
        .await?;
    let n = created.map_err(|_| {
        ControlError::Conflict(format!(
            "pipeline {name:?} exists; PUT /v1/pipelines/{name} makes a new version"
        ))
    })?;
    let version = core.store.version(tenant, &name, Some(n)).await?;
    let version =
        version.ok_or_else(|| ControlError::internal("a version just stored is missing"))?;
    Ok(Applied {
        version,
        created: true,
    })
}

/// Whether `v` pins the same digests to the same steps as `pins`.
fn same_pins(v: &VersionRow, pins: &[Pin]) -> bool {
    let mut a = v.plugins.clone();
    let mut b = pins.to_vec();
    a.sort_by(|x, y| x.step.cmp(&y.step));
    b.sort_by(|x, y| x.step.cmp(&y.step));
    a == b
}
