//! Runs as the API shows them (`queued` -> `running` -> `succeeded`/`failed`/`cancelled`; the
//! queue's moves are in [`super::queue`]) and their log lines.
use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::{Result, Store, StoreError, text_column};
use crate::status::{RunStatus, Trigger};

/// A run in brief, as a list of pipelines shows their last runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecentRun {
    /// Id.
    pub id: String,
    /// Status.
    pub status: RunStatus,
    /// When it was queued, Unix ms.
    pub created_at: i64,
    /// When it ended, Unix ms.
    pub finished_at: Option<i64>,
}

/// A run as stored, and as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRow {
    /// Id (random hex).
    pub id: String,
    /// Pipeline name.
    pub pipeline: String,
    /// The version it runs.
    pub version: i64,
    /// Where it is.
    pub status: RunStatus,
    /// When it was asked for, Unix ms.
    pub created_at: i64,
    /// Who asked.
    pub created_by: Option<String>,
    /// When it started.
    pub started_at: Option<i64>,
    /// When it ended.
    pub finished_at: Option<i64>,
    /// The executor's report (per step: records, bytes, time, fuel, errors, digests).
    pub report: Option<serde_json::Value>,
    /// Why it failed before or outside the steps.
    pub error: Option<String>,
    /// Attempts so far (the current one while running).
    pub attempt: i64,
    /// Attempts allowed for retryable failures.
    pub max_attempts: i64,
    /// Not claimed before this time (a retry's backoff), Unix ms.
    pub not_before: i64,
    /// A cancel was asked for while it ran.
    pub cancel_requested: bool,
    /// Labels the worker must have.
    pub labels: Vec<String>,
    /// What queued it.
    pub trigger: Trigger,
    /// The schedule slot it runs for, Unix ms.
    pub fire_at: Option<i64>,
    /// The worker holding it while it runs.
    pub worker: Option<String>,
    /// For a replay of dead letters: the step, the dead letters' ids, the plugin override.
    pub replay: Option<serde_json::Value>,
    /// While it runs: each step's counters so far, as its worker last wrote them (a few times a
    /// second while they change; see [`Progress`]); kept as last written once it ends (its
    /// `report` has the final counts).
    #[serde(default)]
    pub progress: Option<serde_json::Value>,
    /// The values of its parameters (the pipeline's `params:`), as it runs with them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<serde_json::Value>,
}

/// A running run's counters so far, as `progress` shows them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// When they were read, Unix ms.
    pub at: i64,
    /// The attempt that counts them.
    pub attempt: i64,
    /// Per step, in the plan's order.
    pub steps: Vec<StepProgress>,
}

/// One step's counters so far.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepProgress {
    /// Step id.
    pub id: String,
    /// Records received (sources: read).
    pub records_in: u64,
    /// Records passed on (sinks: written).
    pub records_out: u64,
    /// Records rejected.
    pub rejected: u64,
    /// Bytes received.
    pub bytes_in: u64,
    /// Bytes passed on.
    pub bytes_out: u64,
    /// Batches handled (sources: read; others: received).
    pub batches: u64,
    /// Time inside the plugin, ms.
    pub busy_ms: u64,
}

/// A stored log line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogRow {
    /// Sequence number (for paging and following).
    pub id: i64,
    /// When, Unix ms.
    pub at: i64,
    /// The step, if any.
    pub step: Option<String>,
    /// `trace` .. `error`.
    pub level: String,
    /// `plugin` (a plugin's log or stderr) or `host` (the server's events).
    pub source: String,
    /// The text.
    pub message: String,
}

const COLUMNS: &str = "id, pipeline, version, status, created_at, created_by, started_at, finished_at, report, error, \
                       attempt, max_attempts, not_before, cancel_requested, labels, trigger, fire_at, lease_owner, replay, progress, params";

fn run_of(r: &sqlx::any::AnyRow) -> Result<RunRow> {
    let report: Option<String> = r.try_get("report")?;
    Ok(RunRow {
        id: r.try_get("id")?,
        pipeline: r.try_get("pipeline")?,
        version: r.try_get("version")?,
        status: text_column(r, "status")?,
        created_at: r.try_get("created_at")?,
        created_by: r.try_get("created_by")?,
        started_at: r.try_get("started_at")?,
        finished_at: r.try_get("finished_at")?,
        report: report
            .map(|t| serde_json::from_str(&t))
            .transpose()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        error: r.try_get("error")?,
        attempt: r.try_get("attempt")?,
        max_attempts: r.try_get("max_attempts")?,
        not_before: r.try_get("not_before")?,
        cancel_requested: r.try_get::<i64, _>("cancel_requested")? != 0,
        labels: super::labels_of(&r.try_get::<String, _>("labels")?),
        trigger: text_column(r, "trigger")?,
        fire_at: r.try_get("fire_at")?,
        worker: r.try_get("lease_owner")?,
        replay: json_column(r, "replay")?,
        progress: json_column(r, "progress")?,
        params: json_column(r, "params")?,
    })
}

/// A nullable column of JSON text, read.
fn json_column(r: &sqlx::any::AnyRow, name: &str) -> Result<Option<serde_json::Value>> {
    r.try_get::<Option<String>, _>(name)?
        .map(|t| serde_json::from_str(&t))
        .transpose()
        .map_err(|e| StoreError::Corrupt(format!("runs.{name}: {e}")))
}

/// A log line on its way to the database: `(at, step, level, source, message)`.
pub type Line = (i64, Option<String>, String, String, String);

/// Appends log lines of a run through `conn` (a run's ending writes its last lines in the
/// transaction that ends it).
pub(super) async fn append_logs_in(
    conn: &mut sqlx::AnyConnection,
    tenant: &str,
    run: &str,
    lines: &[Line],
) -> Result<()> {
    let rows: Vec<(&str, &str, &Line)> = lines.iter().map(|l| (tenant, run, l)).collect();
    append_rows_in(conn, &rows).await
}

/// Appends log lines `(tenant, run, line)` of several runs, 500 to a statement.
pub(super) async fn append_rows_in(
    conn: &mut sqlx::AnyConnection,
    rows: &[(&str, &str, &Line)],
) -> Result<()> {
    for chunk in rows.chunks(500) {
        let mut sql = String::from(
            "INSERT INTO run_logs (tenant_id, run_id, at, step, level, source, message) VALUES ",
        );
        for i in 0..chunk.len() {
            let b = i * 7 + 1;
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!(
                "(${b}, ${}, ${}, ${}, ${}, ${}, ${})",
                b + 1,
                b + 2,
                b + 3,
                b + 4,
                b + 5,
                b + 6
            ));
        }
        let mut q = sqlx::query(&sql);
        for (tenant, run, (at, step, level, source, message)) in chunk {
            q = q
                .bind(*tenant)
                .bind(*run)
                .bind(*at)
                .bind(step.clone())
                .bind(level.clone())
                .bind(source.clone())
                .bind(message.clone());
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

impl Store {
    /// The tenant's run `id`.
    pub async fn run(&self, tenant: &str, id: &str) -> Result<Option<RunRow>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM runs WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(run_of).transpose()
    }

    /// The tenant's runs of `pipeline`, newest first, optionally only those with `status`.
    pub async fn runs(
        &self,
        tenant: &str,
        pipeline: &str,
        status: Option<RunStatus>,
        limit: i64,
    ) -> Result<Vec<RunRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM runs WHERE tenant_id = $1 AND pipeline = $2 AND ($3 IS NULL OR status = $3) \
             ORDER BY seq DESC LIMIT $4"
        ))
        .bind(tenant)
        .bind(pipeline)
        .bind(status.map(RunStatus::as_str))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(run_of).collect()
    }

    /// The newest `limit` runs of each of the tenant's pipelines, newest first, in brief, by
    /// pipeline name: one query (a window over the tenant's runs).
    pub async fn recent_runs(
        &self,
        tenant: &str,
        limit: i64,
    ) -> Result<std::collections::HashMap<String, Vec<RecentRun>>> {
        let rows = sqlx::query(
            "SELECT pipeline, id, status, created_at, finished_at FROM \
             (SELECT pipeline, id, status, created_at, finished_at, seq, \
              ROW_NUMBER() OVER (PARTITION BY pipeline ORDER BY seq DESC) AS n \
              FROM runs WHERE tenant_id = $1) ranked \
             WHERE n <= $2 ORDER BY pipeline, seq DESC",
        )
        .bind(tenant)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut by_pipeline: std::collections::HashMap<String, Vec<RecentRun>> =
            std::collections::HashMap::new();
        for r in &rows {
            by_pipeline
                .entry(r.try_get("pipeline")?)
                .or_default()
                .push(RecentRun {
                    id: r.try_get("id")?,
                    status: text_column(r, "status")?,
                    created_at: r.try_get("created_at")?,
                    finished_at: r.try_get("finished_at")?,
                });
        }
        Ok(by_pipeline)
    }

    /// Writes the progress of `attempt` of run `id` while that attempt holds it; whether it did.
    pub async fn set_progress(&self, id: &str, attempt: i64, progress: &Progress) -> Result<bool> {
        let text =
            serde_json::to_string(progress).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let done = sqlx::query(
            "UPDATE runs SET progress = $1 WHERE id = $2 AND attempt = $3 AND status = $4",
        )
        .bind(text)
        .bind(id)
        .bind(attempt)
        .bind(RunStatus::Running.as_str())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Appends log lines of a run, in one statement per chunk of 200 lines.
    pub async fn append_logs(&self, tenant: &str, run: &str, lines: &[Line]) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        append_logs_in(&mut conn, tenant, run, lines).await
    }

    /// Log lines of the tenant's run `run` after line `after`, oldest first.
    pub async fn logs(
        &self,
        tenant: &str,
        run: &str,
        after: i64,
        limit: i64,
    ) -> Result<Vec<LogRow>> {
        let rows = sqlx::query(
            "SELECT id, at, step, level, source, message FROM run_logs \
             WHERE tenant_id = $1 AND run_id = $2 AND id > $3 ORDER BY id LIMIT $4",
        )
        .bind(tenant)
        .bind(run)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(LogRow {
                    id: r.try_get("id")?,
                    at: r.try_get("at")?,
                    step: r.try_get("step")?,
                    level: r.try_get("level")?,
                    source: r.try_get("source")?,
                    message: r.try_get("message")?,
                })
            })
            .collect()
    }
}
