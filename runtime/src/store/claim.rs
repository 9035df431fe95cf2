//! Claiming runs with a lease (`FOR UPDATE SKIP LOCKED` on PostgreSQL; one claimer at a time on
//! SQLite, which serves one process), taking over runs whose lease lapsed, heartbeats that
//! renew a lease, and the limits a claim respects (pipeline concurrency, tenant runs at once).
use sqlx::Row;

use super::finish::end_attempt;
use super::queue::Claimed;
use super::{Backend, Result, Store, now_ms, text_column};
use crate::status::{AttemptStatus, RunStatus};

/// Attempts a run may lose to dead workers beyond its retry budget before it is failed (a run
/// that kills every worker that takes it must not circulate forever).
pub const MAX_LOST_ATTEMPTS: i64 = 5;

/// Marks runs `seqs` running under `worker`'s lease, each at its next attempt number.
async fn claim_rows(
    conn: &mut sqlx::AnyConnection,
    seqs: &[i64],
    worker: &str,
    now: i64,
    lease_ms: i64,
) -> Result<()> {
    if seqs.is_empty() {
        return Ok(());
    }
    sqlx::query(&format!(
        "UPDATE runs SET status = $4, attempt = attempt + 1, lease_owner = $1, lease_expires_at = $2, \
         progress = NULL, started_at = COALESCE(started_at, $3) WHERE seq IN ({})",
        super::id_list(seqs)
    ))
    .bind(worker)
    .bind(now + lease_ms)
    .bind(now)
    .bind(RunStatus::Running.as_str())
    .execute(conn)
    .await?;
    Ok(())
}

/// Records the attempts just claimed, in one statement.
async fn insert_attempts(
    conn: &mut sqlx::AnyConnection,
    claimed: &[Claimed],
    worker: &str,
    now: i64,
) -> Result<()> {
    if claimed.is_empty() {
        return Ok(());
    }
    let mut sql = String::from(
        "INSERT INTO run_attempts (tenant_id, run_id, attempt, worker, started_at, status) VALUES ",
    );
    for i in 0..claimed.len() {
        let b = i * 3 + 4;
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!("(${b}, ${}, ${}, $1, $2, $3)", b + 1, b + 2));
    }
    let mut q = sqlx::query(&sql)
        .bind(worker)
        .bind(now)
        .bind(AttemptStatus::Running.as_str());
    for c in claimed {
        q = q.bind(&c.tenant).bind(&c.id).bind(c.attempt);
    }
    q.execute(conn).await?;
    Ok(())
}

impl Store {
    /// Claims the oldest runs (at most `max`, in one transaction) this worker may take: queued
    /// and due, or running under an expired lease (its worker is gone; the attempt it held is
    /// marked `lost`). Runs needing labels the worker lacks, and runs whose pipeline or tenant is
    /// at its limit, are passed over.
    pub async fn claim(
        &self,
        worker: &str,
        labels: &[String],
        lease_ms: i64,
        max: usize,
    ) -> Result<Vec<Claimed>> {
        let _one_claimer = match self.backend {
            Backend::Sqlite => Some(self.claim_lock.lock().await),
            Backend::Postgres => None,
        };
        let mut tx = self.begin().await?;
        let lock = match self.backend {
            Backend::Sqlite => {
                // Take SQLite's write lock before reading, so the transaction cannot fail to
                // upgrade later.
                sqlx::query("UPDATE runs SET seq = seq WHERE seq = -1")
                    .execute(&mut *tx)
                    .await?;
                ""
            }
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        };
        // Read the clock once holding the lock: a run that ended before it is seen ended.
        let now = now_ms();
        let candidates = sqlx::query(&format!(
            "SELECT seq, id, tenant_id, pipeline, version, status, attempt, max_attempts, labels, concurrency, \
             cancel_requested, replay, memory_mb, created_at, not_before, lease_expires_at, lease_owner, \
             traceparent, \
             (SELECT max_running FROM tenants t WHERE t.id = runs.tenant_id) AS tenant_limit, \
             (SELECT max_running_memory_mb FROM tenants t WHERE t.id = runs.tenant_id) AS tenant_memory \
             FROM runs \
             WHERE (status = $3 AND not_before <= $1) OR (status = $4 AND lease_expires_at < $1) \
             ORDER BY seq LIMIT $2{lock}"
        ))
        .bind(now)
        .bind(i64::try_from(max.max(1) * 2).unwrap_or(16).max(8))
        .bind(RunStatus::Queued.as_str())
        .bind(RunStatus::Running.as_str())
        .fetch_all(&mut *tx)
        .await?;
        // Attempts start after the candidates were read (every end they saw came before).
        let started = now_ms();
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
            let status: RunStatus = text_column(r, "status")?;
            let attempt: i64 = r.try_get("attempt")?;
            let max_attempts: i64 = r.try_get("max_attempts")?;
            let needs: String = r.try_get("labels")?;
            if !super::labels_of(&needs).iter().all(|l| labels.contains(l)) {
                continue;
            }
            if status == RunStatus::Running {
                end_attempt(
                    &mut tx,
                    &id,
                    attempt,
                    AttemptStatus::Lost,
                    Some("its worker stopped renewing the lease"),
                )
                .await?;
                let owner: Option<String> = r.try_get("lease_owner")?;
                let lost = super::alerts::Ended::Lost(owner.as_deref().unwrap_or("?"));
                super::alerts::on_run_end(&mut tx, &id, attempt, lost, None).await?;
                let cancel: i64 = r.try_get("cancel_requested")?;
                let lost_too_often = attempt >= max_attempts + MAX_LOST_ATTEMPTS;
                if cancel != 0 || lost_too_often {
                    let (status, error) = if cancel != 0 {
                        (
                            RunStatus::Cancelled,
                            "cancelled while its worker was gone".to_string(),
                        )
                    } else {
                        (
                            RunStatus::Failed,
                            format!("lost its worker {attempt} times"),
                        )
                    };
                    sqlx::query(
                        "UPDATE runs SET status = $1, error = $2, finished_at = $3, lease_owner = NULL, \
                         lease_expires_at = NULL WHERE seq = $4",
                    )
                    .bind(status.as_str())
                    .bind(&error)
                    .bind(now)
                    .bind(seq)
                    .execute(&mut *tx)
                    .await?;
                    let ended = super::alerts::Ended::Run(status, None);
                    super::alerts::on_run_end(&mut tx, &id, attempt, ended, Some(&error)).await?;
                    continue;
                }
            }
            let tenant_limit: i64 = r.try_get::<Option<i64>, _>("tenant_limit")?.unwrap_or(0);
            let tenant_memory: i64 = r.try_get::<Option<i64>, _>("tenant_memory")?.unwrap_or(0);
            if tenant_limit > 0 || tenant_memory > 0 {
                let (runs, memory) = self.running(&mut tx, &tenant, None, now, seq).await?;
                let needs: i64 = r.try_get("memory_mb")?;
                if (tenant_limit > 0 && runs >= tenant_limit)
                    || (tenant_memory > 0 && memory.saturating_add(needs) > tenant_memory)
                {
                    continue;
                }
            }
            let concurrency: i64 = r.try_get("concurrency")?;
            if concurrency > 0
                && self
                    .running(&mut tx, &tenant, Some(&pipeline), now, seq)
                    .await?
                    .0
                    >= concurrency
            {
                continue;
            }
            if tenant_limit > 0 || tenant_memory > 0 || concurrency > 0 {
                // Counted by the next limited candidate's check: mark it running now.
                claim_rows(&mut tx, &[seq], worker, started, lease_ms).await?;
            } else {
                deferred.push(seq);
            }
            let version: i64 = r.try_get("version")?;
            let replay: Option<String> = r.try_get("replay")?;
            let replay = replay
                .map(|t| serde_json::from_str(&t))
                .transpose()
                .map_err(|e| super::StoreError::Corrupt(format!("replay of run {id}: {e}")))?;
            let due_since = if status == RunStatus::Running {
                r.try_get::<Option<i64>, _>("lease_expires_at")?
                    .unwrap_or(now)
            } else {
                r.try_get::<i64, _>("created_at")?
                    .max(r.try_get::<i64, _>("not_before")?)
            };
            claimed.push(Claimed {
                due_since,
                taken_over: status == RunStatus::Running,
                id,
                tenant,
                pipeline,
                version,
                attempt: attempt + 1,
                max_attempts,
                replay,
                traceparent: r.try_get("traceparent")?,
            });
        }
        claim_rows(&mut tx, &deferred, worker, started, lease_ms).await?;
        insert_attempts(&mut tx, &claimed, worker, started).await?;
        tx.commit().await?;
        Ok(claimed)
    }

    /// Runs of the tenant (of `pipeline` only, if given) running under a live lease, other than
    /// run `seq`, and the memory they hold together (MiB). On PostgreSQL, claimers counting the same tenant or pipeline take turns from
    /// here to their commit, so that two cannot both see room for one more.
    async fn running(
        &self,
        conn: &mut sqlx::AnyConnection,
        tenant: &str,
        pipeline: Option<&str>,
        now: i64,
        seq: i64,
    ) -> Result<(i64, i64)> {
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
                .bind(format!("{tenant}/{}", pipeline.unwrap_or("*")))
                .execute(&mut *conn)
                .await?;
        }
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(memory_mb), 0) AS BIGINT) AS memory FROM runs \
             WHERE tenant_id = $1 AND ($2 IS NULL OR pipeline = $2) AND status = $5 \
             AND lease_expires_at >= $3 AND seq <> $4",
        )
        .bind(tenant)
        .bind(pipeline)
        .bind(now)
        .bind(seq)
        .bind(RunStatus::Running.as_str())
        .fetch_one(conn)
        .await?;
        Ok((row.try_get("n")?, row.try_get("memory")?))
    }

    /// Renews the lease of `attempt` of run `id`. `None` when the attempt no longer holds the
    /// run (the lease expired and another worker took it, or it ended); otherwise whether a
    /// cancel was requested.
    pub async fn heartbeat(&self, id: &str, attempt: i64, lease_ms: i64) -> Result<Option<bool>> {
        let row = sqlx::query(
            "UPDATE runs SET lease_expires_at = $1 WHERE id = $2 AND attempt = $3 AND status = $4 \
             RETURNING cancel_requested",
        )
        .bind(now_ms() + lease_ms)
        .bind(id)
        .bind(attempt)
        .bind(RunStatus::Running.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Ok(r.try_get::<i64, _>("cancel_requested")? != 0))
            .transpose()
    }

    /// Makes every lease expire now: an embedded SQLite database is used by one process at a
    /// time, so at its start nothing else can hold a run, and interrupted runs are taken over
    /// at once instead of after their lease.
    pub async fn expire_all_leases(&self) -> Result<u64> {
        let done = sqlx::query("UPDATE runs SET lease_expires_at = 0 WHERE status = $1")
            .bind(RunStatus::Running.as_str())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
