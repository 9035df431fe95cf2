//! The audit log: who changed what, when and from where, and failed authentications (one
//! entry per source and window, counted: [`super::auth_failures`]).
use serde::Serialize;
use sqlx::Row;

use super::{Result, Store, now_ms};

/// One audit entry.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    /// Sequence number.
    pub id: i64,
    /// When, Unix ms.
    pub at: i64,
    /// Who: a token id, `anonymous`, `server` or `cli`.
    pub actor: String,
    /// What, such as `plugin.upload` or `auth.failed`.
    pub action: String,
    /// On what (a digest, `pipeline@version`, a token id).
    pub target: Option<String>,
    /// From where: the remote address.
    pub remote: Option<String>,
    /// More detail.
    pub detail: Option<String>,
    /// How many times it happened: failed authentications from one source in one window are
    /// one entry (see [`super::auth_failures`]); 1 for everything else.
    pub count: i64,
}

/// A new entry to record; `tenant` is `None` when no tenant is known (a failed login).
#[derive(Debug, Clone, Default)]
pub struct NewAudit<'a> {
    /// Tenant id.
    pub tenant: Option<&'a str>,
    /// Who.
    pub actor: &'a str,
    /// What.
    pub action: &'a str,
    /// On what.
    pub target: Option<String>,
    /// From where.
    pub remote: Option<String>,
    /// More detail.
    pub detail: Option<String>,
}

/// Appends `e` through `conn`: a change's transaction passes its own connection, so the entry
/// commits, or rolls back, with the change it records.
pub(super) async fn insert(conn: &mut sqlx::AnyConnection, e: &NewAudit<'_>) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit_log (tenant_id, at, actor, action, target, remote, detail) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(e.tenant)
    .bind(now_ms())
    .bind(e.actor)
    .bind(e.action)
    .bind(e.target.as_deref())
    .bind(e.remote.as_deref())
    .bind(e.detail.as_deref())
    .execute(conn)
    .await?;
    Ok(())
}

impl Store {
    /// Runs `change` (one statement) and, when it changed a row, records `audit` in the same
    /// transaction; whether it changed a row. (Nothing is recorded for a change that did
    /// nothing.)
    pub(super) async fn execute_audited<'q>(
        &self,
        change: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
        audit: &NewAudit<'_>,
    ) -> Result<bool> {
        let mut tx = self.begin().await?;
        if change.execute(&mut *tx).await?.rows_affected() == 0 {
            return Ok(false);
        }
        insert(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Appends to the audit log an entry that goes with no change (a failed authentication).
    pub async fn audit(&self, e: NewAudit<'_>) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        insert(&mut conn, &e).await
    }

    /// The tenant's audit entries (failed authentications, which have no tenant, are shown
    /// to `include_anonymous` callers too), newest first, before `before` if given.
    pub async fn audit_entries(
        &self,
        tenant: &str,
        include_anonymous: bool,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditEntry>> {
        let rows = sqlx::query(
            "SELECT id, at, actor, action, target, remote, detail, count FROM audit_log \
             WHERE (tenant_id = $1 OR ($2 = 1 AND tenant_id IS NULL)) AND id < $3 \
             ORDER BY id DESC LIMIT $4",
        )
        .bind(tenant)
        .bind(i64::from(include_anonymous))
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    id: r.try_get("id")?,
                    at: r.try_get("at")?,
                    actor: r.try_get("actor")?,
                    action: r.try_get("action")?,
                    target: r.try_get("target")?,
                    remote: r.try_get("remote")?,
                    detail: r.try_get("detail")?,
                    count: r.try_get("count")?,
                })
            })
            .collect()
    }
}
