//! Per-step sandbox limits (the pipeline model's [`StepLimits`]) and the resource limiter that
//! enforces the memory cap.
pub use crate::pipeline::StepLimits;

/// A limit was hit; raised as a trap from inside the guest and named in the step's error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitHit {
    /// The instance tried to grow its memory past `memory_mb`.
    #[error(
        "memory_limit_exceeded: the plugin tried to grow its memory to {wanted_mb} MiB, over its limit of {limit_mb} MiB"
    )]
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
    #[error(
        "table_limit_exceeded: the plugin tried to grow a table to {wanted} elements, over its limit of {limit}"
    )]
    Table {
        /// The limit.
        limit: usize,
        /// What it asked for.
        wanted: usize,
    },
}

/// Elements a table may hold (function references, mostly).
pub const MAX_TABLE_ELEMENTS: usize = 1 << 20;

/// The store's resource limiter: refuses growth past the step's memory cap with a named trap,
/// and keeps the high-water mark of what it allowed.
#[derive(Debug)]
pub struct MemoryCap {
    /// Bytes of linear memory allowed per memory.
    pub max_bytes: usize,
    /// The largest size a memory was allowed to grow to (or created with), bytes.
    pub peak_bytes: usize,
}

impl MemoryCap {
    /// A limiter allowing `max_bytes` per memory, nothing allowed yet.
    pub fn new(max_bytes: usize) -> Self {
        Self {
            max_bytes,
            peak_bytes: 0,
        }
    }
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
        self.peak_bytes = self.peak_bytes.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > MAX_TABLE_ELEMENTS {
            return Err(LimitHit::Table {
                limit: MAX_TABLE_ELEMENTS,
                wanted: desired,
            }
            .into());
        }
        Ok(true)
    }
}
