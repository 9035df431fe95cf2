//! An SMTP server on loopback for the alert tests: `tests/smtp/server.py` (aiosmtpd, installed
//! by the test command) with STARTTLS on a certificate of a CA made here for the test, AUTH
//! checked against a user and a password; each message it takes is parsed by Python's own
//! e-mail parser into a JSON file, read back by [`SmtpServer::wait_for`].
use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A running SMTP server; killed when dropped.
pub struct SmtpServer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// The PEM certificate of the CA its certificate is signed by (for `ca_cert`).
    pub ca_pem: String,
    child: Child,
    dir: tempfile::TempDir,
}

impl SmtpServer {
    /// Starts one that takes mail from `user` with `password` (over TLS only).
    pub fn start(user: &str, password: &str) -> Self {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let ca = crate::certs::TestCa::new("Autoflow test CA");
        let crate::certs::Issued { cert, key } = ca.issue(dir.path());
        let ca_pem = ca.pem();
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap_or_else(|e| panic!("{}: {e}", out.display()));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or_else(|e| panic!("a free port: {e}"));
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("smtp/server.py");
        let mut child = Command::new("python3")
            .arg(&script)
            .args([
                "--port",
                &port.to_string(),
                "--user",
                user,
                "--password",
                password,
            ])
            .arg("--cert")
            .arg(&cert)
            .arg("--key")
            .arg(&key)
            .arg("--out")
            .arg(&out)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("python3 {}: {e}", script.display()));
        let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                let _ = tx.send(line);
            }
        });
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) if line == "listening" => {}
            other => {
                let _ = child.kill();
                panic!(
                    "the SMTP server did not start ({other:?}); is aiosmtpd installed \
                     (pip install aiosmtpd==1.4.6)?"
                )
            }
        }
        Self {
            port,
            ca_pem,
            child,
            dir,
        }
    }

    /// The messages taken so far, oldest first.
    pub fn messages(&self) -> Vec<Value> {
        let out = self.dir.path().join("out");
        let mut names: Vec<_> = std::fs::read_dir(&out)
            .unwrap_or_else(|e| panic!("{}: {e}", out.display()))
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".json") && !n.starts_with('.'))
            .collect();
        names.sort();
        names
            .iter()
            .map(|n| {
                let text =
                    std::fs::read_to_string(out.join(n)).unwrap_or_else(|e| panic!("{n}: {e}"));
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{n}: {e}"))
            })
            .collect()
    }

    /// The messages once there are at least `n` of them, or when `timeout` passes.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.messages();
            if got.len() >= n || Instant::now() >= deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
