//! A tenant's ceilings, set by the operator: the most one step of the tenant's pipelines may
//! ask for (memory, output per call, fuel), the memory of all its running runs together, and
//! its runs at once. A pipeline over them is refused when applied, naming the ceiling; a run
//! is checked again when it starts (the ceilings may have been lowered since), and its steps
//! run with the tenant's fuel when they set none.
use serde::{Deserialize, Serialize};

use super::error::PipelineError;
use super::model::{EffectiveLimits, Limits, Pipeline};

/// A tenant's ceilings; 0 is "no ceiling" for each.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantLimits {
    /// Runs of the tenant at once.
    #[serde(default)]
    pub max_running: u64,
    /// `memory_mb` of one step.
    #[serde(default)]
    pub max_step_memory_mb: u64,
    /// The memory of the tenant's running runs together: each run counts the `memory_mb` of
    /// all its steps (they run at once), and a run waits while it would go over.
    #[serde(default)]
    pub max_running_memory_mb: u64,
    /// `max_output_bytes` of one step.
    #[serde(default)]
    pub max_output_bytes: u64,
    /// `fuel` of one step; a step that sets none runs with this much.
    #[serde(default)]
    pub max_fuel: u64,
}

impl TenantLimits {
    /// The ceilings that are set, as `name value` pairs (the audit log's detail).
    pub fn describe(&self) -> String {
        let set: Vec<String> = self
            .fields()
            .iter()
            .filter(|(_, v)| *v > 0)
            .map(|(name, v)| format!("{name} {v}"))
            .collect();
        if set.is_empty() {
            "no limits".into()
        } else {
            set.join(", ")
        }
    }

    fn fields(&self) -> [(&'static str, u64); 5] {
        [
            ("max_running", self.max_running),
            ("max_step_memory_mb", self.max_step_memory_mb),
            ("max_running_memory_mb", self.max_running_memory_mb),
            ("max_output_bytes", self.max_output_bytes),
            ("max_fuel", self.max_fuel),
        ]
    }

    /// What `pipeline` asks for over these ceilings, each named by its place: a limit it sets
    /// (pipeline-wide or on a step) over its ceiling, and its steps' memory together (with the
    /// server's `defaults` for what it leaves unset, capped by [`TenantLimits::cap`]).
    pub fn check(&self, pipeline: &Pipeline, defaults: &EffectiveLimits) -> Vec<PipelineError> {
        let mut problems = Vec::new();
        self.check_set(&pipeline.limits, "limits", &mut problems);
        for (i, step) in pipeline.steps.iter().enumerate() {
            self.check_set(&step.limits, &format!("steps[{i}].limits"), &mut problems);
        }
        let memory = self.run_memory_mb(pipeline, defaults);
        if over(memory, self.max_running_memory_mb) {
            problems.push(PipelineError::invalid(
                "steps",
                format!(
                    "the steps need {memory} MiB together (their memory_mb), over the tenant's \
                     max_running_memory_mb of {}",
                    self.max_running_memory_mb
                ),
            ));
        }
        problems
    }

    /// The limits set at `at` that go over their ceilings.
    fn check_set(&self, limits: &Limits, at: &str, problems: &mut Vec<PipelineError>) {
        let checks = [
            (
                "memory_mb",
                limits.memory_mb,
                "max_step_memory_mb",
                self.max_step_memory_mb,
            ),
            (
                "max_output_bytes",
                limits.max_output_bytes,
                "max_output_bytes",
                self.max_output_bytes,
            ),
            ("fuel", limits.fuel, "max_fuel", self.max_fuel),
        ];
        for (field, value, ceiling_name, ceiling) in checks {
            if let Some(value) = value
                && over(value, ceiling)
            {
                problems.push(PipelineError::invalid(
                    format!("{at}.{field}"),
                    format!("{value} exceeds the tenant's {ceiling_name} of {ceiling}"),
                ));
            }
        }
    }

    /// `limits` (a step's, with the server's defaults for what it leaves unset) within these
    /// ceilings: a default over a ceiling is lowered to it, and a step without fuel gets
    /// `max_fuel`. (A limit the pipeline sets over a ceiling is refused by
    /// [`TenantLimits::check`] instead.)
    pub fn cap(&self, limits: EffectiveLimits) -> EffectiveLimits {
        let lower = |value: u64, ceiling: u64| {
            if ceiling > 0 {
                value.min(ceiling)
            } else {
                value
            }
        };
        EffectiveLimits {
            memory_mb: lower(limits.memory_mb, self.max_step_memory_mb),
            max_output_bytes: lower(limits.max_output_bytes, self.max_output_bytes),
            fuel: self.fuel_for(limits.fuel),
            ..limits
        }
    }

    /// The memory one run of `pipeline` holds at most, MiB: every step's `memory_mb` (its
    /// steps run at once), with `defaults` for what it leaves unset, within these ceilings.
    pub fn run_memory_mb(&self, pipeline: &Pipeline, defaults: &EffectiveLimits) -> u64 {
        pipeline
            .steps
            .iter()
            .map(|step| {
                self.cap(pipeline.effective_limits(step, defaults))
                    .memory_mb
            })
            .fold(0, u64::saturating_add)
    }

    /// The fuel a step with `fuel` runs with: the tenant's `max_fuel` when the step sets none.
    fn fuel_for(&self, fuel: Option<u64>) -> Option<u64> {
        match (fuel, self.max_fuel) {
            (None, 0) => None,
            (None, ceiling) => Some(ceiling),
            (Some(f), _) => Some(f),
        }
    }
}

/// Whether `value` is over `ceiling` (0: none).
fn over(value: u64, ceiling: u64) -> bool {
    ceiling > 0 && value > ceiling
}

#[cfg(test)]
mod tests {
    use super::{EffectiveLimits, TenantLimits};

    #[test]
    fn defaults_are_lowered_to_the_ceilings_and_a_step_without_fuel_gets_the_tenants() {
        let defaults = EffectiveLimits::default();
        assert_eq!(TenantLimits::default().cap(defaults), defaults);
        let capped = TenantLimits {
            max_step_memory_mb: 32,
            max_output_bytes: 1_000,
            max_fuel: 1_000,
            ..TenantLimits::default()
        };
        let limits = capped.cap(defaults);
        assert_eq!(
            (limits.memory_mb, limits.max_output_bytes, limits.fuel),
            (32, 1_000, Some(1_000))
        );
        assert_eq!(limits.timeout_ms, defaults.timeout_ms);
        let own_fuel = EffectiveLimits {
            fuel: Some(7),
            ..defaults
        };
        assert_eq!(capped.cap(own_fuel).fuel, Some(7));
    }

    #[test]
    fn the_audit_detail_names_the_ceilings_that_are_set() {
        assert_eq!(TenantLimits::default().describe(), "no limits");
        let set = TenantLimits {
            max_running: 1,
            max_fuel: 9,
            ..TenantLimits::default()
        };
        assert_eq!(set.describe(), "max_running 1, max_fuel 9");
    }
}
