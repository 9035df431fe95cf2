//! `/v1/alert-rules`: the tenant's own alert rules (see [`crate::control::alert_rules`]), each
//! judged on the pipelines it selects besides their own `alerts:`; set and deleted by admins,
//! listed by editors.
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::auth::Auth;
use super::{ApiError, ApiResult, ApiRouter, AppState, json_body};
use crate::auth::Role;
use crate::control::alert_rules;
use crate::store::alert_rules::TenantRule;

/// The alert rule routes.
pub fn routes() -> ApiRouter {
    ApiRouter::new()
        .get(
            "/v1/alert-rules",
            Some(Role::Editor),
            "The tenant's own alert rules, by name",
            list,
        )
        .get(
            "/v1/alert-rules/{name}",
            Some(Role::Editor),
            "One of the tenant's alert rules",
            get_one,
        )
        .put(
            "/v1/alert-rules/{name}",
            Some(Role::Admin),
            "Set a tenant alert rule: a pipeline rule's fields ({\"when\", \"channels\", \"severity\"?, thresholds}) and \"pipelines\"? (names or prefix*; default every pipeline)",
            put,
        )
        .delete(
            "/v1/alert-rules/{name}",
            Some(Role::Admin),
            "Delete a tenant alert rule (its open incidents close)",
            delete,
        )
}

async fn list(State(state): State<AppState>, auth: Auth) -> ApiResult<Json<Vec<TenantRule>>> {
    Ok(Json(state.store.alert_rules(auth.tenant()).await?))
}

async fn get_one(
    State(state): State<AppState>,
    auth: Auth,
    Path(name): Path<String>,
) -> ApiResult<Json<TenantRule>> {
    state
        .store
        .alert_rule(auth.tenant(), &name)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no alert rule {name:?}")))
}

async fn put(
    State(state): State<AppState>,
    auth: Auth,
    Path(name): Path<String>,
    body: Body,
) -> ApiResult<(StatusCode, Json<TenantRule>)> {
    let doc: Value = json_body(body, 64 * 1024).await?;
    let when = doc.get("when").and_then(Value::as_str).map(str::to_string);
    let audit = auth.entry("alert_rule.set", name.clone(), when);
    let (rule, existed) = alert_rules::put(&state, auth.tenant(), &name, doc, &audit).await?;
    let status = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(rule)))
}

async fn delete(
    State(state): State<AppState>,
    auth: Auth,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    let audit = auth.entry("alert_rule.delete", name.clone(), None);
    if !state
        .store
        .delete_alert_rule(auth.tenant(), &name, &audit)
        .await?
    {
        return Err(ApiError::NotFound(format!("no alert rule {name:?}")));
    }
    Ok(Json(json!({ "name": name, "deleted": true })))
}
