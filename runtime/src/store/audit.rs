//! The audit log: who changed what, when and from where, and failed authentications (one
//! entry per source and window, counted: [`super::auth_failures`]).
//!
//! The log is tamper-evident: the entries of each tenant (and those of no tenant, such as
//! failed sign-ins, as a chain of their own) form a hash chain. Each entry keeps `prev_hash`,
//! the `hash` of the tenant's entry before it (64 zeros for the first), and its own `hash`,
//! the sha256 of [`canonical`] (its fields and `prev_hash`). Appending takes the tenant's
//! chain in turn (the write lock on SQLite, an advisory lock on PostgreSQL) until the entry
//! commits. [`super::audit_chain`] checks the chains. Editing an entry changes its hash;
//! deleting or moving one breaks the `prev_hash` link of the entry after it.
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row;

use super::{Result, Store, now_ms};

/// The `prev_hash` of a chain's first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One audit entry.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    /// Sequence number.
    pub id: i64,
    /// When, Unix ms.
    pub at: i64,
    /// Who: a token id, `user:NAME`, `anonymous`, `server` or `cli`.
    pub actor: String,
    /// What, such as `plugin.upload` or `auth.failed`.
    pub action: String,
    /// On what (a digest, `pipeline@version`, a token id).
    pub target: Option<String>,
    /// From where: the remote address.
    pub remote: Option<String>,
    /// The client's `User-Agent`, where there was one.
    pub agent: Option<String>,
    /// More detail.
    pub detail: Option<String>,
    /// How many times it happened: failed authentications from one source in one window are
    /// one entry (see [`super::auth_failures`]); 1 for everything else.
    pub count: i64,
    /// The entry's link in its tenant's hash chain (`None` for entries older than the chain).
    pub hash: Option<String>,
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
    /// The client's `User-Agent`.
    pub agent: Option<String>,
    /// More detail.
    pub detail: Option<String>,
}

/// The fields of an entry that its hash covers.
#[derive(Debug, Clone)]
pub struct Chained<'a> {
    /// Tenant id.
    pub tenant: Option<&'a str>,
    /// When, Unix ms.
    pub at: i64,
    /// Who.
    pub actor: &'a str,
    /// What.
    pub action: &'a str,
    /// On what.
    pub target: Option<&'a str>,
    /// From where.
    pub remote: Option<&'a str>,
    /// User agent.
    pub agent: Option<&'a str>,
    /// More detail.
    pub detail: Option<&'a str>,
    /// How many times.
    pub count: i64,
}

/// The action whose entries are updated after they are written (their `count` and `detail`
/// grow within a window: [`super::auth_failures`]); their hash leaves those two out.
pub const COUNTED_ACTION: &str = "auth.failed";

/// The bytes an entry's hash is taken over: a version tag, then each field as `0` (none) or `1`,
/// its length (8 bytes, big-endian) and its UTF-8 bytes, numbers in decimal; in the order
/// tenant, at, actor, action, target, remote, agent, detail, count, prev_hash. `detail` and
/// `count` are written as none for [`COUNTED_ACTION`] entries.
pub fn canonical(e: &Chained<'_>, prev_hash: &str) -> Vec<u8> {
    fn field(out: &mut Vec<u8>, value: Option<&str>) {
        match value {
            None => out.push(0),
            Some(v) => {
                out.push(1);
                out.extend_from_slice(&(v.len() as u64).to_be_bytes());
                out.extend_from_slice(v.as_bytes());
            }
        }
    }
    let counted = e.action == COUNTED_ACTION;
    let mut out = b"autoflow-audit-v1\n".to_vec();
    field(&mut out, e.tenant);
    field(&mut out, Some(&e.at.to_string()));
    field(&mut out, Some(e.actor));
    field(&mut out, Some(e.action));
    field(&mut out, e.target);
    field(&mut out, e.remote);
    field(&mut out, e.agent);
    field(&mut out, if counted { None } else { e.detail });
    let count = e.count.to_string();
    field(&mut out, (!counted).then_some(count.as_str()));
    field(&mut out, Some(prev_hash));
    out
}

/// The hash of an entry whose chain's previous hash is `prev_hash`: sha256 of [`canonical`], hex.
pub fn entry_hash(e: &Chained<'_>, prev_hash: &str) -> String {
    hex::encode(Sha256::digest(canonical(e, prev_hash)))
}

/// Waits for the turn of `tenant`'s chain (on PostgreSQL; a SQLite transaction already holds
/// the database's write lock) until the transaction ends, then the hash of its last entry.
async fn chain_head(conn: &mut sqlx::AnyConnection, tenant: Option<&str>) -> Result<String> {
    if conn.backend_name().eq_ignore_ascii_case("postgresql") {
        // The two-key form: a key space of its own, apart from the claimers' one-key locks.
        sqlx::query("SELECT pg_advisory_xact_lock(8061, hashtext($1))")
            .bind(tenant.unwrap_or(""))
            .execute(&mut *conn)
            .await?;
    }
    let row = match tenant {
        Some(t) => {
            sqlx::query("SELECT hash FROM audit_log WHERE tenant_id = $1 ORDER BY id DESC LIMIT 1")
                .bind(t)
                .fetch_optional(&mut *conn)
                .await?
        }
        None => {
            sqlx::query(
                "SELECT hash FROM audit_log WHERE tenant_id IS NULL ORDER BY id DESC LIMIT 1",
            )
            .fetch_optional(&mut *conn)
            .await?
        }
    };
    // No entry yet, or only entries from before the chain: the chain starts here.
    let last: Option<String> = match row {
        Some(r) => r.try_get("hash")?,
        None => None,
    };
    Ok(last.unwrap_or_else(|| GENESIS.to_string()))
}

/// Appends `e` (with `count`) through `conn`, which must be inside a transaction of the store
/// ([`Store::begin`]): a change's transaction passes its own, so the entry commits, or rolls
/// back, with the change it records. The new entry's id.
pub(super) async fn append(
    conn: &mut sqlx::AnyConnection,
    e: &NewAudit<'_>,
    count: i64,
) -> Result<i64> {
    let prev = chain_head(conn, e.tenant).await?;
    let chained = Chained {
        tenant: e.tenant,
        at: now_ms(),
        actor: e.actor,
        action: e.action,
        target: e.target.as_deref(),
        remote: e.remote.as_deref(),
        agent: e.agent.as_deref(),
        detail: e.detail.as_deref(),
        count,
    };
    let hash = entry_hash(&chained, &prev);
    let row = sqlx::query(
        "INSERT INTO audit_log (tenant_id, at, actor, action, target, remote, agent, detail, count, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
    )
    .bind(chained.tenant)
    .bind(chained.at)
    .bind(chained.actor)
    .bind(chained.action)
    .bind(chained.target)
    .bind(chained.remote)
    .bind(chained.agent)
    .bind(chained.detail)
    .bind(count)
    .bind(&prev)
    .bind(&hash)
    .fetch_one(&mut *conn)
    .await?;
    Ok(row.try_get("id")?)
}

/// Appends `e` through `conn` (inside a transaction, see [`append`]).
pub(super) async fn insert(conn: &mut sqlx::AnyConnection, e: &NewAudit<'_>) -> Result<()> {
    append(conn, e, 1).await.map(|_| ())
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
        self.audit_counted(&e, 1).await.map(|_| ())
    }

    /// Appends `e` with `count`, in a transaction of its own; its id.
    pub(super) async fn audit_counted(&self, e: &NewAudit<'_>, count: i64) -> Result<i64> {
        let mut tx = self.begin().await?;
        let id = append(&mut tx, e, count).await?;
        tx.commit().await?;
        Ok(id)
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
            "SELECT id, at, actor, action, target, remote, agent, detail, count, hash FROM audit_log \
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
                    agent: r.try_get("agent")?,
                    detail: r.try_get("detail")?,
                    count: r.try_get("count")?,
                    hash: r.try_get("hash")?,
                })
            })
            .collect()
    }
}
