//! The error a plugin returns; its kind tells the host whether to retry.
use std::fmt;

/// How a plugin call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The step's configuration is wrong; retrying will not help.
    InvalidConfig(String),
    /// A passing failure; the host may retry with backoff.
    Retryable(String),
    /// The step cannot go on; the run fails.
    Fatal(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidConfig(m) => write!(f, "invalid config: {m}"),
            Error::Retryable(m) => write!(f, "retryable: {m}"),
            Error::Fatal(m) => write!(f, "fatal: {m}"),
        }
    }
}

impl Error {
    /// The same error, of the same kind, with `what` in front of its message (`what: ...`).
    pub fn context(self, what: &str) -> Self {
        match self {
            Error::InvalidConfig(m) => Error::InvalidConfig(format!("{what}: {m}")),
            Error::Retryable(m) => Error::Retryable(format!("{what}: {m}")),
            Error::Fatal(m) => Error::Fatal(format!("{what}: {m}")),
        }
    }
}

impl std::error::Error for Error {}

/// `Result` with the plugin [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Parses a step's JSON configuration into `T`; a mismatch is an `invalid-config` error that
/// names the field.
pub fn parse_config<T: serde::de::DeserializeOwned>(config: &str) -> Result<T> {
    let text = if config.trim().is_empty() {
        "{}"
    } else {
        config
    };
    serde_json::from_str(text).map_err(|e| Error::InvalidConfig(e.to_string()))
}
