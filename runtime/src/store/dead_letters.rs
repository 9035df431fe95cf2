//! Dead letters in the database: records a step rejected, with the reason, the step, the
//! plugin's digest and the attempt; listed per run or per pipeline, and marked with the run that
//! replays them.
//!
//! At rest, a record's key, value and headers are one value sealed with the master key for its
//! tenant, pipeline, step and run (column `sealed`); rows written before sealing keep them in
//! plain columns and are read as they are.
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::Row;

use super::{Result, Store, StoreError, now_ms};
use crate::record::Record;
use crate::secrets::MasterKey;

/// What a sealed record is, in its associated data.
const KIND: &str = "dead-letter";

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

/// A dead letter as the API shows it (and the CLI reads it): the record's key as text, its
/// value as JSON when it is JSON (else as text), the plugin as `sha256:<hex>`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShownDeadLetter {
    /// Sequence number.
    pub id: i64,
    /// The run that rejected it.
    pub run_id: String,
    /// The attempt.
    pub attempt: i64,
    /// The step that rejected it.
    pub step: String,
    /// The plugin that rejected it, `sha256:<hex>`.
    pub plugin: String,
    /// Why.
    pub reason: String,
    /// The record's key.
    pub key: Option<String>,
    /// The record's value.
    pub value: Value,
    /// The record's headers.
    pub headers: Vec<(String, String)>,
    /// The record's timestamp.
    pub timestamp: Option<i64>,
    /// When it was stored, Unix ms.
    pub created_at: i64,
    /// The run that replayed it, if any.
    pub replay_run: Option<String>,
}

impl From<&DeadLetterRow> for ShownDeadLetter {
    fn from(d: &DeadLetterRow) -> Self {
        let value = serde_json::from_slice::<Value>(&d.record.value).unwrap_or_else(|_| {
            Value::String(String::from_utf8_lossy(&d.record.value).into_owned())
        });
        Self {
            id: d.id,
            run_id: d.run_id.clone(),
            attempt: d.attempt,
            step: d.step.clone(),
            plugin: format!("sha256:{}", d.digest),
            reason: d.reason.clone(),
            key: d
                .record
                .key
                .as_ref()
                .map(|k| String::from_utf8_lossy(k).into_owned()),
            value,
            headers: d.record.headers.clone(),
            timestamp: d.record.timestamp,
            created_at: d.created_at,
            replay_run: d.replay_run.clone(),
        }
    }
}

impl Serialize for DeadLetterRow {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        ShownDeadLetter::from(self).serialize(s)
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

const COLUMNS: &str = "id, run_id, pipeline, attempt, step_id, digest, reason, record_key, record_value, headers, \
                       sealed, record_timestamp, created_at, replay_run";

/// What is sealed of a record: its key and value (in base64) and its headers.
#[derive(Serialize, Deserialize)]
struct Sealable {
    key: Option<String>,
    value: String,
    headers: Vec<(String, String)>,
}

/// `record`'s key, value and headers sealed for the run, pipeline and step in `from` and `step`.
fn seal(key: &MasterKey, from: &Origin<'_>, step: &str, record: &Record) -> Result<Vec<u8>> {
    let plain = Sealable {
        key: record.key.as_ref().map(|k| STANDARD.encode(k)),
        value: STANDARD.encode(&record.value),
        headers: record.headers.clone(),
    };
    let plain = serde_json::to_vec(&plain)
        .map_err(|e| StoreError::Sealed(format!("a dead letter of step {step:?}: {e}")))?;
    key.seal_bound(KIND, &[from.tenant, from.pipeline, step, from.run], &plain)
        .map_err(|e| StoreError::Sealed(format!("a dead letter of step {step:?}: {e:#}")))
}

/// The record of the dead letter of `owner` (tenant, pipeline, step, run) from its sealed key,
/// value and headers and its `timestamp`.
fn open(
    key: &MasterKey,
    owner: [&str; 4],
    sealed: &[u8],
    timestamp: Option<i64>,
) -> Result<Record> {
    let [_, pipeline, step, run] = owner;
    let corrupt = |why: String| {
        StoreError::Corrupt(format!(
            "the dead letter of step {step:?} of run {run}: {why}"
        ))
    };
    let plain = key.open_bound(KIND, &owner, sealed).ok_or_else(|| {
        StoreError::Sealed(format!(
            "the dead letter of step {step:?} of run {run} of pipeline {pipeline:?} does not open with this server's \
             master key (it was sealed for another tenant, pipeline, step or run, with another key, or changed)"
        ))
    })?;
    let Sealable {
        key,
        value,
        headers,
    } = serde_json::from_slice(&plain).map_err(|e| corrupt(e.to_string()))?;
    let key = key
        .map(|k| STANDARD.decode(k))
        .transpose()
        .map_err(|e| corrupt(e.to_string()))?;
    let value = STANDARD.decode(value).map_err(|e| corrupt(e.to_string()))?;
    Ok(Record {
        key,
        value,
        headers,
        timestamp,
    })
}

fn row_of(key: &MasterKey, tenant: &str, r: &sqlx::any::AnyRow) -> Result<DeadLetterRow> {
    let run_id: String = r.try_get("run_id")?;
    let step: String = r.try_get("step_id")?;
    let pipeline: String = r.try_get("pipeline")?;
    let sealed: Option<Vec<u8>> = r.try_get("sealed")?;
    let timestamp = r.try_get("record_timestamp")?;
    let record = match sealed {
        Some(bytes) => open(key, [tenant, &pipeline, &step, &run_id], &bytes, timestamp)?,
        None => {
            let headers: String = r.try_get("headers")?;
            let headers = serde_json::from_str(&headers)
                .map_err(|e| StoreError::Corrupt(format!("dead letter headers: {e}")))?;
            Record {
                key: r.try_get("record_key")?,
                value: r.try_get("record_value")?,
                headers,
                timestamp,
            }
        }
    };
    Ok(DeadLetterRow {
        id: r.try_get("id")?,
        run_id,
        attempt: r.try_get("attempt")?,
        step,
        digest: r.try_get("digest")?,
        reason: r.try_get("reason")?,
        record,
        created_at: r.try_get("created_at")?,
        replay_run: r.try_get("replay_run")?,
    })
}

impl Store {
    /// Stores rejected records `(step, digest, reason, record)` of one run attempt, each record
    /// sealed with `key`.
    pub async fn insert_dead_letters(
        &self,
        key: &MasterKey,
        from: &Origin<'_>,
        letters: &[(String, String, String, Record)],
    ) -> Result<()> {
        let sealed = letters
            .iter()
            .map(|(step, _, _, record)| seal(key, from, step, record))
            .collect::<Result<Vec<_>>>()?;
        let mut tx = self.begin().await?;
        let now = now_ms();
        for ((step, digest, reason, record), sealed) in letters.iter().zip(&sealed) {
            sqlx::query(
                "INSERT INTO dead_letters (tenant_id, run_id, pipeline, version, attempt, step_id, digest, reason, \
                 record_key, record_value, headers, sealed, record_timestamp, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, $9, '[]', $10, $11, $12)",
            )
            .bind(from.tenant)
            .bind(from.run)
            .bind(from.pipeline)
            .bind(from.version)
            .bind(from.attempt)
            .bind(step)
            .bind(digest)
            .bind(reason)
            .bind(Vec::<u8>::new())
            .bind(sealed.as_slice())
            .bind(record.timestamp)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The tenant's dead letters of `pipeline` that pass `filter`, oldest first, opened with
    /// `key`.
    pub async fn dead_letters(
        &self,
        key: &MasterKey,
        tenant: &str,
        pipeline: &str,
        filter: &Filter,
    ) -> Result<Vec<DeadLetterRow>> {
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
        rows.iter().map(|r| row_of(key, tenant, r)).collect()
    }

    /// Dead letters `ids` of the tenant (for a replay run), in id order, opened with `key`.
    pub async fn dead_letters_by_id(
        &self,
        key: &MasterKey,
        tenant: &str,
        ids: &[i64],
    ) -> Result<Vec<DeadLetterRow>> {
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
        rows.iter().map(|r| row_of(key, tenant, r)).collect()
    }

    /// Queues the replay run `run` of dead letters `ids` and marks them replayed by it, in one
    /// transaction; the run's id.
    pub async fn enqueue_replay(
        &self,
        run: &super::queue::NewRun<'_>,
        ids: &[i64],
    ) -> Result<String> {
        let mut tx = self.begin().await?;
        let id = self.enqueue_in(&mut tx, run).await?;
        sqlx::query(&format!(
            "UPDATE dead_letters SET replay_run = $1 WHERE tenant_id = $2 AND id IN ({})",
            super::id_list(ids)
        ))
        .bind(&id)
        .bind(run.tenant)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(id)
    }
}
