//! `/v1/channels`: a tenant's alert channels (webhook, Slack, e-mail), set and deleted by
//! admins, listed by editors without their secrets (a URL's path, a webhook's signing secret
//! and an SMTP password stay sealed), and a test send.
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use serde_json::json;

use super::auth::Auth;
use super::{ApiError, ApiResult, ApiRouter, AppState, json_body};
use crate::alerts::ChannelConfig;
use crate::auth::Role;
use crate::store::channels::{ChannelInfo, DEFAULT_MAX_PER_HOUR, NewChannel};

/// The highest `max_per_hour` a channel may have.
const MAX_PER_HOUR: i64 = 100_000;

/// The channel routes.
pub fn routes() -> ApiRouter {
    ApiRouter::new()
        .get(
            "/v1/channels",
            Some(Role::Editor),
            "The tenant's alert channels (never their secrets)",
            list,
        )
        .get(
            "/v1/channels/{name}",
            Some(Role::Editor),
            "One alert channel (never its secrets)",
            get_one,
        )
        .put(
            "/v1/channels/{name}",
            Some(Role::Admin),
            "Set an alert channel (\"max_per_hour\"? sends an hour, default 100): {\"type\": \"webhook\", \"url\", \"secret\"?}, {\"type\": \"slack\", \"url\"} or {\"type\": \"email\", \"host\", \"port\"?, \"tls\"?, \"username\"?, \"password\"?, \"from\", \"to\", \"ca_cert\"?}",
            put,
        )
        .delete(
            "/v1/channels/{name}",
            Some(Role::Admin),
            "Delete an alert channel",
            delete,
        )
        .post(
            "/v1/channels/{name}/test",
            Some(Role::Editor),
            "Send a test alert to a channel now; answers what its receiver said",
            test,
        )
}

fn check_name(name: &str) -> ApiResult<()> {
    if crate::pipeline::alerts::is_valid_channel_name(name) {
        Ok(())
    } else {
        Err(ApiError::BadRequest(format!(
            "invalid channel name {name:?} (use a-z, 0-9, - and _, at most 63 characters)"
        )))
    }
}

async fn list(State(state): State<AppState>, auth: Auth) -> ApiResult<Json<Vec<ChannelInfo>>> {
    Ok(Json(state.store.channels(auth.tenant()).await?))
}

async fn get_one(
    State(state): State<AppState>,
    auth: Auth,
    Path(name): Path<String>,
) -> ApiResult<Json<ChannelInfo>> {
    let channel = state.store.channel(auth.tenant(), &name).await?;
    channel
        .map(|c| Json(c.info))
        .ok_or_else(|| ApiError::NotFound(format!("no channel {name:?}")))
}

async fn put(
    State(state): State<AppState>,
    auth: Auth,
    Path(name): Path<String>,
    body: Body,
) -> ApiResult<(axum::http::StatusCode, Json<serde_json::Value>)> {
    check_name(&name)?;
    let mut doc: serde_json::Value = json_body(body, 64 * 1024).await?;
    let max_per_hour = match doc.as_object_mut().and_then(|o| o.remove("max_per_hour")) {
        None => DEFAULT_MAX_PER_HOUR,
        Some(v) => v
            .as_i64()
            .filter(|n| (1..=MAX_PER_HOUR).contains(n))
            .ok_or_else(|| {
                ApiError::Invalid(format!(
                    "max_per_hour: {v} is not a whole number between 1 and {MAX_PER_HOUR}"
                ))
            })?,
    };
    let mut config: ChannelConfig = serde_json::from_value(doc)
        .map_err(|e| ApiError::BadRequest(format!("invalid channel: {e}")))?;
    let target = config.target().map_err(ApiError::Invalid)?;
    let (host, port) = config.address().map_err(ApiError::Invalid)?;
    if let Some(why) = crate::alerts::send::refused(state.deliverer.egress(), &host, port).await {
        let field = if config.kind() == "email" {
            "host"
        } else {
            "url"
        };
        return Err(ApiError::Invalid(format!("{field}: {why}")));
    }
    let mut made_secret = None;
    if let ChannelConfig::Webhook { secret, .. } = &mut config {
        match secret {
            Some(s) if s.is_empty() => {
                return Err(ApiError::Invalid("secret: must not be empty".into()));
            }
            Some(_) => {}
            None => {
                let s = format!("whsec_{}", crate::store::random_hex(24));
                made_secret = Some(s.clone());
                *secret = Some(s);
            }
        }
    }
    let sealed = config
        .seal(&state.master_key, auth.tenant(), &name)
        .map_err(ApiError::internal)?;
    let existed = state.store.channel(auth.tenant(), &name).await?.is_some();
    let audit = auth.entry("channel.set", name.clone(), Some(config.kind().to_string()));
    state
        .store
        .put_channel(
            auth.tenant(),
            &name,
            &NewChannel {
                kind: config.kind(),
                target: &target,
                sealed: &sealed,
                max_per_hour,
            },
            &audit,
        )
        .await?;
    let mut answer = json!({
        "name": name, "type": config.kind(), "target": target, "max_per_hour": max_per_hour,
    });
    if let Some(secret) = made_secret {
        // Shown once: the receiver needs it to check signatures.
        answer["secret"] = json!(secret);
    }
    let status = if existed {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::CREATED
    };
    Ok((status, Json(answer)))
}

async fn delete(
    State(state): State<AppState>,
    auth: Auth,
    Path(name): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let audit = auth.entry("channel.delete", name.clone(), None);
    if !state
        .store
        .delete_channel(auth.tenant(), &name, &audit)
        .await?
    {
        return Err(ApiError::NotFound(format!("no channel {name:?}")));
    }
    Ok(Json(json!({ "name": name, "deleted": true })))
}

async fn test(
    State(state): State<AppState>,
    auth: Auth,
    Path(name): Path<String>,
) -> ApiResult<Json<crate::alerts::TestResult>> {
    let channel = state
        .store
        .channel(auth.tenant(), &name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no channel {name:?}")))?;
    let config = ChannelConfig::open(&state.master_key, auth.tenant(), &name, &channel.sealed)
        .map_err(ApiError::internal)?;
    Ok(Json(
        state
            .deliverer
            .send_test(&config, auth.tenant(), &name)
            .await,
    ))
}
