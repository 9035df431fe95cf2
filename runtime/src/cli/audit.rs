//! `autoflow audit verify`: checks the audit log's hash chains directly in the server's database
//! (`--data-dir` / `--database`), and the heads kept outside it (`--heads FILE`); exits
//! non-zero naming the first broken entry, or the kept head no longer in its chain.
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::store::audit_chain::{ChainScope, KeptHead, head_line, parse_head_line};

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
    /// A file of heads kept outside the database (its `head` lines, as this command prints
    /// them and `autoflow server --audit-heads` appends them): each must still be an entry of
    /// its chain, or the chain lost its newest entries or was rewritten.
    #[arg(long)]
    pub heads: Option<PathBuf>,
}

/// The heads a file keeps, each with its line number.
fn read_heads(path: &Path) -> anyhow::Result<Vec<(usize, KeptHead)>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--heads {}: cannot read it", path.display()))?;
    let mut heads = Vec::new();
    for (i, line) in text.lines().enumerate() {
        match parse_head_line(line) {
            Ok(Some(head)) => heads.push((i + 1, head)),
            Ok(None) => {}
            Err(e) => anyhow::bail!("--heads {} line {}: {e}", path.display(), i + 1),
        }
    }
    Ok(heads)
}

/// Runs an audit command.
pub async fn audit(cmd: AuditCommand) -> anyhow::Result<()> {
    let AuditCommand::Verify(args) = cmd;
    let kept = match &args.heads {
        Some(path) => read_heads(path)?,
        None => Vec::new(),
    };
    let store = args.db.open().await?;
    let heads: Vec<KeptHead> = kept.iter().map(|(_, h)| h.clone()).collect();
    let report = store.verify_audit_against(ChainScope::All, &heads).await?;
    let tenants = store.tenants().await?;
    let chain = |id: &str| match tenants.iter().find(|t| t.id == id) {
        _ if id.is_empty() => "entries of no tenant".to_string(),
        Some(t) => format!("tenant {}", t.name),
        None => format!("tenant {id}"),
    };
    if let Some(b) = &report.broken {
        let tenant = chain(b.tenant.as_deref().unwrap_or_default());
        anyhow::bail!(
            "the audit log is broken at entry {} ({tenant}): {} ({} entries checked before it)",
            b.id,
            b.reason,
            report.checked.saturating_sub(1)
        );
    }
    if let Some(lost) = report.lost.first() {
        let line = kept.iter().find(|(_, h)| h == lost).map_or(0, |(n, _)| *n);
        let path = args.heads.as_deref().unwrap_or(Path::new("-"));
        anyhow::bail!(
            "the audit log lost a kept head: {} line {line} keeps {} for {}, which is not in that chain \
             (its newest entries were removed, or it was rewritten){}",
            path.display(),
            lost.hash,
            chain(&lost.tenant),
            match report.lost.len() {
                1 => String::new(),
                n => format!("; {} kept heads in all are lost", n),
            }
        );
    }
    super::output::line(format!(
        "audit log intact: {} entries in {} chains; {} older entries (before the chain began) not checked",
        report.checked,
        report.heads.len(),
        report.legacy
    ))?;
    if let Some(path) = &args.heads {
        super::output::line(format!(
            "{} kept heads in {} all found in their chains",
            kept.len(),
            path.display()
        ))?;
    }
    for (tenant, head) in &report.heads {
        super::output::line(head_line(tenant, head, None))?;
    }
    Ok(())
}
