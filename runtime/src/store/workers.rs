//! Workers: each process that runs runs registers itself with its labels and heartbeats; the
//! API lists them.
use serde::Serialize;
use sqlx::Row;

use super::{Result, Store, now_ms};

/// A worker as stored.
#[derive(Debug, Clone, Serialize)]
pub struct WorkerRow {
    /// Random id, fixed for the life of the process.
    pub id: String,
    /// Host name and process id, for people.
    pub name: String,
    /// What it can reach or do.
    pub labels: Vec<String>,
    /// When it started, Unix ms.
    pub started_at: i64,
    /// Its last heartbeat.
    pub heartbeat_at: i64,
    /// When it stopped cleanly.
    pub stopped_at: Option<i64>,
    /// Runs it holds now.
    pub running: i64,
}

impl Store {
    /// Registers worker `id`.
    pub async fn register_worker(&self, id: &str, name: &str, labels: &[String]) -> Result<()> {
        let now = now_ms();
        sqlx::query("INSERT INTO workers (id, name, labels, started_at, heartbeat_at) VALUES ($1, $2, $3, $4, $4)")
            .bind(id)
            .bind(name)
            .bind(super::labels_text(labels))
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records that worker `id` is alive.
    pub async fn worker_heartbeat(&self, id: &str) -> Result<()> {
        sqlx::query("UPDATE workers SET heartbeat_at = $1 WHERE id = $2")
            .bind(now_ms())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records that worker `id` stopped cleanly.
    pub async fn worker_stopped(&self, id: &str) -> Result<()> {
        sqlx::query("UPDATE workers SET stopped_at = $1 WHERE id = $2")
            .bind(now_ms())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Workers that heartbeated since `since` (Unix ms), newest first, with the runs each holds.
    pub async fn workers(&self, since: i64) -> Result<Vec<WorkerRow>> {
        let rows = sqlx::query(
            "SELECT w.id, w.name, w.labels, w.started_at, w.heartbeat_at, w.stopped_at, \
             (SELECT COUNT(*) FROM runs r WHERE r.status = $2 AND r.lease_owner = w.id) AS running \
             FROM workers w WHERE w.heartbeat_at >= $1 ORDER BY w.started_at DESC",
        )
        .bind(since)
        .bind(crate::status::RunStatus::Running.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let labels: String = r.try_get("labels")?;
                Ok(WorkerRow {
                    id: r.try_get("id")?,
                    name: r.try_get("name")?,
                    labels: super::labels_of(&labels),
                    started_at: r.try_get("started_at")?,
                    heartbeat_at: r.try_get("heartbeat_at")?,
                    stopped_at: r.try_get("stopped_at")?,
                    running: r.try_get("running")?,
                })
            })
            .collect()
    }
}
