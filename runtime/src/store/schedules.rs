//! Schedules (one per pipeline, from its newest version) and their fires: each slot of a
//! schedule is recorded at most once, even with several servers on one database (the key is
//! the pipeline and the slot).
use serde::Serialize;
use sqlx::Row;

use super::{Result, Store, now_ms};
use crate::pipeline::{DEFAULT_MAX_CATCHUP, Schedule};

/// A pipeline's schedule as the ticker reads it.
#[derive(Debug, Clone, Serialize)]
pub struct ScheduleRow {
    /// Tenant id.
    pub tenant: String,
    /// Pipeline name.
    pub pipeline: String,
    /// The version the schedule came from (and that its runs run).
    pub version: i64,
    /// Cron expression.
    pub cron: String,
    /// Time zone.
    pub timezone: String,
    /// `skip`, `once` or `all`.
    pub catchup: String,
    /// `skip`, `queue` or `allow`.
    pub overlap: String,
    /// Missed slots run by `catchup: all`, at most.
    pub max_catchup: i64,
    /// Slots up to this time (Unix ms) have been dealt with.
    pub since: i64,
}

/// The tenant's schedules by pipeline name: (cron, time zone).
pub async fn of_tenant(
    store: &Store,
    tenant: &str,
) -> Result<std::collections::BTreeMap<String, (String, String)>> {
    let rows = sqlx::query("SELECT pipeline, cron, timezone FROM schedules WHERE tenant_id = $1")
        .bind(tenant)
        .fetch_all(&store.pool)
        .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("pipeline")?,
                (r.try_get("cron")?, r.try_get("timezone")?),
            ))
        })
        .collect()
}

/// One recorded slot of a schedule.
#[derive(Debug, Clone, Serialize)]
pub struct FireRow {
    /// The slot, Unix ms.
    pub fire_at: i64,
    /// When it was recorded.
    pub recorded_at: i64,
    /// `schedule` (on time), `catchup` (a missed slot run late) or `skipped` (by the overlap
    /// policy `skip`: the previous run was still going).
    pub outcome: String,
    /// The run it queued.
    pub run_id: Option<String>,
}

/// Sets (or, with `None`, removes) the schedule of `pipeline` from its version `version`,
/// through the transaction that stores the version. Slots already dealt with stay so.
pub(super) async fn set(
    conn: &mut sqlx::AnyConnection,
    tenant: &str,
    pipeline: &str,
    version: i64,
    schedule: Option<&Schedule>,
) -> Result<()> {
    let Some(s) = schedule else {
        sqlx::query("DELETE FROM schedules WHERE tenant_id = $1 AND pipeline = $2")
            .bind(tenant)
            .bind(pipeline)
            .execute(conn)
            .await?;
        return Ok(());
    };
    sqlx::query(
        "INSERT INTO schedules (tenant_id, pipeline, version, cron, timezone, catchup, overlap, max_catchup, since) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (tenant_id, pipeline) DO UPDATE SET version = excluded.version, cron = excluded.cron, \
         timezone = excluded.timezone, catchup = excluded.catchup, overlap = excluded.overlap, \
         max_catchup = excluded.max_catchup",
    )
    .bind(tenant)
    .bind(pipeline)
    .bind(version)
    .bind(&s.cron)
    .bind(&s.timezone)
    .bind(s.catchup.as_str())
    .bind(s.overlap.as_str())
    .bind(i64::from(s.max_catchup.unwrap_or(DEFAULT_MAX_CATCHUP)))
    .bind(now_ms())
    .execute(conn)
    .await?;
    Ok(())
}

impl Store {
    /// Every schedule of every tenant.
    pub async fn schedules(&self) -> Result<Vec<ScheduleRow>> {
        let rows = sqlx::query(
            "SELECT tenant_id, pipeline, version, cron, timezone, catchup, overlap, max_catchup, since FROM schedules",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ScheduleRow {
                    tenant: r.try_get("tenant_id")?,
                    pipeline: r.try_get("pipeline")?,
                    version: r.try_get("version")?,
                    cron: r.try_get("cron")?,
                    timezone: r.try_get("timezone")?,
                    catchup: r.try_get("catchup")?,
                    overlap: r.try_get("overlap")?,
                    max_catchup: r.try_get("max_catchup")?,
                    since: r.try_get("since")?,
                })
            })
            .collect()
    }

    /// Moves the schedule's `since` from `old` to `new` in the caller's transaction; `false`
    /// when another server moved it first (it deals with these slots).
    pub async fn advance_schedule(
        &self,
        conn: &mut sqlx::AnyConnection,
        s: &ScheduleRow,
        new: i64,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE schedules SET since = $1 WHERE tenant_id = $2 AND pipeline = $3 AND since = $4",
        )
        .bind(new)
        .bind(&s.tenant)
        .bind(&s.pipeline)
        .bind(s.since)
        .execute(conn)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records slot `fire_at` of the pipeline with its outcome and run; `false` (nothing
    /// written) when the slot was already recorded.
    pub async fn record_fire(
        &self,
        conn: &mut sqlx::AnyConnection,
        s: &ScheduleRow,
        fire_at: i64,
        outcome: &str,
        run_id: Option<&str>,
    ) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO schedule_fires (tenant_id, pipeline, fire_at, recorded_at, outcome, run_id) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, pipeline, fire_at) DO NOTHING",
        )
        .bind(&s.tenant)
        .bind(&s.pipeline)
        .bind(fire_at)
        .bind(now_ms())
        .bind(outcome)
        .bind(run_id)
        .execute(conn)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Names the run that slot `fire_at` of the pipeline queued.
    pub async fn set_fire_run(
        &self,
        conn: &mut sqlx::AnyConnection,
        s: &ScheduleRow,
        fire_at: i64,
        run_id: &str,
    ) -> Result<()> {
        sqlx::query("UPDATE schedule_fires SET run_id = $1 WHERE tenant_id = $2 AND pipeline = $3 AND fire_at = $4")
            .bind(run_id)
            .bind(&s.tenant)
            .bind(&s.pipeline)
            .bind(fire_at)
            .execute(conn)
            .await?;
        Ok(())
    }

    /// The tenant's recorded slots of `pipeline`, newest first.
    pub async fn fires(&self, tenant: &str, pipeline: &str, limit: i64) -> Result<Vec<FireRow>> {
        let rows = sqlx::query(
            "SELECT fire_at, recorded_at, outcome, run_id FROM schedule_fires WHERE tenant_id = $1 AND pipeline = $2 \
             ORDER BY fire_at DESC LIMIT $3",
        )
        .bind(tenant)
        .bind(pipeline)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(FireRow {
                    fire_at: r.try_get("fire_at")?,
                    recorded_at: r.try_get("recorded_at")?,
                    outcome: r.try_get("outcome")?,
                    run_id: r.try_get("run_id")?,
                })
            })
            .collect()
    }
}
