//! Runs: trigger (`POST /v1/pipelines/{name}/runs`, 202 once the run is committed; retried
//! safely with an `Idempotency-Key`, see [`super::idempotency`]), list,
//! show (per-step records, bytes, time, fuel, errors, plugin digests), attempts, cancel, and
//! logs, followed as server-sent events with `?follow=true` (`log` events, `progress` events
//! with the run's counters while they change, and `end`); a pipeline's schedule fires and
//! checkpoints; the workers.
use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::auth::Auth;
use super::{ApiError, ApiResult, ApiRouter, AppState, idempotency, read_body};
use crate::auth::Role;
use crate::control::runs::{self, Queue};
use crate::status::{CancelStatus, RunStatus};
use crate::store::checkpoints::Checkpoint;
use crate::store::queue::{AttemptRow, CancelOutcome};
use crate::store::runs::{LogRow, RunRow};
use crate::store::schedules::FireRow;
use crate::store::workers::WorkerRow;
use crate::wire::{CancelAnswer, Queued};

/// The run routes.
pub fn routes() -> ApiRouter {
    ApiRouter::new()
        .post(
            "/v1/pipelines/{name}/runs",
            Some(Role::Editor),
            "Queue a run; 202 with its id (with an Idempotency-Key, a repeat within 24 h answers the same run)",
            trigger,
        )
        .get("/v1/pipelines/{name}/runs", Some(Role::Viewer), "A pipeline's runs (?status=&limit=)", list)
        .get("/v1/runs/{id}", Some(Role::Viewer), "A run and its per-step report (its `progress` so far while it runs)", show)
        .get("/v1/runs/{id}/logs", Some(Role::Viewer), "A run's log lines (?after=&limit=, a Next-After header when there are more; ?follow=true streams events)", logs)
        .get("/v1/runs/{id}/attempts", Some(Role::Viewer), "A run's attempts: worker, times, outcome", attempts)
        .post("/v1/runs/{id}/cancel", Some(Role::Editor), "Cancel a queued or running run", cancel)
        .get("/v1/pipelines/{name}/fires", Some(Role::Viewer), "The schedule's recorded slots, newest first (?limit=)", fires)
        .get("/v1/pipelines/{name}/checkpoints", Some(Role::Viewer), "Each step's committed cursor and state, granted secrets redacted", checkpoints)
        .get("/v1/workers", Some(Role::Viewer), "Workers seen in the last minute, with their labels and runs", workers)
}

/// Optional body of a trigger.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trigger {
    /// Run this version instead of the newest.
    pub version: Option<i64>,
    /// Records to run with, fed to the pipeline's `trigger-source` step (each a JSON value).
    #[serde(default)]
    pub input: Option<Vec<serde_json::Value>>,
    /// Values of the pipeline's parameters (`params:`); the defaults fill the rest.
    #[serde(default)]
    pub params: Option<crate::pipeline::params::ParamValues>,
}

async fn trigger(
    State(state): State<AppState>,
    auth: Auth,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let bytes = read_body(body, state.settings.max_pipeline_bytes).await?;
    let req: Trigger = if bytes.iter().all(u8::is_ascii_whitespace) {
        Trigger::default()
    } else {
        serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))?
    };
    let request = serde_json::json!({
        "route": "run", "pipeline": name, "version": req.version, "input": req.input,
        "params": req.params,
    });
    idempotency::queue_once(
        &state,
        auth.tenant(),
        &headers,
        &request,
        trigger_answer,
        async |key| queue_run(&state, &auth, &name, &req, key).await,
    )
    .await
}

/// Queues a run of `name` as `req` asks, with `key`; the answer's body.
async fn queue_run(
    state: &AppState,
    auth: &Auth,
    name: &str,
    req: &Trigger,
    key: Option<&idempotency::Key>,
) -> ApiResult<Queued> {
    let r = runs::runnable(state, auth.tenant(), name, req.version).await?;
    let sealed = match &req.input {
        Some(records) => Some(
            crate::control::input::seal(&state.master_key, auth.tenant(), name, records)
                .map_err(ApiError::internal)?,
        ),
        None => None,
    };
    let q = Queue {
        tenant: auth.tenant(),
        created_by: &auth.who.actor,
        trigger: crate::status::Trigger::Api,
        replay: None,
        idempotency: key.map(idempotency::Key::stored),
        input: sealed.as_ref(),
        params: req.params.as_ref(),
    };
    let id = runs::queue(state, &r, q).await?;
    Ok(Queued {
        id,
        pipeline: name.to_string(),
        version: r.version.version,
        status: RunStatus::Queued,
    })
}

/// The answer to a repeated trigger: the first one's, with the run's status now.
fn trigger_answer(run: &RunRow) -> Queued {
    Queued {
        id: run.id.clone(),
        pipeline: run.pipeline.clone(),
        version: run.version,
        status: run.status,
    }
}

/// Query of a run list.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    /// Only runs with this status.
    pub status: Option<String>,
    /// At most this many (default 50, at most 1000).
    pub limit: Option<i64>,
}

async fn list(
    State(state): State<AppState>,
    auth: Auth,
    Path(name): Path<String>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Vec<RunRow>>> {
    if state.store.pipeline(auth.tenant(), &name).await?.is_none() {
        return Err(ApiError::NotFound(format!("no pipeline {name:?}")));
    }
    let status = q
        .status
        .as_deref()
        .map(str::parse::<RunStatus>)
        .transpose()
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let limit = q.limit.unwrap_or(50).clamp(1, 1000);
    Ok(Json(
        state
            .store
            .runs(auth.tenant(), &name, status, limit)
            .await?,
    ))
}

async fn get_run(state: &AppState, auth: &Auth, id: &str) -> ApiResult<RunRow> {
    state
        .store
        .run(auth.tenant(), id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no run {id:?}")))
}

async fn show(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<RunRow>> {
    Ok(Json(get_run(&state, &auth, &id).await?))
}

/// Query of the logs.
#[derive(Debug, Deserialize)]
pub struct LogQuery {
    /// Only lines after this sequence number.
    pub after: Option<i64>,
    /// At most this many (default 1000, at most 10000); ignored when following.
    pub limit: Option<i64>,
    /// Stream lines as server-sent events until the run ends.
    pub follow: Option<bool>,
}

async fn logs(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Query(q): Query<LogQuery>,
) -> ApiResult<Response> {
    get_run(&state, &auth, &id).await?;
    let after = q.after.unwrap_or(0);
    if q.follow != Some(true) {
        let limit = q.limit.unwrap_or(1000).clamp(1, 10_000);
        let read = super::paging::to_read(limit);
        let lines = state.store.logs(auth.tenant(), &id, after, read).await?;
        return Ok(super::paging::page(lines, limit, |l| l.id));
    }
    let tenant = auth.tenant().to_string();
    let follow = Follow {
        state,
        tenant,
        id,
        after,
        progress: None,
        done: false,
    };
    let stream = futures::stream::unfold(follow, |mut f| async move {
        if f.done {
            return None;
        }
        let events = f.next_events().await;
        Some((events, f))
    });
    let flat = futures::StreamExt::flat_map(stream, |events| {
        futures::stream::iter(events.into_iter().map(Ok::<_, Infallible>))
    });
    Ok(Sse::new(flat)
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// A follower of a run's logs: where it is, and the progress it sent last.
struct Follow {
    state: AppState,
    tenant: String,
    id: String,
    after: i64,
    progress: Option<serde_json::Value>,
    done: bool,
}

impl Follow {
    /// The next events: new log lines; else the run's progress when it changed (so at most
    /// five `progress` events a second); else, once the run has ended, its last lines and an
    /// `end` event.
    async fn next_events(&mut self) -> Vec<Event> {
        let (store, tenant, id) = (&self.state.store, &self.tenant, &self.id);
        loop {
            let lines: Vec<LogRow> = match store.logs(tenant, id, self.after, 500).await {
                Ok(l) => l,
                Err(e) => {
                    self.done = true;
                    return vec![Event::default().event("error").data(e.to_string())];
                }
            };
            if !lines.is_empty() {
                self.after = lines.last().map_or(self.after, |l| l.id);
                return lines.iter().map(line_event).collect();
            }
            let run = store.run(tenant, id).await.ok().flatten();
            let status = run.as_ref().map_or(RunStatus::Failed, |r| r.status);
            if status.is_final() {
                self.done = true;
                // One more look: lines written just before the status changed.
                let rest = store.logs(tenant, id, self.after, 10_000).await;
                let mut events: Vec<Event> = rest.iter().flatten().map(line_event).collect();
                events.push(Event::default().event("end").data(status.as_str()));
                return events;
            }
            let progress = run.and_then(|r| r.progress);
            if progress.is_some() && progress != self.progress {
                let data = progress
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default();
                self.progress = progress;
                return vec![Event::default().event("progress").data(data)];
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn line_event(l: &LogRow) -> Event {
    let data = serde_json::to_string(l).unwrap_or_default();
    Event::default()
        .id(l.id.to_string())
        .event("log")
        .data(data)
}

async fn attempts(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<AttemptRow>>> {
    get_run(&state, &auth, &id).await?;
    Ok(Json(state.store.attempts(auth.tenant(), &id).await?))
}

async fn cancel(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let (code, status) = match state.store.cancel(auth.tenant(), &id).await? {
        CancelOutcome::Cancelled => (StatusCode::OK, CancelStatus::Cancelled),
        CancelOutcome::Requested => (StatusCode::ACCEPTED, CancelStatus::Cancelling),
        CancelOutcome::AlreadyEnded => {
            let run = get_run(&state, &auth, &id).await?;
            return Err(ApiError::Conflict(format!(
                "run {id} already ended: {}",
                run.status
            )));
        }
        CancelOutcome::NotFound => return Err(ApiError::NotFound(format!("no run {id:?}"))),
    };
    Ok((code, Json(CancelAnswer { id, status })).into_response())
}

/// Query of the fires.
#[derive(Debug, Deserialize)]
pub struct FiresQuery {
    /// At most this many (default 100, at most 1000).
    pub limit: Option<i64>,
}

async fn fires(
    State(state): State<AppState>,
    auth: Auth,
    Path(name): Path<String>,
    Query(q): Query<FiresQuery>,
) -> ApiResult<Json<Vec<FireRow>>> {
    if state.store.pipeline(auth.tenant(), &name).await?.is_none() {
        return Err(ApiError::NotFound(format!("no pipeline {name:?}")));
    }
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    Ok(Json(state.store.fires(auth.tenant(), &name, limit).await?))
}

async fn checkpoints(
    State(state): State<AppState>,
    auth: Auth,
    Path(name): Path<String>,
) -> ApiResult<Json<Vec<Checkpoint>>> {
    if state.store.pipeline(auth.tenant(), &name).await?.is_none() {
        return Err(ApiError::NotFound(format!("no pipeline {name:?}")));
    }
    let redactor = super::redaction::of_pipeline(&state, auth.tenant(), &name).await?;
    let checkpoints = state
        .store
        .checkpoints(&state.master_key, auth.tenant(), &name)
        .await?;
    Ok(Json(
        checkpoints
            .into_iter()
            .map(|c| super::redaction::checkpoint(&redactor, c))
            .collect(),
    ))
}

async fn workers(State(state): State<AppState>, _auth: Auth) -> ApiResult<Json<Vec<WorkerRow>>> {
    Ok(Json(
        state.store.workers(crate::store::now_ms() - 60_000).await?,
    ))
}
