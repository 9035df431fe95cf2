//! HTTPS on a real server (issue 15, TLS): `--tls-cert`/`--tls-key` with a CA the test makes
//! (rcgen); clients that trust that CA get in, clients that do not are refused by their own
//! TLS check; the CLI with and without `--ca-cert`; plain HTTP on the port redirected or
//! refused; session cookies marked `Secure`; the certificate read again on SIGHUP (and a
//! broken file on SIGHUP leaving the old one in force); wrong files refused at the start; and
//! the server and a worker on a TLS-only PostgreSQL with `sslmode=verify-full`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use std::io::{Read, Write};
use std::process::Command;
use std::time::Duration;

use autoflow_tests::autoflow_bin;
use autoflow_tests::certs::{Issued, TestCa};
use autoflow_tests::postgres_tls::TlsPostgres;
use autoflow_tests::server::{Backend, Server, wait_for};

/// A client that trusts only `ca` (no public roots, so only the test's CA can vouch).
fn client_trusting(ca: &TestCa) -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca.pem().as_bytes()).unwrap())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// `GET /v1/pipelines` with the admin token through `client`: the status, or the error text.
fn list(client: &reqwest::blocking::Client, s: &Server) -> Result<u16, String> {
    client
        .get(format!("{}/v1/pipelines", s.url))
        .bearer_auth(&s.admin)
        .send()
        .map(|r| r.status().as_u16())
        .map_err(|e| format!("{:?}", e))
}

/// Sends `request` as plain bytes to the server's port and reads the whole answer.
fn plain(s: &Server, request: &str) -> String {
    let addr = s.url.trim_start_matches("https://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(request.replace("HOST", addr).as_bytes())
        .unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
}

/// A server on SQLite serving HTTPS with `issued`.
fn start(issued: &Issued) -> Server {
    let (cert, key) = (issued.cert.to_str().unwrap(), issued.key.to_str().unwrap());
    Server::start_with(Backend::Sqlite, &["--tls-cert", cert, "--tls-key", key]).unwrap()
}

#[test]
fn the_server_speaks_https_with_its_certificate_and_reads_it_again_on_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let first = TestCa::new("Autoflow test CA one");
    let issued = first.issue(dir.path());
    let s = start(&issued);
    assert!(s.url.starts_with("https://127.0.0.1:"), "{}", s.url);

    // Trusting the CA: in. Trusting only the public roots: refused by the client's TLS check.
    assert_eq!(list(&client_trusting(&first), &s), Ok(200));
    let public = reqwest::blocking::Client::new();
    let refused = list(&public, &s).unwrap_err();
    assert!(refused.contains("UnknownIssuer"), "{refused}");

    // The CLI: without --ca-cert it says why it cannot connect; with it, it lists the demo.
    let (code, _, err) = s.cli(&s.admin, &["pipeline", "list"]);
    assert_ne!(code, 0);
    assert!(err.contains("cannot reach https://127.0.0.1:"), "{err}");
    let ca_file = first.write(&dir.path().join("ca.pem"));
    let (code, out, err) = s.cli(
        &s.admin,
        &["pipeline", "list", "--ca-cert", ca_file.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("demo"), "{out}");
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let (code, _, err) = s.cli(
        &s.admin,
        &["pipeline", "list", "--ca-cert", empty.to_str().unwrap()],
    );
    assert_ne!(code, 0);
    assert!(
        err.contains("empty.pem: no certificate in the file"),
        "{err}"
    );

    // Plain HTTP on the HTTPS port: a GET is sent to https://, a POST is refused.
    let get = plain(&s, "GET /v1/pipelines?x=1 HTTP/1.1\r\nHost: HOST\r\n\r\n");
    let addr = s.url.trim_start_matches("https://");
    assert!(get.starts_with("HTTP/1.1 308"), "{get}");
    assert!(
        get.contains(&format!("location: https://{addr}/v1/pipelines?x=1\r\n")),
        "{get}"
    );
    let post = plain(
        &s,
        "POST /v1/login HTTP/1.1\r\nHost: HOST\r\ncontent-length: 2\r\n\r\n{}",
    );
    assert!(post.starts_with("HTTP/1.1 400"), "{post}");
    assert!(post.contains("this server speaks HTTPS only"), "{post}");

    // Over HTTPS, the session cookie is Secure.
    let password = std::fs::read_to_string(s.data.path().join("admin-password")).unwrap();
    let login = client_trusting(&first)
        .post(format!("{}/v1/login", s.url))
        .json(&serde_json::json!({"name": "admin", "password": password.trim()}))
        .send()
        .unwrap();
    assert_eq!(login.status().as_u16(), 200);
    let cookies: Vec<String> = login
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert!(!cookies.is_empty());
    assert!(
        cookies.iter().all(|c| c.contains("; Secure")),
        "{cookies:?}"
    );

    // A new certificate from another CA, then SIGHUP: new connections get it.
    let second = TestCa::new("Autoflow test CA two");
    second.issue(dir.path());
    let pid = s.pid().unwrap().to_string();
    let hup = || {
        let status = Command::new("kill").args(["-HUP", &pid]).status().unwrap();
        assert!(status.success());
    };
    hup();
    wait_for(Duration::from_secs(20), "the new certificate", || {
        list(&client_trusting(&second), &s) == Ok(200)
    });
    let old = list(&client_trusting(&first), &s).unwrap_err();
    assert!(old.contains("UnknownIssuer"), "{old}");

    // A broken file on SIGHUP: the error is logged and the certificate in force stays.
    std::fs::write(&issued.cert, "not a certificate\n").unwrap();
    hup();
    let log = s.data.path().join("server.log");
    wait_for(
        Duration::from_secs(20),
        "the reload error in the log",
        || {
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .contains("no certificate in the file")
        },
    );
    assert_eq!(list(&client_trusting(&second), &s), Ok(200));
}

/// Runs `autoflow server` with `args` (it must fail to start): its exit code and stderr.
fn refused_start(args: &[&str]) -> (i32, String) {
    let data = tempfile::tempdir().unwrap();
    let out = Command::new(autoflow_bin())
        .args(["server", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data.path())
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn wrong_certificate_files_stop_the_start_with_their_reason() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("Autoflow test CA");
    let issued = ca.issue(dir.path());
    let (cert, key) = (issued.cert.to_str().unwrap(), issued.key.to_str().unwrap());

    // A key that belongs to another certificate.
    let (_, other_key) = ca.issue_pem();
    let wrong = dir.path().join("other-key.pem");
    std::fs::write(&wrong, other_key).unwrap();
    let (code, err) = refused_start(&["--tls-cert", cert, "--tls-key", wrong.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(
        err.contains("other-key.pem does not go with --tls-cert"),
        "{err}"
    );

    // The certificate's file given as the key, and a missing file.
    let (code, err) = refused_start(&["--tls-cert", cert, "--tls-key", cert]);
    assert_ne!(code, 0);
    assert!(err.contains(&format!("--tls-key {cert}:")), "{err}");
    let missing = dir.path().join("missing.pem");
    let (code, err) = refused_start(&["--tls-cert", missing.to_str().unwrap(), "--tls-key", key]);
    assert_ne!(code, 0);
    assert!(err.contains("missing.pem"), "{err}");

    // One without the other.
    let (code, err) = refused_start(&["--tls-cert", cert]);
    assert_ne!(code, 0);
    assert!(err.contains("--tls-key"), "{err}");
}

#[test]
fn the_server_and_a_worker_keep_their_database_over_verified_tls() {
    let ca = TestCa::new("Autoflow test database CA");
    let Some(pg) = TlsPostgres::start(&ca) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ca_file = ca.write(&dir.path().join("ca.pem"));
    let verified = pg.url(&format!(
        "sslmode=verify-full&sslrootcert={}",
        ca_file.display()
    ));

    // The server (with no worker of its own, so only the worker can run it) and a worker, both
    // on the TLS-only database: the demo run succeeds.
    let s = Server::start_on(&verified, &["--worker-slots", "0"]);
    let worker = s.worker(&[]);
    let run = s.run_and_wait(&s.admin, "demo", None);
    assert_eq!(run["status"], "succeeded", "{run}");

    // Every client connection the database holds is encrypted (plain ones are not let in).
    let out = Command::new("psql")
        .arg(pg.url(&format!(
            "sslmode=verify-full&sslrootcert={}",
            ca_file.display()
        )))
        .args([
            "-tA",
            "-c",
            "SELECT count(*) FILTER (WHERE s.ssl), count(*) FILTER (WHERE NOT s.ssl) \
             FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
             WHERE a.backend_type = 'client backend' AND a.pid <> pg_backend_pid()",
        ])
        .output()
        .unwrap();
    let counts = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let (tls, plain) = counts
        .split_once('|')
        .unwrap_or_else(|| panic!("{counts:?}"));
    assert!(tls.parse::<u32>().unwrap() >= 2, "{counts}");
    assert_eq!(plain, "0");
    worker.kill();
    drop(s);

    // Another CA: the server does not start, and says why.
    let stranger = TestCa::new("Some other CA");
    let stranger_file = stranger.write(&dir.path().join("stranger.pem"));
    let url = pg.url(&format!(
        "sslmode=verify-full&sslrootcert={}",
        stranger_file.display()
    ));
    let (code, err) = refused_start(&["--database", &url]);
    assert_ne!(code, 0);
    assert!(
        err.contains("UnknownIssuer") || err.contains("certificate"),
        "{err}"
    );
    // Without TLS: the database lets no plain connection in.
    let (code, err) = refused_start(&["--database", &pg.url("sslmode=disable")]);
    assert_ne!(code, 0);
    assert!(err.contains("no encryption"), "{err}");
}
