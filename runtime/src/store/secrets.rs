//! Sealed secrets per tenant (see [`crate::secrets`]): stored, listed by name, deleted; the
//! database never holds a value in clear.
use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::audit::NewAudit;
use super::{Result, Store, now_ms};

/// A secret as the API lists it: never its value.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SecretInfo {
    /// Name.
    pub name: String,
    /// When it was first set, Unix ms.
    pub created_at: i64,
    /// When it was last set.
    pub updated_at: i64,
    /// Who set it last.
    pub updated_by: Option<String>,
}

impl Store {
    /// Sets the tenant's secret `name` to a sealed value, recording `audit` with it.
    pub async fn put_secret(
        &self,
        tenant: &str,
        name: &str,
        nonce: &[u8],
        sealed: &[u8],
        audit: &NewAudit<'_>,
    ) -> Result<()> {
        let now = now_ms();
        let upsert = sqlx::query(
            "INSERT INTO secrets (tenant_id, name, nonce, ciphertext, created_at, updated_at, updated_by) \
             VALUES ($1, $2, $3, $4, $5, $5, $6) ON CONFLICT (tenant_id, name) DO UPDATE SET nonce = excluded.nonce, \
             ciphertext = excluded.ciphertext, updated_at = excluded.updated_at, updated_by = excluded.updated_by",
        )
        .bind(tenant)
        .bind(name)
        .bind(nonce)
        .bind(sealed)
        .bind(now)
        .bind(audit.actor);
        self.execute_audited(upsert, audit).await?;
        Ok(())
    }

    /// Deletes the tenant's secret `name`, recording `audit`; whether it existed.
    pub async fn delete_secret(
        &self,
        tenant: &str,
        name: &str,
        audit: &NewAudit<'_>,
    ) -> Result<bool> {
        let delete = sqlx::query("DELETE FROM secrets WHERE tenant_id = $1 AND name = $2")
            .bind(tenant)
            .bind(name);
        self.execute_audited(delete, audit).await
    }

    /// The tenant's secrets, by name, without values.
    pub async fn secrets(&self, tenant: &str) -> Result<Vec<SecretInfo>> {
        let rows = sqlx::query("SELECT name, created_at, updated_at, updated_by FROM secrets WHERE tenant_id = $1 ORDER BY name")
            .bind(tenant)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(SecretInfo {
                    name: r.try_get("name")?,
                    created_at: r.try_get("created_at")?,
                    updated_at: r.try_get("updated_at")?,
                    updated_by: r.try_get("updated_by")?,
                })
            })
            .collect()
    }

    /// The sealed values `(name, nonce, ciphertext)` of the tenant's secrets among `names`.
    pub async fn sealed_secrets(
        &self,
        tenant: &str,
        names: &[String],
    ) -> Result<Vec<(String, Vec<u8>, Vec<u8>)>> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let marks: Vec<String> = (0..names.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = format!(
            "SELECT name, nonce, ciphertext FROM secrets WHERE tenant_id = $1 AND name IN ({})",
            marks.join(", ")
        );
        let query = names
            .iter()
            .fold(sqlx::query(&sql).bind(tenant), |q, name| q.bind(name));
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("name")?,
                    r.try_get("nonce")?,
                    r.try_get("ciphertext")?,
                ))
            })
            .collect()
    }
}
