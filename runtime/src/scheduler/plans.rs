//! Prepared plans kept by a worker: a pipeline version is immutable and so are the plugins it
//! pins, so the work of preparing one (parse, validate, load and check each plugin against its
//! config schema) is done once per version, not once per run.
use std::collections::HashMap;
use std::sync::Mutex;

use super::error::AttemptError;
use crate::control::{ControlError, Core};
use crate::executor::Plan;
use crate::lineage::Datasets;
use crate::pipeline::ValidatedPipeline;
use crate::store::queue::{Claimed, Replay};

/// Plans a worker keeps at most; past that the cache starts over.
pub const CAPACITY: usize = 256;

/// Prepared plans by tenant, pipeline, version and plugin override.
#[derive(Default)]
pub struct PlanCache {
    plans: Mutex<HashMap<String, Prepared>>,
}

/// A prepared plan and the names of the secrets each step is granted (by step id); the values
/// are read for each run, never kept here.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The plan.
    pub plan: Plan,
    /// Secret names by step id.
    pub grants: HashMap<String, Vec<String>>,
    /// The pipeline as validated (checked against the tenant's ceilings at each attempt).
    pub validated: ValidatedPipeline,
}

impl PlanCache {
    /// The plan of `run` (a replay's override of one step's plugin included, its records not),
    /// from the cache or prepared and kept, checked against its tenant's ceilings as they are
    /// now (they may have been lowered since the version was applied): a run over them fails,
    /// naming each; what the steps leave to the server's defaults is kept within them
    /// ([`crate::pipeline::TenantLimits::cap`]).
    pub async fn plan(&self, state: &Core, run: &Claimed) -> Result<Prepared, AttemptError> {
        let mut prepared = self.cached_plan(state, run).await?;
        let ceilings =
            crate::control::pipelines::within_ceilings(state, &run.tenant, &prepared.validated)
                .await
                .map_err(|e| match e {
                    ControlError::Store(e) => AttemptError::from(e),
                    e => AttemptError::Failed(format!("over the tenant's ceilings: {e}")),
                })?;
        for step in &mut prepared.plan.steps {
            step.limits = ceilings.cap(step.limits);
        }
        Ok(prepared)
    }

    /// What `run`'s pipeline reads and writes, for its lineage events (none when its plan
    /// cannot be prepared: the attempt fails on that itself).
    pub(super) async fn datasets(&self, state: &Core, run: &Claimed) -> Datasets {
        match self.cached_plan(state, run).await {
            Ok(p) => crate::lineage::datasets::of(&p.validated),
            Err(_) => Datasets::default(),
        }
    }

    async fn cached_plan(&self, state: &Core, run: &Claimed) -> Result<Prepared, AttemptError> {
        let override_digest = match &run.replay {
            Some(Replay {
                step,
                digest: Some(d),
                ..
            }) => format!("{step}={d}"),
            _ => String::new(),
        };
        let key = format!(
            "{}/{}/{}/{override_digest}",
            run.tenant, run.pipeline, run.version
        );
        if let Some(plan) = self
            .plans
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Ok(plan.clone());
        }
        let plan = prepare(state, run).await?;
        let mut plans = self.plans.lock().unwrap_or_else(|p| p.into_inner());
        if plans.len() >= CAPACITY {
            plans.clear();
        }
        plans.insert(key, plan.clone());
        Ok(plan)
    }
}

async fn prepare(state: &Core, run: &Claimed) -> Result<Prepared, AttemptError> {
    let version = state
        .store
        .version(&run.tenant, &run.pipeline, Some(run.version))
        .await?
        .ok_or_else(|| format!("version {} of {:?} is gone", run.version, run.pipeline))?;
    let pipeline = version.pipeline()?;
    let mut pins = version.plugins.clone();
    if let Some(Replay {
        step,
        digest: Some(digest),
        ..
    }) = &run.replay
    {
        let pin = pins
            .iter_mut()
            .find(|p| &p.step == step)
            .ok_or_else(|| format!("no step {step:?} to replay"))?;
        pin.digest.clone_from(digest);
    }
    for pin in &pins {
        fetch_blob(state, &pin.digest).await?;
    }
    let (validated, plan) = crate::control::pipelines::pinned_plan(state, &pipeline, &pins)
        .await
        .map_err(|e| format!("cannot prepare the run: {e}"))?;
    let grants = pipeline
        .steps
        .iter()
        .filter(|s| !s.secrets.is_empty())
        .map(|s| (s.id.clone(), s.secrets.clone()))
        .collect();
    Ok(Prepared {
        plan,
        grants,
        validated,
    })
}

/// Makes sure the local blob store has `digest`, fetching it from the database (where a
/// PostgreSQL server keeps every blob) when this worker has never seen it.
async fn fetch_blob(state: &Core, digest: &str) -> Result<(), AttemptError> {
    if state.blobs.get(digest).is_some() {
        return Ok(());
    }
    let bytes = state.store.blob_content(digest).await?;
    let bytes = bytes.ok_or_else(|| {
        format!("plugin sha256:{digest} is neither in this worker's blob store nor in the database")
    })?;
    if crate::registry::cache::digest_of(&bytes) != digest {
        return Err(
            format!("plugin sha256:{digest} in the database does not match its digest").into(),
        );
    }
    let blobs = state.blobs.clone();
    tokio::task::spawn_blocking(move || blobs.put(&bytes))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    Ok(())
}
