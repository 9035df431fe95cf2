//! Dead letters: listed per run and per pipeline (granted secrets redacted), and replayed: the
//! rejected records are fed again to the step that rejected them (and on downstream), run by
//! the pipeline's current plugin for that step or by another one named in the request, with
//! the parameters of the run that rejected them.
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;

use super::auth::Auth;
use super::{ApiError, ApiResult, ApiRouter, AppState, idempotency, json_body};
use crate::auth::Role;
use crate::control::runs::{self, Queue};
use crate::status::Trigger;
use crate::store::dead_letters::{DeadLetterRow, Filter};
use crate::store::queue::Replay;
use crate::store::runs::RunRow;
use crate::wire::ReplayQueued;

/// Dead letters one replay takes at most.
pub const MAX_REPLAY: i64 = 10_000;

/// The dead-letter routes.
pub fn routes() -> ApiRouter {
    ApiRouter::new()
        .get("/v1/runs/{id}/dead-letters", Some(Role::Viewer), "Records the run's steps rejected, with reasons (?after=&limit=; a Next-After header names the cursor of the next page when there are more)", of_run)
        .get(
            "/v1/pipelines/{name}/dead-letters",
            Some(Role::Viewer),
            "The pipeline's dead letters (?step=&replayed=false&after=&limit=; a Next-After header when there are more)",
            of_pipeline,
        )
        .post(
            "/v1/pipelines/{name}/dead-letters/replay",
            Some(Role::Editor),
            "Replay dead letters through their step, or through another plugin; 202 with the run id (Idempotency-Key as for a trigger)",
            replay,
        )
}

/// Query of a listing.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    /// Only this step's.
    pub step: Option<String>,
    /// `false`: only those not replayed yet.
    pub replayed: Option<bool>,
    /// Ids above this.
    pub after: Option<i64>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<i64>,
}

async fn of_run(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Response> {
    let run = state
        .store
        .run(auth.tenant(), &id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no run {id:?}")))?;
    let filter = Filter {
        run: Some(id),
        ..filter_of(&q)
    };
    listing(&state, auth.tenant(), &run.pipeline, &filter).await
}

/// The dead letters of `pipeline` that pass `filter`, as a viewer sees them: one page of at
/// most `filter.limit` ([`super::paging`]).
async fn listing(
    state: &AppState,
    tenant: &str,
    pipeline: &str,
    filter: &Filter,
) -> ApiResult<Response> {
    let redactor = super::redaction::of_pipeline(state, tenant, pipeline).await?;
    let page = Filter {
        limit: super::paging::to_read(filter.limit),
        ..filter.clone()
    };
    let letters: Vec<DeadLetterRow> = state
        .store
        .dead_letters(&state.master_key, tenant, pipeline, &page)
        .await?
        .into_iter()
        .map(|d| super::redaction::dead_letter(&redactor, d))
        .collect();
    Ok(super::paging::page(letters, filter.limit, |d| d.id))
}

fn filter_of(q: &ListQuery) -> Filter {
    Filter {
        step: q.step.clone(),
        unreplayed: q.replayed == Some(false),
        after: q.after.unwrap_or(0),
        limit: q.limit.unwrap_or(100).clamp(1, 1000),
        ..Filter::default()
    }
}

async fn of_pipeline(
    State(state): State<AppState>,
    auth: Auth,
    Path(name): Path<String>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Response> {
    if state.store.pipeline(auth.tenant(), &name).await?.is_none() {
        return Err(ApiError::NotFound(format!("no pipeline {name:?}")));
    }
    listing(&state, auth.tenant(), &name, &filter_of(&q)).await
}

/// Body of a replay; every field optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    /// The step whose dead letters to replay (needed when they come from several steps).
    pub step: Option<String>,
    /// Only these dead letters (default: every one not replayed yet, up to [`MAX_REPLAY`]).
    pub ids: Option<Vec<i64>>,
    /// Run the step with this plugin instead (`name@version`, `name@latest` or `sha256:...`).
    pub plugin: Option<String>,
    /// Replay through this version of the pipeline (default: the newest).
    pub version: Option<i64>,
}

async fn replay(
    State(state): State<AppState>,
    auth: Auth,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let req: ReplayRequest = json_body(body, state.settings.max_pipeline_bytes).await?;
    let request = serde_json::json!({
        "route": "replay", "pipeline": name, "step": req.step, "ids": req.ids, "plugin": req.plugin, "version": req.version,
    });
    // A repeat finds its dead letters replayed already: it answers before looking at them.
    idempotency::queue_once(
        &state,
        auth.tenant(),
        &headers,
        &request,
        replay_answer,
        async |key| queue_replay(&state, &auth, &name, &req, key).await,
    )
    .await
}

/// Queues the replay `req` asks for, with `key`; the answer's body.
async fn queue_replay(
    state: &AppState,
    auth: &Auth,
    name: &str,
    req: &ReplayRequest,
    key: Option<&idempotency::Key>,
) -> ApiResult<ReplayQueued> {
    let tenant = auth.tenant();
    let r = runs::runnable(state, tenant, name, req.version).await?;
    let version = &r.version;
    let filter = Filter {
        step: req.step.clone(),
        ids: req.ids.clone(),
        unreplayed: true,
        limit: MAX_REPLAY,
        ..Filter::default()
    };
    let letters = state
        .store
        .dead_letters(&state.master_key, tenant, name, &filter)
        .await?;
    if letters.is_empty() {
        return Err(ApiError::BadRequest(
            "no dead letters to replay (none match, or they were replayed already)".into(),
        ));
    }
    let step = letters[0].step.clone();
    if letters.iter().any(|d| d.step != step) {
        return Err(ApiError::BadRequest(
            "the dead letters come from several steps: name one with \"step\"".into(),
        ));
    }
    let mut pins = version.plugins.clone();
    let pin = pins.iter_mut().find(|p| p.step == step).ok_or_else(|| {
        ApiError::Invalid(format!(
            "version {} of {name:?} has no step {step:?}",
            version.version
        ))
    })?;
    let digest = match &req.plugin {
        None => None,
        Some(reference) => {
            let found = crate::control::pipelines::resolve(state, tenant, reference)
                .await?
                .map_err(|e| ApiError::Invalid(format!("plugin: {e}")))?;
            let digest = found.ok_or_else(|| {
                ApiError::Invalid(format!("plugin: no plugin {reference:?} in the registry"))
            })?;
            pin.digest.clone_from(&digest);
            pin.reference.clone_from(reference);
            Some(digest)
        }
    };
    // The replay must be runnable: the plugin's kind fits the step and the config its schema.
    crate::control::pipelines::pinned_plan(state, &r.pipeline, &pins).await?;
    let ids: Vec<i64> = letters.iter().map(|d| d.id).collect();
    // The replay runs with the parameters of the run that rejected the newest of its letters.
    let newest = letters
        .iter()
        .max_by_key(|d| d.id)
        .map(|d| d.run_id.as_str());
    let params = match newest {
        Some(run) => state.store.run_inputs(tenant, run).await?.0,
        None => None,
    };
    let replay = Replay { step, ids, digest };
    let q = Queue {
        tenant,
        created_by: &auth.who.actor,
        trigger: Trigger::Replay,
        replay: Some(&replay),
        idempotency: key.map(idempotency::Key::stored),
        input: None,
        params: params.as_ref(),
    };
    let id = runs::queue(state, &r, q).await?;
    Ok(ReplayQueued {
        id,
        dead_letters: replay.ids.len(),
        step: Some(replay.step),
        plugin: replay.digest,
    })
}

/// The answer to a repeated replay, the first one's, from the run's record of what it replays.
fn replay_answer(run: &RunRow) -> ReplayQueued {
    let replay = run.replay.clone().unwrap_or_default();
    let text = |field: &str| replay[field].as_str().map(str::to_string);
    ReplayQueued {
        id: run.id.clone(),
        step: text("step"),
        dead_letters: replay["ids"].as_array().map_or(0, Vec::len),
        plugin: text("digest"),
    }
}
