//! Calls into the host: logging, run metrics, durable step state and granted secrets.
//!
//! Inside a component these are the `autoflow:plugin/host` imports; in a native unit test they go
//! to the thread's [`crate::testing::TestHost`].

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Very fine detail.
    Trace,
    /// Detail for debugging.
    Debug,
    /// Normal progress.
    Info,
    /// Something unexpected that the plugin handled.
    Warn,
    /// A failure.
    Error,
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use super::Level;
    use crate::bindings::source::autoflow::plugin0_1_0::host as wit;

    pub fn log(level: Level, message: &str) {
        let level = match level {
            Level::Trace => wit::Level::Trace,
            Level::Debug => wit::Level::Debug,
            Level::Info => wit::Level::Info,
            Level::Warn => wit::Level::Warn,
            Level::Error => wit::Level::Error,
        };
        wit::log(level, message)
    }
    pub fn count(name: &str, delta: u64) {
        wit::count(name, delta)
    }
    pub fn state_get(key: &str) -> Option<Vec<u8>> {
        wit::state_get(key)
    }
    pub fn state_set(key: &str, value: &[u8]) {
        wit::state_set(key, value)
    }
    pub fn secret(name: &str) -> Option<String> {
        wit::secret(name)
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use super::Level;
    use crate::testing::with_host;

    pub fn log(level: Level, message: &str) {
        with_host(|h| h.logs.push((level, message.to_string())))
    }
    pub fn count(name: &str, delta: u64) {
        with_host(|h| *h.counters.entry(name.to_string()).or_default() += delta)
    }
    pub fn state_get(key: &str) -> Option<Vec<u8>> {
        with_host(|h| h.state.get(key).cloned())
    }
    pub fn state_set(key: &str, value: &[u8]) {
        with_host(|h| {
            h.state.insert(key.to_string(), value.to_vec());
        })
    }
    pub fn secret(name: &str) -> Option<String> {
        with_host(|h| h.secrets.get(name).cloned())
    }
}

/// Writes a line to the run's log, attributed to this step.
pub fn log(level: Level, message: &str) {
    imp::log(level, message)
}

/// Logs at `info` level.
pub fn info(message: &str) {
    imp::log(Level::Info, message)
}

/// Logs at `warn` level.
pub fn warn(message: &str) {
    imp::log(Level::Warn, message)
}

/// Logs at `error` level.
pub fn error(message: &str) {
    imp::log(Level::Error, message)
}

/// Adds `delta` to this step's run metric `name`.
pub fn count(name: &str, delta: u64) {
    imp::count(name, delta)
}

/// Reads this step's durable state under `key`.
pub fn state_get(key: &str) -> Option<Vec<u8>> {
    imp::state_get(key)
}

/// Stores `value` under `key` in this step's durable state; committed with the run.
pub fn state_set(key: &str, value: &[u8]) {
    imp::state_set(key, value)
}

/// The secret `name`, if it was granted to this step.
pub fn secret(name: &str) -> Option<String> {
    imp::secret(name)
}
