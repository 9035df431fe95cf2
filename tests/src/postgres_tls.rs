//! A PostgreSQL server of the test's own (initdb in a temporary folder, on a free loopback port)
//! that takes TLS connections only, with a certificate a [`TestCa`] signed: for
//! `sslmode=verify-full`. It uses the machine's PostgreSQL binaries (`initdb`, `pg_ctl`), run as
//! the `postgres` user when the tests run as root.
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::certs::TestCa;

/// A running TLS-only PostgreSQL; stopped (immediately) when dropped.
pub struct TlsPostgres {
    /// Its port on 127.0.0.1.
    pub port: u16,
    data: PathBuf,
    bin: PathBuf,
    _dir: tempfile::TempDir,
}

/// The folder of the machine's newest PostgreSQL binaries.
fn bin_dir() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    versions.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name()?.to_str()?.parse::<u32>().ok())
            .unwrap_or(0)
    });
    versions.pop()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// `program`, to be run as `postgres` when we are root.
fn as_postgres(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// `program args` as [`as_postgres`] runs it; fails with its output unless it succeeds.
fn run_as_postgres(program: &Path, args: &[&str]) {
    let out = as_postgres(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", program.display()));
    assert!(
        out.status.success(),
        "{} {args:?}: {}{}",
        program.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl TlsPostgres {
    /// Starts one whose certificate `ca` signed, for 127.0.0.1 and localhost; `None` (with a
    /// note) where the machine has no PostgreSQL binaries, unless `AUTOFLOW_REQUIRE_SERVICES=1`.
    pub fn start(ca: &TestCa) -> Option<Self> {
        let Some(bin) = bin_dir() else {
            if std::env::var("AUTOFLOW_REQUIRE_SERVICES").as_deref() == Ok("1") {
                panic!("PostgreSQL's initdb is required but not under /usr/lib/postgresql");
            }
            eprintln!("note: skipping a TLS PostgreSQL test: no initdb under /usr/lib/postgresql");
            return None;
        };
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let data = dir.path().join("data");
        let issued = ca.issue(dir.path());
        if is_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .unwrap_or_else(|e| panic!("chown: {e}"));
            assert!(status.success(), "chown the PostgreSQL folder");
        }
        std::fs::set_permissions(&issued.key, std::fs::Permissions::from_mode(0o600))
            .unwrap_or_else(|e| panic!("{}: {e}", issued.key.display()));
        let path = |p: &Path| p.to_str().unwrap_or_else(|| panic!("{p:?}")).to_string();
        run_as_postgres(
            &bin.join("initdb"),
            &[
                "-D",
                &path(&data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        // TLS or nothing: a plain connection finds no line that lets it in.
        let hba = "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostssl all all ::1/128 trust\n";
        std::fs::write(data.join("pg_hba.conf"), hba)
            .unwrap_or_else(|e| panic!("pg_hba.conf: {e}"));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or_else(|e| panic!("a free port: {e}"));
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c ssl=on -c ssl_cert_file={} \
             -c ssl_key_file={} -c fsync=off",
            path(dir.path()),
            path(&issued.cert),
            path(&issued.key)
        );
        let log = path(&dir.path().join("postgres.log"));
        run_as_postgres(
            &bin.join("pg_ctl"),
            &[
                "-D",
                &path(&data),
                "-w",
                "-t",
                "60",
                "-l",
                &log,
                "-o",
                &options,
                "start",
            ],
        );
        Some(Self {
            port,
            data,
            bin,
            _dir: dir,
        })
    }

    /// The URL of its `postgres` database as user `postgres`, with `params` (such as
    /// `sslmode=verify-full&sslrootcert=FILE`).
    pub fn url(&self, params: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres?{params}",
            self.port
        )
    }
}

impl Drop for TlsPostgres {
    fn drop(&mut self) {
        let _ = as_postgres(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "stop"])
            .output();
    }
}
