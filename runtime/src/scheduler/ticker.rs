//! The cron ticker: several times a second, for each pipeline's schedule, fires the slots that
//! came due since the last look (see [`Cron::due`]), applying the overlap policy. Each slot is
//! recorded once in `schedule_fires`; with several servers on one database, the one that moves
//! the schedule's `since` fires its slots and the others see nothing to do.
use std::time::Duration;

use tokio::sync::watch;

use crate::control::runs::{self, Queue};
use crate::control::{ControlError, Core};
use crate::pipeline::cron::Cron;
use crate::pipeline::{Catchup, Overlap};
use crate::status::Trigger;
use crate::store::schedules::ScheduleRow;
use crate::store::{Result, now_ms};

/// How often the ticker looks.
pub const TICK: Duration = Duration::from_millis(200);

/// Fires schedules, and queues the backfills' next slots, until `stop` turns true.
pub async fn run(state: Core, mut stop: watch::Receiver<bool>) {
    loop {
        if let Err(e) = tick(&state).await {
            tracing::error!("schedule ticker: {e}");
        }
        if let Err(e) = crate::control::backfills::drive(&state).await {
            tracing::error!("backfills: {e}");
        }
        tokio::select! {
            () = tokio::time::sleep(TICK) => {}
            _ = stop.changed() => return,
        }
    }
}

/// One look at every schedule.
pub async fn tick(state: &Core) -> Result<()> {
    for s in state.store.schedules().await? {
        if let Err(e) = fire(state, &s).await {
            tracing::error!("schedule of {}: {e}", s.pipeline);
        }
    }
    Ok(())
}

fn catchup_of(text: &str) -> Catchup {
    match text {
        "once" => Catchup::Once,
        "all" => Catchup::All,
        _ => Catchup::Skip,
    }
}

fn overlap_of(text: &str) -> Overlap {
    match text {
        "queue" => Overlap::Queue,
        "allow" => Overlap::Allow,
        _ => Overlap::Skip,
    }
}

async fn fire(state: &Core, s: &ScheduleRow) -> Result<()> {
    let cron = match Cron::new(&s.cron, &s.timezone) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("schedule of {}: {e}", s.pipeline);
            return Ok(());
        }
    };
    let now = now_ms();
    let due = cron.due(
        s.since,
        now,
        catchup_of(&s.catchup),
        u32::try_from(s.max_catchup).unwrap_or(u32::MAX),
    );
    if due.on_time.is_empty() && due.catch_up.is_empty() {
        return Ok(());
    }
    let runnable = match runs::runnable(state, &s.tenant, &s.pipeline, Some(s.version)).await {
        Ok(r) => r,
        Err(ControlError::Store(e)) => return Err(e),
        Err(e) => {
            tracing::error!("schedule of {}: {e}", s.pipeline);
            return Ok(());
        }
    };
    let mut tx = state.store.begin().await?;
    if !state.store.advance_schedule(&mut tx, s, now).await? {
        return Ok(()); // another server took these slots
    }
    let overlap = overlap_of(&s.overlap);
    let slots = due
        .catch_up
        .iter()
        .map(|&t| (t, Trigger::Catchup))
        .chain(due.on_time.iter().map(|&t| (t, Trigger::Schedule)));
    let mut queued = 0;
    let mut fired = Vec::new();
    for (fire_at, trigger) in slots {
        let busy = overlap == Overlap::Skip
            && state
                .store
                .pipeline_busy(&mut tx, &s.tenant, &s.pipeline)
                .await?;
        if busy {
            state
                .store
                .record_fire(&mut tx, s, fire_at, "skipped", None)
                .await?;
            continue;
        }
        let mut r = runnable.clone();
        if overlap == Overlap::Queue {
            r.spec.concurrency = 1;
        }
        let q = Queue {
            tenant: &s.tenant,
            created_by: "scheduler",
            trigger,
            replay: None,
            idempotency: None,
            input: None,
            params: None,
        };
        // A scheduled run takes the defaults (validation makes sure every parameter has one),
        // and its slot's time as `slot` when the pipeline declares it.
        let slot = crate::control::backfills::slot_params(&r.pipeline, &s.timezone, fire_at);
        let params = runs::params_of(&r.pipeline, slot.as_ref()).ok().flatten();
        let run = runs::new_run(&r, q, Some(fire_at), params.as_ref());
        // Record the slot first: if it was recorded already, no run.
        if state
            .store
            .record_fire(&mut tx, s, fire_at, trigger.as_str(), None)
            .await?
        {
            let id = state.store.enqueue_in(&mut tx, &run).await?;
            state.store.set_fire_run(&mut tx, s, fire_at, &id).await?;
            queued += 1;
            fired.push(fire_at);
        }
    }
    tx.commit().await?;
    let at = crate::store::now_ms();
    for fire_at in fired {
        let lag = std::time::Duration::from_millis(u64::try_from(at - fire_at).unwrap_or(0));
        crate::telemetry::schedule_fired(&s.tenant, &s.pipeline, lag);
    }
    if due.dropped > 0 {
        tracing::info!(
            "schedule of {}: {} missed slot(s) left out by catchup: {}",
            s.pipeline,
            due.dropped,
            s.catchup
        );
    }
    if queued > 0 {
        state.wake.notify_one();
    }
    Ok(())
}
