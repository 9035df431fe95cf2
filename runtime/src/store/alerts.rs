//! The alert outbox. When an attempt ends, [`on_run_end`] applies the pipeline's alert rules
//! and the tenant's that select it ([`super::alert_rules`]) in the same transaction: a rule that starts firing opens an incident and writes a `firing`
//! alert, one that passes again closes it with a `resolved` alert (nothing while the incident
//! stays open or closed), each alert with one pending delivery per channel. Deliverers claim
//! due deliveries under a lease, record every attempt, and move a delivery to `delivered`,
//! back to `pending` later (backoff), or to `failed` once its attempts are used up.
use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::{Result, Store, now_ms, random_hex};
use crate::pipeline::{AlertRule, AlertWhen, RunEnd};
use crate::status::RunStatus;

/// An alert: a rule of a pipeline started firing, or passed again, at a run's end.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AlertRow {
    /// Id.
    pub id: String,
    /// Pipeline.
    pub pipeline: String,
    /// Its version the run ran.
    pub version: i64,
    /// The run whose end raised it.
    pub run_id: String,
    /// The rule's `when`.
    pub rule: String,
    /// The rule's identity (its `when` and thresholds).
    pub rule_key: String,
    /// The rule's severity.
    pub severity: String,
    /// `firing` or `resolved`.
    pub state: String,
    /// The id of the `firing` alert that opened the incident (its own id when firing).
    pub incident_id: String,
    /// What happened, for people.
    pub summary: String,
    /// The step that failed, if one did.
    pub step: Option<String>,
    /// The run's error, if any.
    pub error: Option<String>,
    /// When, Unix ms (the run's end).
    pub created_at: i64,
    /// The tenant rule (`/v1/alert-rules`) that raised it; `None`: the pipeline's own.
    pub rule_name: Option<String>,
    /// Its deliveries, one per channel.
    #[serde(default)]
    pub deliveries: Vec<DeliveryRow>,
}

/// One alert's delivery to one channel.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeliveryRow {
    /// Id (sent as `Autoflow-Delivery`).
    pub id: String,
    /// The alert.
    pub alert_id: String,
    /// The channel's name.
    pub channel: String,
    /// `pending`, `delivered` or `failed` (attempts used up: it stays visible).
    pub status: String,
    /// Attempts made.
    pub attempts: i64,
    /// When the next attempt is due (pending), Unix ms.
    pub next_at: i64,
    /// The last failure.
    pub last_error: Option<String>,
    /// Created, Unix ms.
    pub created_at: i64,
    /// Last changed.
    pub updated_at: i64,
    /// Every attempt, oldest first (filled by [`Store::deliveries`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<AttemptRow>,
}

/// One delivery attempt.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AttemptRow {
    /// 1, 2, ...
    pub attempt: i64,
    /// When it started, Unix ms.
    pub at: i64,
    /// How long it took.
    pub duration_ms: i64,
    /// The receiver's HTTP status, if it answered.
    pub http_status: Option<i64>,
    /// The start of its answer.
    pub response: Option<String>,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

/// A delivery claimed for an attempt.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// The delivery.
    pub delivery: DeliveryRow,
    /// Its tenant.
    pub tenant: String,
    /// Its alert.
    pub alert: AlertRow,
}

/// What became of a delivery after an attempt.
#[derive(Debug, Clone, Copy)]
pub enum Next {
    /// The receiver took it.
    Delivered,
    /// Try again at this time (Unix ms).
    RetryAt(i64),
    /// Attempts used up: it stays `failed`, visible.
    Failed,
}

/// The one part of a stored definition the rules need.
#[derive(Deserialize)]
struct Rules {
    #[serde(default)]
    alerts: Vec<AlertRule>,
}

/// How an attempt ended, for the rules.
#[derive(Debug, Clone, Copy)]
pub(super) enum Ended<'a> {
    /// The run ended with `status` and its report.
    Run(RunStatus, Option<&'a serde_json::Value>),
    /// The attempt failed and the run was queued again.
    Retried,
    /// The attempt's worker (named) stopped renewing its lease and the attempt was taken back.
    Lost(&'a str),
}

/// A rule to apply to a run's end: the pipeline's own, or one of the tenant's.
struct Applied<'a> {
    rule: &'a AlertRule,
    key: String,
    name: Option<&'a str>,
}

/// Applies the alert rules of run `run`'s pipeline version, and the tenant's rules that select
/// the pipeline, to the end of `attempt`, in the transaction that ends it; how many alerts it
/// wrote.
pub(super) async fn on_run_end(
    conn: &mut sqlx::AnyConnection,
    run: &str,
    attempt: i64,
    ended: Ended<'_>,
    error: Option<&str>,
) -> Result<usize> {
    let row = sqlx::query(
        "SELECT r.tenant_id, r.pipeline, r.version, r.started_at, r.max_attempts, v.definition FROM runs r \
         JOIN pipeline_versions v ON v.tenant_id = r.tenant_id AND v.pipeline = r.pipeline \
         AND v.version = r.version WHERE r.id = $1",
    )
    .bind(run)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(0) };
    let tenant: String = row.try_get("tenant_id")?;
    let pipeline: String = row.try_get("pipeline")?;
    let definition: String = row.try_get("definition")?;
    let own: Rules = if definition.contains("\"alerts\"") {
        serde_json::from_str(&definition)
            .map_err(|e| super::StoreError::Corrupt(format!("alert rules of run {run}: {e}")))?
    } else {
        Rules { alerts: Vec::new() }
    };
    let tenants = super::alert_rules::tenant_rules_in(conn, &tenant).await?;
    let mut rules: Vec<Applied> = own
        .alerts
        .iter()
        .map(|rule| Applied {
            rule,
            key: rule.key(),
            name: None,
        })
        .collect();
    rules.extend(
        tenants
            .iter()
            .filter(|t| t.selects(&pipeline))
            .map(|t| Applied {
                rule: &t.rule,
                key: t.key(),
                name: Some(&t.name),
            }),
    );
    if rules.is_empty() {
        return Ok(0);
    }
    let version: i64 = row.try_get("version")?;
    let started: Option<i64> = row.try_get("started_at")?;
    let now = now_ms();
    let mut end = RunEnd {
        attempt,
        max_attempts: row.try_get("max_attempts")?,
        duration_ms: u64::try_from(now - started.unwrap_or(now)).unwrap_or(0),
        ..RunEnd::default()
    };
    let mut step = None;
    match ended {
        Ended::Run(status, report) => {
            end.ended = true;
            end.succeeded = status == RunStatus::Succeeded;
            end.cancelled = status == RunStatus::Cancelled;
            if let Some(report) = report {
                end.count(report);
                step = failed_step(report);
            }
        }
        Ended::Retried => {}
        Ended::Lost(worker) => end.lost = Some(worker.to_string()),
    }
    if end.ended
        && rules
            .iter()
            .any(|a| a.rule.when == AlertWhen::DeadLettersOver)
    {
        end.dead_letters = Some(waiting_dead_letters(conn, &tenant, &pipeline).await?);
    }
    let mut written = 0;
    for applied in &rules {
        let Some(firing) = applied.rule.verdict(&end) else {
            continue;
        };
        let raised = raise(
            conn,
            &Raise {
                tenant: &tenant,
                pipeline: &pipeline,
                version,
                run,
                rule: applied.rule,
                key: applied.key.clone(),
                rule_name: applied.name,
                firing,
                summary: applied.rule.describe(&end),
                step: step.as_deref(),
                error,
                now,
            },
        )
        .await?;
        written += usize::from(raised);
    }
    Ok(written)
}

/// The pipeline's dead letters that wait for a replay.
async fn waiting_dead_letters(
    conn: &mut sqlx::AnyConnection,
    tenant: &str,
    pipeline: &str,
) -> Result<u64> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM dead_letters WHERE tenant_id = $1 AND pipeline = $2 \
         AND replay_run IS NULL",
    )
    .bind(tenant)
    .bind(pipeline)
    .fetch_one(&mut *conn)
    .await?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// One rule's verdict to record: it fires (opening an incident) or passes (closing one).
pub struct Raise<'a> {
    /// The tenant.
    pub tenant: &'a str,
    /// The pipeline.
    pub pipeline: &'a str,
    /// Its version the rule comes from.
    pub version: i64,
    /// The run the alert is about (`""`: none).
    pub run: &'a str,
    /// The rule.
    pub rule: &'a AlertRule,
    /// Its incidents' identity ([`AlertRule::key`], or a tenant rule's key).
    pub key: String,
    /// The tenant rule's name, when it is one.
    pub rule_name: Option<&'a str>,
    /// Whether it fires (else it passes).
    pub firing: bool,
    /// What happened, for people (when firing).
    pub summary: String,
    /// The failed step, if one did.
    pub step: Option<&'a str>,
    /// The run's error, if any.
    pub error: Option<&'a str>,
    /// Now, Unix ms.
    pub now: i64,
}

/// Records `r` in the caller's transaction: a firing rule with no open incident opens one and
/// writes a `firing` alert, a passing rule with an open incident closes it with a `resolved`
/// alert, each alert with a pending delivery per channel; whether it wrote an alert.
pub(super) async fn raise(conn: &mut sqlx::AnyConnection, r: &Raise<'_>) -> Result<bool> {
    let (tenant, pipeline, rule, now) = (r.tenant, r.pipeline, r.rule, r.now);
    let firing = r.firing;
    let key = &r.key;
    let id = random_hex(16);
    let (incident, summary) = if firing {
        let opened = sqlx::query(
            "INSERT INTO alert_incidents (tenant_id, pipeline, rule_key, alert_id, opened_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, pipeline, rule_key) DO NOTHING",
        )
        .bind(tenant)
        .bind(pipeline)
        .bind(key)
        .bind(&id)
        .bind(now)
        .execute(&mut *conn)
        .await?;
        if opened.rows_affected() == 0 {
            return Ok(false);
        }
        (id.clone(), r.summary.clone())
    } else {
        let closed = sqlx::query(
            "DELETE FROM alert_incidents WHERE tenant_id = $1 AND pipeline = $2 AND rule_key = $3 \
             RETURNING alert_id",
        )
        .bind(tenant)
        .bind(pipeline)
        .bind(key)
        .fetch_optional(&mut *conn)
        .await?;
        let Some(closed) = closed else {
            return Ok(false);
        };
        (
            closed.try_get::<String, _>("alert_id")?,
            format!("resolved: {} passes again", rule.when.as_str()),
        )
    };
    let summary = match r.rule_name {
        Some(name) => format!("pipeline {pipeline}: {summary} (tenant rule {name})"),
        None => format!("pipeline {pipeline}: {summary}"),
    };
    sqlx::query(
        "INSERT INTO alerts (id, tenant_id, pipeline, version, run_id, rule_when, rule_key, severity, \
         state, incident_id, summary, step, error, created_at, rule_name) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
    )
    .bind(&id)
    .bind(tenant)
    .bind(pipeline)
    .bind(r.version)
    .bind(r.run)
    .bind(rule.when.as_str())
    .bind(key)
    .bind(rule.severity.as_str())
    .bind(if firing { "firing" } else { "resolved" })
    .bind(&incident)
    .bind(&summary)
    .bind(if firing { r.step } else { None })
    .bind(if firing { r.error } else { None })
    .bind(now)
    .bind(r.rule_name)
    .execute(&mut *conn)
    .await?;
    for channel in &rule.channels {
        sqlx::query(
            "INSERT INTO alert_deliveries (id, alert_id, tenant_id, channel, status, attempts, next_at, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, 'pending', 0, $5, $5, $5)",
        )
        .bind(random_hex(16))
        .bind(&id)
        .bind(tenant)
        .bind(channel)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    Ok(true)
}

/// The first failed step of a report's JSON.
fn failed_step(report: &serde_json::Value) -> Option<String> {
    report
        .get("steps")?
        .as_array()?
        .iter()
        .find(|s| s.get("outcome").and_then(|o| o.as_str()) == Some("failed"))
        .and_then(|s| s.get("id")?.as_str().map(str::to_string))
}

const ALERT_COLUMNS: &str = "id, tenant_id, pipeline, version, run_id, rule_when, rule_key, severity, state, \
     incident_id, summary, step, error, created_at, rule_name";
const DELIVERY_COLUMNS: &str = "id, alert_id, tenant_id, channel, status, attempts, next_at, last_error, \
     created_at, updated_at";

fn alert_of(r: &sqlx::any::AnyRow) -> Result<AlertRow> {
    Ok(AlertRow {
        id: r.try_get("id")?,
        pipeline: r.try_get("pipeline")?,
        version: r.try_get("version")?,
        run_id: r.try_get("run_id")?,
        rule: r.try_get("rule_when")?,
        rule_key: r.try_get("rule_key")?,
        severity: r.try_get("severity")?,
        state: r.try_get("state")?,
        incident_id: r.try_get("incident_id")?,
        summary: r.try_get("summary")?,
        step: r.try_get("step")?,
        error: r.try_get("error")?,
        created_at: r.try_get("created_at")?,
        rule_name: r.try_get("rule_name")?,
        deliveries: Vec::new(),
    })
}

fn delivery_of(r: &sqlx::any::AnyRow) -> Result<DeliveryRow> {
    Ok(DeliveryRow {
        id: r.try_get("id")?,
        alert_id: r.try_get("alert_id")?,
        channel: r.try_get("channel")?,
        status: r.try_get("status")?,
        attempts: r.try_get("attempts")?,
        next_at: r.try_get("next_at")?,
        last_error: r.try_get("last_error")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        history: Vec::new(),
    })
}

impl Store {
    /// Claims up to `limit` due deliveries for `lease_ms` (another deliverer takes one whose
    /// lease ran out: its deliverer died mid-attempt).
    pub async fn claim_deliveries(&self, limit: i64, lease_ms: i64) -> Result<Vec<Claimed>> {
        let now = now_ms();
        // Read first (an idle outbox costs no write), then claim what is still due.
        let due: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM alert_deliveries WHERE status = 'pending' AND next_at <= $1 \
             AND (lease_until IS NULL OR lease_until <= $1) ORDER BY next_at LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        if due.is_empty() {
            return Ok(Vec::new());
        }
        let marks: Vec<String> = (0..due.len()).map(|i| format!("${}", i + 3)).collect();
        let sql = format!(
            "UPDATE alert_deliveries SET lease_until = $1 WHERE id IN ({}) AND status = 'pending' \
             AND (lease_until IS NULL OR lease_until <= $2) RETURNING {DELIVERY_COLUMNS}",
            marks.join(", ")
        );
        let query = due
            .iter()
            .fold(sqlx::query(&sql).bind(now + lease_ms).bind(now), |q, id| {
                q.bind(id)
            });
        let rows = query.fetch_all(&self.pool).await?;
        let mut claimed = Vec::with_capacity(rows.len());
        for r in &rows {
            let delivery = delivery_of(r)?;
            let tenant: String = r.try_get("tenant_id")?;
            let alert = sqlx::query(&format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = $1"))
                .bind(&delivery.alert_id)
                .fetch_one(&self.pool)
                .await?;
            claimed.push(Claimed {
                delivery,
                tenant,
                alert: alert_of(&alert)?,
            });
        }
        Ok(claimed)
    }

    /// Records attempt `attempt.attempt` of `delivery` and what becomes of it; `false` when
    /// another deliverer recorded that attempt first.
    pub async fn record_attempt(
        &self,
        delivery: &str,
        attempt: &AttemptRow,
        next: Next,
    ) -> Result<bool> {
        let mut tx = self.begin().await?;
        let (status, next_at) = match next {
            Next::Delivered => ("delivered", attempt.at),
            Next::RetryAt(at) => ("pending", at),
            Next::Failed => ("failed", attempt.at),
        };
        let done = sqlx::query(
            "UPDATE alert_deliveries SET status = $1, attempts = $2, next_at = $3, lease_until = NULL, \
             last_error = $4, updated_at = $5 WHERE id = $6 AND attempts = $7 AND status = 'pending'",
        )
        .bind(status)
        .bind(attempt.attempt)
        .bind(next_at)
        .bind(attempt.error.as_deref())
        .bind(now_ms())
        .bind(delivery)
        .bind(attempt.attempt - 1)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO alert_delivery_attempts (delivery_id, attempt, at, duration_ms, http_status, response, error) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(delivery)
        .bind(attempt.attempt)
        .bind(attempt.at)
        .bind(attempt.duration_ms)
        .bind(attempt.http_status)
        .bind(attempt.response.as_deref())
        .bind(attempt.error.as_deref())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Puts claimed delivery `delivery` (with `attempts` made) back until `next_at` without
    /// counting an attempt (its channel is over its rate), `why` shown as its last error;
    /// whether it was still pending.
    pub async fn postpone_delivery(
        &self,
        delivery: &str,
        attempts: i64,
        next_at: i64,
        why: &str,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE alert_deliveries SET next_at = $1, lease_until = NULL, last_error = $2, updated_at = $3 \
             WHERE id = $4 AND attempts = $5 AND status = 'pending'",
        )
        .bind(next_at)
        .bind(why)
        .bind(now_ms())
        .bind(delivery)
        .bind(attempts)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The tenant's alerts, newest first (at most `limit`, before alert `before` if given),
    /// each with its deliveries.
    pub async fn alerts(
        &self,
        tenant: &str,
        pipeline: Option<&str>,
        limit: i64,
        before: Option<&str>,
    ) -> Result<Vec<AlertRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE tenant_id = $1 AND ($2 IS NULL OR pipeline = $2) \
             AND ($3 IS NULL OR seq < (SELECT seq FROM alerts WHERE id = $3)) ORDER BY seq DESC LIMIT $4"
        ))
        .bind(tenant)
        .bind(pipeline)
        .bind(before)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut alerts = rows.iter().map(alert_of).collect::<Result<Vec<_>>>()?;
        for a in &mut alerts {
            a.deliveries = self.deliveries_of(&a.id).await?;
        }
        Ok(alerts)
    }

    /// The tenant's alert `id` with its deliveries.
    pub async fn alert(&self, tenant: &str, id: &str) -> Result<Option<AlertRow>> {
        let row = sqlx::query(&format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let mut alert = alert_of(&row)?;
        alert.deliveries = self.deliveries_of(&alert.id).await?;
        Ok(Some(alert))
    }

    async fn deliveries_of(&self, alert: &str) -> Result<Vec<DeliveryRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM alert_deliveries WHERE alert_id = $1 ORDER BY channel"
        ))
        .bind(alert)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(delivery_of).collect()
    }

    /// The deliveries of the tenant's alert `id`, each with every attempt; `None` when there
    /// is no such alert.
    pub async fn deliveries(&self, tenant: &str, id: &str) -> Result<Option<Vec<DeliveryRow>>> {
        let Some(alert) = self.alert(tenant, id).await? else {
            return Ok(None);
        };
        let mut deliveries = alert.deliveries;
        for d in &mut deliveries {
            let rows = sqlx::query(
                "SELECT attempt, at, duration_ms, http_status, response, error FROM alert_delivery_attempts \
                 WHERE delivery_id = $1 ORDER BY seq",
            )
            .bind(&d.id)
            .fetch_all(&self.pool)
            .await?;
            d.history = rows
                .iter()
                .map(|r| {
                    Ok(AttemptRow {
                        attempt: r.try_get("attempt")?,
                        at: r.try_get("at")?,
                        duration_ms: r.try_get("duration_ms")?,
                        http_status: r.try_get("http_status")?,
                        response: r.try_get("response")?,
                        error: r.try_get("error")?,
                    })
                })
                .collect::<Result<_>>()?;
        }
        Ok(Some(deliveries))
    }
}
