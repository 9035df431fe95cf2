//! The alert watch: once a second, each server judges the rules about time that no run's end
//! can judge alone. `sla_missed` fires once the day's deadline passes (in the rule's time zone,
//! else the schedule's, else UTC) without a run that succeeded since the day began, also while
//! a slow run is still going; `schedule_lag` fires when the newest schedule slot old enough to
//! judge had no run started within `max_lag_ms` of its time, and passes when one did. Verdicts
//! go through the same incidents and outbox as a run's end's (so several servers raise each
//! once); a run that succeeds resolves an `sla_missed` incident. A tenant's timed rules
//! (`/v1/alert-rules`) judge the scheduled pipelines they select.
use std::time::Duration;

use chrono::{NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

use crate::pipeline::alerts::time_of_day;
use crate::pipeline::cron::{Cron, local_instant, parse_timezone, rfc3339};
use crate::pipeline::{AlertRule, AlertWhen};
use crate::store::alerts::Raise;
use crate::store::pipelines::Newest;
use crate::store::{Result, Store, now_ms};

/// How often the watch looks.
pub const TICK: Duration = Duration::from_secs(1);

/// How far back a schedule's newest slot is looked for.
const LOOK_BACK_MS: i64 = 366 * 86_400_000;

/// Watches until `stop` turns true.
pub async fn run(store: Store, mut stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        if let Err(e) = look(&store, now_ms()).await {
            tracing::warn!("alert watch: {e}");
        }
        tokio::select! {
            () = tokio::time::sleep(TICK) => {}
            _ = stop.changed() => return,
        }
    }
}

/// One look at every rule the clock judges, at `now` (Unix ms): the pipelines' own, and the
/// tenants' rules over the scheduled pipelines they select.
pub async fn look(store: &Store, now: i64) -> Result<()> {
    for t in store.timed_rules().await? {
        for rule in t.definition.alerts.iter().filter(|r| r.is_timed()) {
            judge(store, &t, rule, &rule.key(), None, now).await?;
        }
    }
    let tenant_rules = store.timed_tenant_rules().await?;
    let mut tenant = None;
    let mut pipelines = Vec::new();
    for (id, rule) in &tenant_rules {
        if tenant != Some(id) {
            pipelines = store.newest_versions_in(id).await?;
            tenant = Some(id);
        }
        for t in pipelines
            .iter()
            .filter(|t| t.definition.schedule.is_some() && rule.selects(&t.pipeline))
        {
            judge(store, t, &rule.rule, &rule.key(), Some(&rule.name), now).await?;
        }
    }
    Ok(())
}

/// Judges timed `rule` (its incidents keyed `key`, a tenant rule's name `name`) over the newest
/// version `t` of a pipeline, and records the verdict.
async fn judge(
    store: &Store,
    t: &Newest,
    rule: &AlertRule,
    key: &str,
    name: Option<&str>,
    now: i64,
) -> Result<()> {
    let verdict = match rule.when {
        AlertWhen::SlaMissed => sla(store, t, rule, key, now).await?,
        AlertWhen::ScheduleLag => lag(store, t, rule, now).await?,
        _ => None,
    };
    if let Some((firing, run, summary)) = verdict {
        store
            .raise_alert(&Raise {
                tenant: &t.tenant,
                pipeline: &t.pipeline,
                version: t.version,
                run: &run,
                rule,
                key: key.to_string(),
                rule_name: name,
                firing,
                summary,
                step: None,
                error: None,
                now,
            })
            .await?;
    }
    Ok(())
}

/// A verdict of the clock: fires or passes, the run it is about (`""`: none), what happened.
type Verdict = Option<(bool, String, String)>;

/// Unix ms of `time` on the day of `now` in `tz`.
fn on_the_day(tz: Tz, now: i64, time: NaiveTime) -> Option<i64> {
    let day = Utc
        .timestamp_millis_opt(now)
        .single()?
        .with_timezone(&tz)
        .date_naive();
    local_instant(tz, day, time)
}

async fn sla(store: &Store, t: &Newest, rule: &AlertRule, key: &str, now: i64) -> Result<Verdict> {
    let zone = rule
        .timezone
        .as_deref()
        .or(t.definition.schedule.as_ref().map(|s| s.timezone.as_str()))
        .unwrap_or("UTC");
    let (Ok(tz), Some(text)) = (parse_timezone(zone), rule.deadline.as_deref()) else {
        return Ok(None);
    };
    let Some(deadline) = time_of_day(text) else {
        return Ok(None);
    };
    let (Some(due), Some(midnight)) = (
        on_the_day(tz, now, deadline),
        on_the_day(tz, now, NaiveTime::MIN),
    ) else {
        return Ok(None);
    };
    // Before today's deadline, or a deadline from before this version existed: nothing to say.
    if now < due || due < t.created_at {
        return Ok(None);
    }
    if store
        .succeeded_between(&t.tenant, &t.pipeline, midnight, due)
        .await?
        || store.fired_since(&t.tenant, &t.pipeline, key, due).await?
    {
        return Ok(None);
    }
    let run = store
        .newest_run(&t.tenant, &t.pipeline)
        .await?
        .unwrap_or_default();
    Ok(Some((
        true,
        run,
        format!("no successful run by {text} ({zone}) today"),
    )))
}

async fn lag(store: &Store, t: &Newest, rule: &AlertRule, now: i64) -> Result<Verdict> {
    let (Some(schedule), Some(max)) = (&t.definition.schedule, rule.max_lag_ms) else {
        return Ok(None);
    };
    let Ok(cron) = Cron::new(&schedule.cron, &schedule.timezone) else {
        return Ok(None);
    };
    let max = i64::try_from(max).unwrap_or(i64::MAX);
    let judged = now.saturating_sub(max);
    let Some(&slot) = cron.slots_back(judged - LOOK_BACK_MS, judged, 1).first() else {
        return Ok(None);
    };
    if slot < t.created_at {
        return Ok(None);
    }
    let at = rfc3339(slot).unwrap_or_default();
    let summary = format!("the schedule's slot of {at} did not start within {max} ms");
    Ok(Some(
        match store.slot_run(&t.tenant, &t.pipeline, slot).await? {
            Some((id, Some(started))) if started - slot <= max => (false, id, String::new()),
            Some((id, _)) => (true, id, summary),
            None => (true, String::new(), summary),
        },
    ))
}
