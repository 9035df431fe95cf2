//! Listeners that must receive nothing: a TCP port on 127.0.0.1 and Unix sockets in a temporary
//! folder, where a PostgreSQL, MySQL or Redis server would listen, each counting the
//! connections it accepts; and the connection URLs that would send a driver to them past the
//! host named in the URL, each with the words its refusal must hold.
// Test support: failing loudly is its job.
#![allow(clippy::panic)]
use std::net::TcpListener;
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// A public address (TEST-NET-3, never routed) that the egress policy lets through: the host a
/// URL names while its parameters point elsewhere.
pub const PUBLIC: &str = "203.0.113.7";

/// Socket files in [`Tripwire::dir`]: PostgreSQL's (default port, and the tripwire's port),
/// MySQL's, Redis's.
const SOCKETS: [&str; 3] = [".s.PGSQL.5432", "mysqld.sock", "redis.sock"];

/// The listeners; they stop with the test process.
pub struct Tripwire {
    /// The TCP port on 127.0.0.1.
    pub port: u16,
    dir: tempfile::TempDir,
    accepted: Arc<AtomicUsize>,
}

fn count<I: Iterator<Item = std::io::Result<S>>, S>(incoming: I, accepted: &AtomicUsize) {
    for conn in incoming {
        if conn.is_ok() {
            accepted.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl Tripwire {
    /// Starts the listeners.
    pub fn start() -> Self {
        let accepted = Arc::new(AtomicUsize::new(0));
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
        let port = tcp.local_addr().unwrap_or_else(|e| panic!("{e}")).port();
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let a = accepted.clone();
        std::thread::spawn(move || count(tcp.incoming(), &a));
        let pg_on_port = format!(".s.PGSQL.{port}");
        for name in SOCKETS.iter().copied().chain([pg_on_port.as_str()]) {
            let unix = UnixListener::bind(dir.path().join(name))
                .unwrap_or_else(|e| panic!("bind {name}: {e}"));
            let a = accepted.clone();
            std::thread::spawn(move || count(unix.incoming(), &a));
        }
        Self {
            port,
            dir,
            accepted,
        }
    }

    /// The folder of the Unix sockets.
    pub fn dir(&self) -> String {
        self.dir.path().display().to_string()
    }

    /// Connections accepted so far, after a moment for any in flight to be counted.
    pub fn accepted(&self) -> usize {
        std::thread::sleep(Duration::from_millis(200));
        self.accepted.load(Ordering::SeqCst)
    }

    /// Connection URLs that would reach these listeners (or, for SQLite, open `outside`, a file
    /// outside `root`, the only mount root), each with what its refusal must say. None names a
    /// non-public host in its authority: only the parameters lead elsewhere.
    pub fn redirecting_urls(&self, root: &Path, outside: &Path) -> Vec<(String, String)> {
        let (port, dir) = (self.port, self.dir());
        let encoded_dir = dir.replace('/', "%2F");
        let root = root.display();
        let name = |p: Option<&std::ffi::OsStr>| {
            p.map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        let (up, file) = (
            name(outside.parent().and_then(Path::file_name)),
            name(outside.file_name()),
        );
        let moves = |p: &str| {
            format!("query parameter {p:?} is not allowed: it changes where the driver connects")
        };
        let reads = |p: &str| {
            format!(
                "query parameter {p:?} is not allowed: it makes the driver read a file of the host"
            )
        };
        let no_host = || "the URL has no host".to_string();
        let bad_host = || "the URL's host must be a name or an IP address".to_string();
        vec![
            (
                format!("postgres://u:p@{PUBLIC}/db?host=127.0.0.1&port={port}"),
                moves("host"),
            ),
            (
                format!("postgres://u:p@db.example.com/db?host=127.0.0.1&port={port}"),
                moves("host"),
            ),
            (
                format!("postgres://u:p@{PUBLIC}/db?hostaddr=127.0.0.1&port={port}"),
                moves("hostaddr"),
            ),
            (
                format!("postgres://u:p@{PUBLIC}/db?host={dir}"),
                moves("host"),
            ),
            (
                format!("postgresql://u:p@{PUBLIC}:5432/db?port={port}"),
                moves("port"),
            ),
            (
                format!("postgres://u:p@{PUBLIC}/db?sslmode=prefer&sslrootcert={dir}/ca.pem"),
                reads("sslrootcert"),
            ),
            (format!("postgres:///db?host={dir}&port={port}"), no_host()),
            (format!("postgres://u:p@{encoded_dir}/db"), bad_host()),
            (
                format!("mysql://u:p@{PUBLIC}/db?socket={dir}/mysqld.sock"),
                moves("socket"),
            ),
            (
                format!("mariadb://u:p@{PUBLIC}/db?ssl-ca={dir}/ca.pem"),
                reads("ssl-ca"),
            ),
            (
                format!("mysql://u:p@{encoded_dir}%2Fmysqld.sock/db"),
                bad_host(),
            ),
            (format!("redis+unix://{dir}/redis.sock"), no_host()),
            (format!("unix://{dir}/redis.sock?db=0"), no_host()),
            (
                format!("redis://{PUBLIC}:6379/0?socket={dir}/redis.sock"),
                moves("socket"),
            ),
            (
                format!("nats://{PUBLIC}:4222?host=127.0.0.1&port={port}"),
                moves("host"),
            ),
            (
                format!("nats://{PUBLIC}:4222,ws://127.0.0.1:{port}"),
                "scheme \"ws\" is not allowed".to_string(),
            ),
            (
                format!("sqlite://{root}/x.db?mode=rwc&vfs=unix-dotfile"),
                "query parameter \"vfs\" is not allowed".to_string(),
            ),
            (
                format!("sqlite://{root}/%2E%2E/{up}/{file}"),
                "is outside the allowed mount roots".to_string(),
            ),
        ]
    }
}
