//! Failed authentications in the audit log: one `auth.failed` entry per source address and
//! window, inserted at the window's first failure and then given the window's count (the
//! window itself is kept in memory by [`crate::auth::limiter`]). Their `count` and `detail`
//! change after they are written, so their hash leaves those two out
//! ([`super::audit::COUNTED_ACTION`]).
use super::audit::{COUNTED_ACTION, NewAudit};
use super::{Result, Store};

impl Store {
    /// Records the first failed authentication of a window from `remote`; the entry's id.
    pub async fn insert_auth_failure(&self, remote: &str, detail: &str) -> Result<i64> {
        let entry = NewAudit {
            tenant: None,
            actor: "anonymous",
            action: COUNTED_ACTION,
            target: None,
            remote: Some(remote.to_string()),
            agent: None,
            detail: Some(detail.to_string()),
        };
        self.audit_counted(&entry, 1).await
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
