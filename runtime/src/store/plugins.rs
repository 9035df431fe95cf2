//! Plugin bindings: `name@version` -> digest, per tenant, with what `describe` said; and the
//! blobs table that records which digests the blob store holds.
use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::audit::NewAudit;
use super::{Result, Store, now_ms};

/// A registered plugin version.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PluginRow {
    /// Name.
    pub name: String,
    /// Semantic version.
    pub version: String,
    /// sha256 of the component (hex; `sha256:<hex>` in JSON).
    #[serde(with = "crate::digest::as_spelled")]
    pub digest: String,
    /// `source`, `transform` or `sink`.
    pub kind: String,
    /// Component size, bytes.
    pub size: i64,
    /// What the plugin says it does.
    pub description: String,
    /// Its config JSON Schema, if it has one.
    pub config_schema: Option<String>,
    /// Whether it is one of the built-in plugins.
    pub builtin: bool,
    /// Upload time, Unix ms.
    pub created_at: i64,
    /// Who uploaded it.
    pub created_by: Option<String>,
}

const COLUMNS: &str = "name, version, digest, kind, size, description, config_schema, builtin, created_at, created_by";

fn plugin_of(r: &sqlx::any::AnyRow) -> Result<PluginRow> {
    Ok(PluginRow {
        name: r.try_get("name")?,
        version: r.try_get("version")?,
        digest: r.try_get("digest")?,
        kind: r.try_get("kind")?,
        size: r.try_get("size")?,
        description: r.try_get("description")?,
        config_schema: r.try_get("config_schema")?,
        builtin: r.try_get::<i64, _>("builtin")? != 0,
        created_at: r.try_get("created_at")?,
        created_by: r.try_get("created_by")?,
    })
}

/// Why a plugin could not be deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteRefused {
    /// The tenant has no plugin with that digest.
    NotFound,
    /// It is a built-in.
    Builtin,
    /// These pipeline versions (`name@version`) pin it.
    InUse(Vec<String>),
}

impl Store {
    /// Records that the blob store holds `bytes` under `digest` (idempotent). On PostgreSQL the
    /// bytes are kept in the database too, so that workers on other machines can fetch them.
    pub async fn insert_blob(&self, digest: &str, bytes: &[u8]) -> Result<()> {
        let content = (self.backend == super::Backend::Postgres).then_some(bytes);
        sqlx::query(
            "INSERT INTO blobs (digest, size, created_at, content) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (digest) DO UPDATE SET content = COALESCE(blobs.content, excluded.content)",
        )
        .bind(digest)
        .bind(i64::try_from(bytes.len()).unwrap_or(i64::MAX))
        .bind(now_ms())
        .bind(content)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The bytes of blob `digest` kept in the database (PostgreSQL), if any.
    pub async fn blob_content(&self, digest: &str) -> Result<Option<Vec<u8>>> {
        let row = sqlx::query("SELECT content FROM blobs WHERE digest = $1")
            .bind(digest)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row
            .map(|r| r.try_get::<Option<Vec<u8>>, _>("content"))
            .transpose()?
            .flatten())
    }

    /// Binds `name@version` to a digest in `tenant`, recording `audit` in the same
    /// transaction; a unique violation if it is bound.
    pub async fn insert_plugin(
        &self,
        tenant: &str,
        p: &PluginRow,
        audit: &NewAudit<'_>,
    ) -> Result<()> {
        let sql = format!(
            "INSERT INTO plugins (tenant_id, {COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        );
        let insert = sqlx::query(&sql)
            .bind(tenant)
            .bind(&p.name)
            .bind(&p.version)
            .bind(&p.digest)
            .bind(&p.kind)
            .bind(p.size)
            .bind(&p.description)
            .bind(&p.config_schema)
            .bind(i64::from(p.builtin))
            .bind(p.created_at)
            .bind(&p.created_by);
        self.execute_audited(insert, audit).await?;
        Ok(())
    }

    /// The tenant's plugin `name@version`.
    pub async fn plugin(
        &self,
        tenant: &str,
        name: &str,
        version: &str,
    ) -> Result<Option<PluginRow>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM plugins WHERE tenant_id = $1 AND name = $2 AND version = $3"
        ))
        .bind(tenant)
        .bind(name)
        .bind(version)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(plugin_of).transpose()
    }

    /// The tenant's plugins, or only those named `name`, by name and upload time.
    pub async fn plugins(&self, tenant: &str, name: Option<&str>) -> Result<Vec<PluginRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM plugins WHERE tenant_id = $1 AND ($2 IS NULL OR name = $2) \
             ORDER BY name, created_at, version"
        ))
        .bind(tenant)
        .bind(name)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(plugin_of).collect()
    }

    /// The tenant's bindings of `digest`.
    pub async fn plugins_by_digest(&self, tenant: &str, digest: &str) -> Result<Vec<PluginRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM plugins WHERE tenant_id = $1 AND digest = $2 ORDER BY name, version"
        ))
        .bind(tenant)
        .bind(digest)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(plugin_of).collect()
    }

    /// Deletes the tenant's bindings of `digest`, unless a pipeline version pins it or it is
    /// built in, recording `audit` with the deletion. The bytes stay in the blob store (other
    /// tenants may hold them).
    pub async fn delete_plugin(
        &self,
        tenant: &str,
        digest: &str,
        audit: &NewAudit<'_>,
    ) -> Result<Result<usize, DeleteRefused>> {
        let mut tx = self.begin().await?;
        // Write first: on SQLite this takes the write lock before reading.
        let deleted =
            sqlx::query("DELETE FROM plugins WHERE tenant_id = $1 AND digest = $2 AND builtin = 0")
                .bind(tenant)
                .bind(digest)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        let users = sqlx::query(
            "SELECT DISTINCT pipeline, version FROM version_plugins WHERE tenant_id = $1 AND digest = $2 \
             ORDER BY pipeline, version",
        )
        .bind(tenant)
        .bind(digest)
        .fetch_all(&mut *tx)
        .await?;
        let users: Vec<String> = users
            .iter()
            .map(|r| {
                Ok(format!(
                    "{}@{}",
                    r.try_get::<String, _>("pipeline")?,
                    r.try_get::<i64, _>("version")?
                ))
            })
            .collect::<Result<_>>()?;
        let refused = if !users.is_empty() {
            Some(DeleteRefused::InUse(users))
        } else if deleted == 0 {
            let builtin = sqlx::query(
                "SELECT COUNT(*) AS n FROM plugins WHERE tenant_id = $1 AND digest = $2",
            )
            .bind(tenant)
            .bind(digest)
            .fetch_one(&mut *tx)
            .await?
            .try_get::<i64, _>("n")?;
            Some(if builtin > 0 {
                DeleteRefused::Builtin
            } else {
                DeleteRefused::NotFound
            })
        } else {
            None
        };
        match refused {
            Some(why) => {
                tx.rollback().await?;
                Ok(Err(why))
            }
            None => {
                super::audit::insert(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(Ok(usize::try_from(deleted).unwrap_or(usize::MAX)))
            }
        }
    }
}
