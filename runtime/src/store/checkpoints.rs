//! Checkpoints: per pipeline and step, the source cursor and the durable step state as of the
//! last successful run. They are written in the transaction that completes the run (after its
//! sinks flushed), and read into the plan of the next run.
use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use sqlx::Row;

use super::{Result, Store, StoreError, now_ms};

/// One step's checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Checkpoint {
    /// The step id.
    pub step: String,
    /// Where a source resumes (opaque to the host).
    pub cursor: Option<String>,
    /// The step's state (`state-set`), by key.
    #[serde(serialize_with = "as_base64")]
    pub state: BTreeMap<String, Vec<u8>>,
    /// The run that committed it.
    pub run_id: Option<String>,
    /// When, Unix ms.
    pub updated_at: Option<i64>,
}

fn as_base64<S: serde::Serializer>(state: &BTreeMap<String, Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(state.iter().map(|(k, v)| (k, STANDARD.encode(v))))
}

fn encode_state(state: &BTreeMap<String, Vec<u8>>) -> String {
    let map: serde_json::Map<String, serde_json::Value> =
        state.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(STANDARD.encode(v)))).collect();
    serde_json::Value::Object(map).to_string()
}

fn decode_state(text: &str) -> Result<BTreeMap<String, Vec<u8>>> {
    let corrupt = |e: String| StoreError::Corrupt(format!("checkpoint state: {e}"));
    let map: BTreeMap<String, String> = serde_json::from_str(text).map_err(|e| corrupt(e.to_string()))?;
    map.into_iter()
        .map(|(k, v)| STANDARD.decode(v).map(|b| (k, b)).map_err(|e| corrupt(e.to_string())))
        .collect()
}

/// Writes `c` for `pipeline` through the completing run's transaction.
pub(super) async fn save(conn: &mut sqlx::AnyConnection, tenant: &str, pipeline: &str, run: &str, c: &Checkpoint) -> Result<()> {
    sqlx::query(
        "INSERT INTO checkpoints (tenant_id, pipeline, step_id, cursor, state, run_id, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (tenant_id, pipeline, step_id) DO UPDATE SET cursor = excluded.cursor, \
         state = excluded.state, run_id = excluded.run_id, updated_at = excluded.updated_at",
    )
    .bind(tenant)
    .bind(pipeline)
    .bind(&c.step)
    .bind(c.cursor.as_deref())
    .bind(encode_state(&c.state))
    .bind(run)
    .bind(now_ms())
    .execute(conn)
    .await?;
    Ok(())
}

impl Store {
    /// The tenant's checkpoints of `pipeline`, by step id.
    pub async fn checkpoints(&self, tenant: &str, pipeline: &str) -> Result<Vec<Checkpoint>> {
        let rows = sqlx::query(
            "SELECT step_id, cursor, state, run_id, updated_at FROM checkpoints \
             WHERE tenant_id = $1 AND pipeline = $2 ORDER BY step_id",
        )
        .bind(tenant)
        .bind(pipeline)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Checkpoint {
                    step: r.try_get("step_id")?,
                    cursor: r.try_get("cursor")?,
                    state: decode_state(&r.try_get::<String, _>("state")?)?,
                    run_id: r.try_get("run_id")?,
                    updated_at: r.try_get("updated_at")?,
                })
            })
            .collect()
    }
}
