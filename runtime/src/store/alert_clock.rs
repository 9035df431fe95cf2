//! What the alert watch ([`crate::alerts::watch`]) reads and writes: the newest versions that
//! have rules about time, whether a run succeeded in a span, when a schedule slot's run
//! started, and a rule's verdict recorded through the outbox like a run's end's.
use sqlx::Row;

use super::alerts::{Raise, raise};
use super::{Result, Store};

/// A pipeline's newest version that has rules the clock judges.
#[derive(Debug, Clone)]
pub struct Timed {
    /// The tenant.
    pub tenant: String,
    /// The pipeline.
    pub pipeline: String,
    /// Its newest version.
    pub version: i64,
    /// When that version was made (nothing before it is judged).
    pub created_at: i64,
    /// That version's definition, parsed.
    pub definition: crate::pipeline::Pipeline,
}

impl Store {
    /// The newest version of every pipeline whose rules include `sla_missed` or
    /// `schedule_lag` (a version that does not parse is left out, with a warning).
    pub async fn timed_rules(&self) -> Result<Vec<Timed>> {
        let rows = sqlx::query(
            "SELECT v.tenant_id, v.pipeline, v.version, v.created_at, v.definition FROM pipeline_versions v \
             JOIN pipelines p ON p.tenant_id = v.tenant_id AND p.name = v.pipeline \
             AND p.latest_version = v.version \
             WHERE v.definition LIKE '%\"sla_missed\"%' OR v.definition LIKE '%\"schedule_lag\"%'",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let text: String = r.try_get("definition")?;
            let pipeline: String = r.try_get("pipeline")?;
            match serde_json::from_str(&text) {
                Ok(definition) => out.push(Timed {
                    tenant: r.try_get("tenant_id")?,
                    pipeline,
                    version: r.try_get("version")?,
                    created_at: r.try_get("created_at")?,
                    definition,
                }),
                Err(e) => tracing::warn!("alert watch: pipeline {pipeline:?} does not parse: {e}"),
            }
        }
        Ok(out)
    }

    /// Whether a run of the pipeline succeeded (finished) in `[from, to]`, Unix ms.
    pub async fn succeeded_between(
        &self,
        tenant: &str,
        pipeline: &str,
        from: i64,
        to: i64,
    ) -> Result<bool> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM runs WHERE tenant_id = $1 AND pipeline = $2 \
             AND status = 'succeeded' AND finished_at >= $3 AND finished_at <= $4",
        )
        .bind(tenant)
        .bind(pipeline)
        .bind(from)
        .bind(to)
        .fetch_one(&self.pool)
        .await?;
        Ok(n > 0)
    }

    /// Whether rule `rule_key` of the pipeline fired at or after `since` (Unix ms).
    pub async fn fired_since(
        &self,
        tenant: &str,
        pipeline: &str,
        rule_key: &str,
        since: i64,
    ) -> Result<bool> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM alerts WHERE tenant_id = $1 AND pipeline = $2 \
             AND rule_key = $3 AND state = 'firing' AND created_at >= $4",
        )
        .bind(tenant)
        .bind(pipeline)
        .bind(rule_key)
        .bind(since)
        .fetch_one(&self.pool)
        .await?;
        Ok(n > 0)
    }

    /// The newest run of the pipeline (its id), if it has one: what a clock's alert links to.
    pub async fn newest_run(&self, tenant: &str, pipeline: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM runs WHERE tenant_id = $1 AND pipeline = $2 ORDER BY seq DESC LIMIT 1",
        )
        .bind(tenant)
        .bind(pipeline)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// The run of the pipeline's schedule slot `fire_at`: its id and when it started, if a
    /// run was queued for the slot (the start `None` while it waits).
    pub async fn slot_run(
        &self,
        tenant: &str,
        pipeline: &str,
        fire_at: i64,
    ) -> Result<Option<(String, Option<i64>)>> {
        let row = sqlx::query(
            "SELECT id, started_at FROM runs WHERE tenant_id = $1 AND pipeline = $2 \
             AND fire_at = $3 ORDER BY seq LIMIT 1",
        )
        .bind(tenant)
        .bind(pipeline)
        .bind(fire_at)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Ok((r.try_get("id")?, r.try_get("started_at")?)))
            .transpose()
    }

    /// Records a verdict of the clock (see [`Raise`]) and wakes the deliverer; whether it
    /// wrote an alert.
    pub async fn raise_alert(&self, r: &Raise<'_>) -> Result<bool> {
        let mut tx = self.begin().await?;
        let raised = raise(&mut tx, r).await?;
        tx.commit().await?;
        if raised {
            self.alerts_wake.notify_one();
        }
        Ok(raised)
    }
}
