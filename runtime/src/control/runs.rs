//! The door to queue a run: the version to run (given, or the newest) read and parsed once
//! into its model, how it runs (worker labels, concurrency, attempts), the run committed, then
//! this process's worker woken. The API's trigger and dead-letter replay and the cron ticker
//! queue through it.
use super::{ControlError, ControlResult, Core};
use crate::pipeline::params::{self, ParamValues};
use crate::pipeline::{EffectiveLimits, Pipeline, TenantLimits};
use crate::status::Trigger;
use crate::store::idempotency::Idempotency;
use crate::store::pipelines::VersionRow;
use crate::store::queue::{NewRun, Replay, RunSpec, SealedInput};

/// How runs of `pipeline` are to be run: its worker labels, concurrency limit, attempts, and
/// the memory its steps hold together (with the server's `defaults` for what it leaves unset,
/// within its tenant's `ceilings`).
pub fn run_spec(
    pipeline: &Pipeline,
    defaults: &EffectiveLimits,
    ceilings: &TenantLimits,
) -> RunSpec {
    RunSpec {
        labels: pipeline.labels.clone(),
        concurrency: pipeline.concurrency.unwrap_or(0),
        max_attempts: pipeline.retry.as_ref().map_or(1, |r| r.max_attempts.max(1)),
        memory_mb: ceilings.run_memory_mb(pipeline, defaults),
    }
}

/// A stored version ready to be queued: its row, its model and how it runs.
#[derive(Debug, Clone)]
pub struct Runnable {
    /// The stored version (definition and pinned digests).
    pub version: VersionRow,
    /// Its definition as the model.
    pub pipeline: Pipeline,
    /// How its runs run.
    pub spec: RunSpec,
}

/// Version `version` (or the newest) of `tenant`'s pipeline `name`, ready to be queued.
pub async fn runnable(
    core: &Core,
    tenant: &str,
    name: &str,
    version: Option<i64>,
) -> ControlResult<Runnable> {
    let row = core.store.version(tenant, name, version).await?;
    let row = row.ok_or_else(|| match version {
        Some(v) => ControlError::NotFound(format!("no version {v} of pipeline {name:?}")),
        None => ControlError::NotFound(format!("no pipeline {name:?}")),
    })?;
    let pipeline = row.pipeline()?;
    let ceilings = core.store.tenant_limits(tenant).await?;
    let spec = run_spec(&pipeline, &core.policy.default_limits, &ceilings);
    Ok(Runnable {
        version: row,
        pipeline,
        spec,
    })
}

/// Who queues a run, and why.
#[derive(Debug, Clone, Copy)]
pub struct Queue<'a> {
    /// The tenant.
    pub tenant: &'a str,
    /// Who asked (a token id, or `scheduler`).
    pub created_by: &'a str,
    /// `api` or `replay` (the ticker's `schedule` and `catchup` go through [`new_run`] in its
    /// own transaction).
    pub trigger: Trigger,
    /// For a replay: the dead letters, fed to their step (marked replayed with the run).
    pub replay: Option<&'a Replay>,
    /// The caller's idempotency key (and its request's digest), stored with the run.
    pub idempotency: Option<Idempotency<'a>>,
    /// The records it is triggered with ([`super::input`]), fed to its `trigger-source` step.
    pub input: Option<&'a SealedInput>,
    /// The values its caller gives the pipeline's parameters (text is read as their types);
    /// the defaults fill the rest ([`queue`] checks them).
    pub params: Option<&'a ParamValues>,
}

/// The values a run of `pipeline` runs with: `given` checked against its `params:`, the
/// defaults for the rest; `None` for a pipeline without parameters. A 422 names each bad,
/// missing or unknown parameter.
pub fn params_of(
    pipeline: &Pipeline,
    given: Option<&ParamValues>,
) -> ControlResult<Option<ParamValues>> {
    let empty = ParamValues::new();
    let given = given.unwrap_or(&empty);
    if pipeline.params.is_empty() && given.is_empty() {
        return Ok(None);
    }
    params::resolve(&pipeline.params, given)
        .map(Some)
        .map_err(ControlError::Problems)
}

/// The run `q` asks for of `r` (with `params`, as [`params_of`] resolved them), as the store
/// queues it.
pub fn new_run<'a>(
    r: &'a Runnable,
    q: Queue<'a>,
    fire_at: Option<i64>,
    params: Option<&'a ParamValues>,
) -> NewRun<'a> {
    NewRun {
        tenant: q.tenant,
        pipeline: &r.version.pipeline,
        version: r.version.version,
        created_by: q.created_by,
        spec: &r.spec,
        trigger: q.trigger,
        fire_at,
        replay: q.replay,
        idempotency: q.idempotency,
        input: q.input,
        params,
        traceparent: crate::telemetry::traces::current_traceparent(),
    }
}

/// The door: queues a run of `r` as `q` says (its parameters checked), committed, and wakes
/// this process's worker; the run's id.
pub async fn queue(core: &Core, r: &Runnable, q: Queue<'_>) -> ControlResult<String> {
    let params = params_of(&r.pipeline, q.params)?;
    let run = new_run(r, q, None, params.as_ref());
    let id = match q.replay {
        Some(replay) => core.store.enqueue_replay(&run, &replay.ids).await?,
        None => core.store.enqueue(&run).await?,
    };
    core.wake.notify_one();
    Ok(id)
}
