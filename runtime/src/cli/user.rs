//! `autoflow user add|grant|list|disable|passwd`: users made and changed directly in the
//! server's database (`--data-dir` / `--database`), like `token create`, so an operator can
//! always get back in. Passwords are read from standard input (`--password-stdin`: the first
//! line), never from the command line. Every change is recorded in the audit log (actor `cli`).
use std::io::BufRead;

use crate::auth::{Role, password};
use crate::store::audit::NewAudit;
use crate::store::tokens::Tenant;
use crate::store::users::UserRow;
use crate::store::{Store, is_unique_violation};

use super::database::DatabaseArgs;

/// `autoflow user ...`
#[derive(Debug, clap::Subcommand)]
pub enum UserCommand {
    /// Create a user with a role in a tenant; the password comes from standard input.
    Add(AddArgs),
    /// Give an existing user a role in a tenant (or change it).
    Grant(GrantArgs),
    /// List the users (of one tenant with --tenant) and their roles.
    List(ListArgs),
    /// Disable a user: they can no longer sign in, and their sessions end.
    Disable(NameArgs),
    /// Set a user's password from standard input; their sessions end.
    Passwd(PasswdArgs),
}

/// Options of `autoflow user add`.
#[derive(Debug, clap::Args)]
pub struct AddArgs {
    /// Sign-in name.
    pub name: String,
    /// Role in the tenant: admin, editor or viewer.
    #[arg(long)]
    pub role: String,
    /// Tenant name.
    #[arg(long, default_value = "default")]
    pub tenant: String,
    /// Read the password from standard input (the first line). Required.
    #[arg(long, required = true)]
    pub password_stdin: bool,
    /// The server's database.
    #[command(flatten)]
    pub db: DatabaseArgs,
}

/// Options of `autoflow user grant`.
#[derive(Debug, clap::Args)]
pub struct GrantArgs {
    /// The user.
    pub name: String,
    /// Role in the tenant: admin, editor or viewer.
    #[arg(long)]
    pub role: String,
    /// Tenant name.
    #[arg(long, default_value = "default")]
    pub tenant: String,
    /// The server's database.
    #[command(flatten)]
    pub db: DatabaseArgs,
}

/// Options of `autoflow user list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only the users of this tenant.
    #[arg(long)]
    pub tenant: Option<String>,
    /// The server's database.
    #[command(flatten)]
    pub db: DatabaseArgs,
}

/// Options naming a user.
#[derive(Debug, clap::Args)]
pub struct NameArgs {
    /// The user.
    pub name: String,
    /// The server's database.
    #[command(flatten)]
    pub db: DatabaseArgs,
}

/// Options of `autoflow user passwd`.
#[derive(Debug, clap::Args)]
pub struct PasswdArgs {
    /// The user.
    pub name: String,
    /// Read the password from standard input (the first line). Required.
    #[arg(long, required = true)]
    pub password_stdin: bool,
    /// The server's database.
    #[command(flatten)]
    pub db: DatabaseArgs,
}

/// The first line of standard input, without its line end.
fn password_from_stdin() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let password = line.trim_end_matches(['\n', '\r']).to_string();
    password::check_strength(&password)?;
    Ok(password)
}

async fn tenant_named(store: &Store, name: &str) -> anyhow::Result<Tenant> {
    store
        .tenant_by_name(name)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no tenant {name:?}"))
}

async fn user_named(store: &Store, name: &str) -> anyhow::Result<UserRow> {
    store
        .user_by_name(name)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no user {name:?}"))
}

/// The audit entry of a change made here.
fn entry<'a>(
    tenant: Option<&'a str>,
    action: &'a str,
    user: &str,
    detail: Option<String>,
) -> NewAudit<'a> {
    NewAudit {
        tenant,
        actor: "cli",
        action,
        target: Some(format!("user:{user}")),
        remote: Some("local".into()),
        agent: None,
        detail,
    }
}

/// Runs a user command.
pub async fn user(cmd: UserCommand) -> anyhow::Result<()> {
    match cmd {
        UserCommand::Add(args) => {
            let role: Role = args.role.parse().map_err(anyhow::Error::msg)?;
            crate::auth::check_user_name(&args.name).map_err(anyhow::Error::msg)?;
            let password = password_from_stdin()?;
            let store = args.db.open().await?;
            let tenant = tenant_named(&store, &args.tenant).await?;
            let hash = tokio::task::spawn_blocking(move || password::hash(&password)).await??;
            let user = UserRow::new(&args.name, hash, "cli");
            let audit = entry(
                Some(&tenant.id),
                "user.create",
                &args.name,
                Some(format!("role {role}")),
            );
            match store.insert_user(&user, &tenant.id, role, &audit).await {
                Ok(()) => {}
                Err(e) if is_unique_violation(&e) => anyhow::bail!(
                    "a user named {:?} exists (`autoflow user grant` gives them a role in another tenant)",
                    args.name
                ),
                Err(e) => return Err(e.into()),
            }
            super::output::line(format!(
                "user {} added: {role} in {}",
                args.name, tenant.name
            ))?;
        }
        UserCommand::Grant(args) => {
            let role: Role = args.role.parse().map_err(anyhow::Error::msg)?;
            let store = args.db.open().await?;
            let tenant = tenant_named(&store, &args.tenant).await?;
            let user = user_named(&store, &args.name).await?;
            let audit = entry(
                Some(&tenant.id),
                "user.role",
                &args.name,
                Some(format!("role {role}")),
            );
            store
                .set_user_role(&user.id, &tenant.id, role, &audit)
                .await?;
            super::output::line(format!("user {}: {role} in {}", args.name, tenant.name))?;
        }
        UserCommand::List(args) => {
            let store = args.db.open().await?;
            let tenant = match &args.tenant {
                Some(t) => Some(tenant_named(&store, t).await?),
                None => None,
            };
            for u in store.users(tenant.as_ref().map(|t| t.id.as_str())).await? {
                let roles: Vec<String> = u
                    .roles
                    .iter()
                    .map(|m| format!("{}:{}", m.tenant, m.role))
                    .collect();
                let state = if u.user.disabled_at.is_some() {
                    "disabled"
                } else {
                    "enabled"
                };
                super::output::line(format!("{}\t{state}\t{}", u.user.name, roles.join(",")))?;
            }
        }
        UserCommand::Disable(args) => {
            let store = args.db.open().await?;
            let user = user_named(&store, &args.name).await?;
            let audit = entry(None, "user.disable", &args.name, None);
            if store.disable_user(&user.id, &audit).await? {
                super::output::line(format!("user {} disabled", args.name))?;
            } else {
                super::output::line(format!("user {} was already disabled", args.name))?;
            }
        }
        UserCommand::Passwd(args) => {
            let password = password_from_stdin()?;
            let store = args.db.open().await?;
            let user = user_named(&store, &args.name).await?;
            let hash = tokio::task::spawn_blocking(move || password::hash(&password)).await??;
            let audit = entry(None, "user.password", &args.name, None);
            store.set_password(&user.id, &hash, &audit).await?;
            super::output::line(format!(
                "password of {} set; their sessions ended",
                args.name
            ))?;
        }
    }
    Ok(())
}
