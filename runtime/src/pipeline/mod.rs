//! Pipeline definitions: the model of a pipeline file (YAML or JSON, the same model on the API),
//! parsing, and validation into a step graph the executor can run.
//!
//! ```text
//! let pipeline = pipeline::parse(&text, Format::from_path(&file))?;     // shape only
//! let validated = pipeline.validate(&policy)?;                          // all the rules
//! for step in validated.topological_order() { ... validated.resolved(i) ... }
//! ```
//!
//! # Error texts
//!
//! Every problem names its place. Parse errors ([`PipelineError::Parse`]) are
//! `line L, column C: <message>`, where the message is the parser's (serde_norway or serde_json),
//! prefixed with the path inside the document when there is one, e.g.
//! ``line 4, column 5: steps[0]: unknown field `plugn`, expected one of `id`, `plugin`, ...``.
//! An empty text gives `the pipeline definition is empty`. A text that nests deeper than
//! [`MAX_NESTING_DEPTH`] levels is refused before it is deserialised, with
//! `line L, column C: nesting depth exceeds 64 levels (it reaches N)` at the opening that went
//! past the limit (see `depth.rs`).
//!
//! Validation ([`Pipeline::validate`]) reports every problem it finds
//! ([`PipelineError::Invalid`], displayed `<path>: <message>`), in this order: `name`,
//! `schedule`, each step in file order (its fields in the order below), cycles, then the
//! pipeline-wide `limits`, `retry`, `batch_size` and `dead_letter`. The exact texts, with
//! `i`, `j` the indices and `"..."` the offending value quoted as a Rust string literal:
//!
//! | text | when |
//! |------|------|
//! | `name: invalid name "..." (use a-z, 0-9, - and _, at most 63 characters)` | name not `[a-z0-9][a-z0-9-_]{0,62}` |
//! | `schedule.cron: must not be empty` | blank cron expression |
//! | `schedule.timezone: must not be empty` | blank time zone |
//! | `schedule.cron: invalid cron expression "..." (...)` | not six or seven cron fields |
//! | `schedule.timezone: unknown time zone "..." (an IANA name such as Europe/Paris)` | |
//! | `schedule.max_catchup: must be at least 1` | |
//! | `concurrency: must be at least 1` | |
//! | `labels[0]: invalid label ...` | a worker label with other characters |
//! | `steps: a pipeline needs at least one step` | `steps: []` |
//! | `steps[i].id: invalid id "..." (use a-z, 0-9, - and _)` | id not `[a-z0-9][a-z0-9-_]*` |
//! | `steps[i].id: duplicate id "..."` | on every step but the first with that id |
//! | `steps[i].plugin: invalid plugin reference "..." (expected name@version, name@latest, sha256:<hex> or a path to a .wasm file)` | see [`PluginRef`] |
//! | `steps[i]: "input" and "inputs" are exclusive` | both are present |
//! | `steps[i].input: a step cannot read from itself` | also `steps[i].inputs[j]: ...` |
//! | `steps[i].input: no step "..."` | also `steps[i].inputs[j]: no step "..."` |
//! | `steps[i].inputs[j]: "..." is listed twice` | the same upstream step (and output) named again |
//! | `steps[i].input: invalid output name "..." in "..." (write STEP or STEP.OUTPUT; use a-z, 0-9, - and _)` | also `inputs[j]` |
//! | `steps[i].input: step "..." has no output "..." (its outputs: ...)` | checked when the plugins are loaded ([`crate::executor::prepare`]); also `inputs[j]` |
//! | `steps[i].mounts[j].host: must not be empty` | |
//! | `steps[i].mounts[j].host: mounts are not allowed on this server` | the policy has no allowed roots |
//! | `steps[i].mounts[j].host: "..." is outside the allowed mount roots (R1, R2)` | host as written; roots as configured, joined by `, ` |
//! | `steps[i].mounts[j].guest: must be an absolute path` | guest does not start with `/` |
//! | `steps[i].mounts[j].guest: must not contain ".."` | |
//! | `steps[i].mounts[j].guest: "..." is mounted twice` | same guest path twice in one step |
//! | `steps[i].limits.memory_mb: N exceeds the server maximum of M` | also `timeout_ms`; also `limits.` at pipeline level |
//! | `steps[i].limits.F: must be greater than 0` | F any of `memory_mb`, `timeout_ms`, `fuel`, `max_output_bytes`; also `limits.F` |
//! | `steps[i].batch_size: must be between 1 and 65536, got N` | also `batch_size` at pipeline level |
//! | `steps[i].secrets[j]: invalid secret name "..." (use a-z, A-Z, 0-9, -, _ and .)` | |
//! | `steps[i].allow_hosts[j]: invalid host "..." (expected a host name or address, optionally with :port)` | `host`, `*.host`, `1.2.3.4`, `[::1]`, each optionally `:port` |
//! | `steps: cycle a -> b -> a` | ids in data-flow order (`b` reads from `a`), starting from its first step in file order; a cycle sharing a step with one already reported is left out |
//! | `retry.max_attempts: must be at least 1` | |
//! | `retry.initial_backoff_ms: N is greater than max_backoff_ms (M)` | |
//! | `dead_letter.path: must not be empty` | |
//! | `alerts[i].channels: a rule needs at least one channel` | also `alerts[i].channels[j]: invalid channel name ...` |
//! | `triggers[i]: a trigger needs a kind (webhook or nats)` | also `triggers[i].webhook.secret: invalid secret name ...`, `triggers[i].nats.subject: ... is not a NATS subject ...`, `triggers[i].nats.connection: no connection ...` |
//! | `alerts[i].max_duration_ms: duration_over needs max_duration_ms` | also `max_rejected` for `rejected_over`, `counter`/`above` for `counter`, `max_dead_letters` for `dead_letters_over`, and a threshold given to another `when` |
//! | `alerts[i].step: no step "..." in this pipeline` | a `counter` rule's step |
//!
//! Mount host paths are made absolute against [`ValidationPolicy::base_dir`], `.` and `..` are
//! removed lexically, and symlinks are resolved in the longest part of the path that exists;
//! the result must lie under one of the allowed roots (resolved the same way, relative ones
//! against the current directory). The executor must mount [`ResolvedMount::host`], not the
//! path as written.
//!
//! What needs the plugins themselves (a step with inputs whose plugin is a source, a config
//! that does not match the plugin's schema) is checked by the executor, not here.

pub mod alerts;
mod ceilings;
pub mod connection;
pub mod cron;
mod depth;
mod error;
mod graph;
mod limits;
pub mod locate;
mod model;
pub mod params;
mod parse;
mod plugin_ref;
mod policy;
pub mod triggers;
mod validate;

#[cfg(test)]
mod tests;

pub use alerts::{AlertRule, AlertWhen, RunEnd, Severity};
pub use ceilings::TenantLimits;
pub use depth::MAX_NESTING_DEPTH;
pub use error::{Location, PipelineError, ValidationErrors};
pub use graph::{Input, ResolvedMount, ResolvedStep, ValidatedPipeline};
pub use limits::StepLimits;
pub use model::{
    Catchup, Connection, DEFAULT_BATCH_SIZE, DEFAULT_MAX_CATCHUP, DeadLetter, EffectiveLimits,
    Exhausted, Limits, MAX_BATCH_SIZE, Mount, MountMode, Overlap, Pipeline, RetryPolicy, Schedule,
    Step,
};
pub use parse::{Format, parse};
pub use plugin_ref::{
    InvalidPluginRef, PluginRef, PluginVersion, digest_of, is_valid_id, is_valid_name,
    version_order,
};
pub use policy::{ValidationPolicy, resolve_path};
pub use triggers::{TriggerSpec, WebhookTrigger};
pub use validate::{is_valid_label, is_valid_secret_name};
