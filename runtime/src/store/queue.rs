//! The run queue in the database: enqueue, claim with a lease (`FOR UPDATE SKIP LOCKED` on
//! PostgreSQL; one claimer at a time on SQLite, which serves one process), heartbeats that renew
//! the lease, and completion fenced by the attempt number: a worker whose lease expired and
//! whose run was taken over can neither renew nor complete it.
use serde::Serialize;
use sqlx::Row;

use super::audit::NewAudit;
use super::checkpoints::Checkpoint;
use super::{Backend, Result, Store, now_ms, random_hex};

/// Attempts a run may lose to dead workers beyond its retry budget before it is failed (a run
/// that kills every worker that takes it must not circulate forever).
pub const MAX_LOST_ATTEMPTS: i64 = 5;

/// How a run is to be run, read from its pipeline version when it is queued.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSpec {
    /// Labels the claiming worker must have.
    pub labels: Vec<String>,
    /// At most this many runs of the pipeline at once (0: no limit).
    pub concurrency: u32,
    /// Attempts in all, counting retries of retryable failures (at least 1).
    pub max_attempts: u32,
}

/// A run to queue.
#[derive(Debug, Clone)]
pub struct NewRun<'a> {
    /// Tenant id.
    pub tenant: &'a str,
    /// Pipeline name.
    pub pipeline: &'a str,
    /// Version to run.
    pub version: i64,
    /// Who asked (a token id, or `scheduler`).
    pub created_by: &'a str,
    /// How to run it.
    pub spec: &'a RunSpec,
    /// `api`, `schedule` or `catchup`.
    pub trigger: &'a str,
    /// The schedule slot it fires for, Unix ms.
    pub fire_at: Option<i64>,
    /// For a replay of dead letters: what to replay, as JSON ([`Replay`]).
    pub replay: Option<&'a Replay>,
}

/// A replay of dead letters: these records, fed to this step, optionally run by another plugin.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Replay {
    /// The step that rejected them, which gets them again.
    pub step: String,
    /// The dead letters, by id.
    pub ids: Vec<i64>,
    /// The plugin to run that step with instead of the version's (a digest), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

/// A run a worker claimed.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// Run id.
    pub id: String,
    /// Tenant id.
    pub tenant: String,
    /// Pipeline name.
    pub pipeline: String,
    /// Version.
    pub version: i64,
    /// This attempt's number (1 for the first): the fencing token.
    pub attempt: i64,
    /// Attempts allowed for retryable failures.
    pub max_attempts: i64,
    /// What it replays, for a replay of dead letters.
    pub replay: Option<Replay>,
}

/// One attempt of a run, as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct AttemptRow {
    /// 1, 2, ...
    pub attempt: i64,
    /// The worker that ran it.
    pub worker: String,
    /// When it was claimed, Unix ms.
    pub started_at: i64,
    /// When it ended.
    pub finished_at: Option<i64>,
    /// `running`, `succeeded`, `failed`, `cancelled`, `retrying` (failed, to be retried),
    /// `released` (handed back by a stopping worker) or `lost` (its worker stopped
    /// heartbeating and another took the run over).
    pub status: String,
    /// Why it failed.
    pub error: Option<String>,
}

/// What a cancel request did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelOutcome {
    /// The run was queued and is now cancelled.
    Cancelled,
    /// The run is running; its worker stops it at its next heartbeat.
    Requested,
    /// The run had already ended.
    AlreadyEnded,
    /// No such run in the tenant.
    NotFound,
}

/// How an attempt ends, written fenced by its attempt number.
#[derive(Debug, Clone)]
pub enum Ending {
    /// The run ends with this status; on success its checkpoints are committed with it.
    Complete {
        /// `succeeded`, `failed` or `cancelled`.
        status: &'static str,
        /// The executor's report.
        report: Option<serde_json::Value>,
        /// Why it failed.
        error: Option<String>,
        /// Cursors and state to commit.
        checkpoints: Vec<Checkpoint>,
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
    status: &str,
    report: Option<&serde_json::Value>,
    error: Option<&str>,
    checkpoints: &[Checkpoint],
) -> Result<bool> {
    let row = sqlx::query(
        "UPDATE runs SET status = $1, finished_at = $2, report = $3, error = $4, lease_owner = NULL, \
         lease_expires_at = NULL WHERE id = $5 AND attempt = $6 AND status = 'running' \
         RETURNING tenant_id, pipeline",
    )
    .bind(status)
    .bind(now_ms())
    .bind(report.map(|r| r.to_string()))
    .bind(error)
    .bind(id)
    .bind(attempt)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(false) };
    let tenant: String = row.try_get("tenant_id")?;
    let pipeline: String = row.try_get("pipeline")?;
    end_attempt(conn, id, attempt, status, error).await?;
    for c in checkpoints {
        super::checkpoints::save(conn, &tenant, &pipeline, id, c).await?;
    }
    Ok(true)
}

async fn requeue_in(conn: &mut sqlx::AnyConnection, id: &str, attempt: i64, not_before: i64, why: &str, error: Option<&str>) -> Result<bool> {
    let refund = i64::from(why == "released");
    let done = sqlx::query(
        "UPDATE runs SET status = 'queued', not_before = $1, lease_owner = NULL, lease_expires_at = NULL, \
         error = $2, max_attempts = max_attempts + $3 WHERE id = $4 AND attempt = $5 AND status = 'running'",
    )
    .bind(not_before)
    .bind(error)
    .bind(refund)
    .bind(id)
    .bind(attempt)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    end_attempt(conn, id, attempt, why, error).await?;
    Ok(true)
}

/// Marks runs `seqs` running under `worker`'s lease, each at its next attempt number.
async fn claim_rows(conn: &mut sqlx::AnyConnection, seqs: &[i64], worker: &str, now: i64, lease_ms: i64) -> Result<()> {
    if seqs.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = seqs.iter().map(i64::to_string).collect();
    sqlx::query(&format!(
        "UPDATE runs SET status = 'running', attempt = attempt + 1, lease_owner = $1, lease_expires_at = $2, \
         started_at = COALESCE(started_at, $3) WHERE seq IN ({})",
        list.join(",")
    ))
    .bind(worker)
    .bind(now + lease_ms)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records the attempts just claimed, in one statement.
async fn insert_attempts(conn: &mut sqlx::AnyConnection, claimed: &[Claimed], worker: &str, now: i64) -> Result<()> {
    if claimed.is_empty() {
        return Ok(());
    }
    let mut sql = String::from("INSERT INTO run_attempts (tenant_id, run_id, attempt, worker, started_at, status) VALUES ");
    for i in 0..claimed.len() {
        let b = i * 3 + 3;
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!("(${b}, ${}, ${}, $1, $2, 'running')", b + 1, b + 2));
    }
    let mut q = sqlx::query(&sql).bind(worker).bind(now);
    for c in claimed {
        q = q.bind(&c.tenant).bind(&c.id).bind(c.attempt);
    }
    q.execute(conn).await?;
    Ok(())
}

/// Writes `attempt`'s end into `run_attempts`.
async fn end_attempt(conn: &mut sqlx::AnyConnection, run: &str, attempt: i64, status: &str, error: Option<&str>) -> Result<()> {
    sqlx::query("UPDATE run_attempts SET status = $1, finished_at = $2, error = $3 WHERE run_id = $4 AND attempt = $5")
        .bind(status)
        .bind(now_ms())
        .bind(error)
        .bind(run)
        .bind(attempt)
        .execute(conn)
        .await?;
    Ok(())
}

impl Store {
    /// Queues a run; returns its id once committed, and wakes the workers.
    pub async fn enqueue(&self, run: &NewRun<'_>) -> Result<String> {
        let mut tx = self.pool.begin().await?;
        let id = self.enqueue_in(&mut tx, run).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Queues a run inside the caller's transaction (PostgreSQL workers are notified when it
    /// commits).
    pub async fn enqueue_in(&self, conn: &mut sqlx::AnyConnection, run: &NewRun<'_>) -> Result<String> {
        let id = random_hex(12);
        let mut labels = run.spec.labels.clone();
        labels.sort();
        labels.dedup();
        sqlx::query(
            "INSERT INTO runs (id, tenant_id, pipeline, version, status, created_at, created_by, \
             max_attempts, labels, concurrency, trigger, fire_at, replay) \
             VALUES ($1, $2, $3, $4, 'queued', $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(&id)
        .bind(run.tenant)
        .bind(run.pipeline)
        .bind(run.version)
        .bind(now_ms())
        .bind(run.created_by)
        .bind(i64::from(run.spec.max_attempts.max(1)))
        .bind(labels.join(","))
        .bind(i64::from(run.spec.concurrency))
        .bind(run.trigger)
        .bind(run.fire_at)
        .bind(run.replay.map(|r| serde_json::to_string(r).unwrap_or_default()))
        .execute(&mut *conn)
        .await?;
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_notify('autoflow_runs', '')").execute(&mut *conn).await?;
        }
        Ok(id)
    }

    /// Claims the oldest runs (at most `max`, in one transaction) this worker may take: queued
    /// and due, or running under an expired lease (its worker is gone; the attempt it held is
    /// marked `lost`). Runs needing labels the worker lacks, and runs whose pipeline or tenant is
    /// at its limit, are passed over.
    pub async fn claim(&self, worker: &str, labels: &[String], lease_ms: i64, max: usize) -> Result<Vec<Claimed>> {
        let _one_claimer = match self.backend {
            Backend::Sqlite => Some(self.claim_lock.lock().await),
            Backend::Postgres => None,
        };
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let lock = match self.backend {
            Backend::Sqlite => {
                // Take SQLite's write lock before reading, so the transaction cannot fail to
                // upgrade later.
                sqlx::query("UPDATE runs SET seq = seq WHERE seq = -1").execute(&mut *tx).await?;
                ""
            }
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        };
        let candidates = sqlx::query(&format!(
            "SELECT seq, id, tenant_id, pipeline, version, status, attempt, max_attempts, labels, concurrency, \
             cancel_requested, replay, (SELECT max_running FROM tenants t WHERE t.id = runs.tenant_id) AS tenant_limit \
             FROM runs \
             WHERE (status = 'queued' AND not_before <= $1) OR (status = 'running' AND lease_expires_at < $1) \
             ORDER BY seq LIMIT $2{lock}"
        ))
        .bind(now)
        .bind(i64::try_from(max.max(1) * 2).unwrap_or(16).max(8))
        .fetch_all(&mut *tx)
        .await?;
        let mut claimed = Vec::new();
        let mut deferred = Vec::new();
        for r in &candidates {
            if claimed.len() >= max.max(1) {
                break;
            }
            let seq: i64 = r.try_get("seq")?;
            let id: String = r.try_get("id")?;
            let tenant: String = r.try_get("tenant_id")?;
            let pipeline: String = r.try_get("pipeline")?;
            let status: String = r.try_get("status")?;
            let attempt: i64 = r.try_get("attempt")?;
            let max_attempts: i64 = r.try_get("max_attempts")?;
            let needs: String = r.try_get("labels")?;
            if !needs.split(',').filter(|l| !l.is_empty()).all(|l| labels.iter().any(|have| have == l)) {
                continue;
            }
            if status == "running" {
                end_attempt(&mut tx, &id, attempt, "lost", Some("its worker stopped renewing the lease")).await?;
                let cancel: i64 = r.try_get("cancel_requested")?;
                let lost_too_often = attempt >= max_attempts + MAX_LOST_ATTEMPTS;
                if cancel != 0 || lost_too_often {
                    let (status, error) = if cancel != 0 {
                        ("cancelled", "cancelled while its worker was gone".to_string())
                    } else {
                        ("failed", format!("lost its worker {attempt} times"))
                    };
                    sqlx::query(
                        "UPDATE runs SET status = $1, error = $2, finished_at = $3, lease_owner = NULL, \
                         lease_expires_at = NULL WHERE seq = $4",
                    )
                    .bind(status)
                    .bind(error)
                    .bind(now)
                    .bind(seq)
                    .execute(&mut *tx)
                    .await?;
                    continue;
                }
            }
            let tenant_limit: i64 = r.try_get::<Option<i64>, _>("tenant_limit")?.unwrap_or(0);
            if tenant_limit > 0 && self.running(&mut tx, &tenant, None, now, seq).await? >= tenant_limit {
                continue;
            }
            let concurrency: i64 = r.try_get("concurrency")?;
            if concurrency > 0 && self.running(&mut tx, &tenant, Some(&pipeline), now, seq).await? >= concurrency {
                continue;
            }
            if tenant_limit > 0 || concurrency > 0 {
                // Counted by the next limited candidate's check: mark it running now.
                claim_rows(&mut tx, &[seq], worker, now, lease_ms).await?;
            } else {
                deferred.push(seq);
            }
            let version: i64 = r.try_get("version")?;
            let replay: Option<String> = r.try_get("replay")?;
            let replay = replay
                .map(|t| serde_json::from_str(&t))
                .transpose()
                .map_err(|e| super::StoreError::Corrupt(format!("replay of run {id}: {e}")))?;
            claimed.push(Claimed { id, tenant, pipeline, version, attempt: attempt + 1, max_attempts, replay });
        }
        claim_rows(&mut tx, &deferred, worker, now, lease_ms).await?;
        insert_attempts(&mut tx, &claimed, worker, now).await?;
        tx.commit().await?;
        Ok(claimed)
    }

    /// Runs of the tenant (of `pipeline` only, if given) running under a live lease, other than
    /// run `seq`. On PostgreSQL, claimers counting the same tenant or pipeline take turns from
    /// here to their commit, so that two cannot both see room for one more.
    async fn running(&self, conn: &mut sqlx::AnyConnection, tenant: &str, pipeline: Option<&str>, now: i64, seq: i64) -> Result<i64> {
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
                .bind(format!("{tenant}/{}", pipeline.unwrap_or("*")))
                .execute(&mut *conn)
                .await?;
        }
        let n = sqlx::query(
            "SELECT COUNT(*) AS n FROM runs WHERE tenant_id = $1 AND ($2 IS NULL OR pipeline = $2) AND status = 'running' \
             AND lease_expires_at >= $3 AND seq <> $4",
        )
        .bind(tenant)
        .bind(pipeline)
        .bind(now)
        .bind(seq)
        .fetch_one(conn)
        .await?
        .try_get("n")?;
        Ok(n)
    }

    /// Sets the tenant's limit of runs at once (0: none), recording `audit` with it; whether
    /// the tenant exists.
    pub async fn set_tenant_max_running(&self, tenant_name: &str, max_running: i64, audit: &NewAudit<'_>) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("UPDATE tenants SET max_running = $1 WHERE name = $2")
            .bind(max_running)
            .bind(tenant_name)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        super::audit::insert(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Renews the lease of `attempt` of run `id`. `None` when the attempt no longer holds the
    /// run (the lease expired and another worker took it, or it ended); otherwise whether a
    /// cancel was requested.
    pub async fn heartbeat(&self, id: &str, attempt: i64, lease_ms: i64) -> Result<Option<bool>> {
        let row = sqlx::query(
            "UPDATE runs SET lease_expires_at = $1 WHERE id = $2 AND attempt = $3 AND status = 'running' \
             RETURNING cancel_requested",
        )
        .bind(now_ms() + lease_ms)
        .bind(id)
        .bind(attempt)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Ok(r.try_get::<i64, _>("cancel_requested")? != 0)).transpose()
    }

    /// Ends `attempt` of run `id` with a final `status`, its report and error, and commits the
    /// checkpoints (source cursors, step state) in the same transaction. `false`, and nothing
    /// written, when the attempt no longer holds the run.
    pub async fn complete(
        &self,
        id: &str,
        attempt: i64,
        status: &'static str,
        report: Option<&serde_json::Value>,
        error: Option<&str>,
        checkpoints: &[Checkpoint],
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
    pub async fn retry_later(&self, id: &str, attempt: i64, not_before: i64, error: &str) -> Result<bool> {
        self.finish_one(id, attempt, Ending::Retry { not_before, error: error.to_string() }).await
    }

    /// Hands run `id` back to the queue (its worker is stopping), not counting `attempt`
    /// against the retry budget.
    pub async fn release(&self, id: &str, attempt: i64) -> Result<bool> {
        self.finish_one(id, attempt, Ending::Release).await
    }

    async fn finish_one(&self, id: &str, attempt: i64, ending: Ending) -> Result<bool> {
        let finish = Finish { run: id.to_string(), tenant: String::new(), attempt, ending, logs: Vec::new() };
        Ok(self.finish_many(std::slice::from_ref(&finish)).await?.first().copied().unwrap_or(false))
    }

    /// Writes the ends of several attempts, and their last log lines, in one transaction (a
    /// worker gathers the runs that end together: one commit for all). For each, whether its
    /// attempt still held the run; a stale one writes its log lines and nothing else.
    pub async fn finish_many(&self, items: &[Finish]) -> Result<Vec<bool>> {
        let mut tx = self.pool.begin().await?;
        let mut held = Vec::with_capacity(items.len());
        let mut requeued = false;
        let lines: Vec<(&str, &str, &super::runs::Line)> =
            items.iter().flat_map(|f| f.logs.iter().map(|l| (f.tenant.as_str(), f.run.as_str(), l))).collect();
        super::runs::append_rows_in(&mut tx, &lines).await?;
        for f in items {
            let ok = match &f.ending {
                Ending::Complete { status, report, error, checkpoints } => {
                    complete_in(&mut tx, &f.run, f.attempt, status, report.as_ref(), error.as_deref(), checkpoints).await?
                }
                Ending::Retry { not_before, error } => requeue_in(&mut tx, &f.run, f.attempt, *not_before, "retrying", Some(error)).await?,
                Ending::Release => requeue_in(&mut tx, &f.run, f.attempt, 0, "released", None).await?,
            };
            requeued |= ok && !matches!(f.ending, Ending::Complete { .. });
            held.push(ok);
        }
        if requeued && self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_notify('autoflow_runs', '')").execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(held)
    }

    /// Cancels the tenant's run `id`: at once when queued, through its worker when running.
    pub async fn cancel(&self, tenant: &str, id: &str) -> Result<CancelOutcome> {
        let now = now_ms();
        let queued = sqlx::query(
            "UPDATE runs SET status = 'cancelled', finished_at = $1, error = 'cancelled before it started' \
             WHERE tenant_id = $2 AND id = $3 AND status = 'queued'",
        )
        .bind(now)
        .bind(tenant)
        .bind(id)
        .execute(&self.pool)
        .await?;
        if queued.rows_affected() > 0 {
            return Ok(CancelOutcome::Cancelled);
        }
        let running = sqlx::query("UPDATE runs SET cancel_requested = 1 WHERE tenant_id = $1 AND id = $2 AND status = 'running'")
            .bind(tenant)
            .bind(id)
            .execute(&self.pool)
            .await?;
        if running.rows_affected() > 0 {
            return Ok(CancelOutcome::Requested);
        }
        Ok(match self.run(tenant, id).await? {
            Some(_) => CancelOutcome::AlreadyEnded,
            None => CancelOutcome::NotFound,
        })
    }

    /// The attempts of the tenant's run `id`, first first.
    pub async fn attempts(&self, tenant: &str, id: &str) -> Result<Vec<AttemptRow>> {
        let rows = sqlx::query(
            "SELECT attempt, worker, started_at, finished_at, status, error FROM run_attempts \
             WHERE tenant_id = $1 AND run_id = $2 ORDER BY attempt",
        )
        .bind(tenant)
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AttemptRow {
                    attempt: r.try_get("attempt")?,
                    worker: r.try_get("worker")?,
                    started_at: r.try_get("started_at")?,
                    finished_at: r.try_get("finished_at")?,
                    status: r.try_get("status")?,
                    error: r.try_get("error")?,
                })
            })
            .collect()
    }

    /// Makes every lease expire now: an embedded SQLite database is used by one process at a
    /// time, so at its start nothing else can hold a run, and interrupted runs are taken over
    /// at once instead of after their lease.
    pub async fn expire_all_leases(&self) -> Result<u64> {
        let done = sqlx::query("UPDATE runs SET lease_expires_at = 0 WHERE status = 'running'")
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// Whether any run of the pipeline is queued or running.
    pub async fn pipeline_busy(&self, conn: &mut sqlx::AnyConnection, tenant: &str, pipeline: &str) -> Result<bool> {
        let n: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM runs WHERE tenant_id = $1 AND pipeline = $2 AND status IN ('queued', 'running')",
        )
        .bind(tenant)
        .bind(pipeline)
        .fetch_one(conn)
        .await?
        .try_get("n")?;
        Ok(n > 0)
    }
}
