//! The host side of a step's instance: its WASI context (only what the step was granted), and
//! the `autoflow:plugin/host` imports (logs, counters, state, secrets), each bounded. The `sql`
//! and `messaging` imports are implemented by [`crate::integrations`] on their own states, which
//! the store data holds beside the rest.
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use serde::Serialize;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::{
    Level,
    source::autoflow::plugin0_1_0::{host, types},
};
use super::capture::Capture;
use super::limits::MemoryCap;
use super::state::{MAX_STATE_BYTES, StepState};

/// Longest log line kept; longer ones are cut.
const MAX_LOG_LINE: usize = 8 * 1024;
/// Log bytes one instance may write; later lines are counted and dropped.
const MAX_LOG_BYTES: usize = 1 << 20;
/// Distinct counters one step may create.
const MAX_COUNTERS: usize = 256;

/// Severity of a run log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Very fine detail.
    Trace,
    /// Detail for debugging.
    Debug,
    /// Normal progress.
    Info,
    /// Something unexpected that was handled.
    Warn,
    /// A failure.
    Error,
}

impl LogLevel {
    /// `trace`, `debug`, `info`, `warn` or `error`, as stored and serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

impl From<Level> for LogLevel {
    fn from(l: Level) -> Self {
        match l {
            Level::Trace => LogLevel::Trace,
            Level::Debug => LogLevel::Debug,
            Level::Info => LogLevel::Info,
            Level::Warn => LogLevel::Warn,
            Level::Error => LogLevel::Error,
        }
    }
}

/// One line of a run's log: from a plugin's `log` call, its stderr, or the host.
#[derive(Debug, Clone, Serialize)]
pub struct LogLine {
    /// The step it concerns (`None` for the run as a whole).
    #[serde(serialize_with = "step_name")]
    pub step: Option<Arc<str>>,
    /// Severity.
    pub level: LogLevel,
    /// The text.
    pub message: String,
    /// When it was written.
    #[serde(with = "unix_millis")]
    pub at: SystemTime,
}

fn step_name<S: serde::Serializer>(step: &Option<Arc<str>>, s: S) -> Result<S::Ok, S::Error> {
    match step {
        Some(name) => s.serialize_str(name),
        None => s.serialize_none(),
    }
}

mod unix_millis {
    use std::time::{SystemTime, UNIX_EPOCH};
    pub fn serialize<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        let ms = t
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        s.serialize_u64(ms)
    }
}

/// Where a step's log lines go (the terminal, a file, the run's log table).
pub type LogSink = Arc<dyn Fn(LogLine) + Send + Sync>;

/// What the running step sees of the host besides WASI: its id, log sink, metrics, state and
/// the secrets granted to it.
pub struct StepHost {
    /// The step's id.
    pub step: Arc<str>,
    /// Where its log lines go.
    pub logs: LogSink,
    /// Metrics counted by the plugin.
    pub counters: BTreeMap<String, u64>,
    /// The step's durable state: loaded before the run, saved after it.
    pub state: StepState,
    /// Secrets granted to the step, by name.
    pub secrets: BTreeMap<String, String>,
    /// Connections granted to the step, by name (handed to its capabilities when it starts).
    pub connections: BTreeMap<String, crate::integrations::Grant>,
    /// Where its message acknowledgements wait for the run's commit (shared by the run's steps).
    pub acks: crate::integrations::PendingAcks,
    /// Hosts (`host[:port]`, `*.domain`) it may reach over `wasi:http`; empty = none.
    pub allow_hosts: Vec<String>,
    log_bytes: usize,
    dropped_lines: u64,
}

impl StepHost {
    /// A host for step `step` writing its log to `logs`.
    pub fn new(step: &str, logs: LogSink) -> Self {
        Self {
            step: step.into(),
            logs,
            counters: BTreeMap::new(),
            state: StepState::default(),
            secrets: BTreeMap::new(),
            connections: BTreeMap::new(),
            acks: Default::default(),
            allow_hosts: Vec::new(),
            log_bytes: 0,
            dropped_lines: 0,
        }
    }

    /// Writes a line to the step's log, within the instance's log budget.
    pub fn log(&mut self, level: LogLevel, message: &str) {
        if self.log_bytes >= MAX_LOG_BYTES {
            self.dropped_lines += 1;
            return;
        }
        let mut text = message.to_string();
        if text.len() > MAX_LOG_LINE {
            let mut cut = MAX_LOG_LINE;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            text.push_str(" [cut]");
        }
        self.log_bytes += text.len();
        (self.logs)(LogLine {
            step: Some(self.step.clone()),
            level,
            message: text,
            at: SystemTime::now(),
        });
    }

    /// Log lines dropped because the budget was spent.
    pub fn dropped_lines(&self) -> u64 {
        self.dropped_lines
    }
}

/// The data of one step's `Store`: WASI (only what was granted), the plugin host, and limits.
pub struct HostState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) memory: MemoryCap,
    /// The plugin-facing host of this step.
    pub step: StepHost,
    /// The end of the current call's wall-clock budget.
    pub(crate) deadline: Instant,
    /// What the guest wrote to stdout and stderr.
    pub(crate) output: Capture,
    /// Nanoseconds spent suspended at epoch yields (other tasks ran), not in the guest.
    pub(crate) suspended_ns: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// The SQL capability: the step's grants and the transactions its plugin holds.
    pub(crate) sql: crate::integrations::sql::SqlState,
    /// The messaging capability: the step's grants and where its acknowledgements wait.
    pub(crate) messaging: crate::integrations::messaging::MessagingState,
    /// Outbound HTTP: the `wasi:http` context and the step's egress grant.
    pub(crate) http: super::http::HttpState,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl types::Host for HostState {}

impl host::Host for HostState {
    fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        self.step.log(level.into(), &message);
        Ok(())
    }

    fn count(&mut self, name: String, delta: u64) -> wasmtime::Result<()> {
        let known = self.step.counters.contains_key(&name);
        if known || self.step.counters.len() < MAX_COUNTERS {
            let c = self.step.counters.entry(name).or_default();
            *c = c.saturating_add(delta);
        }
        Ok(())
    }

    fn state_get(&mut self, key: String) -> wasmtime::Result<Option<Vec<u8>>> {
        Ok(self.step.state.get(&key).cloned())
    }

    fn state_set(&mut self, key: String, value: Vec<u8>) -> wasmtime::Result<()> {
        self.step.state.set(key, value).map_err(|_| {
            wasmtime::Error::new(super::StepError::StateTooLarge {
                limit_bytes: MAX_STATE_BYTES as u64,
            })
        })
    }

    fn secret(&mut self, name: String) -> wasmtime::Result<Option<String>> {
        Ok(self.step.secrets.get(&name).cloned())
    }
}
