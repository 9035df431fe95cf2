//! The REST API: one `router()` per module, merged in [`app`]; shared [`AppState`]; errors as
//! `{"error": kind, "message": text}` ([`ApiError`]).
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;

mod error;
pub mod openapi;
pub mod pipelines;
pub mod plugins;
pub mod runs;
pub mod tokens;

pub use error::{ApiError, ApiResult, json_body, read_body};

use crate::engine::Engine;
use crate::pipeline::ValidationPolicy;
use crate::registry::blob::BlobStore;
use crate::store::Store;

/// What the server was configured with, as the handlers need it.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Largest plugin upload, bytes.
    pub max_plugin_bytes: usize,
    /// Largest pipeline definition (and other JSON bodies), bytes.
    pub max_pipeline_bytes: usize,
    /// How pipelines are validated (mount roots, limits).
    pub policy: ValidationPolicy,
    /// The data directory.
    pub data_dir: PathBuf,
}

/// State shared by every handler; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub store: Store,
    /// Plugin bytes by digest.
    pub blobs: BlobStore,
    /// The wasm engine (to check and describe plugins, and to run).
    pub engine: Engine,
    /// Configuration.
    pub settings: Arc<Settings>,
    /// Wakes the executor when a run is queued.
    pub wake: Arc<tokio::sync::Notify>,
}

/// The whole API.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/openapi.json", get(openapi::serve))
        .merge(plugins::router())
        .merge(pipelines::router())
        .merge(runs::router())
        .merge(tokens::router())
        .fallback(not_found)
        .with_state(state)
}

async fn healthz(axum::extract::State(state): axum::extract::State<AppState>) -> ApiResult<&'static str> {
    sqlx::query("SELECT 1").execute(&state.store.pool).await.map_err(ApiError::internal)?;
    Ok("ok")
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such route".into())
}
