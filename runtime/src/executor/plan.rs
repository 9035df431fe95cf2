//! A run's plan: the steps in topological order with their loaded plugins, configs, grants and
//! limits, ready for the executor.
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::engine::{Mount, Plugin, StepLimits};
use crate::integrations::Grant;

/// One step, ready to run.
#[derive(Debug, Clone)]
pub struct PlannedStep {
    /// Step id.
    pub id: String,
    /// The plugin, loaded and checked.
    pub plugin: Arc<Plugin>,
    /// The config handed to `open`, as JSON text.
    pub config: String,
    /// Indices (into [`Plan::steps`]) of the steps it reads from; always earlier steps.
    pub inputs: Vec<usize>,
    /// Which output of each of [`inputs`](Self::inputs) it reads (same order): `None` for the
    /// default one, else a named output.
    pub input_outputs: Vec<Option<String>>,
    /// Its limits.
    pub limits: StepLimits,
    /// Directories it may see.
    pub mounts: Vec<Mount>,
    /// Secrets granted to it, by name.
    pub secrets: BTreeMap<String, String>,
    /// Connections granted to it, by name; their URLs hold `${secrets.NAME}` placeholders
    /// until [`Plan::open_connections`] fills them for a run.
    pub connections: BTreeMap<String, Grant>,
    /// Hosts it may reach over outbound HTTP (`host[:port]`, `*.domain`).
    pub allow_hosts: Vec<String>,
    /// Its durable state as of the last run.
    pub state: BTreeMap<String, Vec<u8>>,
    /// For sources: the committed cursor to resume from.
    pub cursor: Option<String>,
    /// This step's retry settings, when it overrides the plan's.
    pub retry: Option<RetrySettings>,
    /// Records per batch.
    pub batch_size: u32,
}

/// How failed calls are retried within a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetrySettings {
    /// Attempts per call, the first included (1 = no retry).
    pub max_attempts: u32,
    /// Backoff before the first retry; doubles each time.
    pub initial_backoff: Duration,
    /// Longest backoff.
    pub max_backoff: Duration,
    /// When the retries of a batch are used up, dead-letter its records and go on instead of
    /// failing the step.
    pub dead_letter_exhausted: bool,
}

impl Default for RetrySettings {
    fn default() -> Self {
        Self {
            max_attempts: 1,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(60),
            dead_letter_exhausted: false,
        }
    }
}

impl From<&crate::pipeline::RetryPolicy> for RetrySettings {
    fn from(r: &crate::pipeline::RetryPolicy) -> Self {
        Self {
            max_attempts: r.max_attempts,
            initial_backoff: Duration::from_millis(r.initial_backoff_ms),
            max_backoff: Duration::from_millis(r.max_backoff_ms),
            dead_letter_exhausted: r.then == crate::pipeline::Exhausted::DeadLetter,
        }
    }
}

impl RetrySettings {
    /// The wait before retry number `retry` (0-based): exponential, capped, with jitter in
    /// [50%, 100%] so that retries of many runs spread out.
    pub fn backoff(&self, retry: u32) -> Duration {
        let base = self
            .initial_backoff
            .saturating_mul(1u32 << retry.min(20))
            .min(self.max_backoff);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let jitter = 0.5 + f64::from(nanos % 1000) / 2000.0;
        base.mul_f64(jitter)
    }
}

/// The steps of a run, in topological order.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Steps; each one's inputs come before it.
    pub steps: Vec<PlannedStep>,
    /// Retry settings for every step's calls.
    pub retry: RetrySettings,
    /// Records fed to one step instead of its inputs (a replay of dead letters).
    pub inject: Option<Injection>,
}

/// Records given to a step as its whole input.
#[derive(Debug, Clone)]
pub struct Injection {
    /// The step's index in [`Plan::steps`].
    pub step: usize,
    /// The records, in order.
    pub records: Vec<crate::engine::bindings::Record>,
}

impl Plan {
    /// The plan of a replay: step `id` fed with `records`, and the steps downstream of it; the
    /// rest of the pipeline does not run.
    pub fn replay(mut self, id: &str, records: Vec<crate::record::Record>) -> Result<Plan, String> {
        let target = self
            .steps
            .iter()
            .position(|s| s.id == id)
            .ok_or_else(|| format!("no step {id:?} in the pipeline"))?;
        let mut keep = vec![false; self.steps.len()];
        keep[target] = true;
        // Steps come in topological order: one pass finds everything downstream.
        for i in target + 1..self.steps.len() {
            keep[i] = self.steps[i].inputs.iter().any(|&j| keep[j]);
        }
        let mut index = vec![usize::MAX; self.steps.len()];
        let mut steps = Vec::new();
        for (i, mut step) in std::mem::take(&mut self.steps).into_iter().enumerate() {
            if !keep[i] {
                continue;
            }
            index[i] = steps.len();
            let (inputs, input_outputs) = if i == target {
                (Vec::new(), Vec::new())
            } else {
                step.inputs
                    .iter()
                    .zip(step.input_outputs)
                    .filter(|(j, _)| keep[**j])
                    .map(|(&j, output)| (index[j], output))
                    .unzip()
            };
            step.inputs = inputs;
            step.input_outputs = input_outputs;
            steps.push(step);
        }
        Ok(Plan {
            steps,
            retry: self.retry,
            inject: Some(Injection {
                step: 0,
                records: records.into_iter().map(Into::into).collect(),
            }),
        })
    }

    /// Puts the run's parameter values into its steps' configs (`${params.NAME}`, see
    /// [`crate::pipeline::params::substitute`]).
    pub fn apply_params(&mut self, values: &crate::pipeline::params::ParamValues) {
        for step in &mut self.steps {
            if !step.config.contains("${params.") {
                continue;
            }
            if let Ok(config) = serde_json::from_str::<serde_json::Value>(&step.config) {
                step.config = crate::pipeline::params::substitute(&config, values).to_string();
            }
        }
    }

    /// Names of the secrets the connection URLs of its steps refer to.
    pub fn connection_secrets(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .steps
            .iter()
            .flat_map(|s| s.connections.values())
            .filter_map(|g| crate::integrations::ConnectionUrl::read(&g.url).ok())
            .flat_map(|u| u.secrets)
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// Puts the values of `secrets` into its steps' connection URLs; an error names the step,
    /// the connection and the missing secret.
    pub fn open_connections(&mut self, secrets: &BTreeMap<String, String>) -> Result<(), String> {
        for step in &mut self.steps {
            for (name, grant) in &mut step.connections {
                grant.url = crate::integrations::expand(&grant.url, secrets)
                    .map_err(|e| format!("step {:?}: connection {name:?}: {e}", step.id))?;
            }
        }
        Ok(())
    }

    /// The steps that read from step `i`, each with the output of `i` it reads (`None`: the
    /// default one); a step that reads two outputs of `i` comes twice.
    pub fn consumers(&self, i: usize) -> Vec<(usize, Option<String>)> {
        let mut found = Vec::new();
        for (j, step) in self.steps.iter().enumerate() {
            for (&from, output) in step.inputs.iter().zip(&step.input_outputs) {
                if from == i {
                    found.push((j, output.clone()));
                }
            }
        }
        found
    }
}
