//! `GET /metrics` (Prometheus text; open unless the process was given a metrics token, then
//! only with `Authorization: Bearer TOKEN`), and the middleware that counts every request by
//! its matched route template (`/v1/runs/{id}`, never the raw path) and status, with its time.
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{ApiError, AppState};
use crate::control::Core;
use crate::telemetry::Export;

/// The content type of the text exposition format.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The answer to a scrape of `core`'s process through `export`, given the request's headers.
pub async fn answer(core: &Core, export: Option<&Export>, headers: &HeaderMap) -> Response {
    let Some(export) = export else {
        return ApiError::Unavailable("metrics are not recorded in this process".into())
            .into_response();
    };
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if !export.allows(authorization) {
        let mut answer = (
            StatusCode::UNAUTHORIZED,
            axum::Json(crate::wire::ErrorBody {
                error: "unauthorized".into(),
                message: "the metrics need the metrics token (--metrics-token)".into(),
            }),
        )
            .into_response();
        answer.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
        return answer;
    }
    match crate::control::metrics::scrape(core, export).await {
        Ok(text) => ([(header::CONTENT_TYPE, TEXT_FORMAT)], text).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// `GET /metrics` on the API.
pub async fn serve(State(state): State<AppState>, headers: HeaderMap) -> Response {
    answer(&state.core, state.metrics.as_ref(), &headers).await
}

/// Counts `request` by method, matched route template (`unmatched` when no route matched)
/// and status, times it to its answer's head, and runs it in a span of its own.
pub async fn track(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    // Its span continues the caller's trace (W3C `traceparent`), when traces are on.
    let span = tracing::info_span!(
        "http request",
        http.request.method = %method,
        http.route = %route,
        http.response.status_code = tracing::field::Empty,
    );
    crate::telemetry::traces::continue_from(&span, request.headers());
    let response = tracing::Instrument::instrument(next.run(request), span.clone()).await;
    span.record("http.response.status_code", response.status().as_u16());
    crate::telemetry::http_request(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}
