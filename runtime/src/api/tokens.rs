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
use crate::pipeline::TenantLimits;
use crate::store::audit::AuditEntry;
use crate::store::audit_chain::ChainScope;
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
            "Set a tenant's ceilings: max_running, max_step_memory_mb, max_running_memory_mb, max_output_bytes, max_fuel (0 or left out: none; admins of tenant default)",
            set_limits,
        )
        .get(
            "/v1/tenants/{name}/limits",
            Some(Role::Admin),
            "A tenant's ceilings (admins of tenant default)",
            get_limits,
        )
        .get("/v1/audit", Some(Role::Admin), "The audit log", audit)
        .get(
            "/v1/audit/verify",
            Some(Role::Admin),
            "Check the tenant's audit hash chain (admins of default: also the entries of no tenant); names the first broken entry",
            verify_audit,
        )
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
    /// Narrow it to these scopes (see [`crate::auth::scope`]); none: every route its role
    /// allows (for a caller whose own token is narrowed: the caller's scopes).
    pub scopes: Option<Vec<String>>,
    /// Make it a token of this service account, not of the calling user.
    pub service_account: Option<String>,
}

async fn create(State(state): State<AppState>, auth: Auth, body: Body) -> ApiResult<Response> {
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
    let (text, mut row) = new_token(
        auth.tenant(),
        &req.name,
        req.role,
        expires_at,
        Some(auth.who.actor.clone()),
    )?;
    narrow(&mut row, &auth, req.scopes, req.service_account)?;
    let audit = auth.entry("token.create", row.id.clone(), Some(row.describe()));
    state.store.insert_token(&row, &audit).await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({ "token": text, "info": row })),
    )
        .into_response())
}

/// Gives a new token its owner and scopes, within the caller's own rights: a role and scopes
/// the caller holds, and the caller's user (or its token's) unless it is a service account's.
fn narrow(
    row: &mut TokenRow,
    auth: &Auth,
    scopes: Option<Vec<String>>,
    service_account: Option<String>,
) -> ApiResult<()> {
    let who = &auth.who;
    if row.role > who.role {
        return Err(ApiError::Forbidden(format!(
            "a token carries at most its creator's rights: you are {}, and asked for {}",
            who.role, row.role
        )));
    }
    row.scopes = match scopes {
        Some(asked) => Some(
            crate::auth::scope::check(&asked, super::known_scopes())
                .map_err(ApiError::BadRequest)?,
        ),
        None => who.scopes.clone(),
    };
    if let (Some(held), Some(asked)) = (&who.scopes, &row.scopes)
        && let Some(beyond) = asked.iter().find(|s| !crate::auth::scope::covers(held, s))
    {
        return Err(ApiError::Forbidden(format!(
            "a token carries at most its creator's rights: scope {beyond} is not among yours ({})",
            held.join(" ")
        )));
    }
    match service_account {
        Some(name) => {
            crate::auth::check_user_name(&name)
                .map_err(|e| ApiError::BadRequest(format!("service_account: {e}")))?;
            row.service_account = Some(name);
        }
        None => {
            if let Some((id, name)) = &who.user {
                row.user_id = Some(id.clone());
                row.user = Some(name.clone());
            }
        }
    }
    Ok(())
}

async fn list(State(state): State<AppState>, auth: Auth) -> ApiResult<Json<Vec<TokenRow>>> {
    Ok(Json(state.store.tokens(auth.tenant()).await?))
}

async fn revoke(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
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
    if !is_operator(&state, &auth).await? {
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
        Some(auth.who.actor.clone()),
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

/// Whether the caller belongs to the operator's tenant `default`, whose admins alone create
/// tenants, see and set other tenants' ceilings, and read the audit of every tenant.
async fn is_operator(state: &AppState, auth: &Auth) -> ApiResult<bool> {
    let default = state.store.tenant_by_name(DEFAULT_TENANT).await?;
    Ok(default.is_some_and(|t| t.id == auth.who.tenant_id))
}

/// Refuses (404, as if the tenant did not exist) unless the caller [`is_operator`].
async fn operator_only(state: &AppState, auth: &Auth, name: &str) -> ApiResult<()> {
    if !is_operator(state, auth).await? {
        // Other tenants' admins cannot tell whether the tenant exists.
        return Err(ApiError::NotFound(format!("no tenant {name:?}")));
    }
    Ok(())
}

/// The tenant's ceilings as the API answers them.
fn limits_answer(name: &str, limits: &TenantLimits) -> Json<serde_json::Value> {
    let mut answer = serde_json::json!({ "tenant": name });
    if let (Some(map), Ok(serde_json::Value::Object(fields))) =
        (answer.as_object_mut(), serde_json::to_value(limits))
    {
        map.extend(fields);
    }
    Json(answer)
}

/// `PUT /v1/tenants/{name}/limits`: replaces the tenant's ceilings (a field left out is 0, no
/// ceiling). Pipelines already applied are checked against them when their runs start.
async fn set_limits(
    State(state): State<AppState>,
    auth: Auth,
    Path(name): Path<String>,
    body: Body,
) -> ApiResult<Json<serde_json::Value>> {
    operator_only(&state, &auth, &name).await?;
    let limits: TenantLimits = json_body(body, state.settings.max_pipeline_bytes).await?;
    let audit = auth.entry("tenant.limits", name.clone(), Some(limits.describe()));
    if !state
        .store
        .set_tenant_limits(&name, &limits, &audit)
        .await?
    {
        return Err(ApiError::NotFound(format!("no tenant {name:?}")));
    }
    Ok(limits_answer(&name, &limits))
}

/// `GET /v1/tenants/{name}/limits`: the tenant's ceilings.
async fn get_limits(
    State(state): State<AppState>,
    auth: Auth,
    Path(name): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    operator_only(&state, &auth, &name).await?;
    let tenant = state
        .store
        .tenant_by_name(&name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no tenant {name:?}")))?;
    let limits = state.store.tenant_limits(&tenant.id).await?;
    Ok(limits_answer(&name, &limits))
}

/// Query of the audit log.
#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    /// Entries older than this id.
    pub before: Option<i64>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<i64>,
}

/// `GET /v1/audit/verify`: `{"ok": true, ...}` when the chain is whole, else `"ok": false` and
/// `broken`, the first broken entry.
async fn verify_audit(
    State(state): State<AppState>,
    auth: Auth,
) -> ApiResult<Json<serde_json::Value>> {
    let operator = state
        .store
        .tenant_by_name(DEFAULT_TENANT)
        .await?
        .is_some_and(|t| t.id == auth.who.tenant_id);
    let report = state
        .store
        .verify_audit(ChainScope::Tenant(auth.tenant(), operator))
        .await?;
    Ok(Json(serde_json::json!({
        "ok": report.broken.is_none(),
        "checked": report.checked,
        "legacy": report.legacy,
        "heads": report.heads,
        "broken": report.broken,
    })))
}

async fn audit(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Json<Vec<AuditEntry>>> {
    let operator = is_operator(&state, &auth).await?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    Ok(Json(
        state
            .store
            .audit_entries(auth.tenant(), operator, q.before, limit)
            .await?,
    ))
}
