//! `autoflow audit verify`: checks the audit log's hash chains directly in the server's database
//! (`--data-dir` / `--database`); exits non-zero naming the first broken entry.
use crate::store::audit_chain::ChainScope;

use super::database::DatabaseArgs;

/// `autoflow audit ...`
#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Check every tenant's chain; exit status 1 at the first broken entry, which is named.
    Verify(VerifyArgs),
}

/// Options of `autoflow audit verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The server's database.
    #[command(flatten)]
    pub db: DatabaseArgs,
}

/// Runs an audit command.
pub async fn audit(cmd: AuditCommand) -> anyhow::Result<()> {
    let AuditCommand::Verify(args) = cmd;
    let store = args.db.open().await?;
    let report = store.verify_audit(ChainScope::All).await?;
    if let Some(b) = &report.broken {
        let tenant = match &b.tenant {
            Some(id) => {
                let name = store
                    .tenants()
                    .await?
                    .into_iter()
                    .find(|t| &t.id == id)
                    .map_or_else(|| id.clone(), |t| t.name);
                format!("tenant {name}")
            }
            None => "entries of no tenant".to_string(),
        };
        anyhow::bail!(
            "the audit log is broken at entry {} ({tenant}): {} ({} entries checked before it)",
            b.id,
            b.reason,
            report.checked.saturating_sub(1)
        );
    }
    super::output::line(format!(
        "audit log intact: {} entries in {} chains; {} older entries (before the chain began) not checked",
        report.checked,
        report.heads.len(),
        report.legacy
    ))?;
    for (tenant, head) in &report.heads {
        let tenant = if tenant.is_empty() { "-" } else { tenant };
        super::output::line(format!("head\t{tenant}\t{head}"))?;
    }
    Ok(())
}
