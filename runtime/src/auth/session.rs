//! Sign-in sessions. A session cookie reads `afs_<id>_<secret>`: `id` is 16 hex digits (the
//! row's key), `secret` 32 random bytes in base64url; the database keeps only the sha256 of
//! the whole text, compared in constant time. A session ends when signed out, when it has not
//! been used for [`SessionSettings::idle`] (use is recorded to the minute), at
//! [`SessionSettings::max_age`] after sign-in, when its user is disabled or their password is
//! set, and when the user loses their role in its tenant.
//!
//! CSRF: a request made with the cookie that may change something (any method but GET, HEAD
//! and OPTIONS) must carry [`CSRF_HEADER`] with the session's CSRF token, which is derived
//! from the cookie ([`csrf_token`]) and also set, readable by scripts, as cookie
//! [`CSRF_COOKIE`] (double submit). Another site can make a browser send the cookie, but
//! cannot read the token to put in the header.
use std::time::Duration;

use base64::Engine as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{AuthError, Principal, hash_token};
use crate::store::users::SessionRow;
use crate::store::{Store, now_ms};

/// The session cookie (`HttpOnly`).
pub const COOKIE: &str = "autoflow_session";
/// The cookie with the CSRF token (readable by the page's scripts).
pub const CSRF_COOKIE: &str = "autoflow_csrf";
/// The request header that must carry the CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// How finely use is recorded (at most one write per session in this time).
pub const TOUCH_EVERY_MS: i64 = 60_000;

/// How long sessions live and how their cookies are set.
#[derive(Debug, Clone)]
pub struct SessionSettings {
    /// Unused this long, a session ends.
    pub idle: Duration,
    /// A session ends this long after sign-in, used or not.
    pub max_age: Duration,
    /// Cookies carry `Secure` (set when the server is reached over HTTPS).
    pub secure_cookies: bool,
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self {
            idle: Duration::from_secs(30 * 60),
            max_age: Duration::from_secs(12 * 3600),
            secure_cookies: false,
        }
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// What a verified session adds to its [`Principal`].
#[derive(Debug, Clone)]
pub struct SessionInfo {
    /// The session's id.
    pub id: String,
    /// The user's name.
    pub user: String,
    /// The session's CSRF token.
    pub csrf: String,
    /// Absolute expiry, Unix ms.
    pub expires_at: i64,
    /// When it ends if unused from now, Unix ms.
    pub idle_expires_at: i64,
}

/// The CSRF token of the session whose cookie is `text`: sha256 of a label and the cookie, hex.
pub fn csrf_token(text: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"autoflow-csrf\n");
    h.update(text.as_bytes());
    hex::encode(h.finalize())
}

/// Whether `presented` is the CSRF token of the session whose cookie is `text`.
pub fn csrf_matches(text: &str, presented: &str) -> bool {
    csrf_token(text)
        .as_bytes()
        .ct_eq(presented.trim().as_bytes())
        .into()
}

/// A new session of `user_id` in `tenant_id`: its cookie text (shown once) and the row.
pub fn new_session(
    user_id: &str,
    tenant_id: &str,
    settings: &SessionSettings,
    remote: Option<String>,
    agent: Option<String>,
) -> Result<(String, SessionRow), AuthError> {
    let mut id = [0u8; 8];
    let mut secret = [0u8; 32];
    getrandom::fill(&mut id).map_err(|e| AuthError::Random(e.to_string()))?;
    getrandom::fill(&mut secret).map_err(|e| AuthError::Random(e.to_string()))?;
    let id = hex::encode(id);
    let text = format!(
        "afs_{id}_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret)
    );
    let now = now_ms();
    let row = SessionRow {
        id,
        hash: hash_token(&text),
        user_id: user_id.to_string(),
        tenant_id: tenant_id.to_string(),
        created_at: now,
        last_seen_at: now,
        expires_at: now.saturating_add(ms(settings.max_age)),
        ended_at: None,
        remote,
        agent,
    };
    Ok((text, row))
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// The `Set-Cookie` values that sign in with `text` (the session and its CSRF token), or, with
/// `None`, that remove both.
pub fn set_cookies(text: Option<&str>, settings: &SessionSettings) -> [String; 2] {
    let secure = if settings.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    match text {
        Some(text) => {
            let age = settings.max_age.as_secs();
            [
                format!("{COOKIE}={text}; Path=/; Max-Age={age}; HttpOnly; SameSite=Lax{secure}"),
                format!(
                    "{CSRF_COOKIE}={}; Path=/; Max-Age={age}; SameSite=Lax{secure}",
                    csrf_token(text)
                ),
            ]
        }
        None => [
            format!("{COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax{secure}"),
            format!("{CSRF_COOKIE}=; Path=/; Max-Age=0; SameSite=Lax{secure}"),
        ],
    }
}

/// Checks a session cookie against the store; the caller as its user in the session's
/// tenant, with the role the user has there now.
pub async fn verify(
    store: &Store,
    text: &str,
    settings: &SessionSettings,
) -> Result<(Principal, SessionInfo), AuthError> {
    let id = text
        .strip_prefix("afs_")
        .and_then(|rest| rest.split_once('_'))
        .map(|(id, _)| id)
        .filter(|id| id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or(AuthError::Unauthenticated("malformed session cookie"))?;
    let found = store.session_by_id(id).await?;
    // Hash even when the id is unknown, so both paths take about the same time.
    let presented = hash_token(text);
    let stored = found
        .as_ref()
        .map(|c| c.session.hash.clone())
        .unwrap_or_else(|| "0".repeat(64));
    let matches: bool = presented.as_bytes().ct_eq(stored.as_bytes()).into();
    let Some(check) = found.filter(|_| matches) else {
        return Err(AuthError::Unauthenticated("unknown session"));
    };
    let s = &check.session;
    let now = now_ms();
    if s.ended_at.is_some() {
        return Err(AuthError::Unauthenticated("session ended"));
    }
    if s.expires_at <= now || s.last_seen_at.saturating_add(ms(settings.idle)) <= now {
        return Err(AuthError::Unauthenticated("session expired"));
    }
    if check.disabled {
        return Err(AuthError::Unauthenticated("user disabled"));
    }
    let Some(role) = check.role else {
        return Err(AuthError::Unauthenticated(
            "the user no longer has a role in the session's tenant",
        ));
    };
    if now - s.last_seen_at >= TOUCH_EVERY_MS {
        store.touch_session(&s.id, now).await?;
    }
    let info = SessionInfo {
        id: s.id.clone(),
        user: check.user.clone(),
        csrf: csrf_token(text),
        expires_at: s.expires_at,
        idle_expires_at: now.saturating_add(ms(settings.idle)).min(s.expires_at),
    };
    let who = Principal {
        actor: format!("user:{}", check.user),
        tenant_id: s.tenant_id.clone(),
        role,
        scopes: None,
        user: Some((s.user_id.clone(), check.user.clone())),
    };
    Ok((who, info))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others_and_csrf_is_bound_to_the_session() {
        let mut h = http::HeaderMap::new();
        h.append(
            http::header::COOKIE,
            "a=1; autoflow_session=afs_x_y".parse().unwrap(),
        );
        h.append(http::header::COOKIE, "b=2".parse().unwrap());
        assert_eq!(cookie(&h, COOKIE), Some("afs_x_y"));
        assert_eq!(cookie(&h, "b"), Some("2"));
        assert_eq!(cookie(&h, "c"), None);
        let t = csrf_token("afs_x_y");
        assert!(csrf_matches("afs_x_y", &t));
        assert!(!csrf_matches("afs_x_z", &t));
        assert!(!csrf_matches("afs_x_y", ""));
        let [session, csrf] = set_cookies(Some("afs_x_y"), &SessionSettings::default());
        assert!(session.contains("HttpOnly") && session.contains("SameSite=Lax"));
        assert!(!session.contains("Secure"));
        assert!(!csrf.contains("HttpOnly") && csrf.contains(&t));
        let secure = SessionSettings {
            secure_cookies: true,
            ..SessionSettings::default()
        };
        assert!(set_cookies(Some("afs_x_y"), &secure)[0].ends_with("; Secure"));
    }
}
