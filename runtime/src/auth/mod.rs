//! Authentication and authorization: bearer API tokens, users' passwords ([`password`]) and
//! sign-in sessions ([`session`]), roles per tenant, and the audit log.
//!
//! A token reads `af_<id>_<secret>`: `id` is 12 hex digits (public, the row's key), `secret`
//! is 32 random bytes in base64url. The database keeps only the sha256 of the whole text,
//! compared in constant time; a token may expire and may be revoked.

use base64::Engine as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub mod audit;
pub mod limiter;
pub mod password;
pub mod scope;
pub mod session;

use crate::store::tokens::TokenRow;
use crate::store::{Store, StoreError, now_ms};

/// Errors of authentication.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No token, a malformed one, an unknown one, or one that expired or was revoked.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// The token is valid but its role does not allow this.
    #[error("this needs the {0} role")]
    Forbidden(Role),
    /// The token is valid but narrowed to scopes that do not include this route's.
    #[error("this needs scope {needed}, and the token's scopes are: {held}")]
    OutOfScope {
        /// The route's scope.
        needed: String,
        /// The token's.
        held: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No randomness for a new token.
    #[error("no randomness available: {0}")]
    Random(String),
}

pub use crate::store::tokens::Role;

/// Who is calling: the token's id or the signed-in user, the tenant and the role.
#[derive(Debug, Clone)]
pub struct Principal {
    /// Who, as the audit log and `created_by` fields name them: the token's id, or
    /// `user:NAME` for a signed-in user.
    pub actor: String,
    /// Tenant id.
    pub tenant_id: String,
    /// Role.
    pub role: Role,
    /// The scopes a token is narrowed to (`None`: a session, or a token of every scope).
    pub scopes: Option<Vec<String>>,
    /// The user, as (id, name): the signed-in one, or the one a token belongs to.
    pub user: Option<(String, String)>,
}

impl Principal {
    /// Refuses unless the role is at least `needed`.
    pub fn require(&self, needed: Role) -> Result<(), AuthError> {
        if self.role >= needed {
            Ok(())
        } else {
            Err(AuthError::Forbidden(needed))
        }
    }

    /// Refuses unless the caller's scopes include `scope` (the route's, [`scope::of`]).
    pub fn require_scope(&self, scope: &str) -> Result<(), AuthError> {
        match &self.scopes {
            Some(scopes) if !scope::covers(scopes, scope) => Err(AuthError::OutOfScope {
                needed: scope.to_string(),
                held: scopes.join(" "),
            }),
            _ => Ok(()),
        }
    }
}

/// Refuses a user name that is empty, over 100 bytes, or has other than `A-Z a-z 0-9 . _ @ -`.
pub fn check_user_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._@-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err("name: 1 to 100 of A-Z a-z 0-9 . _ @ -".into())
    }
}

/// sha256 of the token text, hex.
pub fn hash_token(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// A new token: its text (shown once) and the row to store.
pub fn new_token(
    tenant_id: &str,
    name: &str,
    role: Role,
    expires_at: Option<i64>,
    created_by: Option<String>,
) -> Result<(String, TokenRow), AuthError> {
    let mut id = [0u8; 6];
    let mut secret = [0u8; 32];
    getrandom::fill(&mut id).map_err(|e| AuthError::Random(e.to_string()))?;
    getrandom::fill(&mut secret).map_err(|e| AuthError::Random(e.to_string()))?;
    let id = hex::encode(id);
    let text = format!(
        "af_{id}_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret)
    );
    let row = TokenRow {
        id,
        tenant_id: tenant_id.to_string(),
        name: name.to_string(),
        role,
        hash: hash_token(&text),
        created_at: now_ms(),
        created_by,
        expires_at,
        revoked_at: None,
        scopes: None,
        user_id: None,
        user: None,
        service_account: None,
        user_role: None,
    };
    Ok((text, row))
}

/// Checks a bearer token against the store.
pub async fn verify(store: &Store, text: &str) -> Result<Principal, AuthError> {
    let id = text
        .strip_prefix("af_")
        .and_then(|rest| rest.split_once('_'))
        .map(|(id, _)| id)
        .filter(|id| id.len() == 12 && id.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or(AuthError::Unauthenticated("malformed token"))?;
    let row = store.token_by_id(id).await?;
    // Hash even when the id is unknown, so both paths take about the same time.
    let presented = hash_token(text);
    let stored = row
        .as_ref()
        .map(|r| r.hash.clone())
        .unwrap_or_else(|| "0".repeat(64));
    let matches: bool = presented.as_bytes().ct_eq(stored.as_bytes()).into();
    let Some(row) = row.filter(|_| matches) else {
        return Err(AuthError::Unauthenticated("unknown token"));
    };
    if row.revoked_at.is_some() {
        return Err(AuthError::Unauthenticated("token revoked"));
    }
    if row.expires_at.is_some_and(|t| t <= now_ms()) {
        return Err(AuthError::Unauthenticated("token expired"));
    }
    // A user's token carries at most the user's present role, and stops with the user.
    let role = match (&row.user_id, row.user_role) {
        (None, _) => row.role,
        (Some(_), Some(user_role)) => row.role.min(user_role),
        (Some(_), None) => {
            return Err(AuthError::Unauthenticated(
                "the token's user is disabled or has no role in its tenant",
            ));
        }
    };
    Ok(Principal {
        actor: row.id,
        tenant_id: row.tenant_id,
        role,
        scopes: row.scopes,
        user: row.user_id.zip(row.user),
    })
}
