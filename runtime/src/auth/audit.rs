//! Recording failed authentications in the audit log. (Changes are recorded by the store, in
//! the transaction of the change: see [`super::Auth::entry`].)
use crate::store::Store;
use crate::store::audit::NewAudit;

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
