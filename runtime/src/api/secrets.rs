//! `/v1/secrets`: a tenant's secrets, set and deleted by admins, listed by name; a value goes
//! in and never comes out (steps granted the secret read it through the host).
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use serde::Deserialize;

use super::auth::Auth;
use super::{ApiError, ApiResult, ApiRouter, AppState, json_body};
use crate::auth::Role;
use crate::store::secrets::SecretInfo;

/// The secret routes.
pub fn routes() -> ApiRouter {
    ApiRouter::new()
        .get(
            "/v1/secrets",
            Some(Role::Editor),
            "The tenant's secrets, by name (never their values)",
            list,
        )
        .put(
            "/v1/secrets/{name}",
            Some(Role::Admin),
            "Set a secret: {\"value\": text}; stored encrypted",
            put,
        )
        .delete(
            "/v1/secrets/{name}",
            Some(Role::Admin),
            "Delete a secret",
            delete,
        )
}

/// Body of a set.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretValue {
    /// The value (text).
    pub value: String,
}

async fn list(State(state): State<AppState>, auth: Auth) -> ApiResult<Json<Vec<SecretInfo>>> {
    Ok(Json(state.store.secrets(auth.tenant()).await?))
}

fn check_name(name: &str) -> ApiResult<()> {
    if crate::pipeline::is_valid_secret_name(name) && name.len() <= 128 {
        Ok(())
    } else {
        Err(ApiError::BadRequest(format!(
            "invalid secret name {name:?} (use a-z, A-Z, 0-9, -, _ and ., at most 128)"
        )))
    }
}

async fn put(
    State(state): State<AppState>,
    auth: Auth,
    Path(name): Path<String>,
    body: Body,
) -> ApiResult<Json<serde_json::Value>> {
    check_name(&name)?;
    let req: SecretValue = json_body(body, 64 * 1024).await?;
    let (nonce, sealed) = state
        .master_key
        .seal(auth.tenant(), &name, req.value.as_bytes())
        .map_err(ApiError::internal)?;
    let audit = auth.entry("secret.set", name.clone(), None);
    state
        .store
        .put_secret(auth.tenant(), &name, &nonce, &sealed, &audit)
        .await?;
    Ok(Json(serde_json::json!({ "name": name, "set": true })))
}

async fn delete(
    State(state): State<AppState>,
    auth: Auth,
    Path(name): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let audit = auth.entry("secret.delete", name.clone(), None);
    if !state
        .store
        .delete_secret(auth.tenant(), &name, &audit)
        .await?
    {
        return Err(ApiError::NotFound(format!("no secret {name:?}")));
    }
    Ok(Json(serde_json::json!({ "name": name, "deleted": true })))
}
