//! `autoflow server --audit-heads FILE`: appends each audit chain's newest hash to a file
//! outside the database whenever it moves (checked every `--audit-heads-secs`, and at the
//! stop), so that `autoflow audit verify --heads FILE` sees a chain whose newest entries were
//! removed or that was rewritten whole, which the chain alone cannot show.
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

use crate::store::Store;
use crate::store::audit_chain::head_line;

/// Options of the heads file.
#[derive(Debug, Clone, clap::Args)]
pub struct AuditHeadArgs {
    /// Append each audit chain's newest hash to this file when it moves (a `head` line with
    /// the time; keep the file where the database's operators cannot rewrite it).
    #[arg(long, env = "AUTOFLOW_AUDIT_HEADS")]
    pub audit_heads: Option<PathBuf>,
    /// How often the heads are looked at, in seconds.
    #[arg(long, env = "AUTOFLOW_AUDIT_HEADS_SECS", default_value_t = 60)]
    pub audit_heads_secs: u64,
}

impl AuditHeadArgs {
    /// Starts the keeper when a file is given: the file is opened (created if need be) now, so
    /// that a wrong path stops the start.
    pub fn start(
        &self,
        store: Store,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
        let Some(path) = &self.audit_heads else {
            return Ok(None);
        };
        open(path)?;
        let every = Duration::from_secs(self.audit_heads_secs.max(1));
        Ok(Some(tokio::spawn(keep(store, path.clone(), every, stop))))
    }
}

fn open(path: &Path) -> anyhow::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("--audit-heads {}: cannot open it to append", path.display()))
}

/// Writes the heads that moved, every `every` and once more at the stop.
async fn keep(
    store: Store,
    path: PathBuf,
    every: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut written = BTreeMap::new();
    loop {
        if let Err(e) = write_moved(&store, &path, &mut written).await {
            tracing::warn!("audit heads: {e:#}");
        }
        if *stop.borrow() {
            return;
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = stop.changed() => {}
        }
    }
}

/// Appends a line for each head that differs from what `written` holds, and records it there.
async fn write_moved(
    store: &Store,
    path: &Path,
    written: &mut BTreeMap<String, String>,
) -> anyhow::Result<()> {
    let heads = store.audit_heads().await?;
    let at = crate::pipeline::cron::rfc3339(crate::store::now_ms()).unwrap_or_default();
    let mut lines = String::new();
    for (tenant, hash) in &heads {
        if written.get(tenant) != Some(hash) {
            lines.push_str(&head_line(tenant, hash, Some(&at)));
            lines.push('\n');
        }
    }
    if lines.is_empty() {
        return Ok(());
    }
    let mut file = open(path)?;
    file.write_all(lines.as_bytes())
        .and_then(|()| file.sync_data())
        .with_context(|| format!("--audit-heads {}: cannot write it", path.display()))?;
    *written = heads;
    Ok(())
}
