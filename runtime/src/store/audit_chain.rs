//! Checking the audit log's hash chains ([`super::audit`]): every entry after the chain's
//! start must hash to its stored `hash`, and its `prev_hash` must be the `hash` of the entry
//! before it in its tenant's chain. Entries written before the chain existed (migration 0010:
//! their ids are at most `audit_chain_start.legacy_through`) are counted and skipped.
//!
//! What this cannot see alone: the removal of a chain's newest entries (the rest is still a
//! whole chain), or a rewrite of a whole chain from some entry on. Keep the heads
//! ([`ChainReport::heads`]) elsewhere to catch those: a head kept outside must still be an
//! entry of its chain ([`Store::verify_audit_against`]). A kept head is a line of text,
//! [`head_line`], as `autoflow audit verify` prints them and `autoflow server --audit-heads`
//! appends them to a file.
use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;
use sqlx::Row;

use super::audit::{Chained, GENESIS, entry_hash};
use super::{Result, Store};

/// Which chains to check.
#[derive(Debug, Clone, Copy)]
pub enum ChainScope<'a> {
    /// Every tenant's, and that of the entries of no tenant.
    All,
    /// One tenant's; with `true`, also the entries of no tenant.
    Tenant(&'a str, bool),
}

/// The first entry found broken.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ChainBreak {
    /// The entry's id.
    pub id: i64,
    /// Its tenant id (`None`: the chain of entries of no tenant).
    pub tenant: Option<String>,
    /// What is wrong with it.
    pub reason: String,
}

/// What a check found.
#[derive(Debug, Clone, Serialize)]
pub struct ChainReport {
    /// Entries checked.
    pub checked: u64,
    /// Entries older than the chain, not checked.
    pub legacy: u64,
    /// The newest hash of each chain checked, by tenant id (`""`: no tenant).
    pub heads: BTreeMap<String, String>,
    /// The first broken entry, if any.
    pub broken: Option<ChainBreak>,
    /// The kept heads checked against that are not in their chains (when nothing is broken
    /// before): entries were removed from a chain's end, or the chain was rewritten.
    pub lost: Vec<KeptHead>,
}

/// A chain's head as it was kept outside the database.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct KeptHead {
    /// The chain's tenant id (`""`: the entries of no tenant).
    pub tenant: String,
    /// The hash of the chain's newest entry when it was kept.
    pub hash: String,
}

/// The line that keeps a head: `head TAB tenant-id-or-"-" TAB hash`, and a time after another
/// tab when `at` is given.
pub fn head_line(tenant: &str, hash: &str, at: Option<&str>) -> String {
    let tenant = if tenant.is_empty() { "-" } else { tenant };
    match at {
        Some(at) => format!("head\t{tenant}\t{hash}\t{at}"),
        None => format!("head\t{tenant}\t{hash}"),
    }
}

/// The head a line keeps: `None` for a line that is not a head line (it does not start with
/// `head`), an error for a head line that is malformed.
pub fn parse_head_line(line: &str) -> std::result::Result<Option<KeptHead>, String> {
    let mut fields = line.trim_end_matches('\r').split('\t');
    if fields.next() != Some("head") {
        return Ok(None);
    }
    let (Some(tenant), Some(hash)) = (fields.next(), fields.next()) else {
        return Err("a head line is `head TAB TENANT TAB HASH`".to_string());
    };
    if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("{hash:?} is not a sha256 hash (64 hex digits)"));
    }
    let tenant = if tenant == "-" { "" } else { tenant };
    Ok(Some(KeptHead {
        tenant: tenant.to_string(),
        hash: hash.to_ascii_lowercase(),
    }))
}

/// Entries read at a time.
const PAGE: i64 = 2000;

impl Store {
    /// Checks the chains of `scope`, oldest entry first; stops at the first broken entry.
    pub async fn verify_audit(&self, scope: ChainScope<'_>) -> Result<ChainReport> {
        self.verify_audit_against(scope, &[]).await
    }

    /// [`Store::verify_audit`], and each of `kept` (of a chain in `scope`) must be an entry of
    /// its chain; those that are not are [`ChainReport::lost`].
    pub async fn verify_audit_against(
        &self,
        scope: ChainScope<'_>,
        kept: &[KeptHead],
    ) -> Result<ChainReport> {
        let mut unseen: HashSet<&KeptHead> = kept.iter().collect();
        let legacy_through: i64 =
            sqlx::query("SELECT COALESCE(MAX(legacy_through), 0) AS n FROM audit_chain_start")
                .fetch_one(&self.pool)
                .await?
                .try_get("n")?;
        let (tenant, anonymous, all) = match scope {
            ChainScope::All => ("", 1i64, 1i64),
            ChainScope::Tenant(t, anon) => (t, i64::from(anon), 0),
        };
        let mut report = ChainReport {
            checked: 0,
            legacy: 0,
            heads: Default::default(),
            broken: None,
            lost: Vec::new(),
        };
        // The last hash and entry of each chain so far.
        let mut heads: HashMap<Option<String>, (String, Option<i64>)> = HashMap::new();
        let mut after = 0i64;
        loop {
            let rows = sqlx::query(
                "SELECT id, tenant_id, at, actor, action, target, remote, agent, detail, count, prev_hash, hash \
                 FROM audit_log WHERE id > $1 AND ($2 = 1 OR tenant_id = $3 OR ($4 = 1 AND tenant_id IS NULL)) \
                 ORDER BY id LIMIT $5",
            )
            .bind(after)
            .bind(all)
            .bind(tenant)
            .bind(anonymous)
            .bind(PAGE)
            .fetch_all(&self.pool)
            .await?;
            let Some(last) = rows.last() else { break };
            after = last.try_get("id")?;
            for r in &rows {
                let id: i64 = r.try_get("id")?;
                let tenant_id: Option<String> = r.try_get("tenant_id")?;
                if id <= legacy_through {
                    report.legacy += 1;
                    continue;
                }
                report.checked += 1;
                let (expected, before) = heads
                    .get(&tenant_id)
                    .cloned()
                    .unwrap_or_else(|| (GENESIS.to_string(), None));
                let prev: Option<String> = r.try_get("prev_hash")?;
                let stored: Option<String> = r.try_get("hash")?;
                let (target, remote, agent, detail): (
                    Option<String>,
                    Option<String>,
                    Option<String>,
                    Option<String>,
                ) = (
                    r.try_get("target")?,
                    r.try_get("remote")?,
                    r.try_get("agent")?,
                    r.try_get("detail")?,
                );
                let (actor, action): (String, String) = (r.try_get("actor")?, r.try_get("action")?);
                let entry = Chained {
                    tenant: tenant_id.as_deref(),
                    at: r.try_get("at")?,
                    actor: &actor,
                    action: &action,
                    target: target.as_deref(),
                    remote: remote.as_deref(),
                    agent: agent.as_deref(),
                    detail: detail.as_deref(),
                    count: r.try_get("count")?,
                };
                let reason = match (&prev, &stored) {
                    (None, _) | (_, None) => Some("it has no hash: it was added or changed outside the server".to_string()),
                    (Some(p), Some(h)) if *h != entry_hash(&entry, p) => {
                        Some("its content does not match its hash: it was changed".to_string())
                    }
                    (Some(p), _) if *p != expected => Some(match before {
                        Some(b) => format!(
                            "it does not follow entry {b}, the entry before it in its chain: an entry was deleted, inserted or moved before it"
                        ),
                        None => "it is the first entry of its chain but links to another: an entry was deleted or moved before it".to_string(),
                    }),
                    _ => None,
                };
                if let Some(reason) = reason {
                    report.broken = Some(ChainBreak {
                        id,
                        tenant: tenant_id,
                        reason,
                    });
                    return Ok(report);
                }
                let hash = stored.unwrap_or_default();
                if !unseen.is_empty() {
                    unseen.remove(&KeptHead {
                        tenant: tenant_id.clone().unwrap_or_default(),
                        hash: hash.clone(),
                    });
                }
                heads.insert(tenant_id, (hash, Some(id)));
            }
        }
        report.heads = heads
            .into_iter()
            .map(|(t, (h, _))| (t.unwrap_or_default(), h))
            .collect();
        report.lost = kept
            .iter()
            .filter(|k| unseen.contains(k))
            .cloned()
            .collect();
        Ok(report)
    }

    /// The newest hash of each chain (by tenant id, `""`: no tenant), without checking them:
    /// what `--audit-heads` keeps.
    pub async fn audit_heads(&self) -> Result<BTreeMap<String, String>> {
        let rows = sqlx::query(
            "SELECT tenant_id, hash FROM audit_log WHERE hash IS NOT NULL AND id IN \
             (SELECT MAX(id) FROM audit_log GROUP BY tenant_id)",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let tenant: Option<String> = r.try_get("tenant_id")?;
                Ok((tenant.unwrap_or_default(), r.try_get("hash")?))
            })
            .collect()
    }
}
