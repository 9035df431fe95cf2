//! Live counters of a run's steps and the report a run ends with.
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use serde::Serialize;

use crate::engine::{PluginKind, StepError};

/// Counters a step updates while it runs; read concurrently for progress.
#[derive(Debug, Default)]
pub struct StepCounters {
    /// Records received (sources: read).
    pub records_in: AtomicU64,
    /// Records passed on (sinks: written).
    pub records_out: AtomicU64,
    /// Records rejected (dead-lettered).
    pub rejected: AtomicU64,
    /// Bytes received.
    pub bytes_in: AtomicU64,
    /// Bytes passed on.
    pub bytes_out: AtomicU64,
    /// Calls into the plugin.
    pub calls: AtomicU64,
    /// Batches handled (sources: read; others: received).
    pub batches: AtomicU64,
    /// Time spent inside the plugin, ns.
    pub busy_ns: AtomicU64,
}

impl StepCounters {
    /// Adds to a counter.
    pub fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Relaxed);
    }

    /// Reads a counter.
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Relaxed)
    }
}

/// How a run or a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Everything went through.
    Succeeded,
    /// It failed (for a step: its own error).
    Failed,
    /// It was stopped because another step failed.
    Cancelled,
}

/// What one step did in a run.
#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    /// Step id.
    pub id: String,
    /// Its world.
    pub kind: PluginKind,
    /// sha256 of the plugin that ran (hex; `sha256:<hex>` in JSON).
    #[serde(with = "crate::digest::as_spelled")]
    pub digest: String,
    /// How it ended.
    pub outcome: Outcome,
    /// Records received (sources: read).
    pub records_in: u64,
    /// Records passed on (sinks: written).
    pub records_out: u64,
    /// Records rejected.
    pub rejected: u64,
    /// Bytes received.
    pub bytes_in: u64,
    /// Bytes passed on.
    pub bytes_out: u64,
    /// Calls into the plugin.
    pub calls: u64,
    /// Batches handled (sources: read; others: received).
    pub batches: u64,
    /// Time inside the plugin (shown as `busy_ms`).
    #[serde(rename = "busy_ms", serialize_with = "millis")]
    pub busy: Duration,
    /// Fuel burnt, when metered.
    pub fuel_used: Option<u64>,
    /// Retries of failed calls.
    pub retries: u64,
    /// The high-water mark of the plugin instance's linear memory, bytes.
    pub memory_peak_bytes: u64,
    /// The error, if it failed.
    pub error: Option<StepErrorReport>,
    /// Metrics the plugin counted.
    pub counters: BTreeMap<String, u64>,
    /// For sources: the cursor after the last batch (committed once the sinks flushed). Like
    /// the state, plugin data kept out of the report: it is in the checkpoint, sealed.
    #[serde(skip)]
    pub cursor: Option<String>,
    /// The step's state after the run.
    #[serde(skip)]
    pub state: BTreeMap<String, Vec<u8>>,
}

impl StepReport {
    /// The report of `step` before it has done anything.
    pub fn starting(step: &super::PlannedStep) -> Self {
        Self {
            id: step.id.clone(),
            kind: step.plugin.kind,
            digest: step.plugin.digest.clone(),
            outcome: Outcome::Succeeded,
            records_in: 0,
            records_out: 0,
            rejected: 0,
            bytes_in: 0,
            bytes_out: 0,
            calls: 0,
            batches: 0,
            busy: Duration::ZERO,
            fuel_used: None,
            retries: 0,
            memory_peak_bytes: 0,
            error: None,
            counters: BTreeMap::new(),
            cursor: step.cursor.clone(),
            state: step.state.clone(),
        }
    }
}

/// A step error as reported: its stable kind and its message.
#[derive(Debug, Clone, Serialize)]
pub struct StepErrorReport {
    /// `timeout`, `memory_limit_exceeded`, `fuel_exhausted`, `output_too_large`, ...
    pub kind: String,
    /// What happened.
    pub message: String,
}

impl StepErrorReport {
    /// The error as one line that names its kind once: `kind: what happened` (the message of
    /// most kinds starts with the kind already).
    pub fn summary(&self) -> String {
        match self.message.strip_prefix(self.kind.as_str()) {
            Some(rest) if rest.starts_with(':') => self.message.clone(),
            _ => format!("{}: {}", self.kind, self.message),
        }
    }
}

impl From<&StepError> for StepErrorReport {
    fn from(e: &StepError) -> Self {
        Self {
            kind: e.kind().to_string(),
            message: e.to_string(),
        }
    }
}

/// A duration as a whole number of milliseconds (how the API and the CLI show durations).
fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// What a run did.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// How it ended.
    pub outcome: Outcome,
    /// Per step, in topological order.
    pub steps: Vec<StepReport>,
    /// Wall-clock time of the run (shown as `duration_ms`).
    #[serde(rename = "duration_ms", serialize_with = "millis")]
    pub duration: Duration,
    /// Records dead-lettered.
    pub dead_letters: u64,
    /// Message acknowledgements the steps asked for: send them (with
    /// [`Integrations::acknowledge`](crate::integrations::Integrations::acknowledge)) once the
    /// run's checkpoints are committed, and only if it succeeded.
    #[serde(skip)]
    pub acks: crate::integrations::PendingAcks,
}

impl RunReport {
    /// The first failed step and its error.
    pub fn failure(&self) -> Option<(&str, &StepErrorReport)> {
        self.steps
            .iter()
            .find(|s| s.outcome == Outcome::Failed)
            .and_then(|s| s.error.as_ref().map(|e| (s.id.as_str(), e)))
    }
}
