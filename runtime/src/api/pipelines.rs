//! `/v1/pipelines`: create, update (each change is a new immutable version), list, show,
//! versions and rollback. The body is YAML or JSON, by `Content-Type`.
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::auth::Auth;
use super::{ApiError, ApiResult, ApiRouter, AppState, json_body, read_body};
use crate::auth::Role;
use crate::control::ControlError;
use crate::control::pipelines::{self, Applied, Mode, Source};
use crate::pipeline::Format;
use crate::pipeline::locate;
use crate::store::pipelines::VersionRow;
use crate::wire::{
    Checked, PipelineListed, PipelineShown, Problem, ScheduleShown, VersionEntry, Versions,
};

/// The pipeline routes (runs of a pipeline are in [`super::runs`]).
pub fn routes() -> ApiRouter {
    ApiRouter::new()
        .post(
            "/v1/pipelines",
            Some(Role::Editor),
            "Create a pipeline (YAML or JSON)",
            create,
        )
        .post(
            "/v1/pipeline-check",
            Some(Role::Editor),
            "Check a definition without storing it (?name= the name it must have): each problem at its line and column",
            check,
        )
        .get("/v1/pipelines", Some(Role::Viewer), "List pipelines", list)
        .get(
            "/v1/pipelines/{name}",
            Some(Role::Viewer),
            "A pipeline and its newest version",
            show,
        )
        .put(
            "/v1/pipelines/{name}",
            Some(Role::Editor),
            "A new version of a pipeline",
            update,
        )
        .get(
            "/v1/pipelines/{name}/versions",
            Some(Role::Viewer),
            "A pipeline's versions",
            versions,
        )
        .get(
            "/v1/pipelines/{name}/versions/{version}",
            Some(Role::Viewer),
            "One version with its pinned digests",
            version,
        )
        .post(
            "/v1/pipelines/{name}/rollback",
            Some(Role::Editor),
            "A new version equal to an older one",
            rollback,
        )
}

/// The format a `Content-Type` names; detection by content when there is none.
fn format_of(headers: &HeaderMap, text: &str) -> ApiResult<Format> {
    let Some(ct) = headers.get(header::CONTENT_TYPE) else {
        return Ok(Format::detect(text));
    };
    let ct = ct
        .to_str()
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match ct.as_str() {
        "application/json" => Ok(Format::Json),
        "application/yaml" | "application/x-yaml" | "text/yaml" | "text/x-yaml" => Ok(Format::Yaml),
        "" | "text/plain" | "application/octet-stream" => Ok(Format::detect(text)),
        other => Err(ApiError::UnsupportedMediaType(format!(
            "Content-Type {other:?}: send application/json or application/yaml"
        ))),
    }
}

async fn body_text(state: &AppState, body: Body) -> ApiResult<String> {
    let bytes = read_body(body, state.settings.max_pipeline_bytes).await?;
    String::from_utf8(bytes.to_vec())
        .map_err(|_| ApiError::BadRequest("the definition is not UTF-8".into()))
}

/// Checks, pins and stores a new version; 201 with it, or 200 with the newest version when
/// nothing changed.
async fn apply(
    state: &AppState,
    auth: &Auth,
    headers: &HeaderMap,
    body: Body,
    name: Option<&str>,
) -> ApiResult<Response> {
    let text = body_text(state, body).await?;
    let format = format_of(headers, &text)?;
    let mode = if name.is_none() {
        Mode::Create
    } else {
        Mode::Update
    };
    let source = Source::Text {
        text: &text,
        format,
        name,
    };
    let audit = auth.entry("pipeline.apply", "", None);
    stored(pipelines::apply(state, auth.tenant(), &auth.who.actor, source, mode, audit).await?)
}

/// 201 with a version stored now, 200 with the newest one when nothing changed.
fn stored(applied: Applied) -> ApiResult<Response> {
    let status = if applied.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(applied.version)).into_response())
}

async fn create(
    State(state): State<AppState>,
    auth: Auth,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    apply(&state, &auth, &headers, body, None).await
}

async fn update(
    State(state): State<AppState>,
    auth: Auth,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    apply(&state, &auth, &headers, body, Some(&name)).await
}

/// `?name=` of a check.
#[derive(Deserialize)]
struct CheckQuery {
    name: Option<String>,
}

/// `message` placed in `text`: where the parser saw the error, when the text does not parse
/// (`parse_error`: its location), else at the node the message's path names (YAML only).
fn placed(
    text: &str,
    format: Format,
    parse_error: Option<Option<crate::pipeline::Location>>,
    message: String,
) -> Problem {
    let at = match parse_error {
        Some(location) => location,
        None if format == Format::Yaml => {
            locate::path_of(&message).and_then(|path| locate::locate(text, path))
        }
        None => None,
    };
    Problem {
        message,
        line: at.map(|l| l.line),
        column: at.map(|l| l.column),
    }
}

async fn check(
    State(state): State<AppState>,
    auth: Auth,
    axum::extract::Query(q): axum::extract::Query<CheckQuery>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Checked>> {
    let text = body_text(&state, body).await?;
    let format = format_of(&headers, &text)?;
    let name = q.name.as_deref();
    let messages = match pipelines::check(&state, auth.tenant(), &text, format, name).await {
        Ok((_, pipeline, pins)) => {
            return Ok(Json(Checked {
                valid: true,
                problems: Vec::new(),
                pipeline: Some(pipeline),
                pins,
            }));
        }
        Err(ControlError::Problems(list)) => list,
        Err(ControlError::Invalid(m)) => vec![m],
        Err(ControlError::BadRequest(m)) if name.is_some() => vec![format!("name: {m}")],
        Err(other) => return Err(other.into()),
    };
    // Parsed again only on this failing path, once for all the problems.
    let parse_error = match crate::pipeline::parse(&text, Some(format)) {
        Err(crate::pipeline::PipelineError::Parse { location, .. }) => Some(location),
        _ => None,
    };
    let problems = messages
        .into_iter()
        .map(|m| placed(&text, format, parse_error, m))
        .collect();
    Ok(Json(Checked {
        valid: false,
        problems,
        pipeline: None,
        pins: Vec::new(),
    }))
}

/// Most runs `?recent=` shows per pipeline.
pub const MAX_RECENT_RUNS: i64 = 50;

/// `?recent=` of the list.
#[derive(Deserialize)]
struct ListQuery {
    recent: Option<i64>,
}

async fn list(
    State(state): State<AppState>,
    auth: Auth,
    axum::extract::Query(q): axum::extract::Query<ListQuery>,
) -> ApiResult<Json<Vec<PipelineListed>>> {
    let recent = q.recent.unwrap_or(0);
    if !(0..=MAX_RECENT_RUNS).contains(&recent) {
        return Err(ApiError::Invalid(format!(
            "recent: from 0 to {MAX_RECENT_RUNS} runs per pipeline"
        )));
    }
    let tenant = auth.tenant();
    let schedules = crate::store::schedules::of_tenant(&state.store, tenant).await?;
    let mut recent_runs = match recent {
        0 => None,
        n => Some(state.store.recent_runs(tenant, n).await?),
    };
    let listed = state
        .store
        .pipelines(tenant)
        .await?
        .into_iter()
        .map(|pipeline| PipelineListed {
            schedule: schedules.get(&pipeline.name).map(shown_schedule),
            recent_runs: recent_runs
                .as_mut()
                .map(|runs| runs.remove(&pipeline.name).unwrap_or_default()),
            pipeline,
        })
        .collect();
    Ok(Json(listed))
}

/// A schedule (cron, time zone) with its next slot after now.
fn shown_schedule((cron, timezone): &(String, String)) -> ScheduleShown {
    ScheduleShown {
        cron: cron.clone(),
        timezone: timezone.clone(),
        next_fire_at: crate::pipeline::cron::Cron::new(cron, timezone)
            .ok()
            .and_then(|c| c.next_after(crate::store::now_ms())),
    }
}

fn no_pipeline(name: &str) -> ApiError {
    ApiError::NotFound(format!("no pipeline {name:?}"))
}

async fn show(
    State(state): State<AppState>,
    auth: Auth,
    Path(name): Path<String>,
) -> ApiResult<Json<PipelineShown>> {
    let p = state
        .store
        .pipeline(auth.tenant(), &name)
        .await?
        .ok_or_else(|| no_pipeline(&name))?;
    let latest = state.store.version(auth.tenant(), &name, None).await?;
    let schedule = crate::store::schedules::of_tenant(&state.store, auth.tenant())
        .await?
        .get(&name)
        .map(shown_schedule);
    Ok(Json(PipelineShown {
        schedule,
        name: p.name,
        latest_version: p.latest_version,
        created_at: p.created_at,
        updated_at: p.updated_at,
        latest,
    }))
}

async fn versions(
    State(state): State<AppState>,
    auth: Auth,
    Path(name): Path<String>,
) -> ApiResult<Json<Versions>> {
    let rows = state.store.versions(auth.tenant(), &name).await?;
    if rows.is_empty() {
        return Err(no_pipeline(&name));
    }
    let versions = rows
        .into_iter()
        .map(|(version, created_at, created_by)| VersionEntry {
            version,
            created_at,
            created_by,
        })
        .collect();
    Ok(Json(Versions {
        pipeline: name,
        versions,
    }))
}

/// A version number from the path; 404 when it is not one.
pub fn version_param(name: &str, raw: &str) -> ApiResult<i64> {
    raw.parse::<i64>()
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| ApiError::NotFound(format!("no version {raw:?} of pipeline {name:?}")))
}

async fn version(
    State(state): State<AppState>,
    auth: Auth,
    Path((name, raw)): Path<(String, String)>,
) -> ApiResult<Json<VersionRow>> {
    let n = version_param(&name, &raw)?;
    let row = state.store.version(auth.tenant(), &name, Some(n)).await?;
    row.map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no version {n} of pipeline {name:?}")))
}

/// Body of a rollback.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rollback {
    /// The version to make current again.
    pub version: i64,
}

async fn rollback(
    State(state): State<AppState>,
    auth: Auth,
    Path(name): Path<String>,
    body: Body,
) -> ApiResult<Response> {
    let req: Rollback = json_body(body, state.settings.max_pipeline_bytes).await?;
    // The same definition and the same digests: exactly the bytes that version ran.
    let source = Source::Version {
        name: &name,
        version: req.version,
    };
    let audit = auth.entry("pipeline.rollback", "", None);
    stored(
        pipelines::apply(
            &state,
            auth.tenant(),
            &auth.who.actor,
            source,
            Mode::Always,
            audit,
        )
        .await?,
    )
}
