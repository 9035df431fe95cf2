//! How a step's call into its plugin can fail, each way with a stable name.
use super::bindings::PluginError;
use super::limits::{LimitHit, StepLimits};

/// A step's failure. [`StepError::kind`] is the stable name shown in runs and the API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    /// A call ran past its wall-clock budget.
    #[error("timeout: the call did not finish within {timeout_ms} ms")]
    Timeout {
        /// The budget, ms.
        timeout_ms: u64,
    },
    /// The instance tried to grow its memory past its cap.
    #[error("{0}")]
    MemoryLimitExceeded(String),
    /// The instance burnt all its fuel.
    #[error("fuel_exhausted: the plugin used up its fuel of {fuel}")]
    FuelExhausted {
        /// The fuel it had.
        fuel: u64,
    },
    /// One call returned more record bytes than allowed.
    #[error("output_too_large: one call returned {}bytes of records, over the limit of {limit}", bytes.map(|b| format!("{b} ")).unwrap_or_else(|| "more ".into()))]
    OutputTooLarge {
        /// The limit, bytes.
        limit: u64,
        /// What it returned, bytes, when it was counted (a return far over the limit is
        /// stopped while being copied, before it is counted).
        bytes: Option<u64>,
    },
    /// The guest's call stack overflowed (unbounded recursion): the wasm call stack, or the
    /// shadow stack in its linear memory running below address 0.
    #[error("stack_overflow: the plugin overflowed its call stack")]
    StackOverflow,
    /// The step's durable state would grow past the host's cap.
    #[error("state_too_large: the step's state would exceed {} MiB", .limit_bytes >> 20)]
    StateTooLarge {
        /// The cap, bytes.
        limit_bytes: u64,
    },
    /// The guest trapped (a panic, an abort, an out-of-bounds access, a host refusal).
    #[error("trap: {message}")]
    Trap {
        /// The trap and the last lines the guest printed.
        message: String,
    },
    /// The plugin returned `invalid-config`.
    #[error("invalid_config: {0}")]
    InvalidConfig(String),
    /// The plugin returned `retryable`.
    #[error("retryable: {0}")]
    Retryable(String),
    /// The plugin returned `fatal`.
    #[error("fatal: {0}")]
    Fatal(String),
    /// The plugin could not be instantiated, or was used against its kind.
    #[error("instantiate: {0}")]
    Instantiate(String),
}

impl StepError {
    /// The stable name of this kind of failure (`timeout`, `memory_limit_exceeded`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            StepError::Timeout { .. } => "timeout",
            StepError::MemoryLimitExceeded(_) => "memory_limit_exceeded",
            StepError::FuelExhausted { .. } => "fuel_exhausted",
            StepError::OutputTooLarge { .. } => "output_too_large",
            StepError::StackOverflow => "stack_overflow",
            StepError::StateTooLarge { .. } => "state_too_large",
            StepError::Trap { .. } => "trap",
            StepError::InvalidConfig(_) => "invalid_config",
            StepError::Retryable(_) => "retryable",
            StepError::Fatal(_) => "fatal",
            StepError::Instantiate(_) => "instantiate",
        }
    }

    /// Whether trying the same call again may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StepError::Retryable(_))
    }

    /// Whether the instance is unusable after this error (the guest trapped).
    pub fn poisons_instance(&self) -> bool {
        !matches!(
            self,
            StepError::InvalidConfig(_)
                | StepError::Retryable(_)
                | StepError::Fatal(_)
                | StepError::OutputTooLarge { .. }
        )
    }

    /// Names a trap raised while the guest ran; `output` is the tail of its stdout/stderr.
    pub(crate) fn from_trap(err: wasmtime::Error, limits: &StepLimits, output: &str) -> Self {
        if let Some(hit) = err.downcast_ref::<LimitHit>() {
            return match hit {
                LimitHit::Timeout { timeout_ms } => StepError::Timeout {
                    timeout_ms: *timeout_ms,
                },
                other => StepError::MemoryLimitExceeded(other.to_string()),
            };
        }
        match err.downcast_ref::<wasmtime::Trap>() {
            Some(wasmtime::Trap::OutOfFuel) => {
                return StepError::FuelExhausted {
                    fuel: limits.fuel.unwrap_or(0),
                };
            }
            Some(wasmtime::Trap::StackOverflow) => return StepError::StackOverflow,
            Some(wasmtime::Trap::MemoryOutOfBounds) if recursed_to_the_fault(&err) => {
                return StepError::StackOverflow;
            }
            _ => {}
        }
        // A host function refused the call with a named failure (the state cap).
        if let Some(named) = err.downcast_ref::<StepError>() {
            return named.clone();
        }
        // wasmtime's cap on bytes copied out of the guest in one call, which the engine sets
        // from `max_output_bytes` (its error type is private, so it is known by its text).
        if format!("{err:#}")
            .contains("too much data is being copied between the host and the guest")
        {
            return StepError::OutputTooLarge {
                limit: limits.max_output_bytes,
                bytes: None,
            };
        }
        let mut message = trap_summary(&err);
        let output = output.trim();
        if !output.is_empty() {
            message.push_str("; the plugin printed: ");
            message.push_str(output);
        }
        StepError::Trap { message }
    }
}

/// Whether the out-of-bounds access `err` ended unbounded recursion: its innermost function
/// is on the stack at least [`RECURSION_DEPTH`] times. Rust and C guests keep a shadow stack
/// at the bottom of their linear memory, growing down; recursion that keeps locals there runs
/// it below address 0, which is an out-of-bounds access, not wasm's own stack-overflow trap.
fn recursed_to_the_fault(err: &wasmtime::Error) -> bool {
    let Some(backtrace) = err.downcast_ref::<wasmtime::WasmBacktrace>() else {
        return false;
    };
    let frames = backtrace.frames();
    let Some(innermost) = frames.first() else {
        return false;
    };
    let on_stack = frames
        .iter()
        .filter(|f| {
            f.func_index() == innermost.func_index()
                && wasmtime::Module::same(f.module(), innermost.module())
        })
        .count();
    on_stack >= RECURSION_DEPTH
}

/// How often one function must be on the stack for an out-of-bounds access to count as the
/// shadow stack's overflow: frames of up to 16 KiB fill the default 1 MiB shadow stack more
/// often than this. (The engine keeps [`super::BACKTRACE_FRAMES`] frames of a trap.)
const RECURSION_DEPTH: usize = 64;

impl From<PluginError> for StepError {
    fn from(e: PluginError) -> Self {
        match e {
            PluginError::InvalidConfig(m) => StepError::InvalidConfig(m),
            PluginError::Retryable(m) => StepError::Retryable(m),
            PluginError::Fatal(m) => StepError::Fatal(m),
        }
    }
}

/// What went wrong in one line: the trap (or the host error that stopped the guest) and the
/// guest function it happened in. wasmtime's own report puts the backtrace between its first
/// line and the cause, so its first line alone says only "error while executing at wasm
/// backtrace:".
fn trap_summary(err: &wasmtime::Error) -> String {
    let mut message = match err.downcast_ref::<wasmtime::Trap>() {
        Some(trap) => trap.to_string(),
        None => err.root_cause().to_string(),
    };
    let innermost = err
        .downcast_ref::<wasmtime::WasmBacktrace>()
        .and_then(|bt| {
            bt.frames()
                .iter()
                .find_map(|f| f.func_name().map(str::to_string))
        });
    if let Some(func) = innermost {
        message.push_str(&format!(" (in {func})"));
    }
    message
}
