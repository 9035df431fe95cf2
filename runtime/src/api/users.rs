//! Users of the caller's tenant, for its admins: list, create (with a password and a role in
//! this tenant), give an existing user a role here or change it, take it away, disable, set a
//! password. Disabling a user or setting their password touches them everywhere, so it is for
//! the admins of the only tenant they belong to, or of tenant `default` (the operator's).
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::auth::Auth;
use super::{ApiError, ApiResult, ApiRouter, AppState, json_body};
use crate::auth::{Role, password};
use crate::control::tenants::DEFAULT_TENANT;
use crate::store::is_unique_violation;
use crate::store::users::{UserInfo, UserRow};

/// The user routes.
pub fn routes() -> ApiRouter {
    ApiRouter::new()
        .get(
            "/v1/users",
            Some(Role::Admin),
            "The users with a role in the tenant",
            list,
        )
        .post(
            "/v1/users",
            Some(Role::Admin),
            "Create a user with {\"name\", \"password\", \"role\"} in the tenant",
            create,
        )
        .put(
            "/v1/users/{name}/role",
            Some(Role::Admin),
            "Give an existing user {\"role\"} in the tenant (or change it)",
            set_role,
        )
        .delete(
            "/v1/users/{name}/role",
            Some(Role::Admin),
            "Take the user's role in the tenant away (their sessions here end)",
            remove_role,
        )
        .post(
            "/v1/users/{name}/disable",
            Some(Role::Admin),
            "Disable a user (their sessions end; admins of their only tenant, or of default)",
            disable,
        )
        .put(
            "/v1/users/{name}/password",
            Some(Role::Admin),
            "Set a user's {\"password\"} (their sessions end; admins of their only tenant, or of default)",
            set_password,
        )
}

/// Body of a user creation.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// Sign-in name.
    pub name: String,
    /// Password (never logged).
    pub password: String,
    /// `admin`, `editor` or `viewer`.
    pub role: Role,
}

/// Body of a role change.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleBody {
    /// `admin`, `editor` or `viewer`.
    pub role: Role,
}

/// Body of a password change.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordBody {
    /// The new password.
    pub password: String,
}

/// The argon2id hash of `password`, computed on a blocking thread; 422 when it is too short.
pub async fn hash_password(password: String) -> ApiResult<String> {
    password::check_strength(&password).map_err(|e| ApiError::Invalid(e.to_string()))?;
    tokio::task::spawn_blocking(move || password::hash(&password))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)
}

async fn list(State(state): State<AppState>, auth: Auth) -> ApiResult<Json<Vec<UserInfo>>> {
    Ok(Json(state.store.users(Some(auth.tenant())).await?))
}

async fn create(State(state): State<AppState>, auth: Auth, body: Body) -> ApiResult<Response> {
    let req: NewUser = json_body(body, state.settings.max_pipeline_bytes).await?;
    crate::auth::check_user_name(&req.name).map_err(ApiError::Invalid)?;
    let hash = hash_password(req.password).await?;
    let user = UserRow::new(&req.name, hash, &auth.who.actor);
    let audit = auth.entry(
        "user.create",
        format!("user:{}", user.name),
        Some(format!("role {}", req.role)),
    );
    match state
        .store
        .insert_user(&user, auth.tenant(), req.role, &audit)
        .await
    {
        Ok(()) => {}
        Err(e) if is_unique_violation(&e) => {
            return Err(ApiError::Conflict(format!(
                "a user named {:?} exists (PUT /v1/users/{}/role gives them a role here)",
                user.name, user.name
            )));
        }
        Err(e) => return Err(e.into()),
    }
    let roles = state.store.memberships(&user.id).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "user": user, "roles": roles })),
    )
        .into_response())
}

/// The user named `name`, or 404.
async fn user_named(state: &AppState, name: &str) -> ApiResult<UserRow> {
    state
        .store
        .user_by_name(name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no user {name:?}")))
}

/// The user named `name`, if the caller may change them everywhere: they belong to the
/// caller's tenant only, or the caller is an admin of tenant `default`. Else 404 (a user of no
/// concern to the caller) or 403.
async fn user_to_change(state: &AppState, auth: &Auth, name: &str) -> ApiResult<UserRow> {
    let user = user_named(state, name).await?;
    let roles = state.store.memberships(&user.id).await?;
    let operator = state
        .store
        .tenant_by_name(DEFAULT_TENANT)
        .await?
        .is_some_and(|t| t.id == auth.who.tenant_id);
    let here = roles.iter().any(|m| m.tenant_id == auth.who.tenant_id);
    if operator || (here && roles.len() == 1) {
        Ok(user)
    } else if here {
        Err(ApiError::Forbidden(format!(
            "user {name:?} has roles in other tenants too: only admins of tenant {DEFAULT_TENANT:?} may change them"
        )))
    } else {
        Err(ApiError::NotFound(format!(
            "no user {name:?} in this tenant"
        )))
    }
}

async fn set_role(
    State(state): State<AppState>,
    auth: Auth,
    Path(name): Path<String>,
    body: Body,
) -> ApiResult<Json<serde_json::Value>> {
    let req: RoleBody = json_body(body, state.settings.max_pipeline_bytes).await?;
    let user = user_named(&state, &name).await?;
    let audit = auth.entry(
        "user.role",
        format!("user:{name}"),
        Some(format!("role {}", req.role)),
    );
    state
        .store
        .set_user_role(&user.id, auth.tenant(), req.role, &audit)
        .await?;
    Ok(Json(json!({ "user": name, "role": req.role })))
}

async fn remove_role(
    State(state): State<AppState>,
    auth: Auth,
    Path(name): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let user = user_named(&state, &name).await?;
    let audit = auth.entry("user.role.remove", format!("user:{name}"), None);
    if !state
        .store
        .remove_user_role(&user.id, auth.tenant(), &audit)
        .await?
    {
        return Err(ApiError::NotFound(format!(
            "no user {name:?} in this tenant"
        )));
    }
    Ok(Json(json!({ "user": name, "removed": true })))
}

async fn disable(
    State(state): State<AppState>,
    auth: Auth,
    Path(name): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let user = user_to_change(&state, &auth, &name).await?;
    let audit = auth.entry("user.disable", format!("user:{name}"), None);
    let changed = state.store.disable_user(&user.id, &audit).await?;
    Ok(Json(
        json!({ "user": name, "disabled": true, "was_enabled": changed }),
    ))
}

async fn set_password(
    State(state): State<AppState>,
    auth: Auth,
    Path(name): Path<String>,
    body: Body,
) -> ApiResult<Json<serde_json::Value>> {
    let req: PasswordBody = json_body(body, state.settings.max_pipeline_bytes).await?;
    let user = user_to_change(&state, &auth, &name).await?;
    let hash = hash_password(req.password).await?;
    let audit = auth.entry("user.password", format!("user:{name}"), None);
    state.store.set_password(&user.id, &hash, &audit).await?;
    Ok(Json(json!({ "user": name, "password_set": true })))
}
