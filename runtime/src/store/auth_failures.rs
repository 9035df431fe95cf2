//! Failed authentications in the audit log: one `auth.failed` entry per source address and
//! window, inserted at the window's first failure and then given the window's count (the
//! window itself is kept in memory by [`crate::auth::limiter`]).
use sqlx::Row;

use super::{Result, Store, now_ms};

impl Store {
    /// Records the first failed authentication of a window from `remote`; the entry's id.
    pub async fn insert_auth_failure(&self, remote: &str, detail: &str) -> Result<i64> {
        let row = sqlx::query(
            "INSERT INTO audit_log (tenant_id, at, actor, action, target, remote, detail, count) \
             VALUES (NULL, $1, 'anonymous', 'auth.failed', NULL, $2, $3, 1) RETURNING id",
        )
        .bind(now_ms())
        .bind(remote)
        .bind(detail)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("id")?)
    }

    /// Sets the count and reasons of failure entry `id`, unless it already has a higher count
    /// (writes of one window may land out of order).
    pub async fn update_auth_failure(&self, id: i64, count: i64, detail: &str) -> Result<()> {
        sqlx::query("UPDATE audit_log SET count = $1, detail = $2 WHERE id = $3 AND action = 'auth.failed' AND count < $1")
            .bind(count)
            .bind(detail)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
