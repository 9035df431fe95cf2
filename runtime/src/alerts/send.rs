//! One POST to a channel's URL under the egress policy: the host is resolved and checked once,
//! the client connects to the checked addresses only, and redirects are not followed.
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::egress::{Denied, Policy};

/// How long one delivery attempt may take.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// The largest part of a receiver's answer kept in the history.
const KEEP: usize = 2048;

/// What a POST got.
#[derive(Debug, Clone)]
pub struct Sent {
    /// The receiver's status, if it answered.
    pub status: Option<u16>,
    /// The start of its answer.
    pub response: Option<String>,
    /// Why it failed (no answer, or an answer that is not 2xx).
    pub error: Option<String>,
    /// How long it took.
    pub took: Duration,
}

impl Sent {
    /// The receiver took it (answering `status`, if HTTP, with `response`).
    pub fn taken(status: Option<u16>, response: String, took: Duration) -> Self {
        Self {
            status,
            response: Some(response),
            error: None,
            took,
        }
    }

    /// It was not taken, for `error` (the receiver's `status` and `response` if it answered).
    pub fn failed(
        status: Option<u16>,
        response: Option<String>,
        error: String,
        took: Duration,
    ) -> Self {
        Self {
            status,
            response,
            error: Some(error),
            took,
        }
    }

    /// Whether the receiver took it (2xx).
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }
}

/// Why `host`:`port` may not be reached under `egress`; `None` when it may (a name that does
/// not resolve now is not refused here: delivery tries again).
pub async fn refused(egress: &Policy, host: &str, port: u16) -> Option<String> {
    match egress.resolve(host, port, Duration::from_secs(5)).await {
        Err(Denied::Refused(why)) => Some(why),
        _ => None,
    }
}

/// The addresses of `host`:`port` that `egress` lets a delivery connect to, or why none.
pub async fn addresses(egress: &Policy, host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
    egress
        .resolve(host, port, Duration::from_secs(5))
        .await
        .map_err(|e| match e {
            Denied::Refused(why) => format!("refused by the egress policy: {why}"),
            Denied::Timeout => format!("{host} did not resolve in time"),
            Denied::Lookup(e) => format!("{host} does not resolve: {e}"),
            Denied::NoAddress => format!("{host} resolves to no address"),
        })
}

/// POSTs `body` with `headers` to `url`.
pub async fn post(egress: &Policy, url: &str, headers: &[(String, String)], body: Vec<u8>) -> Sent {
    let started = Instant::now();
    let result = attempt(egress, url, headers, body).await;
    let took = started.elapsed();
    match result {
        Ok((status, text)) if (200..300).contains(&status) => Sent::taken(Some(status), text, took),
        Ok((status, text)) => Sent::failed(
            Some(status),
            Some(text),
            format!("the receiver answered {status}"),
            took,
        ),
        Err(e) => Sent::failed(None, None, e, took),
    }
}

async fn attempt(
    egress: &Policy,
    url: &str,
    headers: &[(String, String)],
    body: Vec<u8>,
) -> Result<(u16, String), String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("bad URL: {e}"))?;
    let host = parsed.host_str().ok_or("the URL has no host")?;
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let port = parsed
        .port_or_known_default()
        .ok_or("the URL has no port")?;
    let addrs = addresses(egress, bare, port).await?;
    let mut client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(TIMEOUT)
        .no_proxy();
    if bare.parse::<std::net::IpAddr>().is_err() {
        client = client.resolve_to_addrs(bare, &addrs);
    }
    let client = client.build().map_err(|e| format!("no HTTP client: {e}"))?;
    let mut request = client.post(parsed).body(body);
    for (k, v) in headers {
        request = request.header(k, v);
    }
    let response = request.send().await.map_err(|e| format!("{e}"))?;
    let status = response.status().as_u16();
    let bytes = response.bytes().await.unwrap_or_default();
    let end = bytes.len().min(KEEP);
    Ok((status, String::from_utf8_lossy(&bytes[..end]).into_owned()))
}
