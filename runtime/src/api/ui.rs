//! The web UI's files, served beside the API: `GET /` is `index.html`, `GET /ui/PATH` a file of
//! `runtime/ui/` (embedded in the binary by the build script; no CDN, no network). The UI uses
//! only the public API under `/v1` with the session cookie. Every answer carries a
//! Content-Security-Policy that allows scripts, styles and connections to this origin only.
//!
//! `AUTOFLOW_UI_DIR`, when set, serves the files from that folder instead, read on each request:
//! for working on the UI without rebuilding the binary.
use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

include!(concat!(env!("OUT_DIR"), "/ui_assets.rs"));

/// The policy every UI answer carries.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The `Content-Type` of a file, by its extension.
fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" => "application/json",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}

/// Each embedded file's entity tag (its sha256, quoted), computed once.
fn etags() -> &'static Vec<String> {
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    TAGS.get_or_init(|| {
        UI_ASSETS
            .iter()
            .map(|(_, bytes)| format!("\"{}\"", &hex::encode(Sha256::digest(bytes))[..32]))
            .collect()
    })
}

/// The bytes of UI file `path` and its entity tag, if there is one.
fn file(path: &str) -> Option<(Vec<u8>, String)> {
    if path
        .split('/')
        .any(|p| p.is_empty() || p == "." || p == "..")
    {
        return None;
    }
    if let Some(dir) = std::env::var_os("AUTOFLOW_UI_DIR") {
        let bytes = std::fs::read(std::path::Path::new(&dir).join(path)).ok()?;
        let tag = format!("\"{}\"", &hex::encode(Sha256::digest(&bytes))[..32]);
        return Some((bytes, tag));
    }
    let i = UI_ASSETS.iter().position(|(p, _)| *p == path)?;
    Some((UI_ASSETS[i].1.to_vec(), etags()[i].clone()))
}

fn serve(path: &str, request: &HeaderMap) -> Response {
    let Some((bytes, tag)) = file(path) else {
        return (StatusCode::NOT_FOUND, "no such file of the web UI").into_response();
    };
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(path)),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if let Ok(v) = HeaderValue::from_str(&tag) {
        headers.insert(header::ETAG, v);
    }
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag));
    if fresh {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    (headers, bytes).into_response()
}

/// `GET /`: the UI's page (it shows the sign-in form to a visitor who is not signed in).
pub async fn index(request: HeaderMap) -> Response {
    serve("index.html", &request)
}

/// `GET /ui/{*path}`: a file of the UI.
pub async fn asset(Path(path): Path<String>, request: HeaderMap) -> Response {
    serve(&path, &request)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_is_embedded_and_paths_cannot_leave_the_folder() {
        assert!(UI_ASSETS.iter().any(|(p, _)| *p == "index.html"));
        assert!(file("../Cargo.toml").is_none());
        assert!(file("a//b").is_none());
        assert_eq!(content_type("app.js"), "text/javascript; charset=utf-8");
    }
}
