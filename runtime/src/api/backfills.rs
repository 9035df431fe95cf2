//! Backfills: `POST /v1/pipelines/{name}/backfills` queues one run per schedule slot in a
//! range (see [`crate::control::backfills`]), `GET /v1/backfills[?pipeline=]` and
//! `/v1/backfills/{id}` show them with their progress, `POST /v1/backfills/{id}/cancel` stops
//! one and cancels its runs still queued or running.
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::Auth;
use super::{ApiError, ApiResult, ApiRouter, AppState, json_body};
use crate::auth::Role;
use crate::control::backfills::{self, BackfillRequest};

/// The backfill routes.
pub fn routes() -> ApiRouter {
    ApiRouter::new()
        .post(
            "/v1/pipelines/{name}/backfills",
            Some(Role::Editor),
            "Backfill the schedule's slots in a range: {\"from\", \"to\" (RFC 3339 or a date; `to` excluded), \"concurrency\"?, \"rerun_succeeded\"?}; 202 with the backfill",
            create,
        )
        .get(
            "/v1/backfills",
            Some(Role::Viewer),
            "The tenant's backfills, newest first, with their progress (?pipeline=&limit=)",
            list,
        )
        .get(
            "/v1/backfills/{id}",
            Some(Role::Viewer),
            "One backfill and its progress (slots pending, queued, running, succeeded, failed, skipped)",
            get_one,
        )
        .post(
            "/v1/backfills/{id}/cancel",
            Some(Role::Editor),
            "Stop a backfill: no more slots are queued, and its queued or running runs are cancelled",
            cancel,
        )
}

async fn create(
    State(state): State<AppState>,
    auth: Auth,
    Path(name): Path<String>,
    body: Body,
) -> ApiResult<(StatusCode, Json<Value>)> {
    // Another tenant's pipeline is a 404 whatever the body says.
    if state.store.pipeline(auth.tenant(), &name).await?.is_none() {
        return Err(ApiError::NotFound(format!("no pipeline {name:?}")));
    }
    let req: BackfillRequest = json_body(body, 16 * 1024).await?;
    let detail = format!("{} .. {}", req.from, req.to);
    let audit = auth.entry("backfill.create", name.clone(), Some(detail));
    let b = backfills::create(&state, auth.tenant(), &name, &req, &auth.who.actor, &audit).await?;
    Ok((StatusCode::ACCEPTED, Json(backfills::shown(&b))))
}

/// Query of the list.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    /// Only this pipeline's.
    pub pipeline: Option<String>,
    /// At most this many (default 50, at most 500).
    pub limit: Option<i64>,
}

async fn list(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Vec<Value>>> {
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    let rows = state
        .store
        .backfills(auth.tenant(), q.pipeline.as_deref(), limit)
        .await?;
    Ok(Json(rows.iter().map(backfills::shown).collect()))
}

async fn get_one(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    match state.store.backfill(auth.tenant(), &id).await? {
        Some(b) => Ok(Json(backfills::shown(&b))),
        None => Err(ApiError::NotFound(format!("no backfill {id:?}"))),
    }
}

async fn cancel(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let audit = auth.entry("backfill.cancel", id.clone(), None);
    let Some((was_running, active)) = state
        .store
        .cancel_backfill(auth.tenant(), &id, &audit)
        .await?
    else {
        return Err(ApiError::NotFound(format!("no backfill {id:?}")));
    };
    if !was_running {
        let b = state.store.backfill(auth.tenant(), &id).await?;
        let status = b.map(|b| b.status).unwrap_or_default();
        return Err(ApiError::Conflict(format!(
            "backfill {id} already ended: {status}"
        )));
    }
    for run in &active {
        state.store.cancel(auth.tenant(), run).await?;
    }
    Ok(Json(
        json!({ "id": id, "status": "cancelled", "runs_cancelled": active.len() }),
    ))
}
