//! The HTTP server under the API: hyper on each accepted connection (over TLS when the server
//! has a certificate), with a deadline for a request's headers, a cap on the connections one
//! source address holds open, and a graceful stop. (The deadline for a request's body is the
//! API's: [`crate::api::Settings`].)
use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

/// How long open connections may finish their requests once the server is asked to stop.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// What one source address may hold, and how long a client may take to send its headers.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// A request's headers must arrive within this, or the connection is closed.
    pub header_timeout: Duration,
    /// Connections one source address may hold open at once; the next is answered 429 and
    /// closed.
    pub per_source: usize,
}

/// Serves `app` on `listener` until `stop` completes, then lets open connections finish (at
/// most [`STOP_GRACE`]). With `tls`, every connection must open with a TLS handshake (within
/// the header deadline); one that speaks plain HTTP is redirected or refused ([`plain_http`]).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    tls: Option<TlsAcceptor>,
    stop: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let open = OpenConnections::default();
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors, or a connection reset before it was accepted: the
                    // listener itself is fine; wait a moment rather than spin.
                    tracing::warn!("cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let Some(slot) = open.admit(peer.ip(), limits.per_source) else {
            tokio::spawn(refuse(stream, limits.per_source));
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = app
            .clone()
            .map_request(move |mut request: hyper::Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request.map(axum::body::Body::new)
            });
        let service = TowerToHyperService::new(service);
        let (builder, watcher, tls) = (builder.clone(), graceful.watcher(), tls.clone());
        tokio::spawn(async move {
            let _slot = slot;
            let Some(tls) = tls else {
                return serve_one(&builder, watcher, stream, service, peer).await;
            };
            match handshake(&tls, stream, limits.header_timeout).await {
                Ok(Some(stream)) => serve_one(&builder, watcher, stream, service, peer).await,
                Ok(None) => {}
                Err(e) => tracing::debug!("TLS from {peer}: {e}"),
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(STOP_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "connections still open {} s after the stop were dropped",
            STOP_GRACE.as_secs()
        );
    }
    Ok(())
}

/// Serves one connection's requests until it closes or the stop is over.
async fn serve_one<S, I>(
    builder: &hyper::server::conn::http1::Builder,
    watcher: Watcher,
    stream: I,
    service: S,
    peer: std::net::SocketAddr,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::HttpService<Incoming> + Send + 'static,
    S::Future: Send + 'static,
    S::ResBody: Send + 'static,
    <S::ResBody as hyper::body::Body>::Data: Send,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    if let Err(e) = watcher.watch(connection).await {
        tracing::debug!("connection from {peer}: {e}");
    }
}

/// The first byte of a TLS record that opens a handshake.
const TLS_HANDSHAKE: u8 = 0x16;

/// Completes the TLS handshake of a new connection within `deadline`; `None` when the client
/// spoke plain HTTP instead (it has had its answer).
async fn handshake(
    tls: &TlsAcceptor,
    stream: TcpStream,
    deadline: Duration,
) -> std::io::Result<Option<tokio_rustls::server::TlsStream<TcpStream>>> {
    let work = async {
        let mut first = [0u8; 1];
        if stream.peek(&mut first).await? == 0 {
            return Ok(None);
        }
        if first[0] != TLS_HANDSHAKE {
            plain_http(stream).await;
            return Ok(None);
        }
        tls.accept(stream).await.map(Some)
    };
    tokio::time::timeout(deadline, work)
        .await
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
}

/// Most of a plain-HTTP request head read before answering it.
const PLAIN_HEAD_MAX: usize = 8 << 10;

/// Answers a plain-HTTP request on the HTTPS port: a GET or HEAD is sent to the same place
/// over `https://` (308); any other request is refused (400), since its body already crossed
/// the network in the clear.
async fn plain_http(mut stream: TcpStream) {
    let mut head = Vec::new();
    let mut chunk = [0u8; 1024];
    while head.len() < PLAIN_HEAD_MAX && !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&chunk[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head);
    let mut words = head.lines().next().unwrap_or("").split(' ');
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or("/"));
    let host = head.lines().skip(1).find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("host")
            .then(|| value.trim().to_string())
    });
    // Nothing the client sent may break the answer's header lines.
    let clean = |t: &str| !t.chars().any(char::is_control);
    let message = "this server speaks HTTPS only: use https://";
    let answer = match host {
        Some(host)
            if matches!(method, "GET" | "HEAD")
                && target.starts_with('/')
                && clean(&host)
                && clean(target) =>
        {
            let location = format!("https://{host}{target}");
            format!(
                "HTTP/1.1 308 Permanent Redirect\r\nlocation: {location}\r\ncontent-type: text/plain\r\n\
                 content-length: {}\r\nconnection: close\r\n\r\n{message}\n",
                message.len() + 1
            )
        }
        _ => {
            let body = serde_json::json!({"error": "bad_request", "message": message}).to_string();
            format!(
                "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n\
                 content-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            )
        }
    };
    let _ = stream.write_all(answer.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// Answers a connection over its source's cap with a 429 that says why, and closes it.
async fn refuse(mut stream: TcpStream, cap: usize) {
    let body = serde_json::json!({
        "error": "too_many_requests",
        "message": format!("this address holds {cap} open connections already, the most one source may"),
    })
    .to_string();
    let answer = format!(
        "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let write = async {
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), write).await;
}

/// Open connections per source address.
#[derive(Default, Clone)]
struct OpenConnections(Arc<Mutex<HashMap<IpAddr, usize>>>);

/// One admitted connection; dropping it frees its place.
struct Slot {
    open: OpenConnections,
    ip: IpAddr,
}

impl OpenConnections {
    /// A place for one more connection from `ip`, unless it holds `cap` already.
    fn admit(&self, ip: IpAddr, cap: usize) -> Option<Slot> {
        let mut open = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(ip).or_insert(0);
        if *count >= cap {
            return None;
        }
        *count += 1;
        Some(Slot {
            open: self.clone(),
            ip,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.open.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}
