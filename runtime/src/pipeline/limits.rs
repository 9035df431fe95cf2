//! The limits one step runs under, as a pipeline sets them and the engine enforces them.
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The limits one step runs under. Every field has a default; pipelines override them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepLimits {
    /// Linear memory the instance may grow to, in MiB.
    pub memory_mb: u64,
    /// Wall-clock budget of one call into the plugin (`open`, `next`, `process`, `write`,
    /// `flush`), in milliseconds.
    pub timeout_ms: u64,
    /// Fuel (roughly, wasm instructions) the instance may burn over its whole life; `None` is
    /// unmetered. Needs an engine built with fuel metering.
    pub fuel: Option<u64>,
    /// Bytes of records (keys, values and headers) one call may return.
    pub max_output_bytes: u64,
}

impl Default for StepLimits {
    /// 64 MiB, 30 s per call, no fuel metering, 16 MiB of output per call.
    fn default() -> Self {
        Self {
            memory_mb: 64,
            timeout_ms: 30_000,
            fuel: None,
            max_output_bytes: 16 << 20,
        }
    }
}

impl StepLimits {
    /// The limits of a plugin's `describe` call, at upload and before each run: it returns a
    /// few constants, so it gets a second and 64 MiB, whatever the step's own limits are.
    pub const DESCRIBE: StepLimits = StepLimits {
        memory_mb: 64,
        timeout_ms: 1_000,
        fuel: None,
        max_output_bytes: 1 << 20,
    };

    /// The per-call wall-clock budget.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// The memory cap in bytes.
    pub fn memory_bytes(&self) -> usize {
        usize::try_from(self.memory_mb.saturating_mul(1 << 20)).unwrap_or(usize::MAX)
    }
}
