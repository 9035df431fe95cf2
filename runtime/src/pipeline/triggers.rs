//! A pipeline's triggers besides its schedule and the API: a `webhook` trigger starts a run
//! from `POST /v1/hooks/{tenant}/{pipeline}` signed with the tenant's secret `NAME`; a `nats`
//! trigger starts one when messages arrive on a NATS subject (see
//! [`crate::scheduler::events`]), which the run's own source then reads.
//!
//! ```yaml
//! triggers:
//!   - webhook: { secret: NAME }
//!   - nats: { connection: bus, subject: "orders.>", debounce_ms: 500 }
//! ```
use serde::{Deserialize, Serialize};

/// One trigger: exactly one kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerSpec {
    /// Runs started by signed requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookTrigger>,
    /// Runs started by messages on a NATS subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nats: Option<NatsTrigger>,
}

/// A webhook trigger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookTrigger {
    /// The tenant's secret (`PUT /v1/secrets/{name}`) requests are signed with.
    pub secret: String,
}

/// A NATS trigger: a burst of messages on `subject` queues one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsTrigger {
    /// The pipeline's NATS connection (in its `connections`) to listen on.
    pub connection: String,
    /// The subject (wildcards `*` and `>` allowed), usually one a JetStream stream captures.
    pub subject: String,
    /// How long after a burst's first message the run is queued, taking in the rest of the
    /// burst (default 1000 ms, at most 1 hour).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debounce_ms: Option<u64>,
}

/// The default debounce of an event trigger.
pub const DEFAULT_DEBOUNCE_MS: u64 = 1000;

/// The longest debounce.
const MAX_DEBOUNCE_MS: u64 = 3_600_000;

impl NatsTrigger {
    /// Its debounce, ms.
    pub fn debounce_ms(&self) -> u64 {
        self.debounce_ms.unwrap_or(DEFAULT_DEBOUNCE_MS)
    }
}

impl TriggerSpec {
    /// The trigger's own problems, `(field, message)`, its field relative to the trigger.
    pub fn problems(&self) -> Vec<(String, String)> {
        match (&self.webhook, &self.nats) {
            (None, None) => vec![(
                String::new(),
                "a trigger needs a kind (webhook or nats)".into(),
            )],
            (Some(_), Some(_)) => vec![(
                String::new(),
                "a trigger has one kind: webhook or nats, not both".into(),
            )],
            (Some(w), None) if !super::is_valid_secret_name(&w.secret) => vec![(
                ".webhook.secret".into(),
                format!(
                    "invalid secret name {:?} (use a-z, A-Z, 0-9, -, _ and .)",
                    w.secret
                ),
            )],
            (None, Some(n)) => {
                let mut out = Vec::new();
                let bad_subject = n.subject.is_empty()
                    || n.subject
                        .chars()
                        .any(|c| c.is_whitespace() || c.is_control())
                    || n.subject.split('.').any(str::is_empty);
                if bad_subject {
                    out.push((
                        ".nats.subject".into(),
                        format!(
                            "{:?} is not a NATS subject (tokens separated by dots, no spaces)",
                            n.subject
                        ),
                    ));
                }
                if n.debounce_ms.is_some_and(|d| d > MAX_DEBOUNCE_MS) {
                    out.push((
                        ".nats.debounce_ms".into(),
                        format!("at most {MAX_DEBOUNCE_MS} (one hour)"),
                    ));
                }
                out
            }
            _ => Vec::new(),
        }
    }
}
