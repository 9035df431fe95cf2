//! What the alert watch ([`crate::alerts::watch`]) reads and writes: the newest versions that
//! have rules about time, whether a run succeeded in a span, when a schedule slot's run
//! started, and a rule's verdict recorded through the outbox like a run's end's.
use sqlx::Row;

use super::alerts::{Raise, raise};
use super::pipelines::Newest;
use super::{Result, Store};

impl Store {
    /// The newest version of every pipeline whose rules include `sla_missed` or
    /// `schedule_lag`.
    pub async fn timed_rules(&self) -> Result<Vec<Newest>> {
        self.newest_versions_with(&["\"sla_missed\"", "\"schedule_lag\""])
            .await
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
