//! First-start seeding: tenant `default` with an admin token (printed once and written to
//! `<data-dir>/admin-token`, mode 0600), a first user `admin` with a generated password (when
//! the server has no user: printed once and written to `<data-dir>/admin-password`, 0600; it
//! signs in to the web UI), the built-in plugins in every tenant's registry, and the `demo`
//! pipeline (generator -> json-filter -> log-sink).
use std::io::Write;
use std::path::Path;

use crate::auth::{Role, new_token};
use crate::control::pipelines::{self, Mode, Source};
use crate::control::tenants::{self, DEFAULT_TENANT};
use crate::control::{Core, plugins};
use crate::store::audit::NewAudit;

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

/// Seeds what a first start needs; later starts only add new built-ins.
pub async fn seed(core: &Core, data_dir: &Path) -> anyhow::Result<()> {
    let tenant = tenants::get_or_create(core, DEFAULT_TENANT).await?;
    // Built-ins this binary adds to those of the one that seeded each tenant.
    for t in core.store.tenants().await? {
        plugins::publish_builtins(core, &t.id).await?;
    }
    if !core.store.has_tokens(&tenant.id).await? {
        let (text, row) = new_token(
            &tenant.id,
            "admin",
            Role::Admin,
            None,
            Some("server".into()),
        )?;
        let path = data_dir.join("admin-token");
        write_secret(&path, &text)?;
        let audit = NewAudit {
            tenant: Some(&tenant.id),
            actor: "server",
            action: "token.create",
            target: Some(row.id.clone()),
            remote: None,
            agent: None,
            detail: Some("bootstrap admin token".into()),
        };
        core.store.insert_token(&row, &audit).await?;
        println!(
            "admin token (shown once; also written to {}):\n{text}",
            path.display()
        );
        let _ = std::io::stdout().flush();
    }
    if core.store.users(None).await?.is_empty() {
        first_user(core, &tenant.id, data_dir).await?;
    }
    if core.store.pipeline(&tenant.id, "demo").await?.is_none() {
        let source = Source::Text {
            text: DEMO_PIPELINE,
            format: crate::pipeline::Format::Yaml,
            name: None,
        };
        let audit = NewAudit {
            tenant: Some(&tenant.id),
            actor: "server",
            action: "pipeline.create",
            ..NewAudit::default()
        };
        pipelines::apply(core, &tenant.id, "server", source, Mode::Create, audit)
            .await
            .map_err(|e| anyhow::anyhow!("demo pipeline: {e}"))?;
    }
    Ok(())
}

/// The name of the user a first start makes.
pub const FIRST_USER: &str = "admin";

/// Makes user [`FIRST_USER`], admin of the default tenant, with a generated password.
async fn first_user(core: &Core, tenant: &str, data_dir: &Path) -> anyhow::Result<()> {
    let secret = crate::store::random_hex(12);
    let hash = {
        let secret = secret.clone();
        tokio::task::spawn_blocking(move || crate::auth::password::hash(&secret)).await??
    };
    let user = crate::store::users::UserRow::new(FIRST_USER, hash, "server");
    let audit = NewAudit {
        tenant: Some(tenant),
        actor: "server",
        action: "user.create",
        target: Some(format!("user:{FIRST_USER}")),
        detail: Some("first user, role admin".into()),
        ..NewAudit::default()
    };
    core.store
        .insert_user(&user, tenant, Role::Admin, &audit)
        .await?;
    let path = data_dir.join("admin-password");
    write_secret(&path, &secret)?;
    println!(
        "web UI user {FIRST_USER:?}, password (shown once; also written to {}; change it with `autoflow user passwd {FIRST_USER}`):\n{secret}",
        path.display()
    );
    let _ = std::io::stdout().flush();
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
