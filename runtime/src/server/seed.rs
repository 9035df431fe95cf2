//! First-start seeding: tenant `default` with an admin token (printed once and written to
//! `<data-dir>/admin-token`, mode 0600), the built-in plugins in every tenant's registry, and
//! the `demo` pipeline (generator -> json-filter -> log-sink).
use std::io::Write;
use std::path::Path;

use crate::api::AppState;
use crate::api::tokens::DEFAULT_TENANT;
use crate::auth::{Role, new_token};
use crate::registry::builtin;
use crate::store::audit::NewAudit;
use crate::store::now_ms;
use crate::store::plugins::PluginRow;

/// The demo pipeline applied at first start.
pub const DEMO_PIPELINE: &str = r#"name: demo
description: 20 generated orders; the paid ones are written to the run's log.
steps:
  - id: orders
    plugin: generator@latest
    config: { count: 20, seed: 7 }
  - id: paid
    plugin: json-filter@latest
    input: orders
    config: { field: status, equals: paid }
  - id: show
    plugin: log-sink@latest
    input: paid
    config: { prefix: "paid order: " }
"#;

/// Registers every built-in plugin in `tenant`'s registry (those already there are skipped).
pub async fn register_builtins(state: &AppState, tenant: &str) -> anyhow::Result<()> {
    for b in builtin::all() {
        if state.store.plugin(tenant, b.name, b.version).await?.is_some() {
            continue;
        }
        let bytes = bytes::Bytes::from_static(b.bytes);
        let digest = crate::registry::cache::digest_of(b.bytes);
        let (kind, meta) = crate::api::plugins::check_plugin(state, &digest, bytes)
            .await
            .map_err(|e| anyhow::anyhow!("built-in {}@{}: {e}", b.name, b.version))?;
        let blobs = state.blobs.clone();
        tokio::task::spawn_blocking(move || blobs.put(b.bytes)).await??;
        let size = i64::try_from(b.bytes.len())?;
        state.store.insert_blob(&digest, b.bytes).await?;
        let row = PluginRow {
            name: b.name.to_string(),
            version: b.version.to_string(),
            digest,
            kind,
            size,
            description: meta.description,
            config_schema: meta.config_schema,
            builtin: true,
            created_at: now_ms(),
            created_by: Some("server".into()),
        };
        let audit = NewAudit {
            tenant: Some(tenant),
            actor: "server",
            action: "plugin.builtin",
            target: Some(format!("{}@{}", row.name, row.version)),
            remote: None,
            detail: Some(format!("sha256:{}", row.digest)),
        };
        state.store.insert_plugin(tenant, &row, &audit).await?;
    }
    Ok(())
}

/// Seeds what a first start needs; later starts only add new built-ins.
pub async fn seed(state: &AppState, data_dir: &Path) -> anyhow::Result<()> {
    let tenant = match state.store.tenant_by_name(DEFAULT_TENANT).await? {
        Some(t) => t,
        None => state.store.create_tenant(DEFAULT_TENANT).await?,
    };
    for t in state.store.tenants().await? {
        register_builtins(state, &t.id).await?;
    }
    if !state.store.has_tokens(&tenant.id).await? {
        let (text, row) = new_token(&tenant.id, "admin", Role::Admin, None, Some("server".into()))?;
        let path = data_dir.join("admin-token");
        write_secret(&path, &text)?;
        let audit = NewAudit {
            tenant: Some(&tenant.id),
            actor: "server",
            action: "token.create",
            target: Some(row.id.clone()),
            remote: None,
            detail: Some("bootstrap admin token".into()),
        };
        state.store.insert_token(&row, &audit).await?;
        println!("admin token (shown once; also written to {}):\n{text}", path.display());
        let _ = std::io::stdout().flush();
    }
    if state.store.pipeline(&tenant.id, "demo").await?.is_none() {
        let (pipeline, json, pins) =
            crate::server::apply::check(state, &tenant.id, DEMO_PIPELINE, crate::pipeline::Format::Yaml, None)
                .await
                .map_err(|e| anyhow::anyhow!("demo pipeline: {e}"))?;
        let audit = NewAudit { tenant: Some(&tenant.id), actor: "server", action: "pipeline.create", ..NewAudit::default() };
        let _ = state.store.create_version(&tenant.id, &pipeline.name, &json, &pins, "server", true, audit).await?;
    }
    Ok(())
}

/// Writes `text` to `path`, readable by the owner only.
fn write_secret(path: &Path, text: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    #[cfg(unix)]
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    file.write_all(text.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}
