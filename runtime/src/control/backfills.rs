//! Backfills: one run per schedule slot in a range. [`create`] reads the range against the
//! pipeline's schedule (its cron and time zone), checks it, and stores the backfill with its
//! slots; [`drive`] (called by the cron ticker) queues the next slots of every running backfill
//! as earlier runs end, at most `concurrency` queued or running at once, each run given its
//! slot's time as the `slot` parameter when the pipeline declares one, and ends a backfill once
//! all of its runs have.
use serde::Deserialize;
use serde_json::{Value, json};

use super::runs::{self, Queue};
use super::{ControlError, ControlResult, Core};
use crate::pipeline::Pipeline;
use crate::pipeline::cron::{Cron, rfc3339};
use crate::pipeline::params::{ParamType, ParamValues};
use crate::status::Trigger;
use crate::store::StoreError;
use crate::store::audit::NewAudit;
use crate::store::backfills::{BackfillRow, MAX_SLOTS, NewBackfill};

/// The parameter a scheduled or backfilled run is given its slot's time in, when its pipeline
/// declares it: RFC 3339 in UTC for a `string`, the day in the schedule's zone for a `date`,
/// Unix ms for an `integer`.
pub const SLOT_PARAM: &str = "slot";

/// The most runs a backfill may keep queued or running at once.
pub const MAX_CONCURRENCY: i64 = 64;

/// What `POST /v1/pipelines/{name}/backfills` and `autoflow pipeline backfill` ask for.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackfillRequest {
    /// The range's start, included: RFC 3339, or a date (`YYYY-MM-DD`, midnight in the
    /// schedule's zone).
    pub from: String,
    /// Its end, excluded, read the same way.
    pub to: String,
    /// Runs queued or running at once, at most (default 1).
    #[serde(default)]
    pub concurrency: Option<i64>,
    /// Run slots whose run already succeeded again (default: they are skipped).
    #[serde(default)]
    pub rerun_succeeded: bool,
}

/// `text` as Unix ms: RFC 3339, or a date at midnight in `cron`'s zone; `field` names it in
/// the error.
fn instant(text: &str, cron: &Cron, field: &str) -> ControlResult<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.timestamp_millis());
    }
    if let Ok(day) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        && let Some(t) = cron.midnight(day)
    {
        return Ok(t);
    }
    Err(ControlError::Invalid(format!(
        "{field}: {text:?} is neither an RFC 3339 time (2026-01-01T00:00:00Z) nor a date (2026-01-01)"
    )))
}

/// Makes a backfill of the newest version of `tenant`'s pipeline `name` over its schedule's
/// slots in the range `req` gives; the backfill as it starts.
pub async fn create(
    core: &Core,
    tenant: &str,
    name: &str,
    req: &BackfillRequest,
    created_by: &str,
    audit: &NewAudit<'_>,
) -> ControlResult<BackfillRow> {
    let r = runs::runnable(core, tenant, name, None).await?;
    let schedule = r.pipeline.schedule.as_ref().ok_or_else(|| {
        ControlError::Invalid(format!(
            "pipeline {name:?} has no schedule: a backfill runs a schedule's slots"
        ))
    })?;
    let cron = Cron::new(&schedule.cron, &schedule.timezone).map_err(ControlError::Invalid)?;
    let from = instant(&req.from, &cron, "from")?;
    let to = instant(&req.to, &cron, "to")?;
    if from >= to {
        return Err(ControlError::Invalid(format!(
            "to: {:?} is not after from ({:?})",
            req.to, req.from
        )));
    }
    let concurrency = req.concurrency.unwrap_or(1);
    if !(1..=MAX_CONCURRENCY).contains(&concurrency) {
        return Err(ControlError::Invalid(format!(
            "concurrency: {concurrency} is not between 1 and {MAX_CONCURRENCY}"
        )));
    }
    if let Some(spec) = r.pipeline.params.get(SLOT_PARAM)
        && !matches!(
            spec.kind,
            ParamType::String | ParamType::Date | ParamType::Integer
        )
    {
        return Err(ControlError::Invalid(format!(
            "params.{SLOT_PARAM}: a slot's time is given as a string, a date or an integer, not a {}",
            spec.kind.as_str()
        )));
    }
    let slots = cron.slots_between(from, to, MAX_SLOTS + 1);
    if slots.is_empty() {
        return Err(ControlError::Invalid(format!(
            "from, to: the schedule {:?} ({}) has no slot in [{}, {})",
            schedule.cron, schedule.timezone, req.from, req.to
        )));
    }
    if slots.len() > MAX_SLOTS {
        return Err(ControlError::Invalid(format!(
            "from, to: the range holds more than {MAX_SLOTS} slots; backfill it in parts"
        )));
    }
    let id = core
        .store
        .create_backfill(
            &NewBackfill {
                tenant,
                pipeline: name,
                version: r.version.version,
                from,
                to,
                concurrency,
                slots: &slots,
                rerun_succeeded: req.rerun_succeeded,
                created_by,
            },
            audit,
        )
        .await?;
    drive(core).await?;
    core.store
        .backfill(tenant, &id)
        .await?
        .ok_or_else(|| ControlError::internal("the backfill just made is gone"))
}

/// The `slot` parameter of a run of `pipeline` for slot `at` (Unix ms) of a schedule in zone
/// `tz`, when the pipeline declares it.
pub fn slot_params(pipeline: &Pipeline, tz: &str, at: i64) -> Option<ParamValues> {
    let spec = pipeline.params.get(SLOT_PARAM)?;
    let value = match spec.kind {
        ParamType::Integer => json!(at),
        ParamType::Date => {
            let tz: chrono_tz::Tz = tz.parse().ok()?;
            let utc = chrono::DateTime::from_timestamp_millis(at)?;
            json!(utc.with_timezone(&tz).format("%Y-%m-%d").to_string())
        }
        _ => json!(rfc3339(at)?),
    };
    Some(ParamValues::from_iter([(SLOT_PARAM.to_string(), value)]))
}

/// One look at every running backfill: queues its next slots up to its concurrency, and ends
/// it once every slot's run has ended.
pub async fn drive(core: &Core) -> ControlResult<()> {
    for (tenant, b) in core.store.running_backfills().await? {
        if let Err(e) = step(core, &tenant, &b).await {
            tracing::warn!("backfill {} of {}: {e}", b.id, b.pipeline);
        }
    }
    Ok(())
}

async fn step(core: &Core, tenant: &str, b: &BackfillRow) -> ControlResult<()> {
    let free = b.concurrency - b.progress.active();
    if b.progress.pending == 0 {
        if b.progress.active() == 0 {
            let status = if b.progress.failed + b.progress.cancelled > 0 {
                "failed"
            } else {
                "succeeded"
            };
            core.store.end_backfill(&b.id, status).await?;
        }
        return Ok(());
    }
    if free <= 0 {
        return Ok(());
    }
    let slots = core.store.pending_slots(&b.id, free).await?;
    let r = runs::runnable(core, tenant, &b.pipeline, Some(b.version)).await?;
    let tz = r
        .pipeline
        .schedule
        .as_ref()
        .map_or("UTC", |s| s.timezone.as_str())
        .to_string();
    let mut queued = false;
    for slot in slots {
        let given = slot_params(&r.pipeline, &tz, slot);
        let params = match runs::params_of(&r.pipeline, given.as_ref()) {
            Ok(p) => p,
            Err(e) => {
                core.store.end_backfill(&b.id, "failed").await?;
                return Err(e);
            }
        };
        let q = Queue {
            tenant,
            created_by: &b.created_by,
            trigger: Trigger::Backfill,
            replay: None,
            idempotency: None,
            input: None,
            params: None,
        };
        let run = runs::new_run(&r, q, Some(slot), params.as_ref());
        let mut tx = core.store.begin().await?;
        let id = core.store.enqueue_in(&mut tx, &run).await?;
        if core.store.take_slot(&mut tx, &b.id, slot, &id).await? {
            tx.commit().await.map_err(StoreError::from)?;
            queued = true;
        } else {
            tx.rollback().await.map_err(StoreError::from)?; // another server took it, or the backfill was cancelled
        }
    }
    if queued {
        core.wake.notify_one();
    }
    Ok(())
}

/// The backfill `b` as the API shows it: its row, with its range as RFC 3339 too.
pub fn shown(b: &BackfillRow) -> Value {
    let mut v = serde_json::to_value(b).unwrap_or_default();
    v["from_time"] = json!(rfc3339(b.from));
    v["to_time"] = json!(rfc3339(b.to));
    v
}
