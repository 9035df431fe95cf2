//! The run queue in the database: what a run is queued with, queueing, cancelling, attempts and
//! limits. Claims with leases are in [`super::claim`], fenced endings in [`super::finish`]: a
//! worker whose lease expired and whose run was taken over can neither renew nor end it.
use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::audit::NewAudit;
use super::idempotency::Idempotency;
use super::{Backend, Result, Store, StoreError, now_ms, random_hex, text_column};
use crate::pipeline::TenantLimits;
use crate::status::{AttemptStatus, RunStatus, Trigger};

pub use super::claim::MAX_LOST_ATTEMPTS;
pub use super::finish::{Ending, Finish};

/// How a run is to be run, read from its pipeline version when it is queued.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSpec {
    /// Labels the claiming worker must have.
    pub labels: Vec<String>,
    /// At most this many runs of the pipeline at once (0: no limit).
    pub concurrency: u32,
    /// Attempts in all, counting retries of retryable failures (at least 1).
    pub max_attempts: u32,
    /// The memory its steps hold together, MiB (counted against the tenant's
    /// `max_running_memory_mb` while it runs).
    pub memory_mb: u64,
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
    /// What queues it.
    pub trigger: Trigger,
    /// The schedule slot it fires for, Unix ms.
    pub fire_at: Option<i64>,
    /// For a replay of dead letters: what to replay, as JSON ([`Replay`]).
    pub replay: Option<&'a Replay>,
    /// The client's idempotency key, recorded with the run ([`super::idempotency`]).
    pub idempotency: Option<Idempotency<'a>>,
    /// The records it was triggered with, sealed (table `run_inputs`).
    pub input: Option<&'a SealedInput>,
    /// The values of its parameters.
    pub params: Option<&'a crate::pipeline::params::ParamValues>,
    /// The W3C trace context it is queued in, which its attempts' spans continue.
    pub traceparent: Option<String>,
}

/// A run's input records, sealed ([`crate::control::input`]), as table `run_inputs` keeps them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedInput {
    /// How many records.
    pub records: i64,
    /// Their size, in bytes, before sealing.
    pub bytes: i64,
    /// The sealed records.
    pub sealed: Vec<u8>,
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
    /// Since when it could be claimed (queued, its backoff over, or its lease expired), Unix ms.
    pub due_since: i64,
    /// It was taken over from a worker whose lease had expired.
    pub taken_over: bool,
    /// The W3C trace context it was queued in, if it was.
    pub traceparent: Option<String>,
}

/// The queue at a glance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Runs queued (due or waiting for a retry's backoff).
    pub queued: u64,
    /// Since when the oldest due queued run could be claimed, Unix ms.
    pub oldest_due: Option<i64>,
}

/// One attempt of a run, as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AttemptRow {
    /// 1, 2, ...
    pub attempt: i64,
    /// The worker that ran it.
    pub worker: String,
    /// When it was claimed, Unix ms.
    pub started_at: i64,
    /// When it ended.
    pub finished_at: Option<i64>,
    /// How it went.
    pub status: AttemptStatus,
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

impl Store {
    /// Queues a run; returns its id once committed, and wakes the workers.
    pub async fn enqueue(&self, run: &NewRun<'_>) -> Result<String> {
        let mut tx = self.begin().await?;
        let id = self.enqueue_in(&mut tx, run).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// What `tenant`'s run `run` was started with: the values of its parameters and its
    /// sealed input records, each if it has them.
    pub async fn run_inputs(
        &self,
        tenant: &str,
        run: &str,
    ) -> Result<(
        Option<crate::pipeline::params::ParamValues>,
        Option<Vec<u8>>,
    )> {
        let row: Option<(Option<String>, Option<Vec<u8>>)> = sqlx::query_as(
            "SELECT r.params, i.sealed FROM runs r LEFT JOIN run_inputs i ON i.run_id = r.id \
             WHERE r.id = $1 AND r.tenant_id = $2",
        )
        .bind(run)
        .bind(tenant)
        .fetch_optional(&self.pool)
        .await?;
        let Some((params, sealed)) = row else {
            return Ok((None, None));
        };
        let params = params
            .map(|t| serde_json::from_str(&t))
            .transpose()
            .map_err(|e| StoreError::Corrupt(format!("runs.params: {e}")))?;
        Ok((params, sealed))
    }

    /// Queues a run inside the caller's transaction (PostgreSQL workers are notified when it
    /// commits), with its idempotency key if it has one (a key in use: a unique violation).
    pub async fn enqueue_in(
        &self,
        conn: &mut sqlx::AnyConnection,
        run: &NewRun<'_>,
    ) -> Result<String> {
        let id = random_hex(12);
        let mut labels = run.spec.labels.clone();
        labels.sort();
        labels.dedup();
        sqlx::query(
            "INSERT INTO runs (id, tenant_id, pipeline, version, status, created_at, created_by, \
             max_attempts, labels, concurrency, trigger, fire_at, replay, memory_mb, params, traceparent) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
        )
        .bind(&id)
        .bind(run.tenant)
        .bind(run.pipeline)
        .bind(run.version)
        .bind(RunStatus::Queued.as_str())
        .bind(now_ms())
        .bind(run.created_by)
        .bind(i64::from(run.spec.max_attempts.max(1)))
        .bind(super::labels_text(&labels))
        .bind(i64::from(run.spec.concurrency))
        .bind(run.trigger.as_str())
        .bind(run.fire_at)
        .bind(
            run.replay
                .map(|r| serde_json::to_string(r).unwrap_or_default()),
        )
        .bind(i64::try_from(run.spec.memory_mb).unwrap_or(i64::MAX))
        .bind(
            run.params
                .map(|p| serde_json::Value::Object(p.clone()).to_string()),
        )
        .bind(run.traceparent.as_deref())
        .execute(&mut *conn)
        .await?;
        if let Some(key) = &run.idempotency {
            super::idempotency::record(&mut *conn, run.tenant, key, &id).await?;
        }
        if let Some(input) = run.input {
            sqlx::query(
                "INSERT INTO run_inputs (run_id, tenant_id, records, bytes, sealed) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&id)
            .bind(run.tenant)
            .bind(input.records)
            .bind(input.bytes)
            .bind(&input.sealed)
            .execute(&mut *conn)
            .await?;
        }
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_notify('autoflow_runs', '')")
                .execute(&mut *conn)
                .await?;
        }
        Ok(id)
    }

    /// Sets the tenant's ceilings (each 0: none), recording `audit` with them; whether the
    /// tenant exists.
    pub async fn set_tenant_limits(
        &self,
        tenant_name: &str,
        limits: &TenantLimits,
        audit: &NewAudit<'_>,
    ) -> Result<bool> {
        let column = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let update = sqlx::query(
            "UPDATE tenants SET max_running = $1, max_step_memory_mb = $2, max_running_memory_mb = $3, \
             max_output_bytes = $4, max_fuel = $5 WHERE name = $6",
        )
        .bind(column(limits.max_running))
        .bind(column(limits.max_step_memory_mb))
        .bind(column(limits.max_running_memory_mb))
        .bind(column(limits.max_output_bytes))
        .bind(column(limits.max_fuel))
        .bind(tenant_name);
        self.execute_audited(update, audit).await
    }

    /// The ceilings of the tenant with id `tenant` (none set: all 0, as for a tenant that does
    /// not exist).
    pub async fn tenant_limits(&self, tenant: &str) -> Result<TenantLimits> {
        let row = sqlx::query(
            "SELECT max_running, max_step_memory_mb, max_running_memory_mb, max_output_bytes, max_fuel \
             FROM tenants WHERE id = $1",
        )
        .bind(tenant)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(TenantLimits::default());
        };
        let column = |name: &str| -> Result<u64> {
            Ok(u64::try_from(row.try_get::<i64, _>(name)?).unwrap_or(0))
        };
        Ok(TenantLimits {
            max_running: column("max_running")?,
            max_step_memory_mb: column("max_step_memory_mb")?,
            max_running_memory_mb: column("max_running_memory_mb")?,
            max_output_bytes: column("max_output_bytes")?,
            max_fuel: column("max_fuel")?,
        })
    }

    /// Cancels the tenant's run `id`: at once when queued, through its worker when running.
    pub async fn cancel(&self, tenant: &str, id: &str) -> Result<CancelOutcome> {
        let now = now_ms();
        let queued = sqlx::query(
            "UPDATE runs SET status = $4, finished_at = $1, error = 'cancelled before it started' \
             WHERE tenant_id = $2 AND id = $3 AND status = $5",
        )
        .bind(now)
        .bind(tenant)
        .bind(id)
        .bind(RunStatus::Cancelled.as_str())
        .bind(RunStatus::Queued.as_str())
        .execute(&self.pool)
        .await?;
        if queued.rows_affected() > 0 {
            return Ok(CancelOutcome::Cancelled);
        }
        let running = sqlx::query(
            "UPDATE runs SET cancel_requested = 1 WHERE tenant_id = $1 AND id = $2 AND status = $3",
        )
        .bind(tenant)
        .bind(id)
        .bind(RunStatus::Running.as_str())
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
                    status: text_column(r, "status")?,
                    error: r.try_get("error")?,
                })
            })
            .collect()
    }

    /// How many runs are queued, and since when the oldest due one is waiting (at `now`).
    pub async fn queue_stats(&self, now: i64) -> Result<QueueStats> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, MIN(CASE WHEN not_before <= $2 THEN \
             (CASE WHEN not_before > created_at THEN not_before ELSE created_at END) END) AS oldest \
             FROM runs WHERE status = $1",
        )
        .bind(RunStatus::Queued.as_str())
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(QueueStats {
            queued: u64::try_from(row.try_get::<i64, _>("n")?).unwrap_or(0),
            oldest_due: row.try_get("oldest")?,
        })
    }

    /// Whether any run of the pipeline is queued or running.
    pub async fn pipeline_busy(
        &self,
        conn: &mut sqlx::AnyConnection,
        tenant: &str,
        pipeline: &str,
    ) -> Result<bool> {
        let n: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM runs WHERE tenant_id = $1 AND pipeline = $2 AND status IN ($3, $4)",
        )
        .bind(tenant)
        .bind(pipeline)
        .bind(RunStatus::Queued.as_str())
        .bind(RunStatus::Running.as_str())
        .fetch_one(conn)
        .await?
        .try_get("n")?;
        Ok(n > 0)
    }

    /// Whether a run of the pipeline queued by `trigger` still waits to start (queued, and not
    /// a retry of one that started).
    pub async fn waiting_run(
        &self,
        tenant: &str,
        pipeline: &str,
        trigger: Trigger,
    ) -> Result<bool> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM runs WHERE tenant_id = $1 AND pipeline = $2 AND trigger = $3 \
             AND status = $4 AND started_at IS NULL",
        )
        .bind(tenant)
        .bind(pipeline)
        .bind(trigger.as_str())
        .bind(RunStatus::Queued.as_str())
        .fetch_one(&self.pool)
        .await?;
        Ok(n > 0)
    }
}
