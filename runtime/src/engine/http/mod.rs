//! Outbound HTTP for plugins (`wasi:http`), with the step's egress grant checked on every
//! request: the host must be in the step's `allow_hosts`, and the [`crate::egress`] policy
//! resolves the name and checks every address; the connection then goes to a checked address,
//! never to the name again. wasi:http does not follow redirects: a guest that does sends a new
//! request, which is checked again. Request and response bodies are capped.
//!
//! Refusals reach the guest as `http-request-denied` (allow-list) or
//! `destination-ip-prohibited` (address), and are written to the step's run log (`warn`).
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime};

use http::uri::Scheme;
use http_body_util::BodyExt;
use tokio::net::TcpStream;
use wasmtime_wasi_http::{
    RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView,
};

use super::host::{HostState, LogLevel, LogLine, LogSink};
use crate::egress::{Denied, HostPattern, Policy, parse_patterns};

mod body;

use body::{CappedRequest, CappedResponse};

/// Largest request or response body a step may send or receive, in bytes.
pub const MAX_HTTP_BODY_BYTES: u64 = 16 << 20;
/// Refusal lines one instance writes to the run log; later ones are only returned to the guest.
const MAX_LOGGED_REFUSALS: u32 = 64;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
const FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(60);
const BETWEEN_BYTES_TIMEOUT: Duration = Duration::from_secs(60);

/// A step's `wasi:http` state: the context and the egress hooks.
pub struct HttpState {
    ctx: WasiHttpCtx,
    hooks: Egress,
}

impl HttpState {
    /// The state of step `step` (log lines to `logs`) granted `allow_hosts`, under the
    /// process's egress `policy`.
    pub fn new(step: Arc<str>, logs: LogSink, allow_hosts: &[String], policy: Policy) -> Self {
        // The pipeline was validated; an entry that still does not parse matches nothing.
        let (allow, _) = parse_patterns(allow_hosts);
        Self {
            ctx: WasiHttpCtx::new(),
            hooks: Egress {
                grant: Arc::new(Grant { allow, policy }),
                log: Refusals {
                    step,
                    logs,
                    logged: Arc::new(AtomicU32::new(0)),
                },
            },
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http.ctx,
            table: &mut self.table,
            hooks: &mut self.http.hooks,
        }
    }
}

/// The hosts a step may reach.
#[derive(Debug)]
struct Grant {
    allow: Vec<HostPattern>,
    /// What every address must pass.
    policy: Policy,
}

/// Writes egress refusals to the step's run log, a bounded number of times.
#[derive(Clone)]
struct Refusals {
    step: Arc<str>,
    logs: LogSink,
    logged: Arc<AtomicU32>,
}

impl Refusals {
    fn warn(&self, message: String) {
        if self.logged.fetch_add(1, Ordering::Relaxed) >= MAX_LOGGED_REFUSALS {
            return;
        }
        (self.logs)(LogLine {
            step: Some(self.step.clone()),
            level: LogLevel::Warn,
            message,
            at: SystemTime::now(),
        });
    }
}

struct Egress {
    grant: Arc<Grant>,
    log: Refusals,
}

type IoFuture = Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>;
type SendFuture = Box<
    dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), wasmtime_wasi_http::Error>>
        + Send,
>;

impl WasiHttpHooks for Egress {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: IoFuture,
    ) -> SendFuture {
        drop(fut);
        let grant = self.grant.clone();
        let log = self.log.clone();
        Box::new(async move { send(request, options, &grant, &log).await })
    }
}

/// The checked request's destination.
struct Target {
    host: String,
    port: u16,
    tls: bool,
}

fn target(uri: &http::Uri) -> Result<Target, wasmtime_wasi_http::Error> {
    let tls = match uri.scheme() {
        Some(s) if *s == Scheme::HTTPS => true,
        Some(s) if *s == Scheme::HTTP => false,
        _ => return Err(wasmtime_wasi_http::Error::HttpProtocolError),
    };
    let authority = uri
        .authority()
        .ok_or(wasmtime_wasi_http::Error::HttpRequestUriInvalid)?;
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    let host = host.trim_end_matches('.').to_string();
    if host.is_empty() {
        return Err(wasmtime_wasi_http::Error::HttpRequestUriInvalid);
    }
    let port = authority.port_u16().unwrap_or(if tls { 443 } else { 80 });
    Ok(Target { host, port, tls })
}

/// Checks `request` against the grant, connects to a checked address and sends it.
async fn send(
    mut request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
    grant: &Grant,
    log: &Refusals,
) -> Result<(http::Response<WasiBody>, IoFuture), wasmtime_wasi_http::Error> {
    use wasmtime_wasi_http::Error as E;
    let t = target(request.uri())?;
    if !grant.allow.iter().any(|p| p.matches(&t.host, t.port)) {
        let why = if grant.allow.is_empty() {
            " (it allows none)"
        } else {
            ""
        };
        log.warn(format!(
            "egress refused: host \"{}\" (port {}) is not in allow_hosts of step \"{}\"{why}",
            t.host, t.port, log.step
        ));
        return Err(E::HttpRequestDenied);
    }
    let connect_timeout = options
        .and_then(|o| o.connect_timeout)
        .unwrap_or(CONNECT_TIMEOUT);
    let addrs = match grant.policy.resolve(&t.host, t.port, connect_timeout).await {
        Ok(addrs) => addrs,
        Err(Denied::Timeout) => return Err(E::DnsTimeout),
        Err(Denied::Lookup(e)) => {
            log.warn(format!("egress: cannot resolve \"{}\": {e}", t.host));
            return Err(E::DnsError {
                rcode: Some(e.to_string()),
                info_code: None,
            });
        }
        Err(Denied::NoAddress) => return Err(E::DestinationNotFound),
        Err(Denied::Refused(why)) => {
            log.warn(format!("egress refused: {why}"));
            return Err(E::DestinationIpProhibited);
        }
    };
    if let Some(declared) = content_length(request.headers())
        && declared > MAX_HTTP_BODY_BYTES
    {
        log.warn(format!(
            "egress refused: request body to \"{}\" of {declared} bytes exceeds the cap of {MAX_HTTP_BODY_BYTES} bytes",
            t.host
        ));
        return Err(E::HttpRequestBodySize(Some(declared)));
    }
    let stream = connect(&addrs, connect_timeout).await?;
    let io: Box<dyn Stream> = if t.tls {
        Box::new(tls(stream, &t.host).await?)
    } else {
        Box::new(stream)
    };
    let (mut sender, conn) = tokio::time::timeout(
        connect_timeout,
        hyper::client::conn::http1::Builder::new()
            .handshake(wasmtime_wasi_http::io::TokioIo::new(io)),
    )
    .await
    .map_err(|_| E::ConnectionTimeout)??;
    // The request line carries only the path: the authority went to the Host header.
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    *request.uri_mut() = http::Uri::builder()
        .path_and_query(path)
        .build()
        .map_err(|_| E::HttpRequestUriInvalid)?;
    let (parts, body) = request.into_parts();
    let body = CappedRequest::new(body, log.clone(), t.host.clone());
    let request = http::Request::from_parts(parts, body);
    // Drives the connection; aborted when dropped (the guest let go of the response).
    let conn = wasmtime_wasi::runtime::spawn(conn);
    let first_byte = options
        .and_then(|o| o.first_byte_timeout)
        .unwrap_or(FIRST_BYTE_TIMEOUT);
    let response = tokio::time::timeout(first_byte, sender.send_request(request))
        .await
        .map_err(|_| E::ConnectionReadTimeout)??;
    if let Some(declared) = content_length(response.headers())
        && declared > MAX_HTTP_BODY_BYTES
    {
        drop(conn);
        log.warn(format!(
            "egress: response body from \"{}\" of {declared} bytes exceeds the cap of {MAX_HTTP_BODY_BYTES} bytes",
            t.host
        ));
        return Err(E::HttpResponseBodySize(Some(declared)));
    }
    let between = options
        .and_then(|o| o.between_bytes_timeout)
        .unwrap_or(BETWEEN_BYTES_TIMEOUT);
    let host = t.host.clone();
    let response = response
        .map(|incoming| CappedResponse::new(incoming, between, log.clone(), host).boxed_unsync());
    let io: IoFuture = Box::new(async move {
        match conn.await {
            Ok(()) => Ok(()),
            Err(e) if e.is_timeout() => Err(E::HttpResponseTimeout),
            Err(e) => Err(E::Hyper(e)),
        }
    });
    Ok((response, io))
}

fn content_length(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

async fn connect(
    addrs: &[SocketAddr],
    timeout: Duration,
) -> Result<TcpStream, wasmtime_wasi_http::Error> {
    use wasmtime_wasi_http::Error as E;
    let mut last = E::DestinationNotFound;
    for addr in addrs {
        match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => return Ok(s),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                last = E::ConnectionRefused
            }
            Ok(Err(e)) => last = E::Connect(e),
            Err(_) => last = E::ConnectionTimeout,
        }
    }
    Err(last)
}

trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static> Stream for T {}

/// TLS over `stream` with the web PKI roots, SNI and certificate name = `host`.
async fn tls(
    stream: TcpStream,
    host: &str,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, wasmtime_wasi_http::Error> {
    use wasmtime_wasi_http::Error as E;
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.into(),
    };
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| E::InternalError(Some(e.to_string())))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = match host.parse::<IpAddr>() {
        Ok(ip) => rustls::pki_types::ServerName::IpAddress(ip.into()),
        Err(_) => rustls::pki_types::ServerName::try_from(host.to_string())
            .map_err(|_| E::HttpRequestUriInvalid)?,
    };
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, stream)
        .await
        .map_err(E::Tls)
}
