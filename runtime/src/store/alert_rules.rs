//! A tenant's own alert rules (`PUT /v1/alert-rules/{name}`): each an [`AlertRule`] with a name
//! and the pipelines it selects (every pipeline when none are named), applied at each selected
//! pipeline's run ends and by the alert watch besides the pipeline's own rules, with incidents
//! of their own.
use serde::Serialize;
use sqlx::Row;

use super::audit::NewAudit;
use super::{Result, Store, StoreError, now_ms};
use crate::pipeline::AlertRule;

/// A tenant's alert rule.
#[derive(Debug, Clone, Serialize)]
pub struct TenantRule {
    /// Its name, unique in the tenant.
    pub name: String,
    /// The pipelines it judges: names, or prefixes ending in `*`; empty: every pipeline.
    pub pipelines: Vec<String>,
    /// The rule.
    #[serde(flatten)]
    pub rule: AlertRule,
    /// When it was first set, Unix ms.
    pub created_at: i64,
    /// When it was last set.
    pub updated_at: i64,
    /// Who set it last.
    pub updated_by: Option<String>,
}

impl TenantRule {
    /// Whether the rule judges pipeline `name`.
    pub fn selects(&self, name: &str) -> bool {
        self.pipelines.is_empty()
            || self.pipelines.iter().any(|p| match p.strip_suffix('*') {
                Some(prefix) => name.starts_with(prefix),
                None => p == name,
            })
    }

    /// The identity of its incidents: its name and the rule's (never a pipeline rule's).
    pub fn key(&self) -> String {
        format!("{}{}", key_prefix(&self.name), self.rule.key())
    }
}

/// What the incident keys of tenant rule `name` start with.
fn key_prefix(name: &str) -> String {
    format!("tenant-rule:{name}:")
}

/// Closes the tenant's open incidents of rule `name` (without a `resolved` alert) whose key is
/// not `keep`: the rule was deleted, or its thresholds changed.
async fn close_incidents(
    conn: &mut sqlx::AnyConnection,
    tenant: &str,
    name: &str,
    keep: &str,
) -> Result<()> {
    // A rule's name is a-z, 0-9, - and _: only `_` needs escaping in the pattern.
    let pattern = format!("{}%", key_prefix(name).replace('_', "\\_"));
    sqlx::query(
        "DELETE FROM alert_incidents WHERE tenant_id = $1 AND rule_key LIKE $2 ESCAPE '\\' \
         AND rule_key <> $3",
    )
    .bind(tenant)
    .bind(pattern)
    .bind(keep)
    .execute(conn)
    .await?;
    Ok(())
}

fn rule_of(r: &sqlx::any::AnyRow) -> Result<TenantRule> {
    let name: String = r.try_get("name")?;
    let corrupt = |e: serde_json::Error| StoreError::Corrupt(format!("alert rule {name}: {e}"));
    let rule: String = r.try_get("rule")?;
    let pipelines: String = r.try_get("pipelines")?;
    Ok(TenantRule {
        rule: serde_json::from_str(&rule).map_err(corrupt)?,
        pipelines: serde_json::from_str(&pipelines).map_err(corrupt)?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        updated_by: r.try_get("updated_by")?,
        name,
    })
}

const COLUMNS: &str = "name, rule, pipelines, created_at, updated_at, updated_by";

/// The tenant's rules, by name, in the caller's connection (a run's end reads them in its
/// transaction).
pub(super) async fn tenant_rules_in(
    conn: &mut sqlx::AnyConnection,
    tenant: &str,
) -> Result<Vec<TenantRule>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM alert_rules WHERE tenant_id = $1 ORDER BY name"
    ))
    .bind(tenant)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(rule_of).collect()
}

impl Store {
    /// Sets the tenant's rule `rule.name` (its `created_at` kept when it existed), closing the
    /// open incidents of its old thresholds and recording `audit`, in one transaction; the rule
    /// as stored, and whether one by that name existed before.
    pub async fn put_alert_rule(
        &self,
        tenant: &str,
        rule: &TenantRule,
        audit: &NewAudit<'_>,
    ) -> Result<(TenantRule, bool)> {
        let (name, pipelines) = (&rule.name, &rule.pipelines);
        let text =
            serde_json::to_string(&rule.rule).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let selected =
            serde_json::to_string(pipelines).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let now = now_ms();
        let mut tx = self.begin().await?;
        let created: Option<i64> = sqlx::query_scalar(
            "SELECT created_at FROM alert_rules WHERE tenant_id = $1 AND name = $2",
        )
        .bind(tenant)
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO alert_rules (tenant_id, name, rule, pipelines, created_at, updated_at, updated_by) \
             VALUES ($1, $2, $3, $4, $5, $5, $6) ON CONFLICT (tenant_id, name) DO UPDATE SET \
             rule = excluded.rule, pipelines = excluded.pipelines, updated_at = excluded.updated_at, \
             updated_by = excluded.updated_by",
        )
        .bind(tenant)
        .bind(name)
        .bind(text)
        .bind(selected)
        .bind(now)
        .bind(audit.actor)
        .execute(&mut *tx)
        .await?;
        close_incidents(&mut tx, tenant, name, &rule.key()).await?;
        super::audit::insert(&mut tx, audit).await?;
        tx.commit().await?;
        let stored = TenantRule {
            created_at: created.unwrap_or(now),
            updated_at: now,
            updated_by: Some(audit.actor.to_string()),
            ..rule.clone()
        };
        Ok((stored, created.is_some()))
    }

    /// Deletes the tenant's rule `name`, recording `audit`; whether it existed. Its open
    /// incidents close without a `resolved` alert.
    pub async fn delete_alert_rule(
        &self,
        tenant: &str,
        name: &str,
        audit: &NewAudit<'_>,
    ) -> Result<bool> {
        let delete = sqlx::query("DELETE FROM alert_rules WHERE tenant_id = $1 AND name = $2")
            .bind(tenant)
            .bind(name);
        let mut tx = self.begin().await?;
        if delete.execute(&mut *tx).await?.rows_affected() == 0 {
            return Ok(false);
        }
        close_incidents(&mut tx, tenant, name, "").await?;
        super::audit::insert(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The tenant's rules, by name.
    pub async fn alert_rules(&self, tenant: &str) -> Result<Vec<TenantRule>> {
        let mut conn = self.pool.acquire().await?;
        tenant_rules_in(&mut conn, tenant).await
    }

    /// The tenant's rule `name`.
    pub async fn alert_rule(&self, tenant: &str, name: &str) -> Result<Option<TenantRule>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM alert_rules WHERE tenant_id = $1 AND name = $2"
        ))
        .bind(tenant)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(rule_of).transpose()
    }

    /// Every tenant's rules that the clock judges (`sla_missed`, `schedule_lag`), with their
    /// tenant.
    pub async fn timed_tenant_rules(&self) -> Result<Vec<(String, TenantRule)>> {
        let rows = sqlx::query(&format!(
            "SELECT tenant_id, {COLUMNS} FROM alert_rules WHERE rule LIKE $1 OR rule LIKE $2 \
             ORDER BY tenant_id, name"
        ))
        .bind("%\"sla_missed\"%")
        .bind("%\"schedule_lag\"%")
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let rule = rule_of(r)?;
            if rule.rule.is_timed() {
                out.push((r.try_get("tenant_id")?, rule));
            }
        }
        Ok(out)
    }
}
