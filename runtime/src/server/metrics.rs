//! A worker's own `GET /metrics` (`autoflow worker --metrics-listen ADDR`): the same answer as
//! the server's ([`crate::api::metrics::answer`]), on a listener of its own, until the stop.
use std::future::Future;

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;

use crate::control::Core;
use crate::telemetry::Export;

/// Options of the metrics, on the server and on a worker.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct MetricsArgs {
    /// A scrape of `/metrics` must send `Authorization: Bearer TOKEN`. Default: none, the
    /// metrics are open (their labels name tenants' ids, pipelines and steps, never a run or a
    /// record: set a token where the address is reachable by others).
    #[arg(long, env = "AUTOFLOW_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
}

#[derive(Clone)]
struct Scrape {
    core: Core,
    export: Option<Export>,
}

async fn metrics(State(s): State<Scrape>, headers: HeaderMap) -> Response {
    crate::api::metrics::answer(&s.core, s.export.as_ref(), &headers).await
}

/// Binds `addr` (printing the address bound, port 0 being any) and serves `/metrics` there
/// until `stop` completes.
pub async fn listen(
    addr: &str,
    core: Core,
    export: Option<Export>,
    stop: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("--metrics-listen: cannot listen on {addr}"))?;
    println!(
        "autoflow metrics listening on http://{}/metrics",
        listener.local_addr()?
    );
    let app = Router::new()
        .route("/metrics", get(metrics))
        .with_state(Scrape { core, export });
    Ok(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(stop)
            .await
        {
            tracing::warn!("the metrics listener stopped: {e}");
        }
    }))
}
