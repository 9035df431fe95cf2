//! The REST API's answers as types, said once: the handlers (`api/`) send them and the CLI
//! client (`cli/`) reads them. Rows the API shows as stored are the store's own types,
//! re-exported here; the answers made for one route are defined here.
use serde::{Deserialize, Serialize};

use crate::status::{CancelStatus, RunStatus};

pub use crate::store::dead_letters::ShownDeadLetter as DeadLetter;
pub use crate::store::pipelines::{Pin, PipelineRow as Pipeline, VersionRow as Version};
pub use crate::store::plugins::PluginRow as Plugin;
pub use crate::store::queue::AttemptRow as Attempt;
pub use crate::store::runs::{LogRow as LogLine, RecentRun, RunRow as Run};
pub use crate::store::secrets::SecretInfo as Secret;

/// The answer header of a page that is not the last: the cursor (`?after=`) of the next page.
pub const NEXT_AFTER_HEADER: &str = "Next-After";

/// An error answer: its kind (`not_found`, `conflict`, ...) and what happened.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The kind, one word.
    pub error: String,
    /// What happened, for people.
    pub message: String,
}

/// `POST /v1/pipelines/{name}/runs`: the run queued (or, repeated with its idempotency key, the
/// first request's run, with its status now).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Queued {
    /// Run id.
    pub id: String,
    /// Pipeline name.
    pub pipeline: String,
    /// The version it runs.
    pub version: i64,
    /// Its status (`queued` when just queued).
    pub status: RunStatus,
}

/// `POST /v1/pipelines/{name}/dead-letters/replay`: the replay run queued.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReplayQueued {
    /// Run id.
    pub id: String,
    /// The step that gets the records again.
    pub step: Option<String>,
    /// How many dead letters it replays.
    pub dead_letters: usize,
    /// The plugin that runs the step instead of the version's (`sha256:<hex>`), if any.
    #[serde(with = "crate::digest::opt_spelled", default)]
    pub plugin: Option<String>,
}

/// `POST /v1/runs/{id}/cancel`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CancelAnswer {
    /// Run id.
    pub id: String,
    /// Cancelled now, or cancelling (at its worker's next heartbeat).
    pub status: CancelStatus,
}

/// `GET /v1/pipelines/{name}`: a pipeline and its newest version.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PipelineShown {
    /// Name.
    pub name: String,
    /// The newest version number.
    pub latest_version: i64,
    /// Creation time, Unix ms.
    pub created_at: i64,
    /// Time of the newest version, Unix ms.
    pub updated_at: i64,
    /// The newest version.
    pub latest: Option<Version>,
    /// Its schedule with the next slot, if it has one.
    #[serde(default)]
    pub schedule: Option<ScheduleShown>,
}

/// One entry of `GET /v1/pipelines`: the pipeline, its schedule, and with `?recent=N` its
/// newest runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PipelineListed {
    /// The pipeline.
    #[serde(flatten)]
    pub pipeline: Pipeline,
    /// Its schedule (from its newest version), if it has one.
    pub schedule: Option<ScheduleShown>,
    /// Its newest runs, newest first (with `?recent=N`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recent_runs: Option<Vec<RecentRun>>,
}

/// A pipeline's schedule as a list shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScheduleShown {
    /// The cron expression (seconds first).
    pub cron: String,
    /// The time zone it is read in.
    pub timezone: String,
    /// Its next slot after now, Unix ms.
    pub next_fire_at: Option<i64>,
}

/// `POST /v1/pipeline-check`: whether a definition would be accepted, and if not, each
/// problem at its place.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Checked {
    /// Whether applying it would store a version.
    pub valid: bool,
    /// Each problem, in the order the 422 of applying it would list them.
    pub problems: Vec<Problem>,
    /// The definition as it would be stored (canonical JSON), when valid.
    pub pipeline: Option<serde_json::Value>,
    /// The digest each step's plugin would be pinned to, when valid.
    pub pins: Vec<Pin>,
}

/// One problem of a checked definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// The text, as the 422 of applying the definition gives it.
    pub message: String,
    /// 1-based line it is about, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
}

/// One entry of `GET /v1/pipelines/{name}/versions`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VersionEntry {
    /// Version number.
    pub version: i64,
    /// Creation time, Unix ms.
    pub created_at: i64,
    /// Who made it.
    pub created_by: Option<String>,
}

/// `GET /v1/pipelines/{name}/versions`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Versions {
    /// Pipeline name.
    pub pipeline: String,
    /// Its versions, newest first.
    pub versions: Vec<VersionEntry>,
}

/// `GET /v1/plugins/{digest}`: the bindings of one digest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PluginBindings {
    /// The digest, `sha256:<hex>`.
    #[serde(with = "crate::digest::as_spelled")]
    pub digest: String,
    /// Each `name@version` bound to it.
    pub plugins: Vec<Plugin>,
}

/// `DELETE /v1/plugins/{digest}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PluginDeleted {
    /// The digest, `sha256:<hex>`.
    #[serde(with = "crate::digest::as_spelled")]
    pub digest: String,
    /// Bindings deleted.
    pub deleted: usize,
}
