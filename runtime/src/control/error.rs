//! The control layer's error: what went wrong in a domain operation, in the caller's terms.
use crate::store::StoreError;

/// Why an operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The request itself is malformed (a name in the URL that the body contradicts).
    #[error("{0}")]
    BadRequest(String),
    /// Well-formed but invalid: a pipeline that does not validate, a plugin that is not one.
    #[error("{0}")]
    Invalid(String),
    /// A pipeline that does not pass a check, with each problem on its own, each led by its
    /// place (`steps[1].input: ...`); displayed joined by `; `.
    #[error("{}", .0.join("; "))]
    Problems(Vec<String>),
    /// No such object in the tenant.
    #[error("{0}")]
    NotFound(String),
    /// It conflicts with what exists.
    #[error("{0}")]
    Conflict(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The blob store failed (a full disk, say).
    #[error(transparent)]
    Blob(#[from] crate::registry::cache::CacheError),
    /// Something that should not happen (the detail is for the server's log).
    #[error("{0}")]
    Internal(String),
}

/// `Result` with [`ControlError`].
pub type ControlResult<T> = Result<T, ControlError>;

impl ControlError {
    /// An internal error with `what` as its detail.
    pub fn internal(what: impl std::fmt::Display) -> Self {
        ControlError::Internal(what.to_string())
    }
}
