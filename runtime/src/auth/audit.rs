//! Recording failed authentications in the audit log: one entry per source address and window,
//! carrying the count ([`super::limiter`] keeps the window). (Changes are recorded by the store,
//! in the transaction of the change: see `api::auth::Auth::entry`.)
use super::limiter::{AuditWrite, FailureLimiter};
use crate::store::Store;
use crate::store::audit::NewAudit;

/// Writes what the limiter asked for after a failed authentication; a failure to write is
/// logged (the request is refused all the same).
pub async fn record_failure(store: &Store, limiter: &FailureLimiter, write: AuditWrite) {
    let result = match write {
        AuditWrite::Nothing => Ok(()),
        AuditWrite::Update { id, count, detail } => {
            store.update_auth_failure(id, count, &detail).await
        }
        AuditWrite::Insert {
            source,
            window,
            remote,
            detail,
        } => {
            let id = store.insert_auth_failure(&remote, &detail).await;
            let next = limiter.inserted(source, window, id.as_ref().ok().copied());
            match (id, next) {
                (Err(e), _) => Err(e),
                (Ok(_), Some(AuditWrite::Update { id, count, detail })) => {
                    store.update_auth_failure(id, count, &detail).await
                }
                (Ok(_), _) => Ok(()),
            }
        }
    };
    if let Err(e) = result {
        tracing::error!("cannot write the audit log (auth.failed): {e}");
    }
}

/// Records a failed authentication of a request whose address is unknown (not through the
/// server's listener): one entry each.
pub async fn failed_auth(store: &Store, remote: Option<String>, reason: &str) {
    let entry = NewAudit {
        tenant: None,
        actor: "anonymous",
        action: "auth.failed",
        target: None,
        remote,
        agent: None,
        detail: Some(reason.to_string()),
    };
    if let Err(e) = store.audit(entry).await {
        tracing::error!("cannot write the audit log (auth.failed): {e}");
    }
}
