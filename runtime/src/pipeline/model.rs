//! The pipeline definition model: what a pipeline file (YAML or JSON) or an API body contains.
//!
//! Every struct rejects unknown fields. Parsing only checks shapes and types; the rules that span
//! fields (ids, references, mounts, limits) are checked by [`Pipeline::validate`].

use std::fmt;
use std::path::PathBuf;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// The batch size used when neither the step nor the pipeline sets one.
pub const DEFAULT_BATCH_SIZE: u32 = 1024;
/// The largest batch size a pipeline or step may ask for.
pub const MAX_BATCH_SIZE: u32 = 65536;

/// A pipeline definition: named steps forming a DAG, with defaults for limits and retries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pipeline {
    /// Unique name within a tenant: `[a-z0-9][a-z0-9-_]{0,62}`.
    pub name: String,
    /// Free text for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// When to run the pipeline by itself; absent means only on demand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Schedule>,
    /// The steps, in file order. Error paths (`steps[1]`) index into this list.
    pub steps: Vec<Step>,
    /// Pipeline-wide limit defaults; each step may override any of them.
    #[serde(default, skip_serializing_if = "Limits::is_empty")]
    pub limits: Limits,
    /// How a failed run is retried; absent means no retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryPolicy>,
    /// Records per batch for every step (default [`DEFAULT_BATCH_SIZE`], `1..=65536`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<u32>,
    /// Where records refused by a step are kept; absent means the server's default store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter: Option<DeadLetter>,
    /// At most this many runs of the pipeline at once (absent: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
    /// Labels a worker must advertise to run this pipeline (what it can reach or do).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    /// Databases and message services its steps may be granted, by name. The host connects;
    /// plugins only name them.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub connections: std::collections::BTreeMap<String, Connection>,
    /// Alert rules: what to tell which of the tenant's channels when a run ends badly.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<super::alerts::AlertRule>,
    /// Triggers besides the schedule and the API (a signed webhook).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub triggers: Vec<super::triggers::TriggerSpec>,
    /// Run parameters, by name: each run gets a value for each (`${params.NAME}` in configs).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub params: super::params::Params,
}

/// A named connection to a database or a message service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Connection {
    /// `postgres://`, `mysql://` (or `mariadb://`), `sqlite://`, `nats://` or `redis://`.
    /// `${secrets.NAME}` in it is replaced by the tenant's secret `NAME` when a run starts, so
    /// that credentials stay in the secret store.
    pub url: String,
}

/// A cron schedule for a pipeline. The cron expression is kept as text here; the scheduler
/// parses it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// Cron expression with seconds, e.g. `"0 */5 * * * *"`.
    pub cron: String,
    /// IANA time zone name the expression is read in (default `UTC`).
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// What to do about ticks missed while the server was down (default `skip`).
    #[serde(default)]
    pub catchup: Catchup,
    /// What to do when a tick comes while the previous run is still going (default `skip`).
    #[serde(default)]
    pub overlap: Overlap,
    /// With `catchup: all`, at most this many missed ticks are run, the newest ones (default
    /// [`DEFAULT_MAX_CATCHUP`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_catchup: Option<u32>,
}

/// Missed ticks run by `catchup: all` when `max_catchup` is not given.
pub const DEFAULT_MAX_CATCHUP: u32 = 10;

fn default_timezone() -> String {
    "UTC".to_owned()
}

/// Policy for schedule ticks missed while the server was not running.
///
/// Written `skip`, `once` or `all`; the booleans `false` (= `skip`) and `true` (= `all`) are
/// accepted too, as in the first design sketch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Catchup {
    /// Forget missed ticks.
    #[default]
    Skip,
    /// Run once for all missed ticks together.
    Once,
    /// Run once per missed tick.
    All,
}

impl Overlap {
    /// The keyword used in pipeline files.
    pub fn as_str(self) -> &'static str {
        match self {
            Overlap::Skip => "skip",
            Overlap::Queue => "queue",
            Overlap::Allow => "allow",
        }
    }
}

impl Catchup {
    /// The keyword used in pipeline files.
    pub fn as_str(self) -> &'static str {
        match self {
            Catchup::Skip => "skip",
            Catchup::Once => "once",
            Catchup::All => "all",
        }
    }
}

impl Serialize for Catchup {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Catchup {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CatchupVisitor;
        impl Visitor<'_> for CatchupVisitor {
            type Value = Catchup;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("one of `skip`, `once`, `all` (or a boolean)")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Catchup, E> {
                Ok(if v { Catchup::All } else { Catchup::Skip })
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Catchup, E> {
                match v {
                    "skip" => Ok(Catchup::Skip),
                    "once" => Ok(Catchup::Once),
                    "all" => Ok(Catchup::All),
                    other => Err(E::unknown_variant(other, &["skip", "once", "all"])),
                }
            }
        }
        deserializer.deserialize_any(CatchupVisitor)
    }
}

/// Policy for a tick that comes while the previous run of the pipeline is still going.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Overlap {
    /// Drop the new tick.
    #[default]
    Skip,
    /// Start the new run when the current one ends.
    Queue,
    /// Run both at once.
    Allow,
}

/// One step of a pipeline: a plugin instance with its configuration and grants.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Unique id within the pipeline: `[a-z0-9][a-z0-9-_]*`.
    pub id: String,
    /// Which plugin runs this step, as written; see [`PluginRef`](super::PluginRef) for the forms.
    pub plugin: String,
    /// Plugin configuration, handed to the plugin as JSON (default `{}`; `null` reads as `{}`).
    #[serde(
        default = "empty_object",
        deserialize_with = "null_as_empty_object",
        skip_serializing_if = "is_empty_object"
    )]
    pub config: serde_json::Value,
    /// The one upstream step this step reads from (exclusive with `inputs`): `STEP` reads its
    /// default output, `STEP.OUTPUT` one of its named outputs (a 0.2.0 transform's, `route`'s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    /// Several upstream steps this step reads from (exclusive with `input`), each as `input`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<Vec<String>>,
    /// Host directories made visible to the plugin.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<Mount>,
    /// Limit overrides for this step.
    #[serde(default, skip_serializing_if = "Limits::is_empty")]
    pub limits: Limits,
    /// Batch size override for this step (`1..=65536`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<u32>,
    /// Names of the secrets the plugin may read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
    /// Hosts the plugin may make outbound HTTP requests to (`host` or `host:port`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_hosts: Vec<String>,
    /// Names of the pipeline's `connections` the plugin may use.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub connections: Vec<String>,
    /// How this step's retryable failures are retried, instead of the pipeline's `retry`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryPolicy>,
}

impl Step {
    /// The inputs as written (`STEP` or `STEP.OUTPUT`), from `input` or `inputs`, in order.
    /// Empty for a source step.
    pub fn input_ids(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = self.input.iter().map(String::as_str).collect();
        if let Some(inputs) = &self.inputs {
            ids.extend(inputs.iter().map(String::as_str));
        }
        ids
    }

    /// Whether the step reads from no other step (a source).
    pub fn is_root(&self) -> bool {
        self.input.is_none() && self.inputs.as_ref().is_none_or(Vec::is_empty)
    }
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}

fn is_empty_object(value: &serde_json::Value) -> bool {
    value.as_object().is_some_and(serde_json::Map::is_empty)
}

fn null_as_empty_object<'de, D: Deserializer<'de>>(d: D) -> Result<serde_json::Value, D::Error> {
    let value = serde_json::Value::deserialize(d)?;
    Ok(if value.is_null() {
        empty_object()
    } else {
        value
    })
}

/// A host directory mounted into a step's sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mount {
    /// Host path, relative to the pipeline file's folder unless absolute. Must lie under one of
    /// the server's allowed mount roots.
    pub host: PathBuf,
    /// Absolute path the plugin sees.
    pub guest: String,
    /// Read-only (default) or read-write.
    #[serde(default)]
    pub mode: MountMode,
}

/// Access mode of a mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MountMode {
    /// Read-only.
    #[default]
    Ro,
    /// Read-write.
    Rw,
}

/// Sandbox limits, each optional: unset values fall back to the next level
/// (step, then pipeline, then server defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Linear memory cap of the plugin instance, in MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<u64>,
    /// Wall-clock budget, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Wasmtime fuel budget; unset everywhere means fuel is not metered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u64>,
    /// Largest output, in bytes, a plugin may return.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_bytes: Option<u64>,
}

impl Limits {
    /// Whether no limit is set.
    pub fn is_empty(&self) -> bool {
        *self == Limits::default()
    }

    /// These limits, with every unset value taken from `fallback`.
    pub fn or(&self, fallback: &Limits) -> Limits {
        Limits {
            memory_mb: self.memory_mb.or(fallback.memory_mb),
            timeout_ms: self.timeout_ms.or(fallback.timeout_ms),
            fuel: self.fuel.or(fallback.fuel),
            max_output_bytes: self.max_output_bytes.or(fallback.max_output_bytes),
        }
    }

    /// These limits, with every unset value taken from the server defaults.
    pub fn resolve(&self, defaults: &EffectiveLimits) -> EffectiveLimits {
        EffectiveLimits {
            memory_mb: self.memory_mb.unwrap_or(defaults.memory_mb),
            timeout_ms: self.timeout_ms.unwrap_or(defaults.timeout_ms),
            fuel: self.fuel.or(defaults.fuel),
            max_output_bytes: self.max_output_bytes.unwrap_or(defaults.max_output_bytes),
        }
    }
}

/// The limits a step actually runs with, after merging step, pipeline and server defaults.
pub type EffectiveLimits = super::StepLimits;

/// How a failed run is retried, with exponential backoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (default 3; at least 1).
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Wait before the first retry, in milliseconds (default 500).
    #[serde(default = "default_initial_backoff_ms")]
    pub initial_backoff_ms: u64,
    /// Upper bound of the wait between attempts, in milliseconds (default 60000).
    #[serde(default = "default_max_backoff_ms")]
    pub max_backoff_ms: u64,
    /// What a step does with a batch whose retries are used up (default `fail`).
    #[serde(default, skip_serializing_if = "Exhausted::is_fail")]
    pub then: Exhausted,
}

/// What happens to a batch whose retries are used up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Exhausted {
    /// The step fails, and with it the attempt (the run may be retried as a whole).
    #[default]
    Fail,
    /// The batch's records become dead letters, and the step goes on with the next batch.
    DeadLetter,
}

impl Exhausted {
    fn is_fail(&self) -> bool {
        *self == Exhausted::Fail
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: default_max_attempts(),
            initial_backoff_ms: default_initial_backoff_ms(),
            max_backoff_ms: default_max_backoff_ms(),
            then: Exhausted::Fail,
        }
    }
}

fn default_max_attempts() -> u32 {
    3
}

fn default_initial_backoff_ms() -> u64 {
    500
}

fn default_max_backoff_ms() -> u64 {
    60_000
}

/// Where refused records are written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadLetter {
    /// A JSON-lines file, relative to the pipeline file's folder unless absolute.
    pub path: PathBuf,
}
