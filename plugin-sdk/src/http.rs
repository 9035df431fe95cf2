//! A small blocking HTTP client over the `wasi:http` imports, for plugins that call APIs.
//!
//! ```no_run
//! use autoflow_plugin_sdk::http::Request;
//! let resp = Request::get("https://api.example.com/items?page=1")
//!     .header("accept", "application/json")
//!     .follow_redirects(5)
//!     .send()?;
//! if resp.status == 200 { /* resp.body */ }
//! # Ok::<(), autoflow_plugin_sdk::http::HttpError>(())
//! ```
//!
//! Every request goes through the host's egress checks: the host must be in the step's
//! `allow_hosts`, and loopback, private and link-local addresses are refused unless the
//! operator allowed them. A refusal is an [`HttpError`] whose code is `http-request-denied` or
//! `destination-ip-prohibited` (the run log says why). A redirect, when followed, is a new
//! request, checked again. Bodies are capped by the host (16 MiB). In a native build (unit
//! tests) requests are answered by the test host's [`crate::testing::FakeHttp`], if it has
//! one, and otherwise fail with code `unsupported`.
use std::fmt;

/// The request headers a step's config gives, in order: each value a string, or
/// `{"secret": NAME, "prefix": "Bearer "}` for the value of a secret granted to the step after
/// the prefix (so that tokens stay out of the pipeline file). An error names the header.
pub fn config_headers(
    headers: &serde_json::Map<String, serde_json::Value>,
) -> Result<Vec<(String, String)>, crate::Error> {
    headers
        .iter()
        .map(|(name, v)| Ok((name.clone(), header_value(name, v)?)))
        .collect()
}

fn header_value(name: &str, v: &serde_json::Value) -> Result<String, crate::Error> {
    use serde_json::Value;
    let wrong = || {
        crate::Error::InvalidConfig(format!(
            "headers.{name}: expected a string or {{\"secret\": NAME}}"
        ))
    };
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Object(o) => {
            let secret = o.get("secret").and_then(Value::as_str).ok_or_else(wrong)?;
            let prefix = o.get("prefix").and_then(Value::as_str).unwrap_or("");
            let value = crate::host::secret(secret).ok_or_else(|| {
                crate::Error::InvalidConfig(format!(
                    "headers.{name}: the secret {secret:?} is not granted to this step"
                ))
            })?;
            Ok(format!("{prefix}{value}"))
        }
        _ => Err(wrong()),
    }
}

/// Why a request failed: the `wasi:http` error code name (`http-request-denied`,
/// `destination-ip-prohibited`, `connection-refused`, `http-response-body-size`, ...), or
/// `invalid-url`, `too-many-redirects`, `unsupported`; and details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError {
    /// The error code, in the WIT's kebab-case.
    pub code: String,
    /// Details (may be empty).
    pub message: String,
}

impl HttpError {
    /// An error with `code` and `message`.
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.to_string(),
            message: message.into(),
        }
    }

    /// Whether the host's egress checks refused the request.
    pub fn is_refused(&self) -> bool {
        self.code == "http-request-denied" || self.code == "destination-ip-prohibited"
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.message.is_empty() {
            write!(f, "{}", self.code)
        } else {
            write!(f, "{}: {}", self.code, self.message)
        }
    }
}

impl std::error::Error for HttpError {}

/// A received response, its body read whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Header fields in order (names lower case).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// The URL that answered (after redirects).
    pub url: String,
}

impl Response {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// A request being built.
#[derive(Debug, Clone)]
pub struct Request {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    redirects: u8,
}

impl Request {
    /// A request with `method` (`GET`, `POST`, ...) to `url` (`http://` or `https://`).
    pub fn new(method: &str, url: &str) -> Self {
        Self {
            method: method.to_ascii_uppercase(),
            url: url.to_string(),
            headers: Vec::new(),
            body: None,
            redirects: 0,
        }
    }

    /// A `GET` of `url`.
    pub fn get(url: &str) -> Self {
        Self::new("GET", url)
    }

    /// A `POST` to `url`.
    pub fn post(url: &str) -> Self {
        Self::new("POST", url)
    }

    /// Adds a header field.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// Follows up to `max` redirects (301, 302, 303, 307, 308; relative `Location`s too), each
    /// a new request that the host checks again; 301-303 turn into a `GET` without body.
    pub fn follow_redirects(mut self, max: u8) -> Self {
        self.redirects = max;
        self
    }

    /// Sends the request and reads the whole response.
    pub fn send(self) -> Result<Response, HttpError> {
        let mut req = self;
        let mut hops = 0u8;
        loop {
            let resp = imp::send(&req.method, &req.url, &req.headers, req.body.as_deref())?;
            let redirect = matches!(resp.status, 301 | 302 | 303 | 307 | 308);
            if !redirect || req.redirects == 0 {
                return Ok(resp);
            }
            let Some(location) = resp.header("location") else {
                return Ok(resp);
            };
            if hops >= req.redirects {
                return Err(HttpError::new(
                    "too-many-redirects",
                    format!("more than {} redirects from {}", req.redirects, req.url),
                ));
            }
            hops += 1;
            let next = resolve(&req.url, location).ok_or_else(|| {
                HttpError::new("invalid-url", format!("bad Location {location:?}"))
            })?;
            if matches!(resp.status, 301..=303) && req.method != "HEAD" {
                req.method = "GET".into();
                req.body = None;
                req.headers
                    .retain(|(k, _)| !k.eq_ignore_ascii_case("content-type"));
            }
            req.url = next;
        }
    }
}

/// The parts of an absolute `http(s)` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url<'a> {
    /// `http` or `https`.
    pub scheme: &'a str,
    /// `host` or `host:port`.
    pub authority: &'a str,
    /// Path and query, starting with `/`.
    pub path_and_query: String,
}

/// Splits an absolute `http://` or `https://` URL (the fragment dropped).
pub fn parse_url(url: &str) -> Option<Url<'_>> {
    let (scheme, rest) = url.split_once("://")?;
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return None;
    }
    let rest = rest.split('#').next().unwrap_or("");
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let path_and_query = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    Some(Url {
        scheme,
        authority,
        path_and_query,
    })
}

/// `location` (absolute, scheme-relative `//host/..`, absolute-path `/..` or relative `..`)
/// resolved against the absolute URL `base`.
pub fn resolve(base: &str, location: &str) -> Option<String> {
    let location = location.trim();
    if parse_url(location).is_some() {
        return Some(location.to_string());
    }
    let b = parse_url(base)?;
    if let Some(rest) = location.strip_prefix("//") {
        return Some(format!("{}://{rest}", b.scheme));
    }
    if location.starts_with('/') {
        return Some(format!("{}://{}{location}", b.scheme, b.authority));
    }
    if location.starts_with('?') {
        let path = b.path_and_query.split('?').next().unwrap_or("/");
        return Some(format!("{}://{}{path}{location}", b.scheme, b.authority));
    }
    let path = b.path_and_query.split('?').next().unwrap_or("/");
    let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
    Some(format!("{}://{}{dir}{location}", b.scheme, b.authority))
}

/// The kebab-case name of a variant printed by `Debug` as `ErrorCode::DnsError(..)`.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
fn kebab(debug: &str) -> (String, String) {
    let debug = debug.strip_prefix("ErrorCode::").unwrap_or(debug);
    let (name, detail) = match debug.find(['(', ' ', '{']) {
        Some(i) => (&debug[..i], debug[i..].trim()),
        None => (debug, ""),
    };
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    (out, detail.to_string())
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use super::{HttpError, Response, kebab, parse_url};
    use wasip2::http::outgoing_handler;
    use wasip2::http::types::{
        ErrorCode, Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, Scheme,
    };
    use wasip2::io::streams::StreamError;

    fn code(e: &ErrorCode) -> HttpError {
        let (code, detail) = kebab(&format!("{e:?}"));
        HttpError {
            code,
            message: detail,
        }
    }

    fn stream_error(e: StreamError, what: &str) -> HttpError {
        match e {
            StreamError::Closed => {
                HttpError::new("connection-terminated", format!("{what}: stream closed"))
            }
            StreamError::LastOperationFailed(io) => match wasip2::http::types::http_error_code(&io)
            {
                Some(c) => code(&c),
                None => {
                    let text = io.to_debug_string();
                    // The host's body errors arrive as text only; name the cap when it is one.
                    let c = if text.contains("response body size") {
                        "http-response-body-size"
                    } else if text.contains("request body size") {
                        "http-request-body-size"
                    } else {
                        "internal-error"
                    };
                    HttpError::new(c, format!("{what}: {text}"))
                }
            },
        }
    }

    pub fn send(
        method: &str,
        url: &str,
        headers: &[(String, String)],
        body: Option<&[u8]>,
    ) -> Result<Response, HttpError> {
        let u = parse_url(url).ok_or_else(|| HttpError::new("invalid-url", format!("{url:?}")))?;
        let mut fields: Vec<(String, Vec<u8>)> = headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.as_bytes().to_vec()))
            .collect();
        if let Some(b) = body
            && !fields.iter().any(|(k, _)| k == "content-length")
        {
            fields.push(("content-length".into(), b.len().to_string().into_bytes()));
        }
        let fields = Fields::from_list(&fields)
            .map_err(|e| HttpError::new("invalid-header", format!("{e:?}")))?;
        let req = OutgoingRequest::new(fields);
        let method = match method {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            "PATCH" => Method::Patch,
            "OPTIONS" => Method::Options,
            other => Method::Other(other.to_string()),
        };
        let bad = |what: &str| HttpError::new("invalid-url", format!("{what} of {url:?}"));
        req.set_method(&method)
            .map_err(|()| HttpError::new("http-request-method-invalid", method_name(&method)))?;
        let scheme = if u.scheme.eq_ignore_ascii_case("https") {
            Scheme::Https
        } else {
            Scheme::Http
        };
        req.set_scheme(Some(&scheme)).map_err(|()| bad("scheme"))?;
        req.set_authority(Some(u.authority))
            .map_err(|()| bad("authority"))?;
        req.set_path_with_query(Some(&u.path_and_query))
            .map_err(|()| bad("path"))?;
        let out_body = req
            .body()
            .map_err(|()| HttpError::new("internal-error", "request body taken"))?;
        let future = outgoing_handler::handle(req, None).map_err(|e| code(&e))?;
        {
            let stream = out_body
                .write()
                .map_err(|()| HttpError::new("internal-error", "body stream taken"))?;
            for chunk in body.unwrap_or_default().chunks(4096) {
                if let Err(e) = stream.blocking_write_and_flush(chunk) {
                    drop(stream);
                    // The response future knows best why (e.g. the body cap); fall back to the write error.
                    return Err(wait(&future)
                        .err()
                        .unwrap_or_else(|| stream_error(e, "writing the body")));
                }
            }
        }
        OutgoingBody::finish(out_body, None).map_err(|e| code(&e))?;
        let resp = wait(&future)?;
        let status = resp.status();
        let headers = resp
            .headers()
            .entries()
            .into_iter()
            .map(|(k, v)| {
                (
                    k.to_ascii_lowercase(),
                    String::from_utf8_lossy(&v).into_owned(),
                )
            })
            .collect();
        let incoming = resp
            .consume()
            .map_err(|()| HttpError::new("internal-error", "response body taken"))?;
        let mut data = Vec::new();
        {
            let stream = incoming
                .stream()
                .map_err(|()| HttpError::new("internal-error", "body stream taken"))?;
            loop {
                match stream.blocking_read(64 * 1024) {
                    Ok(chunk) => data.extend_from_slice(&chunk),
                    Err(StreamError::Closed) => break,
                    Err(e) => return Err(stream_error(e, "reading the body")),
                }
            }
        }
        drop(IncomingBody::finish(incoming));
        Ok(Response {
            status,
            headers,
            body: data,
            url: url.to_string(),
        })
    }

    fn method_name(m: &Method) -> String {
        format!("{m:?}")
    }

    fn wait(
        future: &wasip2::http::types::FutureIncomingResponse,
    ) -> Result<wasip2::http::types::IncomingResponse, HttpError> {
        loop {
            match future.get() {
                Some(Ok(Ok(resp))) => return Ok(resp),
                Some(Ok(Err(e))) => return Err(code(&e)),
                Some(Err(())) => {
                    return Err(HttpError::new("internal-error", "response already taken"));
                }
                None => future.subscribe().block(),
            }
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use super::{HttpError, Response};

    /// Natively, requests go to the current test's [`crate::testing::FakeHttp`]; without
    /// one, they fail as unsupported.
    pub fn send(
        method: &str,
        url: &str,
        headers: &[(String, String)],
        body: Option<&[u8]>,
    ) -> Result<Response, HttpError> {
        crate::testing::send_http(method, url, headers, body).unwrap_or_else(|| {
            Err(HttpError::new(
                "unsupported",
                format!("outbound HTTP ({url}) needs the wasm32 component (wasi:http)"),
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn urls_split_and_resolve() {
        let u = parse_url("http://127.0.0.1:8080/a/b?x=1#frag").unwrap();
        assert_eq!(
            (u.scheme, u.authority, u.path_and_query.as_str()),
            ("http", "127.0.0.1:8080", "/a/b?x=1")
        );
        assert_eq!(parse_url("https://h").unwrap().path_and_query, "/");
        assert!(parse_url("ftp://h/").is_none());
        assert!(parse_url("http://user@h/").is_none());
        let base = "http://h:1/api/items?page=1";
        assert_eq!(resolve(base, "/next").unwrap(), "http://h:1/next");
        assert_eq!(
            resolve(base, "?page=2").unwrap(),
            "http://h:1/api/items?page=2"
        );
        assert_eq!(resolve(base, "more").unwrap(), "http://h:1/api/more");
        assert_eq!(resolve(base, "//other/x").unwrap(), "http://other/x");
        assert_eq!(resolve(base, "https://o/y").unwrap(), "https://o/y");
    }

    #[test]
    fn error_codes_are_kebab_case() {
        assert_eq!(
            kebab("ErrorCode::HttpRequestDenied").0,
            "http-request-denied"
        );
        assert_eq!(
            kebab("ErrorCode::DestinationIpProhibited").0,
            "destination-ip-prohibited"
        );
        let (c, d) = kebab("ErrorCode::HttpResponseBodySize(Some(5))");
        assert_eq!(
            (c.as_str(), d.as_str()),
            ("http-response-body-size", "(Some(5))")
        );
    }

    #[test]
    fn native_builds_refuse() {
        let e = Request::get("http://example.com/").send().unwrap_err();
        assert_eq!(e.code, "unsupported");
    }

    #[test]
    fn a_test_host_answers_with_its_fake_server() {
        use crate::testing::{FakeHttp, TestHost};
        let fake = FakeHttp::new().route("GET", "http://h/a", 200, "[1]");
        let mut host = TestHost::new().with_http(fake);
        let (a, b) = host.run(|| {
            let a = Request::get("http://h/a").header("x", "1").send();
            let b = Request::post("http://h/b").body("{}").send();
            (a, b)
        });
        assert_eq!((a.unwrap().body, b.unwrap().status), (b"[1]".to_vec(), 404));
        let calls = &host.http.as_ref().unwrap().calls;
        assert_eq!(calls[0].headers, [("x".to_string(), "1".to_string())]);
        assert_eq!(
            (calls[1].method.as_str(), calls[1].body.as_deref()),
            ("POST", Some(&b"{}"[..]))
        );
    }
}
