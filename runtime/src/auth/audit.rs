//! Recording audit entries from request handlers: the change is already committed, so a
//! failure to record is logged loudly rather than undoing it.
use crate::store::Store;
use crate::store::audit::NewAudit;

use super::Principal;

/// Records `action` on `target` by `who` from `remote`.
pub async fn record(
    store: &Store,
    who: &Principal,
    remote: Option<String>,
    action: &str,
    target: impl Into<String>,
    detail: Option<String>,
) {
    let entry = NewAudit {
        tenant: Some(&who.tenant_id),
        actor: &who.token_id,
        action,
        target: Some(target.into()),
        remote,
        detail,
    };
    if let Err(e) = store.audit(entry).await {
        tracing::error!("cannot write the audit log ({action}): {e}");
    }
}

/// Records a failed authentication.
pub async fn failed_auth(store: &Store, remote: Option<String>, reason: &str) {
    let entry = NewAudit {
        tenant: None,
        actor: "anonymous",
        action: "auth.failed",
        target: None,
        remote,
        detail: Some(reason.to_string()),
    };
    if let Err(e) = store.audit(entry).await {
        tracing::error!("cannot write the audit log (auth.failed): {e}");
    }
}
