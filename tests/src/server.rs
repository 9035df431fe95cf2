//! A real `autoflow server` process on loopback, on SQLite (a fresh data dir) or PostgreSQL (a
//! fresh database per server, dropped at the end), and a small blocking HTTP client for it.
//!
//! PostgreSQL comes from `AUTOFLOW_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`). When it is unreachable, [`Server::start`] returns
//! `None` and prints a note, unless `AUTOFLOW_REQUIRE_SERVICES=1`, where it fails.
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use super::{autoflow_bin, target_dir};

/// Which database the server uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite in the data dir.
    Sqlite,
    /// A fresh PostgreSQL database.
    Postgres,
}

/// A running server.
pub struct Server {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The admin token of tenant `default`.
    pub admin: String,
    /// The data dir.
    pub data: tempfile::TempDir,
    /// The database URL.
    pub database: String,
    /// Which database.
    pub backend: Backend,
    child: Option<Child>,
    extra: Vec<String>,
    envs: Vec<(String, String)>,
    pg_name: Option<String>,
    http: reqwest::blocking::Client,
}

/// A running `autoflow worker` process.
pub struct Worker {
    /// Its data dir (blobs and cache).
    pub data: tempfile::TempDir,
    /// Its id, as runs and `/v1/workers` show it.
    pub id: String,
    child: Child,
}

impl Worker {
    /// SIGKILL: it stops at once, holding whatever it held.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The CPU time it has used so far (user and system), seconds; 0 where `/proc` does not
    /// say.
    pub fn cpu_seconds(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // Fields after the command's closing parenthesis: state is the 3rd field, utime the
        // 14th and stime the 15th, in clock ticks (100 a second on Linux).
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        (ticks(11) + ticks(12)) / 100.0
    }

    /// SIGTERM, then waits (at most 60 s) for it to exit; its exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        wait_for(Duration::from_secs(60), "the worker to exit", || {
            matches!(self.child.try_wait(), Ok(Some(_)))
        });
        self.child.wait().unwrap_or_else(|e| panic!("wait: {e}"))
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `done` every 50 ms until it holds; panics naming `what` after `timeout`.
pub fn wait_for(timeout: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + timeout;
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// An answer: status, headers and body.
#[derive(Debug)]
pub struct Resp {
    /// HTTP status.
    pub status: u16,
    /// Headers.
    pub headers: reqwest::header::HeaderMap,
    /// Raw body.
    pub bytes: Vec<u8>,
}

impl Resp {
    /// The value of header `name`, if it is there and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    /// The body as JSON (`Null` if it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes).unwrap_or(Value::Null)
    }
    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

fn pg_base_url() -> String {
    std::env::var("AUTOFLOW_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// Runs `sql` on the PostgreSQL test server; `Err` when it is unreachable.
fn pg_exec(sql: &str) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&pg_base_url())
            .await
            .map_err(|e| e.to_string())?;
        sqlx::raw_sql(sql)
            .execute(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    })
}

fn pg_url_for(db: &str) -> String {
    let base = pg_base_url();
    let (main, query) = base
        .split_once('?')
        .map_or((base.as_str(), None), |(m, q)| (m, Some(q)));
    let server = main
        .rsplit_once('/')
        .filter(|(s, _)| s.ends_with(|c: char| c != '/'))
        .map_or(main, |(s, _)| s);
    match query {
        Some(q) => format!("{server}/{db}?{q}"),
        None => format!("{server}/{db}"),
    }
}

impl Server {
    /// Starts a server; `None` (with a note) when the backend is not available here.
    pub fn start(backend: Backend) -> Option<Server> {
        Self::start_with(backend, &[])
    }

    /// Starts a server with extra flags.
    pub fn start_with(backend: Backend, extra: &[&str]) -> Option<Server> {
        Self::start_in(
            backend,
            tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}")),
            extra,
        )
    }

    /// Starts a server with extra flags and `data` as its data dir.
    pub fn start_in(backend: Backend, data: tempfile::TempDir, extra: &[&str]) -> Option<Server> {
        Self::start_with_env(backend, data, extra, &[])
    }

    /// Starts a server with extra flags, `data` as its data dir, and `envs` set in its
    /// environment (kept for [`Server::resume`]).
    pub fn start_with_env(
        backend: Backend,
        data: tempfile::TempDir,
        extra: &[&str],
        envs: &[(&str, &str)],
    ) -> Option<Server> {
        let (database, pg_name) = match backend {
            Backend::Sqlite => (
                format!(
                    "sqlite://{}?mode=rwc",
                    data.path().join("autoflow.db").display()
                ),
                None,
            ),
            Backend::Postgres => {
                static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
                let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.subsec_nanos())
                    .unwrap_or(0);
                let name = format!("autoflow_t_{}_{n}_{nanos}", std::process::id());
                if let Err(e) = pg_exec(&format!("CREATE DATABASE {name}")) {
                    if std::env::var("AUTOFLOW_REQUIRE_SERVICES").as_deref() == Ok("1") {
                        panic!(
                            "PostgreSQL at {} is required but unreachable: {e}",
                            pg_base_url()
                        );
                    }
                    eprintln!(
                        "note: skipping a PostgreSQL test: {} unreachable: {e}",
                        pg_base_url()
                    );
                    return None;
                }
                (pg_url_for(&name), Some(name))
            }
        };
        Some(Self::launch(backend, data, database, pg_name, extra, envs))
    }

    /// Starts a server on the PostgreSQL database at `database` (made and kept by the caller,
    /// such as one over TLS), with extra flags.
    pub fn start_on(database: &str, extra: &[&str]) -> Server {
        let data = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        Self::launch(
            Backend::Postgres,
            data,
            database.to_string(),
            None,
            extra,
            &[],
        )
    }

    /// Starts the server process and reads its admin token.
    fn launch(
        backend: Backend,
        data: tempfile::TempDir,
        database: String,
        pg_name: Option<String>,
        extra: &[&str],
        envs: &[(&str, &str)],
    ) -> Server {
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let envs: Vec<(String, String)> = envs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let (child, url) = spawn(data.path(), &database, &extra, &envs);
        let child = Some(child);
        let admin = std::fs::read_to_string(data.path().join("admin-token"))
            .unwrap_or_else(|e| panic!("admin-token: {e}"))
            .trim()
            .to_string();
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .unwrap_or_else(|e| panic!("client: {e}"));
        Server {
            url,
            admin,
            data,
            database,
            backend,
            child,
            extra,
            envs,
            pg_name,
            http,
        }
    }

    /// Kills the server (SIGKILL: no graceful shutdown) and starts it again on the same data,
    /// with the same flags.
    pub fn restart(&mut self) {
        self.kill();
        self.resume();
    }

    /// The server process's id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the server (SIGKILL), leaving its data; [`Server::resume`] starts it again.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again after [`Server::kill`].
    pub fn resume(&mut self) {
        let (child, url) = spawn(self.data.path(), &self.database, &self.extra, &self.envs);
        self.child = Some(child);
        self.url = url;
    }

    /// Starts an `autoflow worker` on this server's database with extra flags (such as
    /// `--labels`, `--lease-ms`, `--slots`); returns once it has registered. On PostgreSQL it
    /// has a data dir of its own (plugins come from the database) and is given the server's
    /// master key, as a worker on another machine is; on SQLite, a worker on the server's
    /// machine, it shares the server's data dir.
    pub fn worker(&self, extra: &[&str]) -> Worker {
        let data = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let mut cmd = Command::new(autoflow_bin());
        let data_dir = match self.backend {
            Backend::Postgres => {
                let key = std::fs::read_to_string(self.data.path().join("master.key"))
                    .unwrap_or_else(|e| panic!("master.key: {e}"));
                cmd.env("AUTOFLOW_MASTER_KEY", key.trim());
                data.path()
            }
            Backend::Sqlite => self.data.path(),
        };
        cmd.args(["worker", "--database", &self.database])
            .arg("--data-dir")
            .arg(data_dir)
            .args(extra);
        let log = data.path().join("worker.log");
        let (child, rest) = start(
            cmd,
            &log,
            "autoflow worker ",
            "the worker",
            Duration::from_secs(120),
        );
        let id = rest
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string();
        Worker { data, id, child }
    }

    /// Runs the `autoflow` CLI against this server with `token`: its exit code, stdout and
    /// stderr.
    pub fn cli(&self, token: &str, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(autoflow_bin())
            .args(args)
            .env("AUTOFLOW_URL", &self.url)
            .env("AUTOFLOW_TOKEN", token)
            .env("AUTOFLOW_DATA_DIR", self.data.path())
            .output()
            .unwrap_or_else(|e| panic!("autoflow {args:?}: {e}"));
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Sends a request with `token` (if any) and an optional body and content type.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<(&str, Vec<u8>)>,
    ) -> Resp {
        self.call_with(method, path, token, body, &[])
    }

    /// [`Server::call`] with extra request headers.
    pub fn call_with(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<(&str, Vec<u8>)>,
        headers: &[(&str, &str)],
    ) -> Resp {
        send(&self.http, &self.url, method, path, token, body, headers)
    }

    /// A client that connects from local address `ip` (any of 127.0.0.0/8 on Linux), to
    /// stand for another source address.
    pub fn from_address(&self, ip: std::net::IpAddr) -> Caller<'_> {
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(120))
            .local_address(ip)
            .build()
            .unwrap_or_else(|e| panic!("client: {e}"));
        Caller { server: self, http }
    }

    /// GET with the admin token.
    pub fn get(&self, path: &str) -> Resp {
        self.call("GET", path, Some(&self.admin), None)
    }

    /// Uploads `bytes` as `name@version` with `token`.
    pub fn push(&self, token: &str, name: &str, version: &str, bytes: Vec<u8>) -> Resp {
        let path = format!("/v1/plugins?name={name}&version={version}");
        self.call(
            "POST",
            &path,
            Some(token),
            Some(("application/wasm", bytes)),
        )
    }

    /// PUTs a YAML pipeline with `token`.
    pub fn apply(&self, token: &str, name: &str, yaml: &str) -> Resp {
        self.call(
            "PUT",
            &format!("/v1/pipelines/{name}"),
            Some(token),
            Some(("application/yaml", yaml.as_bytes().to_vec())),
        )
    }

    /// Triggers a run (optionally of `version`) and waits until it ends; returns the run.
    pub fn run_and_wait(&self, token: &str, pipeline: &str, version: Option<i64>) -> Value {
        let body = serde_json::json!({ "version": version })
            .to_string()
            .into_bytes();
        let r = self.call(
            "POST",
            &format!("/v1/pipelines/{pipeline}/runs"),
            Some(token),
            Some(("application/json", body)),
        );
        assert_eq!(r.status, 202, "trigger: {}", r.text());
        let id = r.json()["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no id: {}", r.text()))
            .to_string();
        self.wait_run(token, &id)
    }

    /// Polls run `id` until it ends (120 s at most).
    pub fn wait_run(&self, token: &str, id: &str) -> Value {
        let mut run = Value::Null;
        wait_for(
            Duration::from_secs(120),
            &format!("run {id} to end"),
            || {
                run = self
                    .call("GET", &format!("/v1/runs/{id}"), Some(token), None)
                    .json();
                matches!(
                    run["status"].as_str(),
                    Some("succeeded" | "failed" | "cancelled")
                )
            },
        );
        run
    }

    /// The messages step `step` of run `id` logged (a `log-sink` logs each record's value),
    /// each read as JSON when it is JSON, else as a string.
    pub fn logged(&self, id: &str, step: &str) -> Vec<Value> {
        let logs = self.get(&format!("/v1/runs/{id}/logs")).json();
        logs.as_array()
            .unwrap_or_else(|| panic!("no logs: {logs}"))
            .iter()
            .filter(|l| l["step"] == step)
            .filter_map(|l| l["message"].as_str())
            .map(|m| serde_json::from_str(m).unwrap_or_else(|_| Value::String(m.into())))
            .collect()
    }

    /// The first column of the rows `query` answers, as bytes, read from the server's
    /// database directly (for what the API never shows, such as sealed values).
    pub fn column_bytes(&self, query: &str) -> Vec<Vec<u8>> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("no runtime: {e}"));
        rt.block_on(async {
            let store = autoflow::store::Store::connect(&self.database)
                .await
                .unwrap_or_else(|e| panic!("{}: {e}", self.database));
            sqlx::query_scalar::<_, Vec<u8>>(query)
                .fetch_all(&store.pool)
                .await
                .unwrap_or_else(|e| panic!("{query}: {e}"))
        })
    }

    /// Triggers a run of `pipeline` with the admin token; returns its id.
    pub fn trigger(&self, pipeline: &str) -> String {
        let r = self.call(
            "POST",
            &format!("/v1/pipelines/{pipeline}/runs"),
            Some(&self.admin),
            None,
        );
        assert_eq!(r.status, 202, "trigger {pipeline}: {}", r.text());
        r.json()["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no id: {}", r.text()))
            .to_string()
    }

    /// Creates tenant `name`; returns its admin token.
    pub fn create_tenant(&self, name: &str) -> String {
        let body = serde_json::json!({ "name": name }).to_string().into_bytes();
        let r = self.call(
            "POST",
            "/v1/tenants",
            Some(&self.admin),
            Some(("application/json", body)),
        );
        assert_eq!(r.status, 201, "create tenant: {}", r.text());
        r.json()["admin_token"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Creates a token with `role` using admin token `admin`; returns (token, id).
    pub fn create_token(
        &self,
        admin: &str,
        role: &str,
        expires_in_secs: Option<i64>,
    ) -> (String, String) {
        let body =
            serde_json::json!({ "name": role, "role": role, "expires_in_secs": expires_in_secs })
                .to_string()
                .into_bytes();
        let r = self.call(
            "POST",
            "/v1/tokens",
            Some(admin),
            Some(("application/json", body)),
        );
        assert_eq!(r.status, 201, "create token: {}", r.text());
        let v = r.json();
        (
            v["token"].as_str().unwrap_or_default().to_string(),
            v["info"]["id"].as_str().unwrap_or_default().to_string(),
        )
    }

    /// Files in the blob store.
    pub fn blob_count(&self) -> usize {
        std::fs::read_dir(self.data.path().join("blobs"))
            .map(|d| {
                d.filter(|e| {
                    e.as_ref()
                        .is_ok_and(|e| !e.file_name().to_string_lossy().starts_with('.'))
                })
                .count()
            })
            .unwrap_or(0)
    }
}

/// A client of a [`Server`] from another local address ([`Server::from_address`]).
pub struct Caller<'a> {
    server: &'a Server,
    http: reqwest::blocking::Client,
}

impl Caller<'_> {
    /// [`Server::call_with`] from this client's address.
    pub fn call_with(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<(&str, Vec<u8>)>,
        headers: &[(&str, &str)],
    ) -> Resp {
        send(
            &self.http,
            &self.server.url,
            method,
            path,
            token,
            body,
            headers,
        )
    }
}

fn send(
    http: &reqwest::blocking::Client,
    url: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<(&str, Vec<u8>)>,
    headers: &[(&str, &str)],
) -> Resp {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let mut req = http.request(method, format!("{url}{path}"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some((ct, bytes)) = body {
        req = req.header("content-type", ct).body(bytes);
    }
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let resp = req.send().unwrap_or_else(|e| panic!("{path}: {e}"));
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.bytes().map(|b| b.to_vec()).unwrap_or_default();
    Resp {
        status,
        headers,
        bytes,
    }
}

/// Starts the binary and waits for its `listening on` line.
fn spawn(
    data: &std::path::Path,
    database: &str,
    extra: &[String],
    envs: &[(String, String)],
) -> (Child, String) {
    let mut cmd = Command::new(autoflow_bin());
    cmd.envs(envs.iter().map(|(k, v)| (k, v)));
    cmd.arg("server")
        .args([
            "--listen",
            "127.0.0.1:0",
            "--database",
            database,
            "--max-plugin-mb",
            "2",
        ])
        .arg("--data-dir")
        .arg(data)
        .args(extra);
    start(
        cmd,
        &data.join("server.log"),
        "autoflow server listening on ",
        "the server",
        Duration::from_secs(180),
    )
}

/// Starts `cmd` with the tests' compiled-plugin cache, its stderr appended to `log`, and waits
/// (at most `timeout`) for a line of its stdout starting with `prefix`; returns the child and
/// the rest of that line. On timeout, kills it and fails with its log.
fn start(
    mut cmd: Command,
    log: &std::path::Path,
    prefix: &'static str,
    what: &str,
    timeout: Duration,
) -> (Child, String) {
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap_or_else(|e| panic!("{}: {e}", log.display()));
    let mut child = cmd
        .env(
            "AUTOFLOW_CACHE_DIR",
            target_dir().join("autoflow-test-data").join("server-cache"),
        )
        .env("AUTOFLOW_LOG", "autoflow=info")
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log_file))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix(prefix) {
                let _ = tx.send(rest.to_string());
            }
        }
    });
    match rx.recv_timeout(timeout) {
        Ok(rest) => (child, rest),
        Err(_) => {
            let _ = child.kill();
            let log = std::fs::read_to_string(log).unwrap_or_default();
            panic!("{what} did not start:\n{log}");
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        if let Some(name) = &self.pg_name {
            let _ = pg_exec(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    }
}

/// Defines `mod sqlite { #[test] fn NAME() }` and `mod postgres { ... }` for each scenario
/// `fn NAME(s: &mut Server)`, so the same suite runs on both databases. With `flags = PATH;`
/// first, the servers start with the flags `PATH()` gives (`Vec<String>`).
#[macro_export]
macro_rules! on_both_databases {
    (flags = $flags:path; $($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $name() {
                let flags: Vec<String> = $flags();
                let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
                if let Some(mut s) = $crate::server::Server::start_with($crate::server::Backend::Sqlite, &flags) { super::$name(&mut s) }
            } )*
        }
        mod postgres {
            $( #[test] fn $name() {
                let flags: Vec<String> = $flags();
                let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
                if let Some(mut s) = $crate::server::Server::start_with($crate::server::Backend::Postgres, &flags) { super::$name(&mut s) }
            } )*
        }
    };
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $name() {
                if let Some(mut s) = $crate::server::Server::start($crate::server::Backend::Sqlite) { super::$name(&mut s) }
            } )*
        }
        mod postgres {
            $( #[test] fn $name() {
                if let Some(mut s) = $crate::server::Server::start($crate::server::Backend::Postgres) { super::$name(&mut s) }
            } )*
        }
    };
}
