//! The REST API: one `router()` per module, merged in [`app`]; shared [`AppState`]; errors as
//! `{"error": kind, "message": text}` ([`ApiError`]).
use std::sync::Arc;

use axum::Router;

pub mod alert_rules;
pub mod alerts;
pub mod auth;
pub mod backfills;
mod body_deadline;
pub mod channels;
pub mod dead_letters;
mod error;
pub mod hooks;
pub mod idempotency;
pub mod login;
pub mod metrics;
pub mod openapi;
mod paging;
pub mod pipelines;
pub mod plugins;
pub mod redaction;
pub mod runs;
pub mod secrets;
pub mod tokens;
pub mod ui;
pub mod users;

pub use error::{ApiError, ApiResult, discard_body, json_body, read_body};
pub use openapi::ApiRouter;

use crate::control::Core;

/// The HTTP API's own settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Largest plugin upload, bytes.
    pub max_plugin_bytes: usize,
    /// Largest pipeline definition (and other JSON bodies), bytes.
    pub max_pipeline_bytes: usize,
    /// A request's whole body must arrive within this ([`body_deadline::limit`]).
    pub body_timeout: std::time::Duration,
    /// Sign-in sessions: lifetimes and cookies.
    pub sessions: crate::auth::session::SessionSettings,
}

/// State shared by every handler: the control layer's [`Core`] (which it derefs to) and the
/// API's settings; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// Store, blobs, engine, policy, master key.
    pub core: Core,
    /// Body caps.
    pub settings: Arc<Settings>,
    /// Failed authentications per source address (429 past the limit).
    pub auth_failures: Arc<crate::auth::limiter::FailureLimiter>,
    /// Sign-in limits and password checks ([`login::Logins`]).
    pub logins: Arc<login::Logins>,
    /// Sends alerts (the outbox's deliverer; test sends).
    pub deliverer: crate::alerts::Deliverer,
    /// The process's metrics, for `GET /metrics` (`None`: not recorded).
    pub metrics: Option<crate::telemetry::Export>,
}

impl std::ops::Deref for AppState {
    type Target = Core;
    fn deref(&self) -> &Core {
        &self.core
    }
}

/// Every route of the API, each with its documentation.
pub fn routes() -> ApiRouter {
    ApiRouter::new()
        .get("/healthz", None, "Liveness and database check", healthz)
        .get(
            "/metrics",
            None,
            "Prometheus metrics, text format (the metrics token, when the server has one)",
            metrics::serve,
        )
        .merge(plugins::routes())
        .merge(pipelines::routes())
        .merge(runs::routes())
        .merge(backfills::routes())
        .merge(dead_letters::routes())
        .merge(secrets::routes())
        .merge(tokens::routes())
        .merge(login::routes())
        .merge(users::routes())
        .merge(channels::routes())
        .merge(alerts::routes())
        .merge(alert_rules::routes())
        .merge(hooks::routes())
}

/// The scopes of the API's routes ([`crate::auth::scope`]): what a token may be narrowed to.
pub fn known_scopes() -> &'static std::collections::BTreeSet<String> {
    static SCOPES: std::sync::OnceLock<std::collections::BTreeSet<String>> =
        std::sync::OnceLock::new();
    SCOPES.get_or_init(|| openapi::scopes(&routes().docs()))
}

/// The whole API, with `/openapi.json` generated from [`routes`].
pub fn app(state: AppState) -> Router {
    let api = routes().get("/openapi.json", None, "This document", openapi::serve);
    let (router, docs) = api.into_parts(&state);
    let body_timeout = state.settings.body_timeout;
    router
        .route("/", axum::routing::get(ui::index))
        .route("/ui/{*path}", axum::routing::get(ui::asset))
        .fallback(not_found)
        .layer(axum::middleware::from_fn(metrics::track))
        .layer(axum::middleware::from_fn_with_state(
            body_timeout,
            body_deadline::limit,
        ))
        .layer(axum::Extension(Arc::new(openapi::document(&docs))))
        .with_state(state)
}
/// `ok` while the database commits a write; 507 when its disk is full, 503 when it fails
/// otherwise, each with the database's answer.
async fn healthz(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> ApiResult<&'static str> {
    match state.store.health().await {
        crate::store::health::Health::Ok => Ok("ok"),
        crate::store::health::Health::DiskFull(m) => Err(ApiError::InsufficientStorage(m)),
        crate::store::health::Health::Failing(m) => Err(ApiError::Unavailable(m)),
    }
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such route".into())
}
