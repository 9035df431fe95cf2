//! Idempotency keys of queued runs: a run queued with a key records it in the run's own
//! transaction, unique per tenant, so that a retried request finds the run instead of queueing
//! a second one. A key is kept [`WINDOW_MS`]; after that it may name a new run.
use sqlx::Row;

use super::{Result, Store, now_ms};

/// How long a key names its run: 24 hours, in ms.
pub const WINDOW_MS: i64 = 24 * 60 * 60 * 1000;

/// The key a run is queued with, and what was asked (a digest of the route, the pipeline and
/// the body), which a retry must repeat.
#[derive(Debug, Clone, Copy)]
pub struct Idempotency<'a> {
    /// The client's key (1 to 255 printable ASCII characters).
    pub key: &'a str,
    /// The digest of the request.
    pub request: &'a str,
}

/// The run a key named, within the window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyedRun {
    /// The digest of the request that queued it.
    pub request: String,
    /// The run's id.
    pub run_id: String,
}

/// Records `key` for run `run_id` through `conn` (the run's transaction), replacing an expired
/// use of the key. A key in use fails with a unique violation, which rolls the run back.
pub(super) async fn record(
    conn: &mut sqlx::AnyConnection,
    tenant: &str,
    key: &Idempotency<'_>,
    run_id: &str,
) -> Result<()> {
    let now = now_ms();
    sqlx::query("DELETE FROM idempotency_keys WHERE tenant_id = $1 AND idempotency_key = $2 AND created_at < $3")
        .bind(tenant)
        .bind(key.key)
        .bind(now - WINDOW_MS)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO idempotency_keys (tenant_id, idempotency_key, request, run_id, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(tenant)
    .bind(key.key)
    .bind(key.request)
    .bind(run_id)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

impl Store {
    /// The run the tenant's `key` names, if it was used within the window.
    pub async fn keyed_run(&self, tenant: &str, key: &str) -> Result<Option<KeyedRun>> {
        let row = sqlx::query(
            "SELECT request, run_id FROM idempotency_keys WHERE tenant_id = $1 AND idempotency_key = $2 AND created_at >= $3",
        )
        .bind(tenant)
        .bind(key)
        .bind(now_ms() - WINDOW_MS)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(KeyedRun {
                request: r.try_get("request")?,
                run_id: r.try_get("run_id")?,
            })
        })
        .transpose()
    }
}
