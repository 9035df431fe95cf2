//! A pipeline's triggers besides its schedule and the API: a `webhook` trigger starts a run
//! from `POST /v1/hooks/{tenant}/{pipeline}` signed with the tenant's secret `NAME`; the event
//! triggers (see [`crate::scheduler::events`]) start one when messages arrive on a NATS
//! subject (`nats`) or a Redis stream (`redis`), or when files appear or change in a mounted
//! folder (`file`), which the run's own source then reads.
//!
//! ```yaml
//! triggers:
//!   - webhook: { secret: NAME }
//!   - nats: { connection: bus, subject: "orders.>", debounce_ms: 500 }
//!   - redis: { connection: cache, stream: orders }
//!   - file: { path: /data/incoming, poll_ms: 1000 }
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
    /// Runs started by entries added to a Redis stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis: Option<RedisTrigger>,
    /// Runs started by files that appear or change in a folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<FileTrigger>,
}

/// A Redis trigger: a burst of entries added to `stream` queues one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisTrigger {
    /// The pipeline's Redis connection (in its `connections`) to listen on.
    pub connection: String,
    /// The stream's key.
    pub stream: String,
    /// As [`NatsTrigger::debounce_ms`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debounce_ms: Option<u64>,
}

/// A file trigger: files that appear or change in `path` (a folder under the server's mount
/// roots, not its subfolders) queue one run per burst.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileTrigger {
    /// The folder on the server's host.
    pub path: std::path::PathBuf,
    /// How often it is looked at, ms (default 1000, at least 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll_ms: Option<u64>,
    /// As [`NatsTrigger::debounce_ms`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debounce_ms: Option<u64>,
}

impl FileTrigger {
    /// How often the folder is looked at.
    pub fn poll_ms(&self) -> u64 {
        self.poll_ms.unwrap_or(1000).max(100)
    }
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

impl TriggerSpec {
    /// Its debounce when it is an event trigger, ms.
    pub fn debounce_ms(&self) -> u64 {
        let given = [
            self.nats.as_ref().and_then(|t| t.debounce_ms),
            self.redis.as_ref().and_then(|t| t.debounce_ms),
            self.file.as_ref().and_then(|t| t.debounce_ms),
        ];
        given
            .into_iter()
            .flatten()
            .next()
            .unwrap_or(DEFAULT_DEBOUNCE_MS)
    }

    /// Whether messages or files start its runs.
    pub fn is_event(&self) -> bool {
        self.nats.is_some() || self.redis.is_some() || self.file.is_some()
    }

    /// The connection it listens through, with its field and the kind it must be.
    pub fn connection(&self) -> Option<(&str, &'static str, super::connection::ConnectionKind)> {
        use super::connection::ConnectionKind;
        match (&self.nats, &self.redis) {
            (Some(n), _) => Some((&n.connection, ".nats.connection", ConnectionKind::Nats)),
            (_, Some(r)) => Some((&r.connection, ".redis.connection", ConnectionKind::Redis)),
            _ => None,
        }
    }

    /// The trigger's own problems, `(field, message)`, its field relative to the trigger.
    pub fn problems(&self) -> Vec<(String, String)> {
        let kinds = [
            self.webhook.is_some(),
            self.nats.is_some(),
            self.redis.is_some(),
            self.file.is_some(),
        ];
        match kinds.iter().filter(|k| **k).count() {
            0 => {
                return vec![(
                    String::new(),
                    "a trigger needs a kind (webhook, nats, redis or file)".into(),
                )];
            }
            1 => {}
            _ => {
                return vec![(
                    String::new(),
                    "a trigger has one kind (webhook, nats, redis or file), not several".into(),
                )];
            }
        }
        let mut out = Vec::new();
        let mut add = |f: &str, m: String| out.push((f.to_string(), m));
        if let Some(w) = &self.webhook
            && !super::is_valid_secret_name(&w.secret)
        {
            add(
                ".webhook.secret",
                format!(
                    "invalid secret name {:?} (use a-z, A-Z, 0-9, -, _ and .)",
                    w.secret
                ),
            );
        }
        if let Some(n) = &self.nats {
            let bad = n.subject.is_empty()
                || n.subject
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control())
                || n.subject.split('.').any(str::is_empty);
            if bad {
                add(
                    ".nats.subject",
                    format!(
                        "{:?} is not a NATS subject (tokens separated by dots, no spaces)",
                        n.subject
                    ),
                );
            }
        }
        if let Some(r) = &self.redis
            && r.stream.is_empty()
        {
            add(".redis.stream", "must not be empty".into());
        }
        if let Some(f) = &self.file
            && !f.path.is_absolute()
        {
            add(
                ".file.path",
                format!("{:?} is not an absolute path", f.path.display()),
            );
        }
        if self.debounce_ms() > MAX_DEBOUNCE_MS {
            let kind =
                ["webhook", "nats", "redis", "file"][kinds.iter().position(|k| *k).unwrap_or(0)];
            add(
                &format!(".{kind}.debounce_ms"),
                format!("at most {MAX_DEBOUNCE_MS} (one hour)"),
            );
        }
        out
    }
}
