//! Outbound HTTP for plugins (`wasi:http`), with the step's egress grant checked on every
//! request: the host must be in the step's `allow_hosts`; the name is resolved here and every
//! address it resolves to must be public (loopback, private, link-local, CGNAT, multicast,
//! unspecified and reserved addresses are refused unless the operator allowed that host or
//! address with `--egress-allow-private`); the connection then goes to a checked address, never to
//! the name again. wasi:http does not follow redirects: a guest that does sends a new request,
//! which is checked again. Request and response bodies are capped.
//!
//! Refusals reach the guest as `http-request-denied` (allow-list) or
//! `destination-ip-prohibited` (address), and are written to the step's run log (`warn`).
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::uri::Scheme;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use tokio::net::TcpStream;
use wasmtime_wasi_http::p2::bindings::http::types::ErrorCode;
use wasmtime_wasi_http::{RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

use super::host::{HostState, LogLevel, LogLine, LogSink};

/// Largest request or response body a step may send or receive, in bytes.
pub const MAX_HTTP_BODY_BYTES: u64 = 16 << 20;
/// Refusal lines one instance writes to the run log; later ones are only returned to the guest.
const MAX_LOGGED_REFUSALS: u32 = 64;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
const FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(60);
const BETWEEN_BYTES_TIMEOUT: Duration = Duration::from_secs(60);

/// One `host[:port]` entry of an allow-list: a name (a leading `*.` matches any subdomain), an
/// IPv4 address or a bracketed IPv6 address; no port = any port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    host: String,
    port: Option<u16>,
}

impl HostPattern {
    /// Parses `host`, `*.host`, `1.2.3.4`, `[::1]`, each optionally with `:port`.
    pub fn parse(entry: &str) -> Option<Self> {
        let entry = entry.trim();
        let (host, port) = if let Some(rest) = entry.strip_prefix('[') {
            let (addr, after) = rest.split_once(']')?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':')?.parse().ok()?),
            };
            (addr.parse::<Ipv6Addr>().ok()?.to_string(), port)
        } else {
            match entry.rsplit_once(':') {
                Some((h, p)) => (h.to_ascii_lowercase(), Some(p.parse().ok()?)),
                None => (entry.to_ascii_lowercase(), None),
            }
        };
        if host.is_empty() || port == Some(0) {
            return None;
        }
        Some(Self { host, port })
    }

    /// Whether `host` (lower case; an IPv6 address without brackets) and `port` match.
    fn matches(&self, host: &str, port: u16) -> bool {
        if self.port.is_some_and(|p| p != port) {
            return false;
        }
        match self.host.strip_prefix("*.") {
            Some(domain) => host.len() > domain.len() + 1 && host.ends_with(domain) && {
                host.as_bytes()[host.len() - domain.len() - 1] == b'.'
            },
            None => self.host == host,
        }
    }
}

/// Parses a list of `host[:port]` entries, skipping (and reporting) invalid ones.
pub fn parse_patterns(entries: &[String]) -> (Vec<HostPattern>, Vec<String>) {
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    for e in entries.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
        match HostPattern::parse(e) {
            Some(p) => ok.push(p),
            None => bad.push(e.to_string()),
        }
    }
    (ok, bad)
}

/// What kind of non-public address `ip` is, if it is one.
pub fn non_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => non_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return non_public_v4(v4);
            }
            let s = v6.segments();
            if v6.is_loopback() {
                Some("loopback")
            } else if v6.is_unspecified() {
                Some("unspecified")
            } else if s[0] & 0xfe00 == 0xfc00 || s[0] & 0xffc0 == 0xfec0 {
                Some("private")
            } else if s[0] & 0xffc0 == 0xfe80 {
                Some("link-local")
            } else if s[0] & 0xff00 == 0xff00 {
                Some("multicast")
            } else if s[0..6] == [0, 0, 0, 0, 0, 0] || (s[0] == 0x64 && s[1] == 0xff9b) {
                // IPv4-compatible (::a.b.c.d) and NAT64 (64:ff9b::a.b.c.d): judge the IPv4 inside.
                let v4 = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
                non_public_v4(v4)
            } else if s[0] == 0x2002 {
                // 6to4: 2002:AABB:CCDD::/48 carries the IPv4 address AA.BB.CC.DD.
                let v4 = Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8);
                non_public_v4(v4)
            } else {
                None
            }
        }
    }
}

fn non_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() {
        Some("private")
    } else if ip.is_link_local() {
        Some("link-local")
    } else if o[0] == 0 {
        Some("unspecified")
    } else if ip.is_broadcast() {
        Some("broadcast")
    } else if o[0] == 100 && o[1] & 0xc0 == 64 {
        Some("shared (CGNAT)")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if o[0] >= 240 || (o[0] == 192 && o[1] == 0 && o[2] == 0) || (o[0] == 198 && o[1] & 0xfe == 18) {
        Some("reserved")
    } else {
        None
    }
}

/// The operator's egress settings, shared by every step of an engine.
#[derive(Debug, Clone, Default)]
pub struct EgressSettings {
    /// `host[:port]` entries (names or addresses) whose non-public addresses steps may reach
    /// (`--egress-allow-private`); a step must still list the host in its `allow_hosts`.
    pub allow_private: Vec<String>,
}

/// A step's `wasi:http` state: the context and the egress hooks.
pub struct HttpState {
    ctx: WasiHttpCtx,
    hooks: Egress,
}

impl HttpState {
    /// The state of step `step` (log lines to `logs`) granted `allow_hosts`, under the
    /// operator's `settings`.
    pub fn new(step: Arc<str>, logs: LogSink, allow_hosts: &[String], settings: &EgressSettings) -> Self {
        // The pipeline was validated; an entry that still does not parse matches nothing.
        let (allow, _) = parse_patterns(allow_hosts);
        let (private, _) = parse_patterns(&settings.allow_private);
        Self {
            ctx: WasiHttpCtx::new(),
            hooks: Egress {
                grant: Arc::new(Grant { allow, private }),
                log: Refusals { step, logs, logged: Arc::new(AtomicU32::new(0)) },
            },
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http.ctx, table: &mut self.table, hooks: &mut self.http.hooks }
    }
}

/// The hosts a step may reach.
#[derive(Debug)]
struct Grant {
    allow: Vec<HostPattern>,
    private: Vec<HostPattern>,
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
        (self.logs)(LogLine { step: Some(self.step.clone()), level: LogLevel::Warn, message, at: SystemTime::now() });
    }
}

struct Egress {
    grant: Arc<Grant>,
    log: Refusals,
}

type IoFuture = Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>;
type SendFuture =
    Box<dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), wasmtime_wasi_http::Error>> + Send>;

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
    let authority = uri.authority().ok_or(wasmtime_wasi_http::Error::HttpRequestUriInvalid)?;
    let host = authority.host().trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
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
        let why = if grant.allow.is_empty() { " (it allows none)" } else { "" };
        log.warn(format!(
            "egress refused: host \"{}\" (port {}) is not in allow_hosts of step \"{}\"{why}",
            t.host, t.port, log.step
        ));
        return Err(E::HttpRequestDenied);
    }
    let operator_named = grant.private.iter().any(|p| p.matches(&t.host, t.port));
    let connect_timeout = options.and_then(|o| o.connect_timeout).unwrap_or(CONNECT_TIMEOUT);
    let addrs = resolve(&t, connect_timeout, log).await?;
    for addr in &addrs {
        let Some(kind) = non_public(addr.ip()) else { continue };
        let ip = addr.ip().to_canonical();
        let by_address = grant.private.iter().any(|p| p.matches(&ip.to_string(), t.port));
        if operator_named || by_address {
            continue;
        }
        let named = if ip.to_string() == t.host { String::new() } else { format!(" ({})", t.host) };
        let article = if kind.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" };
        log.warn(format!(
            "egress refused: {ip}{named} is {article} {kind} address; the operator can allow it with \
             --egress-allow-private {}:{}",
            host_for_flag(&t.host),
            t.port
        ));
        return Err(E::DestinationIpProhibited);
    }
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
    let io: Box<dyn Stream> = if t.tls { Box::new(tls(stream, &t.host).await?) } else { Box::new(stream) };
    let (mut sender, conn) = tokio::time::timeout(
        connect_timeout,
        hyper::client::conn::http1::Builder::new().handshake(wasmtime_wasi_http::io::TokioIo::new(io)),
    )
    .await
    .map_err(|_| E::ConnectionTimeout)??;
    // The request line carries only the path: the authority went to the Host header.
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str()).to_string();
    *request.uri_mut() = http::Uri::builder().path_and_query(path).build().map_err(|_| E::HttpRequestUriInvalid)?;
    let (parts, body) = request.into_parts();
    let body = CappedRequest { inner: body, sent: 0, log: log.clone(), host: t.host.clone() };
    let request = http::Request::from_parts(parts, body);
    // Drives the connection; aborted when dropped (the guest let go of the response).
    let conn = wasmtime_wasi::runtime::spawn(conn);
    let first_byte = options.and_then(|o| o.first_byte_timeout).unwrap_or(FIRST_BYTE_TIMEOUT);
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
    let between = options.and_then(|o| o.between_bytes_timeout).unwrap_or(BETWEEN_BYTES_TIMEOUT);
    let host = t.host.clone();
    let response = response.map(|incoming| {
        CappedResponse {
            inner: incoming,
            read: 0,
            between: between.max(Duration::from_millis(1)),
            timer: Box::pin(tokio::time::sleep(between.max(Duration::from_millis(1)))),
            log: log.clone(),
            host,
        }
        .boxed_unsync()
    });
    let io: IoFuture = Box::new(async move {
        match conn.await {
            Ok(()) => Ok(()),
            Err(e) if e.is_timeout() => Err(E::HttpResponseTimeout),
            Err(e) => Err(E::Hyper(e)),
        }
    });
    Ok((response, io))
}

/// How an operator writes `host` in `--egress-allow-private`.
fn host_for_flag(host: &str) -> String {
    if host.contains(':') { format!("[{host}]") } else { host.to_string() }
}

fn content_length(headers: &http::HeaderMap) -> Option<u64> {
    headers.get(http::header::CONTENT_LENGTH)?.to_str().ok()?.trim().parse().ok()
}

/// Resolves the target's name (or takes its address literal).
async fn resolve(t: &Target, timeout: Duration, log: &Refusals) -> Result<Vec<SocketAddr>, wasmtime_wasi_http::Error> {
    use wasmtime_wasi_http::Error as E;
    if let Ok(ip) = t.host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, t.port)]);
    }
    let looked = tokio::time::timeout(timeout, tokio::net::lookup_host((t.host.as_str(), t.port))).await;
    let addrs: Vec<SocketAddr> = match looked {
        Err(_) => return Err(E::DnsTimeout),
        Ok(Err(e)) => {
            log.warn(format!("egress: cannot resolve \"{}\": {e}", t.host));
            return Err(E::DnsError { rcode: Some(e.to_string()), info_code: None });
        }
        Ok(Ok(a)) => a.collect(),
    };
    if addrs.is_empty() {
        return Err(E::DestinationNotFound);
    }
    Ok(addrs)
}

async fn connect(addrs: &[SocketAddr], timeout: Duration) -> Result<TcpStream, wasmtime_wasi_http::Error> {
    use wasmtime_wasi_http::Error as E;
    let mut last = E::DestinationNotFound;
    for addr in addrs {
        match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => return Ok(s),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => last = E::ConnectionRefused,
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
    let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.into() };
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| E::InternalError(Some(e.to_string())))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = match host.parse::<IpAddr>() {
        Ok(ip) => rustls::pki_types::ServerName::IpAddress(ip.into()),
        Err(_) => rustls::pki_types::ServerName::try_from(host.to_string()).map_err(|_| E::HttpRequestUriInvalid)?,
    };
    tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, stream).await.map_err(E::Tls)
}

/// The guest's request body, failing past [`MAX_HTTP_BODY_BYTES`].
struct CappedRequest {
    inner: WasiBody,
    sent: u64,
    log: Refusals,
    host: String,
}

impl Body for CappedRequest {
    type Data = Bytes;
    type Error = ErrorCode;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, ErrorCode>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.sent += data.len() as u64;
                    if this.sent > MAX_HTTP_BODY_BYTES {
                        this.log.warn(format!(
                            "egress: request body to \"{}\" exceeds the cap of {MAX_HTTP_BODY_BYTES} bytes",
                            this.host
                        ));
                        return Poll::Ready(Some(Err(ErrorCode::HttpRequestBodySize(Some(this.sent)))));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(ErrorCode::InternalError(Some(e.to_string()))))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The response body, failing past [`MAX_HTTP_BODY_BYTES`] or when the server goes quiet.
struct CappedResponse {
    inner: hyper::body::Incoming,
    read: u64,
    between: Duration,
    timer: Pin<Box<tokio::time::Sleep>>,
    log: Refusals,
    host: String,
}

impl Body for CappedResponse {
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, wasmtime_wasi_http::Error>>> {
        use wasmtime_wasi_http::Error as E;
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.read += data.len() as u64;
                    if this.read > MAX_HTTP_BODY_BYTES {
                        this.log.warn(format!(
                            "egress: response body from \"{}\" exceeds the cap of {MAX_HTTP_BODY_BYTES} bytes",
                            this.host
                        ));
                        return Poll::Ready(Some(Err(E::HttpResponseBodySize(Some(this.read)))));
                    }
                }
                let deadline = tokio::time::Instant::now() + this.between;
                this.timer.as_mut().reset(deadline);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) if e.is_timeout() => Poll::Ready(Some(Err(E::HttpResponseTimeout))),
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(E::Hyper(e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match this.timer.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(E::ConnectionReadTimeout))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn patterns_match_hosts_and_ports() {
        let p = HostPattern::parse("*.example.com").unwrap();
        assert!(p.matches("api.example.com", 443));
        assert!(p.matches("a.b.example.com", 80));
        assert!(!p.matches("example.com", 443));
        assert!(!p.matches("badexample.com", 443));
        let p = HostPattern::parse("API.example.com:8080").unwrap();
        assert!(p.matches("api.example.com", 8080));
        assert!(!p.matches("api.example.com", 80));
        let p = HostPattern::parse("[::1]:80").unwrap();
        assert!(p.matches("::1", 80));
        assert!(HostPattern::parse("a:0").is_none());
        assert!(HostPattern::parse("").is_none());
    }

    #[test]
    fn non_public_addresses_are_named() {
        let kind = |s: &str| non_public(s.parse().unwrap());
        assert_eq!(kind("127.0.0.1"), Some("loopback"));
        assert_eq!(kind("10.1.2.3"), Some("private"));
        assert_eq!(kind("172.16.0.1"), Some("private"));
        assert_eq!(kind("192.168.1.1"), Some("private"));
        assert_eq!(kind("169.254.169.254"), Some("link-local"));
        assert_eq!(kind("100.64.0.1"), Some("shared (CGNAT)"));
        assert_eq!(kind("0.0.0.0"), Some("unspecified"));
        assert_eq!(kind("255.255.255.255"), Some("broadcast"));
        assert_eq!(kind("::1"), Some("loopback"));
        assert_eq!(kind("fd00::1"), Some("private"));
        assert_eq!(kind("fe80::1"), Some("link-local"));
        assert_eq!(kind("::ffff:127.0.0.1"), Some("loopback"));
        assert_eq!(kind("::ffff:169.254.169.254"), Some("link-local"));
        assert_eq!(kind("64:ff9b::a00:1"), Some("private"));
        assert_eq!(kind("2002:7f00:1::"), Some("loopback"));
        assert_eq!(kind("93.184.216.34"), None);
        assert_eq!(kind("2606:4700::1"), None);
    }
}
