//! The request extractor: `Auth` is the verified caller and where the call came from. A
//! missing or bad token answers 401 and is written to the audit log with the remote address.
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

use super::{AuthError, Principal, Role};
use crate::api::{ApiError, AppState};
use crate::store::audit::NewAudit;

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Auth {
    /// Who.
    pub who: Principal,
    /// The remote address, if known.
    pub remote: Option<String>,
}

impl Auth {
    /// Refuses (403) unless the caller's role is at least `role`.
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        self.who.require(role).map_err(ApiError::from)
    }

    /// The caller's tenant id.
    pub fn tenant(&self) -> &str {
        &self.who.tenant_id
    }

    /// The audit entry of a change this caller makes; the store records it in the change's
    /// own transaction.
    pub fn entry<'a>(&'a self, action: &'a str, target: impl Into<String>, detail: Option<String>) -> NewAudit<'a> {
        NewAudit {
            tenant: Some(&self.who.tenant_id),
            actor: &self.who.token_id,
            action,
            target: Some(target.into()),
            remote: self.remote.clone(),
            detail,
        }
    }
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let remote = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.to_string());
        let header = parts.headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let token = header.and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")));
        let result = match token {
            Some(t) => super::verify(&state.store, t.trim()).await,
            None => Err(AuthError::Unauthenticated("missing bearer token")),
        };
        match result {
            Ok(who) => Ok(Auth { who, remote }),
            Err(AuthError::Unauthenticated(reason)) => {
                super::audit::failed_auth(&state.store, remote, reason).await;
                Err(ApiError::Unauthorized(reason.to_string()))
            }
            Err(e) => Err(e.into()),
        }
    }
}
