//! Alert delivery: the outbox's deliverer. Alerts are committed with the run's end (see
//! [`crate::store::alerts`]), wherever it happens; each server's deliverer claims due
//! deliveries from the database, sends them to their channels (signed webhooks, Slack blocks,
//! e-mail over SMTP) under the egress policy, records every attempt, and retries with exponential backoff until
//! the receiver takes it or the attempts are used up (then the delivery stays `failed`,
//! visible in `GET /v1/alerts/{id}/deliveries`). Delivery is at least once: a receiver
//! deduplicates by the `Autoflow-Delivery` header. The rules about time are judged by the
//! [`watch`].
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

pub mod channel;
pub mod message;
pub mod send;
pub mod sign;
pub mod smtp;
pub mod watch;

pub use channel::ChannelConfig;

use crate::egress::Policy;
use crate::secrets::MasterKey;
use crate::store::alerts::{AlertRow, AttemptRow, Claimed, Next};
use crate::store::{Store, now_ms};
use crate::telemetry;

/// The deliverer's settings.
#[derive(Debug, Clone)]
pub struct DeliverySettings {
    /// The first retry's delay; each next one doubles it (at most 10 minutes).
    pub retry_base: Duration,
    /// Attempts per delivery before it is `failed`.
    pub max_attempts: u32,
    /// How often the database is read for due deliveries (alerts committed by this process
    /// wake the deliverer at once).
    pub poll: Duration,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        Self {
            retry_base: Duration::from_secs(1),
            max_attempts: 10,
            poll: Duration::from_millis(250),
        }
    }
}

/// Sends alerts; cheap to clone.
#[derive(Clone)]
pub struct Deliverer {
    store: Store,
    key: Arc<MasterKey>,
    egress: Policy,
    settings: DeliverySettings,
    /// The server's URL as people reach it (links to runs).
    public_url: Arc<OnceLock<String>>,
    /// One lock per channel (tenant, name): a channel's sends are counted against its rate
    /// one at a time in this process.
    channel_locks: Arc<std::sync::Mutex<ChannelLocks>>,
}

/// The per-channel locks, by (tenant, channel name).
type ChannelLocks = HashMap<(String, String), Arc<tokio::sync::Mutex<()>>>;

/// The window of a channel's rate.
const RATE_WINDOW_MS: i64 = 3_600_000;

/// Deliveries claimed at once.
const BATCH: i64 = 32;
/// A claimed delivery is this deliverer's this long (longer than an attempt may take).
const LEASE_MS: i64 = 20_000;
/// The longest delay between attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(600);

/// What a test send got: the receiver's status and answer, or why it failed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TestResult {
    /// Whether the receiver took it.
    pub delivered: bool,
    /// Its HTTP status.
    pub http_status: Option<u16>,
    /// The start of its answer.
    pub response: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
}

impl Deliverer {
    /// A deliverer for `store`'s outbox, opening channels with `key`, connecting under `egress`.
    pub fn new(
        store: Store,
        key: Arc<MasterKey>,
        egress: Policy,
        settings: DeliverySettings,
    ) -> Self {
        Self {
            store,
            key,
            egress,
            settings,
            public_url: Arc::default(),
            channel_locks: Arc::default(),
        }
    }

    /// Sets the server's public URL (the first call wins).
    pub fn set_public_url(&self, url: &str) {
        let _ = self.public_url.set(url.trim_end_matches('/').to_string());
    }

    /// The egress policy channel URLs obey.
    pub fn egress(&self) -> &Policy {
        &self.egress
    }

    /// Delivers until `stop` turns true.
    pub async fn run(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let slots = Arc::new(tokio::sync::Semaphore::new(BATCH as usize));
        loop {
            if *stop.borrow() {
                return;
            }
            let claimed = match self.store.claim_deliveries(BATCH, LEASE_MS).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!("alert delivery: cannot read the outbox: {e}");
                    Vec::new()
                }
            };
            let idle = claimed.is_empty();
            for c in claimed {
                let Ok(permit) = slots.clone().acquire_owned().await else {
                    return;
                };
                let me = self.clone();
                tokio::spawn(async move {
                    me.attempt(c).await;
                    drop(permit);
                });
            }
            if idle {
                tokio::select! {
                    _ = self.store.alerts_wake.notified() => {}
                    _ = tokio::time::sleep(self.settings.poll) => {}
                    _ = stop.changed() => {}
                }
            }
        }
    }

    /// The lock of `tenant`'s channel `name`.
    fn channel_lock(&self, tenant: &str, name: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.channel_locks.lock().unwrap_or_else(|p| p.into_inner());
        locks
            .entry((tenant.to_string(), name.to_string()))
            .or_default()
            .clone()
    }

    /// When a channel that took `max` sends an hour may take the next, if it is over its rate
    /// now: the oldest send of the window ages out then.
    async fn over_rate(&self, tenant: &str, name: &str, max: i64) -> Option<(i64, i64)> {
        let now = now_ms();
        match self
            .store
            .channel_sends_since(tenant, name, now - RATE_WINDOW_MS)
            .await
        {
            Ok((n, oldest)) if n >= max.max(1) => Some((n, oldest.unwrap_or(now) + RATE_WINDOW_MS)),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!("alert delivery: cannot count the sends to channel {name}: {e}");
                None
            }
        }
    }

    /// One attempt of a claimed delivery, recorded; a delivery to a channel over its rate is
    /// put back until the window moves, without an attempt.
    async fn attempt(&self, c: Claimed) {
        let lock = self.channel_lock(&c.tenant, &c.delivery.channel);
        let _serial = lock.lock().await;
        let at = now_ms();
        let n = c.delivery.attempts + 1;
        let sent = match self.store.channel(&c.tenant, &c.delivery.channel).await {
            Ok(Some(ch)) => {
                let max = ch.info.max_per_hour;
                if let Some((sends, next_at)) = self.over_rate(&c.tenant, &ch.info.name, max).await
                {
                    let why = format!(
                        "rate-limited: channel {} took {sends} sends in the last hour (at most {max}); \
                         waiting for the window to move",
                        ch.info.name
                    );
                    if let Err(e) = self
                        .store
                        .postpone_delivery(&c.delivery.id, c.delivery.attempts, next_at, &why)
                        .await
                    {
                        tracing::warn!("alert delivery {}: cannot postpone: {e}", c.delivery.id);
                    }
                    telemetry::alert_delivery(&c.tenant, &ch.info.name, "rate_limited", None);
                    return;
                }
                match ChannelConfig::open(&self.key, &c.tenant, &ch.info.name, &ch.sealed) {
                    Ok(config) => {
                        self.send(&config, &c.alert, &c.tenant, &c.delivery.id)
                            .await
                    }
                    Err(e) => failed(e),
                }
            }
            Ok(None) => failed(format!("no channel {:?} in the tenant", c.delivery.channel)),
            Err(e) => failed(format!("cannot read the channel: {e}")),
        };
        let (next, outcome) = if sent.ok() {
            (Next::Delivered, "delivered")
        } else if n >= i64::from(self.settings.max_attempts.max(1)) {
            (Next::Failed, "failed")
        } else {
            (Next::RetryAt(now_ms() + millis(self.backoff(n))), "retry")
        };
        telemetry::alert_delivery(&c.tenant, &c.delivery.channel, outcome, Some(sent.took));
        let row = AttemptRow {
            attempt: n,
            at,
            duration_ms: millis(sent.took),
            http_status: sent.status.map(i64::from),
            response: sent.response,
            error: sent.error,
        };
        if let Err(e) = self.store.record_attempt(&c.delivery.id, &row, next).await {
            tracing::warn!(
                "alert delivery {}: cannot record attempt {n}: {e}",
                c.delivery.id
            );
        }
    }

    /// The delay after failed attempt `n` (1, 2, ...).
    fn backoff(&self, n: i64) -> Duration {
        let shift = u32::try_from(n.saturating_sub(1)).unwrap_or(0).min(20);
        self.settings
            .retry_base
            .saturating_mul(1 << shift)
            .min(MAX_BACKOFF)
    }

    /// Where `alert` points people: its run, else (a verdict of the clock before any run)
    /// its pipeline.
    fn link(&self, alert: &AlertRow) -> String {
        let base = self.public_url.get().map_or("", String::as_str);
        if alert.run_id.is_empty() {
            format!("{base}/v1/pipelines/{}", alert.pipeline)
        } else {
            format!("{base}/v1/runs/{}", alert.run_id)
        }
    }

    /// Sends `alert` of `tenant` to `config`, as delivery `delivery`.
    pub async fn send(
        &self,
        config: &ChannelConfig,
        alert: &AlertRow,
        tenant: &str,
        delivery: &str,
    ) -> send::Sent {
        let link = self.link(alert);
        if let ChannelConfig::Email(mail) = config {
            let message = message::email(alert, tenant, &link, mail, delivery);
            return smtp::send(&self.egress, mail, &message).await;
        }
        let url = match config {
            ChannelConfig::Webhook { url, .. } | ChannelConfig::Slack { url } => url,
            ChannelConfig::Email(_) => return failed("not an HTTP channel".into()),
        };
        let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
        let body = match config {
            ChannelConfig::Webhook { secret, .. } => {
                let body = message::webhook(alert, tenant, &link)
                    .to_string()
                    .into_bytes();
                headers.push(("Autoflow-Delivery".into(), delivery.to_string()));
                headers.push(("Autoflow-Alert".into(), alert.id.clone()));
                if let Some(secret) = secret {
                    let t = now_ms() / 1000;
                    headers.push((
                        sign::SIGNATURE_HEADER.into(),
                        sign::signature(secret.as_bytes(), t, &body),
                    ));
                }
                body
            }
            ChannelConfig::Slack { .. } | ChannelConfig::Email(_) => {
                message::slack(alert, &link).to_string().into_bytes()
            }
        };
        send::post(&self.egress, url, &headers, body).await
    }

    /// Sends a test alert to `config` (channel `name` of `tenant`).
    pub async fn send_test(&self, config: &ChannelConfig, tenant: &str, name: &str) -> TestResult {
        let alert = AlertRow {
            id: format!("test-{}", crate::store::random_hex(8)),
            pipeline: "(test)".into(),
            version: 0,
            run_id: "(test)".into(),
            rule: "test".into(),
            rule_key: "test".into(),
            severity: "info".into(),
            state: "test".into(),
            incident_id: String::new(),
            summary: format!("a test of channel {name}"),
            step: None,
            error: None,
            created_at: now_ms(),
            rule_name: None,
            deliveries: Vec::new(),
        };
        let sent = self.send(config, &alert, tenant, &alert.id).await;
        TestResult {
            delivered: sent.ok(),
            http_status: sent.status,
            response: sent.response,
            error: sent.error,
        }
    }
}

fn failed(error: String) -> send::Sent {
    send::Sent::failed(None, None, error, Duration::ZERO)
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
