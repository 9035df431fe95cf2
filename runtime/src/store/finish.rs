//! Ending an attempt, fenced by its attempt number: completing the run (with its checkpoints),
//! queueing it again after a retryable failure, or handing it back; several ends, with their
//! runs' last log lines, in one transaction; with each end, the alerts its pipeline's rules
//! raise ([`super::alerts`]).
use sqlx::Row;

use super::checkpoints::SealedCheckpoint;
use super::{Backend, Result, Store, now_ms};
use crate::status::{AttemptStatus, RunStatus};

/// How an attempt ends, written fenced by its attempt number.
#[derive(Debug, Clone)]
pub enum Ending {
    /// The run ends with this status; on success its checkpoints are committed with it.
    Complete {
        /// `succeeded`, `failed` or `cancelled`.
        status: RunStatus,
        /// The executor's report.
        report: Option<serde_json::Value>,
        /// Why it failed.
        error: Option<String>,
        /// Cursors and state to commit, sealed by the worker.
        checkpoints: Vec<SealedCheckpoint>,
    },
    /// Back to the queue after a retryable failure, due at `not_before` (Unix ms).
    Retry {
        /// When it may run again.
        not_before: i64,
        /// Why this attempt failed.
        error: String,
    },
    /// Back to the queue because the worker is stopping; the attempt is not counted.
    Release,
    /// Back to the queue, due at `not_before`, because the store failed transiently around
    /// the attempt (not a step's failure); the attempt is not counted.
    Interrupted {
        /// When it may run again.
        not_before: i64,
        /// What the store answered.
        error: String,
    },
}

/// One attempt's end and the run's last log lines `(at, step, level, source, message)`.
#[derive(Debug, Clone)]
pub struct Finish {
    /// Run id.
    pub run: String,
    /// Tenant id (for the log lines).
    pub tenant: String,
    /// The attempt that ends.
    pub attempt: i64,
    /// How.
    pub ending: Ending,
    /// Log lines not yet written.
    pub logs: Vec<super::runs::Line>,
}

async fn complete_in(
    conn: &mut sqlx::AnyConnection,
    id: &str,
    attempt: i64,
    status: RunStatus,
    report: Option<&serde_json::Value>,
    error: Option<&str>,
    checkpoints: &[SealedCheckpoint],
) -> Result<bool> {
    let row = sqlx::query(
        "UPDATE runs SET status = $1, finished_at = $2, report = $3, error = $4, lease_owner = NULL, \
         lease_expires_at = NULL WHERE id = $5 AND attempt = $6 AND status = $7 \
         RETURNING tenant_id, pipeline",
    )
    .bind(status.as_str())
    .bind(now_ms())
    .bind(report.map(|r| r.to_string()))
    .bind(error)
    .bind(id)
    .bind(attempt)
    .bind(RunStatus::Running.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(false) };
    let tenant: String = row.try_get("tenant_id")?;
    let pipeline: String = row.try_get("pipeline")?;
    end_attempt(conn, id, attempt, status.into(), error).await?;
    for c in checkpoints {
        super::checkpoints::save(conn, &tenant, &pipeline, id, c).await?;
    }
    Ok(true)
}

async fn requeue_in(
    conn: &mut sqlx::AnyConnection,
    id: &str,
    attempt: i64,
    not_before: i64,
    why: AttemptStatus,
    error: Option<&str>,
) -> Result<bool> {
    let refund = i64::from(why.is_refunded());
    let done = sqlx::query(
        "UPDATE runs SET status = $6, not_before = $1, lease_owner = NULL, lease_expires_at = NULL, \
         error = $2, max_attempts = max_attempts + $3 WHERE id = $4 AND attempt = $5 AND status = $7",
    )
    .bind(not_before)
    .bind(error)
    .bind(refund)
    .bind(id)
    .bind(attempt)
    .bind(RunStatus::Queued.as_str())
    .bind(RunStatus::Running.as_str())
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    end_attempt(conn, id, attempt, why, error).await?;
    Ok(true)
}

/// The alerts the end `f` (whose attempt held its run) raises, written in its transaction
/// ([`super::alerts`]): a run that ended, or an attempt that failed and is retried.
async fn alerts_of(conn: &mut sqlx::AnyConnection, f: &Finish) -> Result<usize> {
    let (ended, error) = match &f.ending {
        Ending::Complete {
            status,
            report,
            error,
            ..
        } => (
            super::alerts::Ended::Run(*status, report.as_ref()),
            error.as_deref(),
        ),
        Ending::Retry { error, .. } => (super::alerts::Ended::Retried, Some(error.as_str())),
        Ending::Release | Ending::Interrupted { .. } => return Ok(0),
    };
    super::alerts::on_run_end(conn, &f.run, f.attempt, ended, error).await
}

/// Writes `attempt`'s end into `run_attempts`.
pub(super) async fn end_attempt(
    conn: &mut sqlx::AnyConnection,
    run: &str,
    attempt: i64,
    status: AttemptStatus,
    error: Option<&str>,
) -> Result<()> {
    sqlx::query("UPDATE run_attempts SET status = $1, finished_at = $2, error = $3 WHERE run_id = $4 AND attempt = $5")
        .bind(status.as_str())
        .bind(now_ms())
        .bind(error)
        .bind(run)
        .bind(attempt)
        .execute(conn)
        .await?;
    Ok(())
}

impl Store {
    /// Ends `attempt` of run `id` with a final `status`, its report and error, and commits the
    /// checkpoints (source cursors, step state) in the same transaction. `false`, and nothing
    /// written, when the attempt no longer holds the run.
    pub async fn complete(
        &self,
        id: &str,
        attempt: i64,
        status: RunStatus,
        report: Option<&serde_json::Value>,
        error: Option<&str>,
        checkpoints: &[SealedCheckpoint],
    ) -> Result<bool> {
        let ending = Ending::Complete {
            status,
            report: report.cloned(),
            error: error.map(str::to_string),
            checkpoints: checkpoints.to_vec(),
        };
        self.finish_one(id, attempt, ending).await
    }

    /// Puts run `id` back in the queue after a retryable failure of `attempt`, due at
    /// `not_before`; `false` when the attempt no longer holds the run.
    pub async fn retry_later(
        &self,
        id: &str,
        attempt: i64,
        not_before: i64,
        error: &str,
    ) -> Result<bool> {
        self.finish_one(
            id,
            attempt,
            Ending::Retry {
                not_before,
                error: error.to_string(),
            },
        )
        .await
    }

    /// Hands run `id` back to the queue (its worker is stopping), not counting `attempt`
    /// against the retry budget.
    pub async fn release(&self, id: &str, attempt: i64) -> Result<bool> {
        self.finish_one(id, attempt, Ending::Release).await
    }

    async fn finish_one(&self, id: &str, attempt: i64, ending: Ending) -> Result<bool> {
        let finish = Finish {
            run: id.to_string(),
            tenant: String::new(),
            attempt,
            ending,
            logs: Vec::new(),
        };
        Ok(self
            .finish_many(std::slice::from_ref(&finish))
            .await?
            .first()
            .copied()
            .unwrap_or(false))
    }

    /// Writes the ends of several attempts, and their last log lines, in one transaction (a
    /// worker gathers the runs that end together: one commit for all). For each, whether its
    /// attempt still held the run; a stale one writes its log lines and nothing else.
    pub async fn finish_many(&self, items: &[Finish]) -> Result<Vec<bool>> {
        let mut tx = self.begin().await?;
        let mut held = Vec::with_capacity(items.len());
        let mut requeued = false;
        let mut alerts = 0;
        let lines: Vec<(&str, &str, &super::runs::Line)> = items
            .iter()
            .flat_map(|f| {
                f.logs
                    .iter()
                    .map(|l| (f.tenant.as_str(), f.run.as_str(), l))
            })
            .collect();
        super::runs::append_rows_in(&mut tx, &lines).await?;
        for f in items {
            let ok = match &f.ending {
                Ending::Complete {
                    status,
                    report,
                    error,
                    checkpoints,
                } => {
                    complete_in(
                        &mut tx,
                        &f.run,
                        f.attempt,
                        *status,
                        report.as_ref(),
                        error.as_deref(),
                        checkpoints,
                    )
                    .await?
                }
                Ending::Retry { not_before, error } => {
                    requeue_in(
                        &mut tx,
                        &f.run,
                        f.attempt,
                        *not_before,
                        AttemptStatus::Retrying,
                        Some(error),
                    )
                    .await?
                }
                Ending::Release => {
                    requeue_in(&mut tx, &f.run, f.attempt, 0, AttemptStatus::Released, None).await?
                }
                Ending::Interrupted { not_before, error } => {
                    requeue_in(
                        &mut tx,
                        &f.run,
                        f.attempt,
                        *not_before,
                        AttemptStatus::Interrupted,
                        Some(error),
                    )
                    .await?
                }
            };
            if ok {
                alerts += alerts_of(&mut tx, f).await?;
            }
            requeued |= ok && !matches!(f.ending, Ending::Complete { .. });
            held.push(ok);
        }
        if requeued && self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_notify('autoflow_runs', '')")
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        if alerts > 0 {
            self.alerts_wake.notify_one();
        }
        Ok(held)
    }
}
