//! The API's error: a kind, mapped to a status code, and a message; rendered as
//! `{"error": kind, "message": text}`. Internal failures are logged, never shown.
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::auth::AuthError;
use crate::store::StoreError;

/// An error answer.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// 401: no valid token.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: the token's role is not enough.
    #[error("{0}")]
    Forbidden(String),
    /// 404: no such object (in this tenant).
    #[error("{0}")]
    NotFound(String),
    /// 409: it conflicts with what exists.
    #[error("{0}")]
    Conflict(String),
    /// 408: the body did not arrive in time; the connection is closed.
    #[error("{0}")]
    RequestTimeout(String),
    /// 413: the body is over the cap.
    #[error("{0}")]
    TooLarge(String),
    /// 415: the body's type is not accepted.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 422: well-formed but invalid (a pipeline that does not validate, a plugin that is not one).
    #[error("{0}")]
    Invalid(String),
    /// 429: too many failed authentications from this address; retry after `retry_after`
    /// seconds (sent as `Retry-After`).
    #[error("{message}")]
    TooManyRequests {
        /// Seconds until the address is let through again.
        retry_after: u64,
        /// Why.
        message: String,
    },
    /// 503: the database is busy or unreachable for now; answered with `Retry-After`.
    #[error("{0}")]
    Unavailable(String),
    /// 507: the server's disk is full; nothing of the request was kept.
    #[error("{0}")]
    InsufficientStorage(String),
    /// 500: something broke; the detail goes to the server log only.
    #[error("internal error")]
    Internal(String),
}

/// `Result` with [`ApiError`].
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// The stable kind and the status code.
    pub fn kind(&self) -> (&'static str, StatusCode) {
        match self {
            ApiError::BadRequest(_) => ("bad_request", StatusCode::BAD_REQUEST),
            ApiError::Unauthorized(_) => ("unauthorized", StatusCode::UNAUTHORIZED),
            ApiError::Forbidden(_) => ("forbidden", StatusCode::FORBIDDEN),
            ApiError::NotFound(_) => ("not_found", StatusCode::NOT_FOUND),
            ApiError::Conflict(_) => ("conflict", StatusCode::CONFLICT),
            ApiError::RequestTimeout(_) => ("request_timeout", StatusCode::REQUEST_TIMEOUT),
            ApiError::TooLarge(_) => ("payload_too_large", StatusCode::PAYLOAD_TOO_LARGE),
            ApiError::UnsupportedMediaType(_) => {
                ("unsupported_media_type", StatusCode::UNSUPPORTED_MEDIA_TYPE)
            }
            ApiError::Invalid(_) => ("invalid", StatusCode::UNPROCESSABLE_ENTITY),
            ApiError::TooManyRequests { .. } => {
                ("too_many_requests", StatusCode::TOO_MANY_REQUESTS)
            }
            ApiError::Unavailable(_) => ("unavailable", StatusCode::SERVICE_UNAVAILABLE),
            ApiError::InsufficientStorage(_) => {
                ("insufficient_storage", StatusCode::INSUFFICIENT_STORAGE)
            }
            ApiError::Internal(_) => ("internal", StatusCode::INTERNAL_SERVER_ERROR),
        }
    }

    /// A 500 for `what`, logged with its detail.
    pub fn internal(what: impl std::fmt::Display) -> Self {
        ApiError::Internal(what.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (kind, status) = self.kind();
        match &self {
            ApiError::Internal(detail) => tracing::error!("internal error: {detail}"),
            ApiError::Unavailable(m) | ApiError::InsufficientStorage(m) => tracing::warn!("{m}"),
            _ => {}
        }
        let body = crate::wire::ErrorBody {
            error: kind.to_string(),
            message: self.to_string(),
        };
        if matches!(self, ApiError::TooLarge(_) | ApiError::RequestTimeout(_)) {
            // The rest of the body is not read: the connection cannot carry another request.
            return (
                status,
                [(axum::http::header::CONNECTION, "close")],
                axum::Json(body),
            )
                .into_response();
        }
        if let ApiError::TooManyRequests { retry_after, .. } = &self {
            return (
                status,
                [(axum::http::header::RETRY_AFTER, retry_after.to_string())],
                axum::Json(body),
            )
                .into_response();
        }
        if matches!(self, ApiError::Unavailable(_)) {
            return (
                status,
                [(axum::http::header::RETRY_AFTER, "1")],
                axum::Json(body),
            )
                .into_response();
        }
        (status, axum::Json(body)).into_response()
    }
}

impl From<StoreError> for ApiError {
    /// A full disk is 507 and a busy or unreachable database 503, each saying so; the rest 500.
    fn from(e: StoreError) -> Self {
        if e.is_disk_full() {
            ApiError::InsufficientStorage(format!(
                "the server's disk is full: its database could not write ({e}); nothing of this request was kept, \
                 try again once the operator has freed space"
            ))
        } else if e.is_transient() {
            ApiError::Unavailable(format!(
                "the server's database is busy or unreachable ({e}); try again"
            ))
        } else {
            ApiError::internal(e)
        }
    }
}

impl From<crate::registry::cache::CacheError> for ApiError {
    /// A blob that cannot be written for lack of space is 507, as the database's; the rest 500.
    fn from(e: crate::registry::cache::CacheError) -> Self {
        if e.is_disk_full() {
            ApiError::InsufficientStorage(format!(
                "the server's disk is full: {e}; nothing of this request was kept, try again once the operator has freed space"
            ))
        } else {
            ApiError::internal(e)
        }
    }
}

impl From<crate::control::ControlError> for ApiError {
    /// The one mapping of the control layer's errors to answers.
    fn from(e: crate::control::ControlError) -> Self {
        use crate::control::ControlError as C;
        match e {
            C::BadRequest(m) => ApiError::BadRequest(m),
            C::Invalid(m) => ApiError::Invalid(m),
            C::Problems(list) => ApiError::Invalid(list.join("; ")),
            C::NotFound(m) => ApiError::NotFound(m),
            C::Conflict(m) => ApiError::Conflict(m),
            C::Store(e) => e.into(),
            C::Blob(e) => e.into(),
            C::Internal(m) => ApiError::Internal(m),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Unauthenticated(m) => ApiError::Unauthorized(m.to_string()),
            AuthError::Forbidden(_) | AuthError::OutOfScope { .. } => {
                ApiError::Forbidden(e.to_string())
            }
            AuthError::Store(e) => e.into(),
            AuthError::Random(m) => ApiError::internal(m),
        }
    }
}

/// Bytes of a body read and thrown away before answering without it (413, 401, 403), so that
/// the client has finished sending and reads the answer instead of a reset connection.
const DRAIN_LIMIT: usize = 64 << 20;

/// Reads what is left of `stream` and throws it away, after `seen` bytes: at most
/// [`DRAIN_LIMIT`] in all, for at most 10 seconds.
async fn drain(mut stream: axum::body::BodyDataStream, mut seen: usize) {
    use futures::StreamExt;
    let drain = async {
        while let Some(Ok(c)) = stream.next().await {
            seen += c.len();
            if seen > DRAIN_LIMIT {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), drain).await;
}

/// Throws away the body of a request answered without it ([`drain`]).
pub async fn discard_body(body: axum::body::Body) {
    drain(body.into_data_stream(), 0).await;
}

/// Reads a whole body of at most `cap` bytes (413 beyond, after draining what follows up to
/// [`DRAIN_LIMIT`] for at most 10 seconds).
pub async fn read_body(body: axum::body::Body, cap: usize) -> ApiResult<bytes::Bytes> {
    use futures::StreamExt;
    let mut stream = body.into_data_stream();
    let mut buf = bytes::BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| match super::body_deadline::too_slow(&e) {
            Some(slow) => ApiError::RequestTimeout(slow.to_string()),
            None => ApiError::BadRequest(format!("cannot read the body: {e}")),
        })?;
        if buf.len() + chunk.len() > cap {
            drain(stream, buf.len() + chunk.len()).await;
            return Err(ApiError::TooLarge(format!(
                "the body is larger than the limit of {cap} bytes"
            )));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// Parses a JSON body of at most `cap` bytes into `T`.
pub async fn json_body<T: serde::de::DeserializeOwned>(
    body: axum::body::Body,
    cap: usize,
) -> ApiResult<T> {
    let bytes = read_body(body, cap).await?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
}
