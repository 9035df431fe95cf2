//! Sign-in: `POST /v1/login` with `{"name", "password"}` (and `"tenant"` for a user of several
//! tenants) checks the password (argon2id, [`crate::auth::password`]) and sets the session
//! cookie and its CSRF cookie ([`crate::auth::session`]); `POST /v1/logout` ends the session;
//! `GET /v1/session` says who is signed in and gives the CSRF token again.
//!
//! Attempts are limited per source address ([`LOGIN_FAILURES_PER_ADDRESS`] failures a minute)
//! and per user name ([`LOGIN_FAILURES_PER_USER`] a minute, from all addresses together), both
//! with the limiter of [`crate::auth::limiter`]: past either, 429 with `Retry-After`, before any
//! password is checked. Every sign-in, failed or not, is audited with its address and user
//! agent. At most [`HASHES_AT_ONCE`] password checks run at once, off the async threads.
use std::net::SocketAddr;
use std::time::Duration;

use axum::Json;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::auth::{Auth, user_agent};
use super::{ApiError, ApiResult, ApiRouter, AppState, json_body};
use crate::auth::limiter::{FailureLimiter, MAX_SOURCES, Source};
use crate::auth::session::{self, SessionInfo};
use crate::auth::{Role, password};
use crate::store::audit::NewAudit;
use crate::store::users::Membership;

/// Failed sign-ins one address may make in a minute; the next answers 429.
pub const LOGIN_FAILURES_PER_ADDRESS: u32 = 5;
/// Failed sign-ins as one user, from anywhere, in a minute; the next answers 429.
pub const LOGIN_FAILURES_PER_USER: u32 = 20;
/// Password checks running at once.
pub const HASHES_AT_ONCE: usize = 2;

/// The sign-in limits and the password checks' turns; one per server.
#[derive(Debug)]
pub struct Logins {
    /// Failures per source address.
    pub by_address: FailureLimiter,
    /// Failures per user name.
    pub by_user: FailureLimiter,
    /// Turns of the password checks.
    pub hashing: tokio::sync::Semaphore,
}

impl Default for Logins {
    fn default() -> Self {
        let minute = Duration::from_secs(60);
        Self {
            by_address: FailureLimiter::new(LOGIN_FAILURES_PER_ADDRESS, minute, MAX_SOURCES),
            by_user: FailureLimiter::new(LOGIN_FAILURES_PER_USER, minute, MAX_SOURCES),
            hashing: tokio::sync::Semaphore::new(HASHES_AT_ONCE),
        }
    }
}

/// The sign-in routes.
pub fn routes() -> ApiRouter {
    ApiRouter::new()
        .post(
            "/v1/login",
            None,
            "Sign in with {\"name\", \"password\"} (and \"tenant\" for a user of several): sets the session cookie; answers the CSRF token",
            login,
        )
        .post(
            "/v1/logout",
            Some(Role::Viewer),
            "End the caller's session (with its cookie and CSRF token)",
            logout,
        )
        .get(
            "/v1/session",
            Some(Role::Viewer),
            "Who is calling: the signed-in user (with the CSRF token) or the token",
            whoami,
        )
}

/// Body of a sign-in.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    /// User name.
    pub name: String,
    /// Password (never logged: this type has no `Debug`).
    pub password: String,
    /// Tenant name, for a user with a role in several.
    pub tenant: Option<String>,
}

/// The 429 of a sign-in past a limit.
fn too_many(wait: Duration, what: &str) -> ApiError {
    let secs = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
    ApiError::TooManyRequests {
        retry_after: secs,
        message: format!("too many failed sign-ins {what}; retry in {secs} s"),
    }
}

/// Whether `password` matches `stored` (with `None`, the decoy: false, as slowly), checked on a
/// blocking thread in its turn.
async fn password_matches(
    state: &AppState,
    password: String,
    stored: Option<String>,
) -> ApiResult<bool> {
    let _turn = state
        .logins
        .hashing
        .acquire()
        .await
        .map_err(ApiError::internal)?;
    tokio::task::spawn_blocking(move || match stored.as_deref() {
        Some(hash) => password::verify(&password, hash),
        None => password::verify(&password, password::decoy()),
    })
    .await
    .map_err(ApiError::internal)
}

async fn login(State(state): State<AppState>, request: Request) -> ApiResult<Response> {
    let (parts, body) = request.into_parts();
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let remote = peer.map(|p| p.to_string());
    let agent = user_agent(&parts.headers);
    let creds: Credentials = json_body(body, state.settings.max_pipeline_bytes).await?;
    let name = creds.name.trim().to_string();
    if name.is_empty() {
        return Err(ApiError::Invalid("name: must not be empty".into()));
    }
    let by_address = match peer {
        Some(p) => Some(
            state
                .logins
                .by_address
                .admit(p.ip())
                .map_err(|w| too_many(w, "from this address"))?,
        ),
        None => None,
    };
    let by_user = state
        .logins
        .by_user
        .admit_source(Source::user(&name))
        .map_err(|w| too_many(w, "as this user"))?;
    let user = state.store.user_by_name(&name).await?;
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let matches = password_matches(&state, creds.password, stored).await?;
    let memberships = match &user {
        Some(u) => state.store.memberships(&u.id).await?,
        None => Vec::new(),
    };
    // The tenant whose chain records the attempt: the one named, else the user's only one.
    let tenant: Option<&Membership> = match &creds.tenant {
        Some(t) => memberships.iter().find(|m| &m.tenant == t),
        None if memberships.len() == 1 => memberships.first(),
        None => None,
    };
    let failure = match &user {
        None => Some("unknown user"),
        Some(_) if !matches => Some("wrong password"),
        Some(u) if u.disabled_at.is_some() => Some("user disabled"),
        Some(_) => None,
    };
    let audit = |action: &'static str, detail: String| NewAudit {
        tenant: tenant.map(|m| m.tenant_id.as_str()),
        actor: "anonymous",
        action,
        target: Some(format!("user:{name}")),
        remote: remote.clone(),
        agent: agent.clone(),
        detail: Some(detail),
    };
    if let Some(reason) = failure {
        let remote_text = remote.clone().unwrap_or_default();
        if let Some(a) = by_address {
            let _ = a.failed(reason, remote_text.clone());
        }
        let _ = by_user.failed(reason, remote_text);
        state
            .store
            .audit(audit("login.failed", reason.to_string()))
            .await?;
        return Err(match reason {
            "user disabled" => ApiError::Forbidden("this user is disabled".into()),
            _ => ApiError::Unauthorized("wrong name or password".into()),
        });
    }
    let Some(user) = user else {
        return Err(ApiError::internal("a signed-in user vanished"));
    };
    let Some(tenant) = tenant else {
        let names: Vec<&str> = memberships.iter().map(|m| m.tenant.as_str()).collect();
        return Err(match (&creds.tenant, names.is_empty()) {
            (_, true) => ApiError::Forbidden("this user has a role in no tenant".into()),
            (Some(t), false) => ApiError::Invalid(format!(
                "tenant: the user has no role in tenant {t:?} (they have one in: {})",
                names.join(", ")
            )),
            (None, false) => ApiError::Invalid(format!(
                "tenant: the user has a role in several tenants ({}); name one",
                names.join(", ")
            )),
        });
    };
    let settings = &state.settings.sessions;
    let (text, row) = session::new_session(
        &user.id,
        &tenant.tenant_id,
        settings,
        remote.clone(),
        agent.clone(),
    )?;
    let actor = format!("user:{name}");
    let entry = NewAudit {
        actor: &actor,
        ..audit("login", format!("session {} as {}", row.id, tenant.role))
    };
    state.store.insert_session(&row, &entry).await?;
    let answer = json!({
        "user": user.name,
        "tenant": tenant.tenant,
        "role": tenant.role,
        "csrf_token": session::csrf_token(&text),
        "expires_at": row.expires_at,
    });
    with_cookies(Json(answer).into_response(), Some(&text), settings)
}

/// `response` with the cookies that sign in with `text`, or that sign out with `None`.
fn with_cookies(
    mut response: Response,
    text: Option<&str>,
    settings: &session::SessionSettings,
) -> ApiResult<Response> {
    for c in session::set_cookies(text, settings) {
        let value = HeaderValue::from_str(&c).map_err(ApiError::internal)?;
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    Ok(response)
}

async fn logout(State(state): State<AppState>, auth: Auth) -> ApiResult<Response> {
    let Some(info) = &auth.session else {
        return Err(ApiError::BadRequest(
            "not signed in with a session (this request came with a token)".into(),
        ));
    };
    state
        .store
        .end_session(
            &info.id,
            &auth.entry(
                "logout",
                format!("user:{}", info.user),
                Some(format!("session {}", info.id)),
            ),
        )
        .await?;
    with_cookies(
        (StatusCode::OK, Json(json!({ "signed_out": true }))).into_response(),
        None,
        &state.settings.sessions,
    )
}

async fn whoami(State(state): State<AppState>, auth: Auth) -> ApiResult<Json<serde_json::Value>> {
    let tenant = state
        .store
        .tenants()
        .await?
        .into_iter()
        .find(|t| t.id == auth.who.tenant_id)
        .map(|t| t.name);
    Ok(match &auth.session {
        Some(SessionInfo {
            user,
            csrf,
            expires_at,
            idle_expires_at,
            ..
        }) => Json(json!({
            "user": user,
            "tenant": tenant,
            "tenant_id": auth.who.tenant_id,
            "role": auth.who.role,
            "csrf_token": csrf,
            "expires_at": expires_at,
            "idle_expires_at": idle_expires_at,
        })),
        None => Json(json!({
            "token": auth.who.actor,
            "tenant": tenant,
            "tenant_id": auth.who.tenant_id,
            "role": auth.who.role,
        })),
    })
}
