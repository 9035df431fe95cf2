//! Why an attempt could not run to its end: the store failing in a way that may pass, or
//! anything else.
use crate::store::StoreError;

/// An attempt's error before or around its execution (not a step's: those are in its report).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttemptError {
    /// The store failed transiently (a lost connection, a fail-over, a full disk, a busy
    /// file): the run goes back to the queue, and the attempt does not count against its retries.
    #[error("{0}")]
    Transient(String),
    /// The run cannot run (a version or plugin gone, a secret not set, a broken plan).
    #[error("{0}")]
    Failed(String),
}

impl From<StoreError> for AttemptError {
    fn from(e: StoreError) -> Self {
        if e.is_transient() {
            AttemptError::Transient(e.to_string())
        } else {
            AttemptError::Failed(e.to_string())
        }
    }
}

impl From<String> for AttemptError {
    fn from(e: String) -> Self {
        AttemptError::Failed(e)
    }
}
