//! The master key's check: a value sealed with the key of the first server or worker to start,
//! which every one that starts opens, so that one given another key stops at its start instead
//! of sealing step state and dead letters that the others cannot open.
use sqlx::Row;

use super::{Result, Store, StoreError};
use crate::secrets::MasterKey;

/// What the check value is, in its associated data.
const KIND: &str = "master-key-check";

/// What is sealed.
const PLAIN: &[u8] = b"autoflow master key";

impl Store {
    /// Whether `key` is the one the database's data is sealed with: it opens the check value,
    /// which is written with `key` when there is none yet.
    pub async fn check_master_key(&self, key: &MasterKey) -> Result<bool> {
        let read = || {
            sqlx::query("SELECT sealed FROM master_key_check WHERE id = 1")
                .fetch_optional(&self.pool)
        };
        let sealed: Vec<u8> = match read().await? {
            Some(row) => row.try_get("sealed")?,
            None => {
                let probe = key
                    .seal_bound(KIND, &[], PLAIN)
                    .map_err(|e| StoreError::Sealed(format!("the master key's check: {e:#}")))?;
                sqlx::query("INSERT INTO master_key_check (id, sealed) VALUES (1, $1) ON CONFLICT (id) DO NOTHING")
                    .bind(probe)
                    .execute(&self.pool)
                    .await?;
                // Another process may have written its own first.
                let row = read()
                    .await?
                    .ok_or_else(|| StoreError::Corrupt("the master key's check is gone".into()))?;
                row.try_get("sealed")?
            }
        };
        Ok(key.open_bound(KIND, &[], &sealed).as_deref() == Some(PLAIN))
    }
}
