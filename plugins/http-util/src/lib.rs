//! What the built-in plugins that call HTTP APIs (`http-source`, `lookup`) share: sending a
//! request with redirects followed, and turning a failed request or an answer's status into
//! the plugin error the host acts on (retryable or fatal), with the method and URL named; and
//! percent-encoding a value put into a URL.
use autoflow_plugin_sdk::Error;
use autoflow_plugin_sdk::http::{HttpError, Request, Response};

/// Redirects followed per request.
pub const MAX_REDIRECTS: u8 = 5;

/// Sends `req` (a `method` request to `url`), following up to [`MAX_REDIRECTS`] redirects,
/// and returns a 2xx answer; any other answer or a failure is an error
/// ([`transport_error`], [`status_error`]).
pub fn send(req: Request, method: &str, url: &str) -> Result<Response, Error> {
    let resp = send_any(req, method, url)?;
    if resp.is_success() {
        Ok(resp)
    } else {
        Err(status_error(method, url, &resp))
    }
}

/// Sends `req` as [`send`] does, but returns the answer whatever its status: for callers to
/// whom some non-2xx status means something (a 404: nothing there).
pub fn send_any(req: Request, method: &str, url: &str) -> Result<Response, Error> {
    req.follow_redirects(MAX_REDIRECTS)
        .send()
        .map_err(|e| transport_error(method, url, &e))
}

/// A failed request: refused by the host or otherwise final = fatal; else retryable.
pub fn transport_error(method: &str, url: &str, e: &HttpError) -> Error {
    let msg = format!("{method} {url}: {e}");
    let fatal = e.is_refused()
        || matches!(
            e.code.as_str(),
            "invalid-url"
                | "too-many-redirects"
                | "unsupported"
                | "http-request-body-size"
                | "http-response-body-size"
                | "http-request-uri-invalid"
                | "invalid-header"
                | "tls-certificate-error"
        );
    if fatal {
        Error::Fatal(msg)
    } else {
        Error::Retryable(msg)
    }
}

/// A non-2xx answer: 429 and 5xx are retryable, another status is fatal (with the start of
/// the body, which often says why).
pub fn status_error(method: &str, url: &str, resp: &Response) -> Error {
    match resp.status {
        429 | 500..=599 => Error::Retryable(format!("{method} {url}: status {}", resp.status)),
        s => Error::Fatal(format!("{method} {url}: status {s}{}", snippet(&resp.body))),
    }
}

/// The first 200 bytes of a body, trimmed, in parentheses after a space (empty for none).
pub fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(200)])
        .trim()
        .to_string();
    if text.is_empty() {
        String::new()
    } else {
        format!(" ({text})")
    }
}

/// `s` percent-encoded for any part of a URL: every byte but the unreserved ones
/// (`A-Z a-z 0-9 - . _ ~`) as `%XX`.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn answer(status: u16, body: &str) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: body.into(),
            url: "http://h/x".into(),
        }
    }

    #[test]
    fn statuses_and_failures_become_errors() {
        assert_eq!(
            status_error("GET", "http://h/x", &answer(503, "")),
            Error::Retryable("GET http://h/x: status 503".into())
        );
        assert_eq!(
            status_error("POST", "http://h/x", &answer(400, " bad key \n")),
            Error::Fatal("POST http://h/x: status 400 (bad key)".into())
        );
        let refused = HttpError::new("http-request-denied", "not allowed");
        assert!(matches!(
            transport_error("GET", "u", &refused),
            Error::Fatal(_)
        ));
        let reset = HttpError::new("connection-refused", "");
        assert!(matches!(
            transport_error("GET", "u", &reset),
            Error::Retryable(_)
        ));
    }

    #[test]
    fn percent_encoding_keeps_only_unreserved_bytes() {
        assert_eq!(percent_encode("a-1_b.~"), "a-1_b.~");
        assert_eq!(percent_encode("a b/c?d&é,"), "a%20b%2Fc%3Fd%26%C3%A9%2C");
    }
}
