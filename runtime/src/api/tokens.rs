//! Tokens, tenants and the audit log. Tokens and the audit log are for a tenant's admins;
//! creating a tenant is for the admins of tenant `default` (the operator's tenant).
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::auth::Auth;
use super::{ApiError, ApiResult, ApiRouter, AppState, json_body};
use crate::auth::{Role, new_token};
use crate::control::tenants::{self, DEFAULT_TENANT};
use crate::store::audit::AuditEntry;
use crate::store::now_ms;
use crate::store::tokens::TokenRow;

/// The token, tenant and audit routes.
pub fn routes() -> ApiRouter {
    ApiRouter::new()
        .post(
            "/v1/tokens",
            Some(Role::Admin),
            "Create a token (shown once)",
            create,
        )
        .get(
            "/v1/tokens",
            Some(Role::Admin),
            "List the tenant's tokens",
            list,
        )
        .delete(
            "/v1/tokens/{id}",
            Some(Role::Admin),
            "Revoke a token",
            revoke,
        )
        .post(
            "/v1/tenants",
            Some(Role::Admin),
            "Create a tenant (admins of tenant default)",
            create_tenant,
        )
        .put(
            "/v1/tenants/{name}/limits",
            Some(Role::Admin),
            "Set a tenant's limits: {\"max_running\": n} (admins of tenant default)",
            set_limits,
        )
        .get("/v1/audit", Some(Role::Admin), "The audit log", audit)
}

/// Body of a token creation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// A label.
    pub name: String,
    /// `admin`, `editor` or `viewer`.
    pub role: Role,
    /// Lifetime in seconds (none: no expiry).
    pub expires_in_secs: Option<i64>,
}

async fn create(State(state): State<AppState>, auth: Auth, body: Body) -> ApiResult<Response> {
    auth.require(Role::Admin)?;
    let req: NewToken = json_body(body, state.settings.max_pipeline_bytes).await?;
    if req.name.trim().is_empty() || req.name.len() > 200 {
        return Err(ApiError::BadRequest("name: 1 to 200 characters".into()));
    }
    let expires_at = match req.expires_in_secs {
        Some(s) if s <= 0 => {
            return Err(ApiError::BadRequest(
                "expires_in_secs must be positive".into(),
            ));
        }
        Some(s) => Some(now_ms().saturating_add(s.saturating_mul(1000))),
        None => None,
    };
    let (text, row) = new_token(
        auth.tenant(),
        &req.name,
        req.role,
        expires_at,
        Some(auth.who.token_id.clone()),
    )?;
    let audit = auth.entry(
        "token.create",
        row.id.clone(),
        Some(format!("role {}", row.role)),
    );
    state.store.insert_token(&row, &audit).await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({ "token": text, "info": row })),
    )
        .into_response())
}

async fn list(State(state): State<AppState>, auth: Auth) -> ApiResult<Json<Vec<TokenRow>>> {
    auth.require(Role::Admin)?;
    Ok(Json(state.store.tokens(auth.tenant()).await?))
}

async fn revoke(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    auth.require(Role::Admin)?;
    if !state
        .store
        .revoke_token(
            auth.tenant(),
            &id,
            &auth.entry("token.revoke", id.clone(), None),
        )
        .await?
    {
        return Err(ApiError::NotFound(format!("no active token {id:?}")));
    }
    Ok(Json(serde_json::json!({ "id": id, "revoked": true })))
}

/// Body of a tenant creation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTenant {
    /// Unique name (`a-z`, `0-9`, `-`, `_`).
    pub name: String,
}

async fn create_tenant(
    State(state): State<AppState>,
    auth: Auth,
    body: Body,
) -> ApiResult<Response> {
    auth.require(Role::Admin)?;
    let default = state.store.tenant_by_name(DEFAULT_TENANT).await?;
    if default.is_none_or(|t| t.id != auth.who.tenant_id) {
        return Err(ApiError::Forbidden(format!(
            "only admins of tenant {DEFAULT_TENANT:?} create tenants"
        )));
    }
    let req: NewTenant = json_body(body, state.settings.max_pipeline_bytes).await?;
    let tenant = tenants::create(&state, &req.name).await?;
    let (text, row) = new_token(
        &tenant.id,
        "admin",
        Role::Admin,
        None,
        Some(auth.who.token_id.clone()),
    )?;
    let audit = auth.entry(
        "tenant.create",
        tenant.name.clone(),
        Some(format!("admin token {}", row.id)),
    );
    state.store.insert_token(&row, &audit).await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({ "tenant": tenant, "admin_token": text })),
    )
        .into_response())
}

/// Body of a limits change.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Runs of the tenant at once, at most (0: no limit).
    pub max_running: i64,
}

async fn set_limits(
    State(state): State<AppState>,
    auth: Auth,
    Path(name): Path<String>,
    body: Body,
) -> ApiResult<Json<serde_json::Value>> {
    auth.require(Role::Admin)?;
    let default = state.store.tenant_by_name(DEFAULT_TENANT).await?;
    if default.is_none_or(|t| t.id != auth.who.tenant_id) {
        // Other tenants' admins cannot tell whether the tenant exists.
        return Err(ApiError::NotFound(format!("no tenant {name:?}")));
    }
    let req: Limits = json_body(body, state.settings.max_pipeline_bytes).await?;
    if req.max_running < 0 {
        return Err(ApiError::BadRequest(
            "max_running must be 0 (no limit) or more".into(),
        ));
    }
    let audit = auth.entry(
        "tenant.limits",
        name.clone(),
        Some(format!("max_running {}", req.max_running)),
    );
    if !state
        .store
        .set_tenant_max_running(&name, req.max_running, &audit)
        .await?
    {
        return Err(ApiError::NotFound(format!("no tenant {name:?}")));
    }
    Ok(Json(
        serde_json::json!({ "tenant": name, "max_running": req.max_running }),
    ))
}

/// Query of the audit log.
#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    /// Entries older than this id.
    pub before: Option<i64>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<i64>,
}

async fn audit(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Json<Vec<AuditEntry>>> {
    auth.require(Role::Admin)?;
    let operator = state
        .store
        .tenant_by_name(DEFAULT_TENANT)
        .await?
        .is_some_and(|t| t.id == auth.who.tenant_id);
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    Ok(Json(
        state
            .store
            .audit_entries(auth.tenant(), operator, q.before, limit)
            .await?,
    ))
}
