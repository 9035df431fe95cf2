//! Dead letters in the database: records a step rejected, with the reason, the step, the
//! plugin's digest and the attempt; listed per run or per pipeline, and marked with the run that
//! replays them.
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::Row;

use super::{Result, Store, StoreError, now_ms};
use crate::engine::bindings::Record;

/// Where a rejected record came from.
#[derive(Debug, Clone)]
pub struct Origin<'a> {
    /// Tenant id.
    pub tenant: &'a str,
    /// Run id.
    pub run: &'a str,
    /// Pipeline name.
    pub pipeline: &'a str,
    /// Version.
    pub version: i64,
    /// Attempt of the run.
    pub attempt: i64,
}

/// A stored dead letter.
#[derive(Debug, Clone)]
pub struct DeadLetterRow {
    /// Sequence number.
    pub id: i64,
    /// The run that rejected it.
    pub run_id: String,
    /// The attempt.
    pub attempt: i64,
    /// The step that rejected it.
    pub step: String,
    /// sha256 of the plugin that rejected it.
    pub digest: String,
    /// Why.
    pub reason: String,
    /// The record as the step received it.
    pub record: Record,
    /// When, Unix ms.
    pub created_at: i64,
    /// The run that replayed it, if any.
    pub replay_run: Option<String>,
}

impl Serialize for DeadLetterRow {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let value = serde_json::from_slice::<Value>(&self.record.value)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&self.record.value).into_owned()));
        json!({
            "id": self.id,
            "run_id": self.run_id,
            "attempt": self.attempt,
            "step": self.step,
            "plugin": format!("sha256:{}", self.digest),
            "reason": self.reason,
            "key": self.record.key.as_ref().map(|k| String::from_utf8_lossy(k).into_owned()),
            "value": value,
            "headers": self.record.headers,
            "timestamp": self.record.timestamp,
            "created_at": self.created_at,
            "replay_run": self.replay_run,
        })
        .serialize(s)
    }
}

/// Which dead letters of a pipeline to list or replay.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only those of this step.
    pub step: Option<String>,
    /// Only these ids.
    pub ids: Option<Vec<i64>>,
    /// Only those not replayed yet.
    pub unreplayed: bool,
    /// Only those of this run.
    pub run: Option<String>,
    /// Only ids above this.
    pub after: i64,
    /// At most this many.
    pub limit: i64,
}

const COLUMNS: &str = "id, run_id, attempt, step_id, digest, reason, record_key, record_value, headers, \
                       record_timestamp, created_at, replay_run";

fn row_of(r: &sqlx::any::AnyRow) -> Result<DeadLetterRow> {
    let headers: String = r.try_get("headers")?;
    Ok(DeadLetterRow {
        id: r.try_get("id")?,
        run_id: r.try_get("run_id")?,
        attempt: r.try_get("attempt")?,
        step: r.try_get("step_id")?,
        digest: r.try_get("digest")?,
        reason: r.try_get("reason")?,
        record: Record {
            key: r.try_get("record_key")?,
            value: r.try_get("record_value")?,
            headers: serde_json::from_str(&headers).map_err(|e| StoreError::Corrupt(format!("dead letter headers: {e}")))?,
            timestamp: r.try_get("record_timestamp")?,
        },
        created_at: r.try_get("created_at")?,
        replay_run: r.try_get("replay_run")?,
    })
}

impl Store {
    /// Stores rejected records `(step, digest, reason, record)` of one run attempt.
    pub async fn insert_dead_letters(&self, from: &Origin<'_>, letters: &[(String, String, String, Record)]) -> Result<()> {
        let mut tx = self.begin().await?;
        let now = now_ms();
        for (step, digest, reason, record) in letters {
            sqlx::query(
                "INSERT INTO dead_letters (tenant_id, run_id, pipeline, version, attempt, step_id, digest, reason, \
                 record_key, record_value, headers, record_timestamp, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            )
            .bind(from.tenant)
            .bind(from.run)
            .bind(from.pipeline)
            .bind(from.version)
            .bind(from.attempt)
            .bind(step)
            .bind(digest)
            .bind(reason)
            .bind(record.key.as_deref())
            .bind(record.value.as_slice())
            .bind(serde_json::to_string(&record.headers).unwrap_or_else(|_| "[]".into()))
            .bind(record.timestamp)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The tenant's dead letters of `pipeline` that pass `filter`, oldest first.
    pub async fn dead_letters(&self, tenant: &str, pipeline: &str, filter: &Filter) -> Result<Vec<DeadLetterRow>> {
        let mut sql = format!(
            "SELECT {COLUMNS} FROM dead_letters WHERE tenant_id = $1 AND pipeline = $2 AND id > $3 \
             AND ($4 IS NULL OR step_id = $4) AND ($5 IS NULL OR run_id = $5)"
        );
        if filter.unreplayed {
            sql.push_str(" AND replay_run IS NULL");
        }
        if let Some(ids) = &filter.ids {
            sql.push_str(&format!(" AND id IN ({})", super::id_list(ids)));
        }
        sql.push_str(" ORDER BY id LIMIT $6");
        let rows = sqlx::query(&sql)
            .bind(tenant)
            .bind(pipeline)
            .bind(filter.after)
            .bind(filter.step.as_deref())
            .bind(filter.run.as_deref())
            .bind(filter.limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(row_of).collect()
    }

    /// Dead letters `ids` of the tenant (for a replay run), in id order.
    pub async fn dead_letters_by_id(&self, tenant: &str, ids: &[i64]) -> Result<Vec<DeadLetterRow>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM dead_letters WHERE tenant_id = $1 AND id IN ({}) ORDER BY id",
            super::id_list(ids)
        ))
        .bind(tenant)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(row_of).collect()
    }

    /// Queues the replay run `run` of dead letters `ids` and marks them replayed by it, in one
    /// transaction; the run's id.
    pub async fn enqueue_replay(&self, run: &super::queue::NewRun<'_>, ids: &[i64]) -> Result<String> {
        let mut tx = self.begin().await?;
        let id = self.enqueue_in(&mut tx, run).await?;
        sqlx::query(&format!("UPDATE dead_letters SET replay_run = $1 WHERE tenant_id = $2 AND id IN ({})", super::id_list(ids)))
            .bind(&id)
            .bind(run.tenant)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(id)
    }
}
