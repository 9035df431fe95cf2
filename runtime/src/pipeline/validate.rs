//! Validation of a parsed [`Pipeline`] against the model's rules and the server's policy.
//!
//! Every rule is checked and every problem collected; the order of the problems is: `name`,
//! `schedule`, `steps` (step by step in file order, each in field order), cycles, then the
//! pipeline-wide `limits`, `retry`, `batch_size`, `dead_letter`, `alerts`, `triggers` and
//! `params`, then each step's `${params.NAME}` references.

use std::collections::{HashMap, HashSet};
use std::path::{Component, Path, PathBuf};

use super::error::{PipelineError, ValidationErrors};
use super::graph::Input;
use super::graph::{self, ResolvedMount, ValidatedPipeline};
use super::model::{EffectiveLimits, Limits, MAX_BATCH_SIZE, Pipeline, Step};
use super::plugin_ref::{PluginRef, is_valid_id, is_valid_name};
use super::policy::{ValidationPolicy, resolve_path};

impl Pipeline {
    /// Checks everything that can be checked without the plugins themselves, collecting every
    /// problem (texts in the module docs). On success, the pipeline comes back with its plugin
    /// references parsed, paths resolved, limits merged and its steps in topological order.
    pub fn validate(
        &self,
        policy: &ValidationPolicy,
    ) -> Result<ValidatedPipeline, ValidationErrors> {
        let mut problems = Vec::new();
        let mut add =
            |path: String, message: String| problems.push(PipelineError::invalid(path, message));

        if !is_valid_name(&self.name) {
            add(
                "name".into(),
                format!(
                    "invalid name {:?} (use a-z, 0-9, - and _, at most 63 characters)",
                    self.name
                ),
            );
        }
        if let Some(schedule) = &self.schedule {
            if schedule.cron.trim().is_empty() {
                add("schedule.cron".into(), "must not be empty".into());
            } else if let Err(e) = super::cron::parse_cron(&schedule.cron) {
                add("schedule.cron".into(), e);
            }
            if schedule.timezone.trim().is_empty() {
                add("schedule.timezone".into(), "must not be empty".into());
            } else if let Err(e) = super::cron::parse_timezone(&schedule.timezone) {
                add("schedule.timezone".into(), e);
            }
            if schedule.max_catchup == Some(0) {
                add("schedule.max_catchup".into(), "must be at least 1".into());
            }
        }
        if self.concurrency == Some(0) {
            add("concurrency".into(), "must be at least 1".into());
        }
        for (i, label) in self.labels.iter().enumerate() {
            if !is_valid_label(label) {
                add(
                    format!("labels[{i}]"),
                    format!(
                        "invalid label {label:?} (use a-z, 0-9, -, _, : and ., at most 63 characters)"
                    ),
                );
            }
        }
        for (name, connection) in &self.connections {
            let at = format!("connections.{name}");
            if !is_valid_id(name) {
                add(
                    at.clone(),
                    format!("invalid connection name {name:?} (use a-z, 0-9, - and _)"),
                );
            }
            match super::connection::ConnectionUrl::parse(&connection.url) {
                Err(e) => add(format!("{at}.url"), e),
                // A SQLite file is a host file: it must lie where mounts may (else a pipeline
                // could open the server's own database).
                Ok(u) => {
                    if let Some(path) = u.sqlite_path()
                        && let Err(e) = policy.check_mount_host(Path::new(path))
                    {
                        add(format!("{at}.url"), format!("SQLite file {path:?}: {e}"));
                    }
                }
            }
        }
        if self.steps.is_empty() {
            add("steps".into(), "a pipeline needs at least one step".into());
        }

        let mut first_index: HashMap<&str, usize> = HashMap::new();
        for (i, step) in self.steps.iter().enumerate() {
            first_index.entry(step.id.as_str()).or_insert(i);
        }
        let mut plugins = Vec::with_capacity(self.steps.len());
        let mut inputs = Vec::with_capacity(self.steps.len());
        let mut mounts = Vec::with_capacity(self.steps.len());
        for (i, step) in self.steps.iter().enumerate() {
            let at = format!("steps[{i}]");
            if first_index.get(step.id.as_str()) != Some(&i) {
                add(format!("{at}.id"), format!("duplicate id {:?}", step.id));
            }
            let (plugin, step_inputs, step_mounts) =
                check_step(&at, step, &self.connections, &first_index, policy, &mut add);
            plugins.push(plugin);
            inputs.push(step_inputs);
            mounts.push(step_mounts);
        }
        let upstream: Vec<Vec<usize>> = inputs
            .iter()
            .map(|ins: &Vec<Input>| ins.iter().map(|i| i.step).collect())
            .collect();
        for cycle in graph::find_cycles(self.steps.len(), &upstream) {
            let ids: Vec<&str> = cycle.iter().map(|&i| self.steps[i].id.as_str()).collect();
            let first = ids.first().copied().unwrap_or_default();
            add(
                "steps".into(),
                format!("cycle {} -> {first}", ids.join(" -> ")),
            );
        }

        check_limits("limits", &self.limits, policy, &mut add);
        if let Some(retry) = &self.retry {
            check_retry("retry", retry, &mut add);
        }
        check_batch_size("batch_size", self.batch_size, &mut add);
        if let Some(dead_letter) = &self.dead_letter
            && dead_letter.path.as_os_str().is_empty()
        {
            add("dead_letter.path".into(), "must not be empty".into());
        }
        for (i, rule) in self.alerts.iter().enumerate() {
            for (field, message) in rule.problems() {
                add(format!("alerts[{i}].{field}"), message);
            }
            if let Some(step) = &rule.step
                && !self.steps.iter().any(|s| &s.id == step)
            {
                add(
                    format!("alerts[{i}].step"),
                    format!("no step {step:?} in this pipeline"),
                );
            }
            if rule.when == super::AlertWhen::ScheduleLag && self.schedule.is_none() {
                add(
                    format!("alerts[{i}].when"),
                    "schedule_lag needs the pipeline's schedule".into(),
                );
            }
        }
        for (i, trigger) in self.triggers.iter().enumerate() {
            for (field, message) in trigger.problems() {
                add(format!("triggers[{i}]{field}"), message);
            }
            if let Some((name, field, wanted)) = trigger.connection() {
                let kind = self
                    .connections
                    .get(name)
                    .and_then(|c| super::connection::ConnectionUrl::read(&c.url).ok())
                    .map(|u| u.kind);
                match kind {
                    None if !self.connections.contains_key(name) => add(
                        format!("triggers[{i}]{field}"),
                        format!("no connection {name:?} in the pipeline's connections"),
                    ),
                    Some(k) if k != wanted => add(
                        format!("triggers[{i}]{field}"),
                        format!("connection {name:?} is not a {} connection", wanted.name()),
                    ),
                    _ => {}
                }
            }
            if let Some(file) = &trigger.file
                && file.path.is_absolute()
                && let Err(message) = policy.check_mount_host(&file.path)
            {
                add(format!("triggers[{i}].file.path"), message);
            }
        }
        for (field, message) in super::params::problems(&self.params) {
            add(format!("params{field}"), message);
        }
        if self.schedule.is_some() {
            for (name, spec) in &self.params {
                if spec.default.is_none() {
                    add(
                        format!("params.{name}.default"),
                        "needed: a scheduled run has no one to give it a value".into(),
                    );
                }
            }
        }
        for (i, step) in self.steps.iter().enumerate() {
            for name in super::params::references(&step.config) {
                if !self.params.contains_key(&name) {
                    add(
                        format!("steps[{i}].config"),
                        format!("${{params.{name}}} names no parameter of the pipeline (params:)"),
                    );
                }
            }
        }

        if !problems.is_empty() {
            return Err(ValidationErrors(problems));
        }
        let plugins = plugins.into_iter().flatten().collect();
        let mounts = mounts
            .into_iter()
            .map(|m| m.into_iter().flatten().collect())
            .collect();
        Ok(ValidatedPipeline::new(
            self.clone(),
            policy,
            plugins,
            inputs,
            mounts,
        ))
    }

    /// The limits `step` runs with: its own, then the pipeline's, then `defaults` (the server's).
    pub fn effective_limits(&self, step: &Step, defaults: &EffectiveLimits) -> EffectiveLimits {
        step.limits.or(&self.limits).resolve(defaults)
    }

    /// The batch size `step` runs with: its own, then the pipeline's, then 1024.
    pub fn effective_batch_size(&self, step: &Step) -> u32 {
        step.batch_size
            .or(self.batch_size)
            .unwrap_or(super::model::DEFAULT_BATCH_SIZE)
    }

    /// The step with this id (the first one, if ids repeat).
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.id == id)
    }
}

/// What [`check_step`] gives back: the parsed plugin reference, the inputs and the resolved
/// mounts (`None` where invalid).
type StepParts = (Option<PluginRef>, Vec<Input>, Vec<Option<ResolvedMount>>);

/// Checks one step's own fields (all but id uniqueness and cycles).
fn check_step(
    at: &str,
    step: &Step,
    connections: &std::collections::BTreeMap<String, super::model::Connection>,
    index: &HashMap<&str, usize>,
    policy: &ValidationPolicy,
    add: &mut impl FnMut(String, String),
) -> StepParts {
    if !is_valid_id(&step.id) {
        add(
            format!("{at}.id"),
            format!("invalid id {:?} (use a-z, 0-9, - and _)", step.id),
        );
    }
    if let Some(retry) = &step.retry {
        check_retry(&format!("{at}.retry"), retry, add);
    }
    let plugin = match step.plugin.parse::<PluginRef>() {
        Ok(PluginRef::Path(path)) => Some(PluginRef::Path(resolve_path(&path, &policy.base_dir))),
        Ok(plugin) => Some(plugin),
        Err(err) => {
            add(format!("{at}.plugin"), err.to_string());
            None
        }
    };
    let inputs = check_inputs(at, step, index, add);
    let mounts = check_mounts(at, step, policy, add);
    check_limits(&format!("{at}.limits"), &step.limits, policy, add);
    check_batch_size(&format!("{at}.batch_size"), step.batch_size, add);
    for (j, secret) in step.secrets.iter().enumerate() {
        if !is_valid_secret_name(secret) {
            add(
                format!("{at}.secrets[{j}]"),
                format!("invalid secret name {secret:?} (use a-z, A-Z, 0-9, -, _ and .)"),
            );
        }
    }
    for (j, host) in step.allow_hosts.iter().enumerate() {
        if !is_valid_host(host) {
            add(
                format!("{at}.allow_hosts[{j}]"),
                format!(
                    "invalid host {host:?} (expected a host name or address, optionally with :port)"
                ),
            );
        }
    }
    for (j, name) in step.connections.iter().enumerate() {
        if !connections.contains_key(name) {
            add(
                format!("{at}.connections[{j}]"),
                format!("no connection {name:?} in the pipeline's connections"),
            );
        }
    }
    (plugin, inputs, mounts)
}

/// Checks `input`/`inputs` of a step (each `STEP` or `STEP.OUTPUT`); returns those whose step
/// exists (not itself, no repeats). Whether STEP has OUTPUT is known only once its plugin is
/// loaded ([`crate::executor::prepare`]).
fn check_inputs(
    at: &str,
    step: &Step,
    index: &HashMap<&str, usize>,
    add: &mut impl FnMut(String, String),
) -> Vec<Input> {
    if step.input.is_some() && step.inputs.is_some() {
        add(
            at.to_owned(),
            "\"input\" and \"inputs\" are exclusive".into(),
        );
    }
    let mut named: Vec<(String, &str)> = Vec::new();
    if let Some(input) = &step.input {
        named.push((format!("{at}.input"), input));
    }
    for (j, input) in step.inputs.iter().flatten().enumerate() {
        named.push((format!("{at}.inputs[{j}]"), input));
    }
    let mut seen = HashSet::new();
    let mut upstream = Vec::new();
    for (path, written) in named {
        let (id, output) = match written.split_once('.') {
            Some((id, output)) => (id, Some(output)),
            None => (written, None),
        };
        if let Some(output) = output.filter(|o| !is_valid_id(o)) {
            add(
                path,
                format!(
                    "invalid output name {output:?} in {written:?} (write STEP or STEP.OUTPUT; use a-z, 0-9, - and _)"
                ),
            );
        } else if id == step.id {
            add(path, "a step cannot read from itself".into());
        } else if let Some(&j) = index.get(id) {
            if seen.insert((j, output)) {
                upstream.push(Input {
                    step: j,
                    output: output.map(str::to_owned),
                });
            } else {
                add(path, format!("{written:?} is listed twice"));
            }
        } else {
            add(path, format!("no step {id:?}"));
        }
    }
    upstream
}

/// Checks the mounts of a step; returns each one resolved (`None` where it is invalid).
fn check_mounts(
    at: &str,
    step: &Step,
    policy: &ValidationPolicy,
    add: &mut impl FnMut(String, String),
) -> Vec<Option<ResolvedMount>> {
    let mut guests = HashSet::new();
    let mut resolved = Vec::with_capacity(step.mounts.len());
    for (j, mount) in step.mounts.iter().enumerate() {
        let host = match policy.check_mount_host(&mount.host) {
            Ok(host) => Some(host),
            Err(message) => {
                add(format!("{at}.mounts[{j}].host"), message);
                None
            }
        };
        let guest_path = Path::new(&mount.guest);
        let mut guest_ok = false;
        if !mount.guest.starts_with('/') {
            add(
                format!("{at}.mounts[{j}].guest"),
                "must be an absolute path".into(),
            );
        } else if guest_path.components().any(|c| c == Component::ParentDir) {
            add(
                format!("{at}.mounts[{j}].guest"),
                "must not contain \"..\"".into(),
            );
        } else if !guests.insert(guest_path.components().collect::<PathBuf>()) {
            add(
                format!("{at}.mounts[{j}].guest"),
                format!("{:?} is mounted twice", mount.guest),
            );
        } else {
            guest_ok = true;
        }
        resolved.push(host.filter(|_| guest_ok).map(|host| ResolvedMount {
            host,
            guest: mount.guest.clone(),
            mode: mount.mode,
        }));
    }
    resolved
}

fn check_limits(
    at: &str,
    limits: &Limits,
    policy: &ValidationPolicy,
    add: &mut impl FnMut(String, String),
) {
    let checks = [
        ("memory_mb", limits.memory_mb, Some(policy.max_memory_mb)),
        ("timeout_ms", limits.timeout_ms, Some(policy.max_timeout_ms)),
        ("fuel", limits.fuel, None),
        (
            "max_output_bytes",
            limits.max_output_bytes,
            Some(policy.max_output_bytes),
        ),
    ];
    for (field, value, max) in checks {
        match (value, max) {
            (Some(0), _) => add(format!("{at}.{field}"), "must be greater than 0".into()),
            (Some(v), Some(max)) if v > max => add(
                format!("{at}.{field}"),
                format!("{v} exceeds the server maximum of {max}"),
            ),
            _ => {}
        }
    }
}

fn check_batch_size(at: &str, batch_size: Option<u32>, add: &mut impl FnMut(String, String)) {
    if let Some(size) = batch_size
        && (size == 0 || size > MAX_BATCH_SIZE)
    {
        add(
            at.to_owned(),
            format!("must be between 1 and {MAX_BATCH_SIZE}, got {size}"),
        );
    }
}

/// Whether `name` is a secret name: `a-z`, `A-Z`, `0-9`, `-`, `_` and `.`.
pub fn is_valid_secret_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// A host name or IPv4 address (a leading `*.` wildcard allowed) or a bracketed IPv6 address,
/// optionally with `:port`.
fn is_valid_host(host: &str) -> bool {
    if let Some(rest) = host.strip_prefix('[') {
        let Some((v6, tail)) = rest.split_once(']') else {
            return false;
        };
        let v6_ok = !v6.is_empty()
            && v6
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
        return v6_ok && (tail.is_empty() || tail.strip_prefix(':').is_some_and(is_valid_port));
    }
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (host, None),
    };
    let name = name.strip_prefix("*.").unwrap_or(name);
    let name_ok = !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    name_ok && port.is_none_or(is_valid_port)
}

fn is_valid_port(port: &str) -> bool {
    !port.is_empty()
        && port.bytes().all(|b| b.is_ascii_digit())
        && port.parse::<u16>().is_ok_and(|p| p > 0)
}

/// Whether `label` is a worker label: `[a-z0-9][a-z0-9-_:.]*`, at most 63 bytes.
pub fn is_valid_label(label: &str) -> bool {
    let mut bytes = label.bytes();
    label.len() <= 63
        && bytes
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_:.".contains(&b))
}

/// Checks a retry policy at `at` (`retry` or `steps[i].retry`).
fn check_retry(at: &str, retry: &super::RetryPolicy, add: &mut impl FnMut(String, String)) {
    if retry.max_attempts == 0 {
        add(format!("{at}.max_attempts"), "must be at least 1".into());
    }
    if retry.initial_backoff_ms > retry.max_backoff_ms {
        add(
            format!("{at}.initial_backoff_ms"),
            format!(
                "{} is greater than max_backoff_ms ({})",
                retry.initial_backoff_ms, retry.max_backoff_ms
            ),
        );
    }
}
