//! Checkpoints: per pipeline and step, the source cursor and the durable step state as of the
//! last successful run. They are written in the transaction that completes the run (after its
//! sinks flushed), and read into the plan of the next run.
//!
//! At rest, a checkpoint's cursor and state are one value sealed with the master key for its
//! tenant, pipeline and step (column `sealed`); rows written before sealing keep them in plain
//! columns, are read as they are, and are written sealed by the next run that succeeds.
use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Deserializer, Serialize};
use sqlx::Row;

use super::{Result, Store, StoreError, now_ms};
use crate::secrets::MasterKey;

/// What a sealed checkpoint is, in its associated data.
const KIND: &str = "checkpoint";

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
    /// Whether its row is sealed (`false`: a row from before sealing).
    #[serde(skip)]
    pub sealed: bool,
}

/// A checkpoint's step and its cursor and state sealed for its tenant, pipeline and step, as a
/// run's end writes it.
#[derive(Debug, Clone)]
pub struct SealedCheckpoint {
    /// The step id.
    pub step: String,
    /// What [`MasterKey::seal_bound`] made of the cursor and state.
    sealed: Vec<u8>,
}

/// What is sealed: the cursor and the state (values in base64).
#[derive(Serialize)]
struct Sealing<'a> {
    cursor: Option<&'a str>,
    #[serde(serialize_with = "as_base64")]
    state: &'a BTreeMap<String, Vec<u8>>,
}

/// What opens: the same.
#[derive(Deserialize)]
struct Sealable {
    cursor: Option<String>,
    #[serde(deserialize_with = "from_base64")]
    state: BTreeMap<String, Vec<u8>>,
}

fn as_base64<S: serde::Serializer>(
    state: &BTreeMap<String, Vec<u8>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_map(state.iter().map(|(k, v)| (k, STANDARD.encode(v))))
}

fn from_base64<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, Vec<u8>>, D::Error> {
    let map = BTreeMap::<String, String>::deserialize(d)?;
    map.into_iter()
        .map(|(k, v)| {
            STANDARD
                .decode(v)
                .map(|b| (k, b))
                .map_err(serde::de::Error::custom)
        })
        .collect()
}

impl Checkpoint {
    /// Its cursor and state sealed for `tenant`, `pipeline` and its step.
    pub fn seal(&self, key: &MasterKey, tenant: &str, pipeline: &str) -> Result<SealedCheckpoint> {
        let failed =
            |e: String| StoreError::Sealed(format!("the checkpoint of step {:?}: {e}", self.step));
        let plain = serde_json::to_vec(&Sealing {
            cursor: self.cursor.as_deref(),
            state: &self.state,
        })
        .map_err(|e| failed(e.to_string()))?;
        let sealed = key
            .seal_bound(KIND, &[tenant, pipeline, &self.step], &plain)
            .map_err(|e| failed(format!("{e:#}")))?;
        Ok(SealedCheckpoint {
            step: self.step.clone(),
            sealed,
        })
    }
}

/// The cursor and state of `step` from its sealed value.
fn open(
    key: &MasterKey,
    tenant: &str,
    pipeline: &str,
    step: &str,
    sealed: &[u8],
) -> Result<Sealable> {
    let plain = key.open_bound(KIND, &[tenant, pipeline, step], sealed).ok_or_else(|| {
        StoreError::Sealed(format!(
            "the checkpoint of step {step:?} of pipeline {pipeline:?} does not open with this server's master key \
             (it was sealed for another tenant, pipeline or step, with another key, or changed)"
        ))
    })?;
    serde_json::from_slice(&plain)
        .map_err(|e| StoreError::Corrupt(format!("checkpoint of step {step:?}: {e}")))
}

/// Writes `c` for `pipeline` through the completing run's transaction.
pub(super) async fn save(
    conn: &mut sqlx::AnyConnection,
    tenant: &str,
    pipeline: &str,
    run: &str,
    c: &SealedCheckpoint,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO checkpoints (tenant_id, pipeline, step_id, cursor, state, sealed, run_id, updated_at) \
         VALUES ($1, $2, $3, NULL, '{}', $4, $5, $6) \
         ON CONFLICT (tenant_id, pipeline, step_id) DO UPDATE SET cursor = NULL, state = '{}', \
         sealed = excluded.sealed, run_id = excluded.run_id, updated_at = excluded.updated_at",
    )
    .bind(tenant)
    .bind(pipeline)
    .bind(&c.step)
    .bind(c.sealed.as_slice())
    .bind(run)
    .bind(now_ms())
    .execute(conn)
    .await?;
    Ok(())
}

impl Store {
    /// The tenant's checkpoints of `pipeline`, by step id, opened with `key`; an error names a
    /// step whose checkpoint does not open (it was not sealed for this tenant, pipeline and step).
    pub async fn checkpoints(
        &self,
        key: &MasterKey,
        tenant: &str,
        pipeline: &str,
    ) -> Result<Vec<Checkpoint>> {
        let rows = sqlx::query(
            "SELECT step_id, cursor, state, sealed, run_id, updated_at FROM checkpoints \
             WHERE tenant_id = $1 AND pipeline = $2 ORDER BY step_id",
        )
        .bind(tenant)
        .bind(pipeline)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let step: String = r.try_get("step_id")?;
                let sealed: Option<Vec<u8>> = r.try_get("sealed")?;
                let Sealable { cursor, state } = match &sealed {
                    Some(bytes) => open(key, tenant, pipeline, &step, bytes)?,
                    None => {
                        let text: String = r.try_get("state")?;
                        let state = from_base64(&mut serde_json::Deserializer::from_str(&text))
                            .map_err(|e| {
                                StoreError::Corrupt(format!(
                                    "checkpoint state of step {step:?}: {e}"
                                ))
                            })?;
                        Sealable {
                            cursor: r.try_get("cursor")?,
                            state,
                        }
                    }
                };
                Ok(Checkpoint {
                    step,
                    cursor,
                    state,
                    run_id: r.try_get("run_id")?,
                    updated_at: r.try_get("updated_at")?,
                    sealed: sealed.is_some(),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sealed_checkpoints_open_where_they_were_written_and_plain_ones_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(&crate::store::default_url(dir.path()))
            .await
            .unwrap();
        let key = MasterKey::load_or_create(None, &dir.path().join("master.key")).unwrap();
        let c = Checkpoint {
            step: "a".into(),
            cursor: Some("42".into()),
            state: [("k".to_string(), b"\x00plugin data".to_vec())].into(),
            ..Checkpoint::default()
        };
        let mut conn = store.pool.acquire().await.unwrap();
        save(&mut conn, "t", "p", "r1", &c.seal(&key, "t", "p").unwrap())
            .await
            .unwrap();
        // A row from before sealing: cursor and state in plain columns.
        sqlx::query("INSERT INTO checkpoints (tenant_id, pipeline, step_id, cursor, state, run_id, updated_at) VALUES ('t', 'p', 'b', '7', '{\"n\":\"Ng==\"}', 'r0', 1)")
            .execute(&mut *conn)
            .await
            .unwrap();
        let raw: Vec<u8> = sqlx::query_scalar("SELECT sealed FROM checkpoints WHERE step_id = 'a'")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert!(!raw.windows(11).any(|w| w == b"plugin data"));
        let read = store.checkpoints(&key, "t", "p").await.unwrap();
        assert_eq!(
            (
                read[0].step.as_str(),
                read[0].cursor.as_deref(),
                &read[0].state,
                read[0].sealed
            ),
            ("a", Some("42"), &c.state, true)
        );
        assert_eq!(
            (
                read[1].cursor.as_deref(),
                read[1].state["n"].as_slice(),
                read[1].sealed
            ),
            (Some("7"), &b"6"[..], false)
        );
        // Sealed for step a: it does not open as step b's, nor for another pipeline.
        sqlx::query("UPDATE checkpoints SET sealed = (SELECT sealed FROM checkpoints WHERE step_id = 'a') WHERE step_id = 'b'")
            .execute(&mut *conn)
            .await
            .unwrap();
        let e = store
            .checkpoints(&key, "t", "p")
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("the checkpoint of step \"b\" of pipeline \"p\" does not open"),
            "{e}"
        );
        sqlx::query("UPDATE checkpoints SET pipeline = 'q' WHERE step_id = 'a'")
            .execute(&mut *conn)
            .await
            .unwrap();
        let e = store
            .checkpoints(&key, "t", "q")
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("step \"a\" of pipeline \"q\" does not open"),
            "{e}"
        );
    }
}
