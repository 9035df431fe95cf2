//! Per-step sandbox limits and the resource limiter that enforces the memory cap.
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
        Self { memory_mb: 64, timeout_ms: 30_000, fuel: None, max_output_bytes: 16 << 20 }
    }
}

impl StepLimits {
    /// The per-call wall-clock budget.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// The memory cap in bytes.
    pub fn memory_bytes(&self) -> usize {
        usize::try_from(self.memory_mb.saturating_mul(1 << 20)).unwrap_or(usize::MAX)
    }
}

/// A limit was hit; raised as a trap from inside the guest and named in the step's error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitHit {
    /// The instance tried to grow its memory past `memory_mb`.
    #[error("memory_limit_exceeded: the plugin tried to grow its memory to {wanted_mb} MiB, over its limit of {limit_mb} MiB")]
    Memory {
        /// The limit, MiB.
        limit_mb: u64,
        /// What it asked for, MiB.
        wanted_mb: u64,
    },
    /// A call ran past its wall-clock budget.
    #[error("timeout: the call did not finish within {timeout_ms} ms")]
    Timeout {
        /// The budget, ms.
        timeout_ms: u64,
    },
    /// A table grew past the limit on elements.
    #[error("table_limit_exceeded: the plugin tried to grow a table to {wanted} elements, over its limit of {limit}")]
    Table {
        /// The limit.
        limit: usize,
        /// What it asked for.
        wanted: usize,
    },
}

/// Elements a table may hold (function references, mostly).
pub const MAX_TABLE_ELEMENTS: usize = 1 << 20;

/// The store's resource limiter: refuses growth past the step's memory cap with a named trap.
#[derive(Debug)]
pub struct MemoryCap {
    /// Bytes of linear memory allowed per memory.
    pub max_bytes: usize,
}

impl wasmtime::ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            return Err(LimitHit::Memory {
                limit_mb: (self.max_bytes >> 20) as u64,
                wanted_mb: desired.div_ceil(1 << 20) as u64,
            }
            .into());
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > MAX_TABLE_ELEMENTS {
            return Err(LimitHit::Table { limit: MAX_TABLE_ELEMENTS, wanted: desired }.into());
        }
        Ok(true)
    }
}
