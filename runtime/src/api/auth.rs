//! The request extractor: `Auth` is the verified caller and where the call came from: a bearer
//! token (`Authorization: Bearer ...`, which wins when both are sent) or a sign-in session
//! cookie ([`crate::auth::session`]; a request that may change something must then carry the
//! CSRF token, or is refused 403 and audited). A missing or bad token or cookie answers 401 and is counted against the remote address, once per source
//! and window in the audit log; an address past the limit gets 429 without a token check
//! (see [`crate::auth::limiter`]). [`require`] is the router's guard of each route's least
//! role: it verifies the caller once, refuses 403 below the role, and hands the verified
//! [`Auth`] on to the handler's extractor.
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;

use super::{ApiError, AppState};
use crate::auth::session::{self, SessionInfo};
use crate::auth::{AuthError, Principal, Role};
use crate::store::audit::NewAudit;

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Auth {
    /// Who.
    pub who: Principal,
    /// The remote address, if known.
    pub remote: Option<String>,
    /// The client's `User-Agent`, if it sent one.
    pub agent: Option<String>,
    /// The sign-in session, when the caller came with its cookie instead of a token.
    pub session: Option<SessionInfo>,
}

/// The `User-Agent` of a request, cut to 300 bytes (as it is kept in the audit log).
pub fn user_agent(headers: &axum::http::HeaderMap) -> Option<String> {
    let text = headers.get(axum::http::header::USER_AGENT)?.to_str().ok()?;
    let mut end = text.len().min(300);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Some(text[..end].to_string())
}

/// The guard of a route whose least role is `role` and whose scope is `scope` (see
/// [`super::openapi::ApiRouter`]): 401/429 as the extractor answers, 403 below `role` or for a
/// token narrowed to other scopes, else the handler runs with the verified caller in the
/// request's extensions.
pub async fn require(
    role: Role,
    scope: std::sync::Arc<str>,
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let (mut parts, body) = request.into_parts();
    let verdict = match Auth::from_request_parts(&mut parts, &state).await {
        Ok(auth) => auth
            .who
            .require(role)
            .and_then(|()| auth.who.require_scope(&scope))
            .map(|()| auth)
            .map_err(ApiError::from),
        Err(refused) => Err(refused),
    };
    match verdict {
        Ok(auth) => {
            parts.extensions.insert(auth);
            Ok(next.run(Request::from_parts(parts, body)).await)
        }
        Err(refused) => {
            // Read the body the caller is still sending: answered without it, it would reset
            // the connection under the answer.
            super::error::discard_body(body).await;
            Err(refused)
        }
    }
}

impl Auth {
    /// The caller's tenant id.
    pub fn tenant(&self) -> &str {
        &self.who.tenant_id
    }

    /// The audit entry of a change this caller makes; the store records it in the change's
    /// own transaction.
    pub fn entry<'a>(
        &'a self,
        action: &'a str,
        target: impl Into<String>,
        detail: Option<String>,
    ) -> NewAudit<'a> {
        NewAudit {
            tenant: Some(&self.who.tenant_id),
            actor: &self.who.actor,
            action,
            target: Some(target.into()),
            remote: self.remote.clone(),
            agent: self.agent.clone(),
            detail,
        }
    }
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(verified) = parts.extensions.get::<Auth>() {
            return Ok(verified.clone());
        }
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        let remote = peer.map(|p| p.to_string());
        let attempt = match peer {
            Some(p) => Some(state.auth_failures.admit(p.ip()).map_err(too_many)?),
            None => None,
        };
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let token = header.and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
        });
        let agent = user_agent(&parts.headers);
        let cookie = session::cookie(&parts.headers, session::COOKIE);
        let result = match (token, cookie) {
            (Some(t), _) => crate::auth::verify(&state.store, t.trim())
                .await
                .map(|who| (who, None)),
            (None, Some(c)) => session::verify(&state.store, c, &state.settings.sessions)
                .await
                .map(|(who, info)| (who, Some((info, c)))),
            (None, None) => Err(AuthError::Unauthenticated("missing bearer token")),
        };
        match result {
            Ok((who, None)) => Ok(Auth {
                who,
                remote,
                agent,
                session: None,
            }),
            Ok((who, Some((info, cookie)))) => {
                let auth = Auth {
                    who,
                    remote,
                    agent,
                    session: Some(info),
                };
                check_csrf(state, parts, cookie, &auth).await?;
                Ok(auth)
            }
            Err(AuthError::Unauthenticated(reason)) => {
                match (attempt, remote) {
                    (Some(attempt), Some(remote)) => {
                        let write = attempt.failed(reason, remote);
                        let (store, limiter) = (state.store.clone(), state.auth_failures.clone());
                        // A task of its own: a client that goes away cannot leave the window's
                        // entry half written (inserted, but its id never handed back).
                        let task = tokio::spawn(async move {
                            crate::auth::audit::record_failure(&store, &limiter, write).await
                        });
                        if let Err(e) = task.await {
                            tracing::error!("cannot write the audit log (auth.failed): {e}");
                        }
                    }
                    (_, remote) => {
                        crate::auth::audit::failed_auth(&state.store, remote, reason).await
                    }
                }
                Err(ApiError::Unauthorized(reason.to_string()))
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// Refuses (403, audited as `auth.csrf`) a request made with session cookie `cookie` that may
/// change something and does not carry the session's CSRF token in [`session::CSRF_HEADER`].
async fn check_csrf(
    state: &AppState,
    parts: &Parts,
    cookie: &str,
    auth: &Auth,
) -> Result<(), ApiError> {
    use axum::http::Method;
    if matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let presented = parts
        .headers
        .get(session::CSRF_HEADER)
        .and_then(|v| v.to_str().ok());
    let reason = match presented {
        Some(p) if session::csrf_matches(cookie, p) => return Ok(()),
        Some(_) => "wrong CSRF token",
        None => "missing CSRF token",
    };
    let entry = auth.entry(
        "auth.csrf",
        format!("{} {}", parts.method, parts.uri.path()),
        Some(reason.to_string()),
    );
    if let Err(e) = state.store.audit(entry).await {
        tracing::error!("cannot write the audit log (auth.csrf): {e}");
    }
    Err(ApiError::Forbidden(format!(
        "{reason}: a request made with the session cookie must carry the {} header (the csrf_token of POST /v1/login or GET /v1/session)",
        session::CSRF_HEADER
    )))
}

/// The 429 of an address past the limit, `wait` before its window ends.
fn too_many(wait: std::time::Duration) -> ApiError {
    let secs = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
    ApiError::TooManyRequests {
        retry_after: secs,
        message: format!("too many failed authentications from this address; retry in {secs} s"),
    }
}
