//! Clients that hold the server's connections: headers or a body trickled past their deadline,
//! and one source address opening more connections than it may. (HTTP only: the database
//! plays no part, so SQLite stands for both backends.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use autoflow_tests::server::{Backend, Server, wait_for};

/// The server's `host:port`.
fn address(s: &Server) -> String {
    s.url.trim_start_matches("http://").to_string()
}

/// A connection to the server from local address `from` (any of 127.0.0.0/8).
fn connect_from(s: &Server, from: &str) -> TcpStream {
    let to: std::net::SocketAddr = address(s).parse().unwrap();
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let local: std::net::SocketAddr = format!("{from}:0").parse().unwrap();
    socket.bind(&local.into()).unwrap();
    socket.connect(&to.into()).unwrap();
    socket.into()
}

/// Everything the server sends until it closes the connection; panics past `limit`.
fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> String {
    let start = Instant::now();
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return String::from_utf8_lossy(&got).into_owned(),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return String::from_utf8_lossy(&got).into_owned();
            }
            Err(_) => {}
        }
        assert!(
            start.elapsed() < limit,
            "the server kept the connection open past {limit:?}; it sent {:?}",
            String::from_utf8_lossy(&got)
        );
    }
}

/// A client that sends half its headers and waits is disconnected at the header deadline,
/// while other clients are served.
#[test]
fn headers_not_sent_by_the_deadline_close_the_connection() {
    let Some(s) = Server::start_with(Backend::Sqlite, &["--header-timeout-secs", "1"]) else {
        return;
    };
    let mut slow = TcpStream::connect(address(&s)).unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")
        .unwrap();
    let start = Instant::now();
    assert_eq!(s.call("GET", "/healthz", None, None).status, 200);
    let got = read_until_closed(&mut slow, Duration::from_secs(10));
    assert!(
        start.elapsed() >= Duration::from_millis(900),
        "closed before the deadline"
    );
    assert!(!got.contains(" 200 "), "a half request was answered: {got}");
}

/// A body trickled a byte at a time is answered 408 at its deadline and nothing is kept.
#[test]
fn a_body_trickled_past_the_deadline_is_answered_408() {
    let Some(s) = Server::start_with(Backend::Sqlite, &["--body-timeout-secs", "1"]) else {
        return;
    };
    let yaml = b"name: slow\nsteps:\n  - id: gen\n    plugin: generator@latest\n".to_vec();
    let mut slow = TcpStream::connect(address(&s)).unwrap();
    let head = format!(
        "PUT /v1/pipelines/slow HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\n\
         content-type: application/yaml\r\ncontent-length: {}\r\n\r\n",
        s.admin,
        yaml.len()
    );
    slow.write_all(head.as_bytes()).unwrap();
    let mut writer = slow.try_clone().unwrap();
    let trickle = std::thread::spawn(move || {
        for byte in yaml {
            if writer.write_all(&[byte]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    });
    let start = Instant::now();
    let got = read_until_closed(&mut slow, Duration::from_secs(15));
    assert!(got.starts_with("HTTP/1.1 408"), "{got}");
    assert!(got.contains(r#""error":"request_timeout""#), "{got}");
    assert!(
        got.contains("the request's body did not arrive within 1 s"),
        "{got}"
    );
    assert!(start.elapsed() < Duration::from_secs(10));
    drop(slow);
    let _ = trickle.join();
    assert_eq!(s.get("/v1/pipelines/slow").status, 404, "nothing was kept");
}

/// One source address holding its cap of connections gets 429 on the next one, other
/// addresses are served meanwhile, and a closed connection frees its place. (The capped
/// address is 127.0.0.3: the harness's own client holds connections from 127.0.0.1.)
#[test]
fn a_source_over_its_connection_cap_is_answered_429() {
    let Some(s) = Server::start_with(Backend::Sqlite, &["--max-connections-per-source", "3"])
    else {
        return;
    };
    let mut held: Vec<TcpStream> = Vec::new();
    for _ in 0..3 {
        let mut c = connect_from(&s, "127.0.0.3");
        // A whole request on each, so the server has certainly accepted it.
        c.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
            .unwrap();
        let mut buf = [0u8; 12];
        c.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"HTTP/1.1 200");
        held.push(c);
    }
    let mut over = connect_from(&s, "127.0.0.3");
    let got = read_until_closed(&mut over, Duration::from_secs(10));
    assert!(got.starts_with("HTTP/1.1 429"), "{got}");
    assert!(
        got.contains("this address holds 3 open connections already"),
        "{got}"
    );
    assert_eq!(s.call("GET", "/healthz", None, None).status, 200);
    held.pop();
    wait_for(Duration::from_secs(10), "a freed place", || {
        let mut c = connect_from(&s, "127.0.0.3");
        c.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .unwrap();
        read_until_closed(&mut c, Duration::from_secs(10)).starts_with("HTTP/1.1 200")
    });
}
