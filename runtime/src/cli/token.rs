//! `autoflow token create`: makes an API token directly in the database (the server's
//! `--data-dir` / `--database`), so an operator can mint one without a running server or an
//! existing token. Creates the tenant with `--create-tenant`; narrows the token to scopes with
//! `--scope`, and gives it to a user (`--user`: it then carries at most their role) or a
//! service account (`--service-account`). Recorded in the audit log.
use crate::auth::{Role, new_token};
use crate::store::audit::NewAudit;
use crate::store::now_ms;

/// `autoflow token ...`
#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it (shown once).
    Create(CreateArgs),
}

/// Options of `autoflow token create`.
#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// The server's database.
    #[command(flatten)]
    pub db: super::database::DatabaseArgs,
    /// Tenant name.
    #[arg(long, default_value = "default")]
    pub tenant: String,
    /// Create the tenant if it does not exist.
    #[arg(long)]
    pub create_tenant: bool,
    /// Role: admin, editor or viewer.
    #[arg(long, default_value = "viewer")]
    pub role: String,
    /// A label.
    #[arg(long, default_value = "cli")]
    pub name: String,
    /// Lifetime in seconds (default: no expiry).
    #[arg(long)]
    pub expires_in: Option<i64>,
    /// Narrow it to these scopes (repeatable or comma-separated, such as `runs:trigger` or
    /// `pipelines:*`; the routes' scopes are in `/openapi.json`). Default: every route its
    /// role allows.
    #[arg(long = "scope", value_delimiter = ',')]
    pub scopes: Vec<String>,
    /// The user it belongs to: it carries at most their role in the tenant, and stops when
    /// they are disabled or lose it.
    #[arg(long, conflicts_with = "service_account")]
    pub user: Option<String>,
    /// The service account it belongs to.
    #[arg(long)]
    pub service_account: Option<String>,
}

/// Runs a token command.
pub async fn token(cmd: TokenCommand) -> anyhow::Result<()> {
    let TokenCommand::Create(args) = cmd;
    let role: Role = args.role.parse().map_err(anyhow::Error::msg)?;
    let store = args.db.open().await?;
    let tenant = match store.tenant_by_name(&args.tenant).await? {
        Some(t) => t,
        None if args.create_tenant => {
            // The same door as the API's: the tenant gets the built-in plugins too.
            let policy = crate::control::server_policy(&[], &args.db.data_dir);
            let core = crate::control::Core::open(
                &args.db.url(),
                &args.db.data_dir,
                None,
                policy,
                Default::default(),
            )
            .await?;
            crate::control::tenants::create(&core, &args.tenant).await?
        }
        None => anyhow::bail!("no tenant {:?} (add --create-tenant)", args.tenant),
    };
    let expires = args
        .expires_in
        .map(|s| now_ms().saturating_add(s.saturating_mul(1000)));
    let (text, mut row) = new_token(&tenant.id, &args.name, role, expires, Some("cli".into()))?;
    if !args.scopes.is_empty() {
        row.scopes = Some(
            crate::auth::scope::check(&args.scopes, crate::api::known_scopes())
                .map_err(|e| anyhow::anyhow!("--scope: {e}"))?,
        );
    }
    if let Some(name) = &args.user {
        let user = store
            .user_by_name(name)
            .await?
            .ok_or_else(|| anyhow::anyhow!("--user: no user {name:?}"))?;
        if !store
            .memberships(&user.id)
            .await?
            .iter()
            .any(|m| m.tenant_id == tenant.id)
        {
            anyhow::bail!("--user: {name} has no role in tenant {}", tenant.name);
        }
        row.user_id = Some(user.id);
        row.user = Some(user.name);
    }
    if let Some(name) = &args.service_account {
        crate::auth::check_user_name(name)
            .map_err(|e| anyhow::anyhow!("--service-account: {e}"))?;
        row.service_account = Some(name.clone());
    }
    let audit = NewAudit {
        tenant: Some(&tenant.id),
        actor: "cli",
        action: "token.create",
        target: Some(row.id.clone()),
        remote: Some("local".into()),
        agent: None,
        detail: Some(row.describe()),
    };
    store.insert_token(&row, &audit).await?;
    super::output::line(text)?;
    Ok(())
}
