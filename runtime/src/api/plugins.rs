//! `/v1/plugins`: the content-addressed registry. Upload (`POST ?name=&version=`, body = the
//! component), list, show, download and delete by digest.
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::auth::Auth;
use super::{ApiError, ApiResult, ApiRouter, AppState, read_body};
use crate::auth::Role;
use crate::control::plugins::{self, Publish};
use crate::pipeline::{PluginRef, PluginVersion};
use crate::store::plugins::{DeleteRefused, PluginRow};
use crate::wire::{PluginBindings, PluginDeleted};

/// The plugin routes.
pub fn routes() -> ApiRouter {
    ApiRouter::new()
        .post(
            "/v1/plugins",
            Some(Role::Editor),
            "Upload a component (?name=&version=); answers its digest",
            upload,
        )
        .get("/v1/plugins", Some(Role::Viewer), "List the registry", list)
        .get(
            "/v1/plugins/{digest}",
            Some(Role::Viewer),
            "The bindings of a digest",
            show,
        )
        .delete(
            "/v1/plugins/{digest}",
            Some(Role::Editor),
            "Delete a plugin (409 while a pipeline version uses it)",
            delete,
        )
        .get(
            "/v1/plugins/{digest}/content",
            Some(Role::Viewer),
            "Download the component bytes",
            content,
        )
}

/// Query of an upload.
#[derive(Debug, Deserialize)]
pub struct UploadQuery {
    /// Plugin name.
    pub name: Option<String>,
    /// Semantic version.
    pub version: Option<String>,
}

/// Checks `name` and `version` the way pipeline references are checked.
fn check_name_version(q: &UploadQuery) -> ApiResult<(String, String)> {
    let (Some(name), Some(version)) = (&q.name, &q.version) else {
        return Err(ApiError::BadRequest(
            "the query needs name=NAME&version=SEMVER".into(),
        ));
    };
    match format!("{name}@{version}").parse::<PluginRef>() {
        Ok(PluginRef::Named {
            name: n,
            version: PluginVersion::Exact(v),
        }) if n == *name && v == *version => Ok((n, v)),
        _ => Err(ApiError::BadRequest(format!(
            "invalid plugin name or version {name:?} {version:?} (name: a-z, 0-9, - and _, at most 63 characters; version: semver x.y.z)"
        ))),
    }
}

async fn upload(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<UploadQuery>,
    body: Body,
) -> ApiResult<Response> {
    // The body first: every answer then reaches a client that is still sending.
    let bytes = read_body(body, state.settings.max_plugin_bytes).await?;
    let (name, version) = check_name_version(&q)?;
    if bytes.is_empty() {
        return Err(ApiError::BadRequest(
            "the body is empty (send the component's bytes)".into(),
        ));
    }
    let digest = crate::registry::cache::digest_of(&bytes);
    let audit = auth.entry(
        "plugin.upload",
        format!("{name}@{version}"),
        Some(format!("sha256:{digest}")),
    );
    let p = Publish {
        name: &name,
        version: &version,
        bytes,
        builtin: false,
        actor: &auth.who.actor,
    };
    let published = plugins::publish(&state, auth.tenant(), p, audit).await?;
    let status = if published.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(published.row)).into_response())
}

/// Query of the list.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    /// Only this name.
    pub name: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Vec<PluginRow>>> {
    Ok(Json(
        state
            .store
            .plugins(auth.tenant(), q.name.as_deref())
            .await?,
    ))
}

/// The digest in a path, with or without `sha256:`.
fn digest_param(raw: &str) -> ApiResult<String> {
    let hex = raw.strip_prefix("sha256:").unwrap_or(raw);
    if hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(hex.to_string())
    } else {
        Err(ApiError::NotFound(format!("no plugin with digest {raw:?}")))
    }
}

async fn bindings(state: &AppState, auth: &Auth, raw: &str) -> ApiResult<(String, Vec<PluginRow>)> {
    let digest = digest_param(raw)?;
    let rows = state
        .store
        .plugins_by_digest(auth.tenant(), &digest)
        .await?;
    if rows.is_empty() {
        return Err(ApiError::NotFound(format!(
            "no plugin with digest sha256:{digest}"
        )));
    }
    Ok((digest, rows))
}

async fn show(
    State(state): State<AppState>,
    auth: Auth,
    Path(raw): Path<String>,
) -> ApiResult<Json<PluginBindings>> {
    let (digest, plugins) = bindings(&state, &auth, &raw).await?;
    Ok(Json(PluginBindings { digest, plugins }))
}

async fn content(
    State(state): State<AppState>,
    auth: Auth,
    Path(raw): Path<String>,
) -> ApiResult<Response> {
    let (digest, _) = bindings(&state, &auth, &raw).await?;
    let blobs = state.blobs.clone();
    let d = digest.clone();
    let bytes = tokio::task::spawn_blocking(move || blobs.get(&d))
        .await
        .map_err(ApiError::internal)?;
    let bytes = bytes
        .ok_or_else(|| ApiError::internal(format!("blob sha256:{digest} missing or corrupt")))?;
    Ok(([(header::CONTENT_TYPE, "application/wasm")], bytes).into_response())
}

async fn delete(
    State(state): State<AppState>,
    auth: Auth,
    Path(raw): Path<String>,
) -> ApiResult<Json<PluginDeleted>> {
    let digest = digest_param(&raw)?;
    let audit = auth.entry("plugin.delete", format!("sha256:{digest}"), None);
    match state
        .store
        .delete_plugin(auth.tenant(), &digest, &audit)
        .await?
    {
        Ok(deleted) => Ok(Json(PluginDeleted { digest, deleted })),
        Err(DeleteRefused::NotFound) => Err(ApiError::NotFound(format!(
            "no plugin with digest sha256:{digest}"
        ))),
        Err(DeleteRefused::Builtin) => Err(ApiError::Conflict(
            "built-in plugins cannot be deleted".into(),
        )),
        Err(DeleteRefused::InUse(users)) => Err(ApiError::Conflict(format!(
            "sha256:{digest} is used by pipeline versions {}",
            users.join(", ")
        ))),
    }
}
