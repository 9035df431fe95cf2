//! Backfills: a pipeline's schedule slots in a range, each run once, at most `concurrency` at a
//! time. A backfill and its slots are written in one transaction (slots whose run already
//! succeeded marked skipped); the backfill driver ([`crate::scheduler::backfill`]) then queues
//! the next slots as earlier ones end, each slot taken by the transaction that queues its run,
//! so several servers on one database never run a slot twice.
use serde::Serialize;
use sqlx::Row;

use super::audit::NewAudit;
use super::tx::Tx;
use super::{Result, Store, now_ms, random_hex};
use crate::status::RunStatus;

/// The largest number of slots one backfill may have.
pub const MAX_SLOTS: usize = 10_000;

/// A backfill with its progress, as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct BackfillRow {
    /// Its id.
    pub id: String,
    /// The pipeline.
    pub pipeline: String,
    /// The version its runs run.
    pub version: i64,
    /// The range's start (Unix ms, included).
    pub from: i64,
    /// The range's end (Unix ms, excluded).
    pub to: i64,
    /// Runs queued or running at once, at most.
    pub concurrency: i64,
    /// `running`, `succeeded`, `failed` (a slot's run did not succeed) or `cancelled`.
    pub status: String,
    /// Who made it.
    pub created_by: String,
    /// When.
    pub created_at: i64,
    /// When it ended.
    pub ended_at: Option<i64>,
    /// Its slots by where they are.
    pub progress: Progress,
}

/// A backfill's slots counted by where they are.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Progress {
    /// All of them.
    pub slots: i64,
    /// Skipped: their run had already succeeded.
    pub skipped: i64,
    /// Not queued yet.
    pub pending: i64,
    /// Their run is queued (or waits for a retry).
    pub queued: i64,
    /// Their run is running.
    pub running: i64,
    /// Their run succeeded.
    pub succeeded: i64,
    /// Their run failed.
    pub failed: i64,
    /// Their run was cancelled.
    pub cancelled: i64,
}

impl Progress {
    /// Slots whose run is queued or running.
    pub fn active(&self) -> i64 {
        self.queued + self.running
    }
}

/// A backfill to make.
#[derive(Debug, Clone)]
pub struct NewBackfill<'a> {
    /// The tenant.
    pub tenant: &'a str,
    /// The pipeline.
    pub pipeline: &'a str,
    /// The version to run.
    pub version: i64,
    /// The range, Unix ms, `from` included, `to` excluded.
    pub from: i64,
    /// See `from`.
    pub to: i64,
    /// Runs at once, at most.
    pub concurrency: i64,
    /// Its slots, in order.
    pub slots: &'a [i64],
    /// Run slots whose run already succeeded again.
    pub rerun_succeeded: bool,
    /// Who makes it.
    pub created_by: &'a str,
}

const COLUMNS: &str =
    "id, pipeline, version, from_ms, to_ms, concurrency, status, created_by, created_at, ended_at";

impl Store {
    /// Makes a backfill (recording `audit` with it); its id.
    pub async fn create_backfill(
        &self,
        b: &NewBackfill<'_>,
        audit: &NewAudit<'_>,
    ) -> Result<String> {
        let id = random_hex(12);
        let mut tx = self.begin().await?;
        let succeeded: Vec<i64> = if b.rerun_succeeded {
            Vec::new()
        } else {
            sqlx::query_scalar(
                "SELECT DISTINCT fire_at FROM runs WHERE tenant_id = $1 AND pipeline = $2 \
                 AND status = 'succeeded' AND fire_at >= $3 AND fire_at < $4",
            )
            .bind(b.tenant)
            .bind(b.pipeline)
            .bind(b.from)
            .bind(b.to)
            .fetch_all(&mut *tx)
            .await?
        };
        sqlx::query(
            "INSERT INTO backfills (id, tenant_id, pipeline, version, from_ms, to_ms, concurrency, \
             status, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 'running', $8, $9)",
        )
        .bind(&id)
        .bind(b.tenant)
        .bind(b.pipeline)
        .bind(b.version)
        .bind(b.from)
        .bind(b.to)
        .bind(b.concurrency)
        .bind(b.created_by)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        for chunk in b.slots.chunks(200) {
            let values: Vec<String> = (0..chunk.len())
                .map(|i| format!("($1, ${}, ${})", 2 * i + 2, 2 * i + 3))
                .collect();
            let sql = format!(
                "INSERT INTO backfill_slots (backfill_id, slot_ms, skipped) VALUES {}",
                values.join(", ")
            );
            let mut q = sqlx::query(&sql).bind(&id);
            for slot in chunk {
                q = q.bind(*slot).bind(i64::from(succeeded.contains(slot)));
            }
            q.execute(&mut *tx).await?;
        }
        super::audit::insert(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// The tenant's backfill `id`.
    pub async fn backfill(&self, tenant: &str, id: &str) -> Result<Option<BackfillRow>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM backfills WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(r) => Ok(Some(self.with_progress(&r).await?)),
            None => Ok(None),
        }
    }

    /// The tenant's backfills (of `pipeline`, if given), newest first, at most `limit`.
    pub async fn backfills(
        &self,
        tenant: &str,
        pipeline: Option<&str>,
        limit: i64,
    ) -> Result<Vec<BackfillRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM backfills WHERE tenant_id = $1 AND ($2 = '' OR pipeline = $2) \
             ORDER BY created_at DESC, id LIMIT $3"
        ))
        .bind(tenant)
        .bind(pipeline.unwrap_or_default())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push(self.with_progress(r).await?);
        }
        Ok(out)
    }

    /// Every running backfill, with its tenant: what the driver looks at.
    pub async fn running_backfills(&self) -> Result<Vec<(String, BackfillRow)>> {
        let rows = sqlx::query(&format!(
            "SELECT tenant_id, {COLUMNS} FROM backfills WHERE status = 'running' ORDER BY created_at"
        ))
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push((r.try_get("tenant_id")?, self.with_progress(r).await?));
        }
        Ok(out)
    }

    /// The first `n` slots of backfill `id` not queued yet.
    pub async fn pending_slots(&self, id: &str, n: i64) -> Result<Vec<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT slot_ms FROM backfill_slots WHERE backfill_id = $1 AND run_id IS NULL \
             AND skipped = 0 ORDER BY slot_ms LIMIT $2",
        )
        .bind(id)
        .bind(n)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Gives slot `slot` of running backfill `id` the run `run`, in the transaction that
    /// queues it; `false` when the slot was taken already or the backfill no longer runs
    /// (the caller rolls back).
    pub async fn take_slot(&self, tx: &mut Tx, id: &str, slot: i64, run: &str) -> Result<bool> {
        let taken = sqlx::query(
            "UPDATE backfill_slots SET run_id = $1 WHERE backfill_id = $2 AND slot_ms = $3 \
             AND run_id IS NULL AND EXISTS (SELECT 1 FROM backfills WHERE id = $2 AND status = 'running')",
        )
        .bind(run)
        .bind(id)
        .bind(slot)
        .execute(&mut **tx)
        .await?;
        Ok(taken.rows_affected() == 1)
    }

    /// Ends running backfill `id` as `status`; whether it was running.
    pub async fn end_backfill(&self, id: &str, status: &str) -> Result<bool> {
        let ended = sqlx::query(
            "UPDATE backfills SET status = $1, ended_at = $2 WHERE id = $3 AND status = 'running'",
        )
        .bind(status)
        .bind(now_ms())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(ended.rows_affected() == 1)
    }

    /// Cancels the tenant's running backfill `id` (recording `audit`): no more of its slots
    /// are queued. `None`: no such backfill; else whether it was running, and the ids of its
    /// runs still queued or running, for the caller to cancel.
    pub async fn cancel_backfill(
        &self,
        tenant: &str,
        id: &str,
        audit: &NewAudit<'_>,
    ) -> Result<Option<(bool, Vec<String>)>> {
        if self.backfill(tenant, id).await?.is_none() {
            return Ok(None);
        }
        let mut tx = self.begin().await?;
        let ended = sqlx::query(
            "UPDATE backfills SET status = 'cancelled', ended_at = $1 \
             WHERE id = $2 AND tenant_id = $3 AND status = 'running'",
        )
        .bind(now_ms())
        .bind(id)
        .bind(tenant)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if ended {
            super::audit::insert(&mut tx, audit).await?;
        }
        tx.commit().await?;
        let active: Vec<String> = sqlx::query_scalar(
            "SELECT r.id FROM backfill_slots s JOIN runs r ON r.id = s.run_id \
             WHERE s.backfill_id = $1 AND r.status IN ('queued', 'running')",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        Ok(Some((ended, active)))
    }

    /// `r` (a [`COLUMNS`] row) with its slots counted.
    async fn with_progress(&self, r: &sqlx::any::AnyRow) -> Result<BackfillRow> {
        let id: String = r.try_get("id")?;
        let counts = sqlx::query(
            "SELECT s.skipped AS skipped, r.status AS status, COUNT(*) AS n FROM backfill_slots s \
             LEFT JOIN runs r ON r.id = s.run_id WHERE s.backfill_id = $1 \
             GROUP BY s.skipped, r.status",
        )
        .bind(&id)
        .fetch_all(&self.pool)
        .await?;
        let mut p = Progress::default();
        for c in &counts {
            let n: i64 = c.try_get("n")?;
            let skipped: i64 = c.try_get("skipped")?;
            let status: Option<String> = c.try_get("status")?;
            p.slots += n;
            let status = status.map(|s| s.parse::<RunStatus>());
            let bucket = match (skipped, status) {
                (1.., _) => &mut p.skipped,
                (_, None) => &mut p.pending,
                (_, Some(Ok(RunStatus::Queued))) => &mut p.queued,
                (_, Some(Ok(RunStatus::Running))) => &mut p.running,
                (_, Some(Ok(RunStatus::Succeeded))) => &mut p.succeeded,
                (_, Some(Ok(RunStatus::Failed))) => &mut p.failed,
                (_, Some(_)) => &mut p.cancelled,
            };
            *bucket += n;
        }
        Ok(BackfillRow {
            id,
            pipeline: r.try_get("pipeline")?,
            version: r.try_get("version")?,
            from: r.try_get("from_ms")?,
            to: r.try_get("to_ms")?,
            concurrency: r.try_get("concurrency")?,
            status: r.try_get("status")?,
            created_by: r.try_get("created_by")?,
            created_at: r.try_get("created_at")?,
            ended_at: r.try_get("ended_at")?,
            progress: p,
        })
    }
}
