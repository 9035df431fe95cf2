//! `/v1/alerts`: the tenant's alerts, newest first, each with its deliveries' status, and one
//! alert's deliveries with every attempt (status code, answer, error).
use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Deserialize;

use super::auth::Auth;
use super::{ApiError, ApiResult, ApiRouter, AppState};
use crate::auth::Role;
use crate::store::alerts::{AlertRow, DeliveryRow};

/// The alert routes.
pub fn routes() -> ApiRouter {
    ApiRouter::new()
        .get(
            "/v1/alerts",
            Some(Role::Viewer),
            "The tenant's alerts, newest first (?pipeline=, ?limit=, ?before=ID), with their deliveries",
            list,
        )
        .get(
            "/v1/alerts/{id}/deliveries",
            Some(Role::Viewer),
            "An alert's deliveries, each with every attempt",
            deliveries,
        )
}

/// Query of the alert list.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only this pipeline's.
    pub pipeline: Option<String>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<i64>,
    /// Older than this alert.
    pub before: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Vec<AlertRow>>> {
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    Ok(Json(
        state
            .store
            .alerts(
                auth.tenant(),
                q.pipeline.as_deref(),
                limit,
                q.before.as_deref(),
            )
            .await?,
    ))
}

async fn deliveries(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<DeliveryRow>>> {
    state
        .store
        .deliveries(auth.tenant(), &id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no alert {id:?}")))
}
