//! The door to publish a plugin: check that the bytes are a plugin this host can run, describe
//! it, store its blob (on disk and, for workers elsewhere, in the database), bind
//! `name@version` to its digest in the tenant's registry, and audit it. Uploads and the
//! built-ins registered at start go through it.
use super::{ControlError, ControlResult, Core};
use crate::registry::builtin;
use crate::registry::cache::digest_of;
use crate::store::audit::NewAudit;
use crate::store::plugins::PluginRow;
use crate::store::{is_unique_violation, now_ms};

/// A plugin to publish.
#[derive(Debug, Clone)]
pub struct Publish<'a> {
    /// Its name.
    pub name: &'a str,
    /// Its semantic version.
    pub version: &'a str,
    /// The component's bytes.
    pub bytes: bytes::Bytes,
    /// Whether it is one of the binary's built-ins.
    pub builtin: bool,
    /// Who publishes it (a token id, or `server`).
    pub actor: &'a str,
}

/// What publishing did.
#[derive(Debug, Clone)]
pub struct Published {
    /// The registry's row for `name@version`.
    pub row: PluginRow,
    /// Whether it was bound now (`false`: the same bytes were there already).
    pub created: bool,
}

/// Checks `bytes` are a plugin this host can run and describes it (compiling on a blocking
/// thread); its kind and metadata. The error is for the caller.
pub async fn check(
    core: &Core,
    digest: &str,
    bytes: bytes::Bytes,
) -> ControlResult<(String, crate::engine::bindings::Metadata)> {
    let engine = core.engine.clone();
    let d = digest.to_string();
    let plugin = tokio::task::spawn_blocking(move || engine.load(&d, &bytes))
        .await
        .map_err(ControlError::internal)?
        .map_err(|e| ControlError::Invalid(format!("not a valid plugin: {e}")))?;
    let meta = crate::executor::prepare::describe(&core.engine, &plugin)
        .await
        .map_err(ControlError::Invalid)?;
    Ok((plugin.kind.as_str().to_string(), meta))
}

/// The door: publishes `p` in `tenant` with `audit` (in the same transaction as the binding).
/// The same bytes again answer the existing row; other bytes for a bound `name@version` are
/// [`ControlError::Conflict`].
pub async fn publish(
    core: &Core,
    tenant: &str,
    p: Publish<'_>,
    audit: NewAudit<'_>,
) -> ControlResult<Published> {
    let (name, version) = (p.name, p.version);
    let digest = digest_of(&p.bytes);
    if let Some(existing) = core.store.plugin(tenant, name, version).await? {
        return same_or_conflict(existing, &digest, name, version);
    }
    let size = i64::try_from(p.bytes.len()).unwrap_or(i64::MAX);
    let (kind, meta) = check(core, &digest, p.bytes.clone()).await?;
    let blobs = core.blobs.clone();
    let kept = p.bytes.clone();
    tokio::task::spawn_blocking(move || blobs.put(&kept))
        .await
        .map_err(ControlError::internal)??;
    core.store.insert_blob(&digest, &p.bytes).await?;
    let row = PluginRow {
        name: name.to_string(),
        version: version.to_string(),
        digest: digest.clone(),
        kind,
        size,
        description: meta.description,
        config_schema: meta.config_schema,
        builtin: p.builtin,
        created_at: now_ms(),
        created_by: Some(p.actor.to_string()),
    };
    match core.store.insert_plugin(tenant, &row, &audit).await {
        Ok(()) => Ok(Published { row, created: true }),
        // Someone bound it meanwhile: the same answer as if they had been first.
        Err(e) if is_unique_violation(&e) => {
            match core.store.plugin(tenant, name, version).await? {
                Some(existing) => same_or_conflict(existing, &digest, name, version),
                None => Err(e.into()),
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// `existing` when it holds `digest`, else the conflict of binding `name@version` again.
fn same_or_conflict(
    existing: PluginRow,
    digest: &str,
    name: &str,
    version: &str,
) -> ControlResult<Published> {
    if existing.digest == digest {
        Ok(Published {
            row: existing,
            created: false,
        })
    } else {
        Err(ControlError::Conflict(format!(
            "{name}@{version} is already bound to sha256:{} (publish a new version)",
            existing.digest
        )))
    }
}

/// Publishes every built-in plugin in `tenant`'s registry (those already there are skipped).
pub async fn publish_builtins(core: &Core, tenant: &str) -> ControlResult<()> {
    for b in builtin::all() {
        if core
            .store
            .plugin(tenant, b.name, b.version)
            .await?
            .is_some()
        {
            continue;
        }
        let audit = NewAudit {
            tenant: Some(tenant),
            actor: "server",
            action: "plugin.builtin",
            target: Some(format!("{}@{}", b.name, b.version)),
            remote: None,
            agent: None,
            detail: Some(format!("sha256:{}", digest_of(b.bytes))),
        };
        let p = Publish {
            name: b.name,
            version: b.version,
            bytes: bytes::Bytes::from_static(b.bytes),
            builtin: true,
            actor: "server",
        };
        publish(core, tenant, p, audit).await.map_err(|e| {
            ControlError::internal(format!("built-in {}@{}: {e}", b.name, b.version))
        })?;
    }
    Ok(())
}
