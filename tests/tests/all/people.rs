//! People and trust (issue 15) on real servers, on SQLite and PostgreSQL: users made with
//! `autoflow user add` (straight into the database) and through `/v1/users`; signing in with
//! `POST /v1/login`, a session cookie and its CSRF token; the sign-in limits per address and
//! per user; and the audit log's hash chain, broken by hand three ways and named by
//! `autoflow audit verify` and `GET /v1/audit/verify`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use std::io::Write;
use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use autoflow_tests::autoflow_bin;
use autoflow_tests::server::{Backend, Resp, Server, wait_for};

pub(crate) const PASSWORD: &str = "correct horse battery staple";

/// Runs `autoflow ARGS --database DB` with `stdin` as its standard input.
pub(crate) fn cli(s: &Server, args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut child = Command::new(autoflow_bin())
        .args(args)
        .args(["--database", &s.database])
        .arg("--data-dir")
        .arg(s.data.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs SQL `statements` on the server's database, through the store's pool.
pub(crate) fn sql(s: &Server, statements: &[&str]) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = autoflow::store::Store::connect(&s.database).await.unwrap();
        for statement in statements {
            sqlx::query(statement)
                .execute(&store.pool)
                .await
                .unwrap_or_else(|e| panic!("{statement}: {e}"));
        }
    });
}

/// The ids of the audit entries of tenant `default`, oldest first, from `after` on.
fn default_audit_ids(s: &Server) -> Vec<i64> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = autoflow::store::Store::connect(&s.database).await.unwrap();
        sqlx::query_scalar::<_, i64>(
            "SELECT a.id FROM audit_log a JOIN tenants t ON t.id = a.tenant_id WHERE t.name = 'default' ORDER BY a.id",
        )
        .fetch_all(&store.pool)
        .await
        .unwrap()
    })
}

pub(crate) fn json_body(v: Value) -> Option<(&'static str, Vec<u8>)> {
    Some(("application/json", v.to_string().into_bytes()))
}

/// Signs in as `name` from the default address; the answer.
pub(crate) fn login(s: &Server, name: &str, password: &str) -> Resp {
    s.call(
        "POST",
        "/v1/login",
        None,
        json_body(json!({ "name": name, "password": password })),
    )
}

/// The session cookie an answer sets, as a `Cookie` header value.
pub(crate) fn session_cookie(r: &Resp) -> String {
    r.headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("autoflow_session="))
        .map(|c| c.split(';').next().unwrap().to_string())
        .unwrap_or_else(|| panic!("no session cookie: {:?}", r.headers))
}

pub(crate) fn add_user(s: &Server, name: &str, role: &str) {
    let (code, out, err) = cli(
        s,
        &["user", "add", name, "--role", role, "--password-stdin"],
        &format!("{PASSWORD}\n"),
    );
    assert_eq!(code, 0, "user add: {err}");
    assert!(
        out.contains(&format!("user {name} added: {role} in default")),
        "{out}"
    );
}

const TINY: &str = "name: tiny\nsteps:\n  - id: gen\n    plugin: generator@latest\n    config: { count: 1 }\n  - id: out\n    plugin: log-sink@latest\n    input: gen\n";

fn a_user_signs_in_triggers_a_run_and_signs_out(s: &mut Server) {
    // Too short a password is refused, and nothing is made.
    let (code, _, err) = cli(
        s,
        &["user", "add", "ann", "--role", "editor", "--password-stdin"],
        "short\n",
    );
    assert_ne!(code, 0);
    assert!(err.contains("at least 12 characters"), "{err}");
    add_user(s, "ann", "editor");
    let (code, out, _) = cli(s, &["user", "list"], "");
    assert_eq!(code, 0);
    assert!(out.contains("ann\tenabled\tdefault:editor"), "{out}");
    assert_eq!(s.apply(&s.admin, "tiny", TINY).status, 201);

    let r = login(s, "ann", PASSWORD);
    assert_eq!(r.status, 200, "{}", r.text());
    let cookie = session_cookie(&r);
    let set: Vec<String> = r
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert!(
        set.iter().any(|c| c.starts_with("autoflow_session=")
            && c.contains("HttpOnly")
            && c.contains("SameSite=Lax")),
        "{set:?}"
    );
    let csrf = r.json()["csrf_token"].as_str().unwrap().to_string();
    assert_eq!(r.json()["role"], "editor");
    assert!(
        set.iter()
            .any(|c| c.starts_with(&format!("autoflow_csrf={csrf}"))),
        "{set:?}"
    );

    // Who is signed in.
    let me = s.call_with("GET", "/v1/session", None, None, &[("cookie", &cookie)]);
    assert_eq!(me.status, 200, "{}", me.text());
    assert_eq!(me.json()["user"], "ann");
    assert_eq!(me.json()["csrf_token"], csrf.as_str());

    // A run triggered with the cookie and its CSRF token.
    let trigger = |headers: &[(&str, &str)]| {
        s.call_with("POST", "/v1/pipelines/tiny/runs", None, None, headers)
    };
    let r = trigger(&[("cookie", &cookie), ("x-csrf-token", &csrf)]);
    assert_eq!(r.status, 202, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_string();
    let run = s.call_with(
        "GET",
        &format!("/v1/runs/{id}"),
        None,
        None,
        &[("cookie", &cookie)],
    );
    assert_eq!(run.status, 200);
    assert_eq!(run.json()["created_by"], "user:ann", "{}", run.text());
    // Without the CSRF token, or with another, the same request is refused.
    for headers in [
        vec![("cookie", cookie.as_str())],
        vec![("cookie", cookie.as_str()), ("x-csrf-token", "0123")],
    ] {
        let r = trigger(&headers);
        assert_eq!(r.status, 403, "{}", r.text());
        assert!(r.text().contains("CSRF"), "{}", r.text());
    }
    // An editor is not an admin, signed in or not.
    let r = s.call_with("GET", "/v1/tokens", None, None, &[("cookie", &cookie)]);
    assert_eq!(r.status, 403);
    // Bearer tokens still work beside sessions.
    let me = s.get("/v1/session").json();
    assert_eq!(
        (&me["role"], &me["tenant"]),
        (&json!("admin"), &json!("default")),
        "{me}"
    );

    // A forged cookie (a known id, another secret) and a malformed one are refused.
    let (known_id, _) = cookie.rsplit_once('_').unwrap();
    let forged = format!("{known_id}_{}", "A".repeat(43));
    for bad in [forged.as_str(), "autoflow_session=afs_nonsense"] {
        let r = s.call_with("GET", "/v1/session", None, None, &[("cookie", bad)]);
        assert_eq!(r.status, 401, "{bad}: {}", r.text());
    }

    // Sign out: the cookie is dead.
    let out = s.call_with(
        "POST",
        "/v1/logout",
        None,
        None,
        &[("cookie", &cookie), ("x-csrf-token", &csrf)],
    );
    assert_eq!(out.status, 200, "{}", out.text());
    let r = s.call_with("GET", "/v1/session", None, None, &[("cookie", &cookie)]);
    assert_eq!(r.status, 401);
    assert!(r.text().contains("session ended"), "{}", r.text());
    let r = trigger(&[("cookie", &cookie), ("x-csrf-token", &csrf)]);
    assert_eq!(r.status, 401);

    // An expired session is refused: absolute expiry, then idle expiry.
    let r = login(s, "ann", PASSWORD);
    let cookie = session_cookie(&r);
    sql(
        s,
        &["UPDATE sessions SET expires_at = 1 WHERE ended_at IS NULL"],
    );
    let r = s.call_with("GET", "/v1/session", None, None, &[("cookie", &cookie)]);
    assert_eq!(r.status, 401);
    assert!(r.text().contains("session expired"), "{}", r.text());
    let r = login(s, "ann", PASSWORD);
    let cookie = session_cookie(&r);
    sql(
        s,
        &["UPDATE sessions SET last_seen_at = 1 WHERE expires_at > 1"],
    );
    let r = s.call_with("GET", "/v1/session", None, None, &[("cookie", &cookie)]);
    assert_eq!(r.status, 401, "{}", r.text());

    // A disabled user cannot sign in, and their sessions end.
    let r = login(s, "ann", PASSWORD);
    let cookie = session_cookie(&r);
    let (code, _, err) = cli(s, &["user", "disable", "ann"], "");
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        s.call_with("GET", "/v1/session", None, None, &[("cookie", &cookie)])
            .status,
        401
    );
    assert_eq!(login(s, "ann", PASSWORD).status, 403);

    // Every change and sign-in is in the audit log, with address and user agent.
    let log = s.get("/v1/audit?limit=1000").json();
    let actions: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for a in [
        "user.create",
        "login",
        "auth.csrf",
        "logout",
        "user.disable",
        "login.failed",
    ] {
        assert!(actions.contains(&a), "{a} in {actions:?}");
    }
    let signin = log
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "login")
        .unwrap();
    assert!(
        signin["remote"].as_str().unwrap().starts_with("127.0.0.1:"),
        "{signin}"
    );
    assert!(signin["agent"].is_string() || signin["agent"].is_null());
    // No password anywhere in the log or the server's log.
    let server_log = std::fs::read_to_string(s.data.path().join("server.log")).unwrap();
    assert!(!log.to_string().contains(PASSWORD));
    assert!(!server_log.contains(PASSWORD));
}

fn users_through_the_api(s: &mut Server) {
    let body = json_body(json!({ "name": "bo", "password": PASSWORD, "role": "viewer" }));
    let r = s.call("POST", "/v1/users", Some(&s.admin), body.clone());
    assert_eq!(r.status, 201, "{}", r.text());
    assert!(!r.text().contains("argon2"), "no hash shown: {}", r.text());
    assert_eq!(
        s.call("POST", "/v1/users", Some(&s.admin), body).status,
        409
    );
    let short = json_body(json!({ "name": "cy", "password": "short", "role": "viewer" }));
    let r = s.call("POST", "/v1/users", Some(&s.admin), short);
    assert_eq!(r.status, 422);
    assert!(r.text().contains("password"), "{}", r.text());
    let list = s.get("/v1/users").json();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["admin", "bo"],
        "the first start's user and bo; cy was not half-created"
    );
    // A viewer signs in and may read, not write; promoted, the next request may write.
    let r = login(s, "bo", PASSWORD);
    let cookie = session_cookie(&r);
    let csrf = r.json()["csrf_token"].as_str().unwrap().to_string();
    let h = [("cookie", cookie.as_str()), ("x-csrf-token", csrf.as_str())];
    assert_eq!(
        s.call_with("GET", "/v1/pipelines", None, None, &h).status,
        200
    );
    assert_eq!(
        s.call_with("POST", "/v1/pipelines/demo/runs", None, None, &h)
            .status,
        403
    );
    let r = s.call(
        "PUT",
        "/v1/users/bo/role",
        Some(&s.admin),
        json_body(json!({ "role": "editor" })),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        s.call_with("POST", "/v1/pipelines/demo/runs", None, None, &h)
            .status,
        202
    );
    // A new password ends the sessions; the old password no longer works.
    let new = "another long enough password";
    let r = s.call(
        "PUT",
        "/v1/users/bo/password",
        Some(&s.admin),
        json_body(json!({ "password": new })),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        s.call_with("GET", "/v1/session", None, None, &h).status,
        401
    );
    assert_eq!(login(s, "bo", PASSWORD).status, 401);
    assert_eq!(login(s, "bo", new).status, 200);
    // Another tenant's admin sees no user of ours.
    let other = s.create_tenant("other");
    assert_eq!(
        s.call("GET", "/v1/users", Some(&other), None).json(),
        json!([])
    );
    assert_eq!(
        s.call("POST", "/v1/users/bo/disable", Some(&other), None)
            .status,
        404
    );
    // Unknown fields and bad JSON are refused.
    let r = s.call(
        "POST",
        "/v1/login",
        None,
        json_body(json!({ "name": "bo", "password": new, "x": 1 })),
    );
    assert_eq!(r.status, 400, "{}", r.text());
}

fn sign_ins_are_limited_per_address_and_per_user(s: &mut Server) {
    add_user(s, "cat", "viewer");
    let from = |ip: &str| s.from_address(ip.parse::<IpAddr>().unwrap());
    let a = from("127.0.0.2");
    let body = |password: &str| json_body(json!({ "name": "cat", "password": password }));
    for i in 0..5 {
        let r = a.call_with("POST", "/v1/login", None, body("wrong password!"), &[]);
        assert_eq!(r.status, 401, "attempt {}: {}", i + 1, r.text());
    }
    let r = a.call_with("POST", "/v1/login", None, body("wrong password!"), &[]);
    assert_eq!(r.status, 429, "the 6th: {}", r.text());
    let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    // The right password from there is refused too until the minute is over...
    assert_eq!(
        a.call_with("POST", "/v1/login", None, body(PASSWORD), &[])
            .status,
        429
    );
    // ...but from another address it works.
    let b = from("127.0.0.3");
    let r = b.call_with("POST", "/v1/login", None, body(PASSWORD), &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    // Guessing one user's password from many addresses: 20 failures a minute in all.
    for i in 0..15 {
        let c = from(&format!("127.0.1.{}", 1 + i / 5));
        let r = c.call_with("POST", "/v1/login", None, body("wrong password!"), &[]);
        assert_eq!(r.status, 401, "spread attempt {i}: {}", r.text());
    }
    let r = from("127.0.2.1").call_with("POST", "/v1/login", None, body(PASSWORD), &[]);
    assert_eq!(r.status, 429, "the user's limit: {}", r.text());
    assert!(r.text().contains("as this user"), "{}", r.text());
    // Failures are audited with their address.
    let log = s.get("/v1/audit?limit=1000").json();
    let failed: Vec<&Value> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "login.failed")
        .collect();
    assert_eq!(failed.len(), 20, "{log}");
    assert!(
        failed
            .iter()
            .any(|e| e["remote"].as_str().unwrap().starts_with("127.0.0.2:"))
    );
}

/// `autoflow audit verify`: exit status and output.
fn verify(s: &Server) -> (i32, String) {
    let (code, out, err) = cli(s, &["audit", "verify"], "");
    (code, format!("{out}{err}"))
}

fn audit_verify_names_the_first_broken_entry(s: &mut Server) {
    // Some entries: users, sign-ins, a failure.
    add_user(s, "dan", "admin");
    for _ in 0..3 {
        assert_eq!(login(s, "dan", PASSWORD).status, 200);
    }
    assert_eq!(login(s, "dan", "not the password").status, 401);
    assert_eq!(login(s, "nobody", "not the password").status, 401);
    let (code, out) = verify(s);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("audit log intact"), "{out}");
    let api = s.get("/v1/audit/verify").json();
    assert_eq!(api["ok"], true, "{api}");
    let ids = default_audit_ids(s);
    assert!(ids.len() >= 6, "{ids:?}");
    let dump = |s: &Server| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let store = autoflow::store::Store::connect(&s.database).await.unwrap();
            sqlx::query_as::<_, (i64, String, String)>(
                "SELECT id, action, COALESCE(target, '') FROM audit_log ORDER BY id",
            )
            .fetch_all(&store.pool)
            .await
            .unwrap()
        })
    };
    let broken_at = |s: &Server| -> i64 {
        let (code, out) = verify(s);
        assert_ne!(code, 0, "a broken chain fails: {out}");
        let api = s.get("/v1/audit/verify").json();
        assert_eq!(api["ok"], false, "{api}");
        let id = api["broken"]["id"].as_i64().unwrap();
        assert!(
            out.contains(&format!("broken at entry {id} (tenant default)")),
            "the CLI names entry {id} as the API does: {out}\n{:?}",
            dump(s)
        );
        id
    };

    // 1. Alter one row: that row is named.
    let altered = ids[2];
    sql(
        s,
        &[&format!(
            "UPDATE audit_log SET detail = 'nothing to see' WHERE id = {altered}"
        )],
    );
    assert_eq!(broken_at(s), altered);
    let (_, out) = verify(s);
    assert!(out.contains("was changed"), "{out}");
    sql(
        s,
        &[&format!("DELETE FROM audit_log WHERE id <= {altered}")],
    );
    // (The chain now starts at a later entry that links to a deleted one: named.)
    assert_eq!(broken_at(s), ids[3]);

    // 2. Delete one row in the middle: the entry after it is named.
    let s2 = fresh_server(s);
    let ids = default_audit_ids(&s2);
    let deleted = ids[3];
    sql(
        &s2,
        &[&format!("DELETE FROM audit_log WHERE id = {deleted}")],
    );
    assert_eq!(broken_at(&s2), ids[4]);
    let (_, out) = verify(&s2);
    assert!(out.contains("deleted, inserted or moved"), "{out}");

    // 3. Swap two rows (their contents change places): the first of them is named.
    let s3 = fresh_server(&s2);
    let ids = default_audit_ids(&s3);
    let (x, y) = (ids[2], ids[4]);
    let cols =
        "tenant_id, at, actor, action, target, remote, agent, detail, count, prev_hash, hash";
    sql(
        &s3,
        &[
            &format!(
                "CREATE TABLE swap_tmp AS SELECT id, {cols} FROM audit_log WHERE id IN ({x}, {y})"
            ),
            &format!(
                "UPDATE audit_log SET (tenant_id, at, actor, action, target, remote, agent, detail, count, prev_hash, hash) = \
                 (SELECT {cols} FROM swap_tmp WHERE swap_tmp.id = {y}) WHERE id = {x}"
            ),
            &format!(
                "UPDATE audit_log SET (tenant_id, at, actor, action, target, remote, agent, detail, count, prev_hash, hash) = \
                 (SELECT {cols} FROM swap_tmp WHERE swap_tmp.id = {x}) WHERE id = {y}"
            ),
            "DROP TABLE swap_tmp",
        ],
    );
    assert_eq!(broken_at(&s3), x);
}

/// The head lines `autoflow audit verify` prints (each chain's newest hash).
fn printed_heads(s: &Server) -> Vec<String> {
    let (code, out) = verify(s);
    assert_eq!(code, 0, "{out}");
    out.lines()
        .filter(|l| l.starts_with("head\t"))
        .map(str::to_string)
        .collect()
}

/// `--audit-heads FILE` keeps each chain's head outside the database; removing the newest
/// entries leaves a whole chain, which `audit verify` alone passes, but `--heads FILE` names
/// the kept head that is gone.
fn kept_heads_show_newest_entries_removed(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("heads.txt");
    let file_arg = file.to_str().unwrap();
    let Some(mut s2) = Server::start_with(
        backend,
        &["--audit-heads", file_arg, "--audit-heads-secs", "1"],
    ) else {
        return;
    };
    add_user(&s2, "fay", "admin");
    for _ in 0..3 {
        assert_eq!(login(&s2, "fay", PASSWORD).status, 200);
    }
    // Each head the chain has now is kept in the file (with its time) within a few seconds.
    let heads = printed_heads(&s2);
    assert!(!heads.is_empty());
    wait_for(Duration::from_secs(20), "the heads in the file", || {
        let kept = std::fs::read_to_string(&file).unwrap_or_default();
        heads
            .iter()
            .all(|h| kept.lines().any(|l| l.starts_with(&format!("{h}\t"))))
    });
    let (code, out, err) = cli(&s2, &["audit", "verify", "--heads", file_arg], "");
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!(
            "kept heads in {file_arg} all found in their chains"
        )),
        "{out}"
    );

    // The newest entry of tenant default removed by hand, with the server stopped: the chain is
    // still whole, but the kept head is gone from it.
    s2.kill();
    let newest = *default_audit_ids(&s2).last().unwrap();
    sql(
        &s2,
        &[&format!("DELETE FROM audit_log WHERE id = {newest}")],
    );
    assert_eq!(verify(&s2).0, 0, "the chain alone looks whole");
    let (code, out, err) = cli(&s2, &["audit", "verify", "--heads", file_arg], "");
    assert_ne!(code, 0, "{out}");
    let kept = std::fs::read_to_string(&file).unwrap();
    let line = kept.lines().count();
    assert!(
        err.contains(&format!("lost a kept head: {file_arg} line {line} keeps "))
            && err.contains("for tenant default, which is not in that chain"),
        "{err}\n{kept}"
    );

    // A malformed head line is named with its line.
    std::fs::write(&file, format!("{kept}head\t-\tnot-a-hash\n")).unwrap();
    let (code, _, err) = cli(&s2, &["audit", "verify", "--heads", file_arg], "");
    assert_ne!(code, 0);
    assert!(
        err.contains(&format!(
            "line {}: \"not-a-hash\" is not a sha256 hash",
            line + 1
        )),
        "{err}"
    );
}

#[test]
fn kept_audit_heads_show_newest_entries_removed_on_sqlite() {
    kept_heads_show_newest_entries_removed(Backend::Sqlite);
}

#[test]
fn kept_audit_heads_show_newest_entries_removed_on_postgres() {
    kept_heads_show_newest_entries_removed(Backend::Postgres);
}

/// The first start makes user `admin` with a generated password, written to the data dir
/// (owner-only), which signs in as the default tenant's admin; a restart makes no other.
fn the_first_start_makes_a_user_who_signs_in(s: &mut Server) {
    let path = s.data.path().join("admin-password");
    let password = std::fs::read_to_string(&path).unwrap().trim().to_string();
    assert!(password.len() >= 12, "{password:?}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert_eq!(login(s, "admin", "not the password at all").status, 401);
    let r = login(s, "admin", &password);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["role"], "admin");
    assert_eq!(r.json()["tenant"], "default");
    s.restart();
    let (code, out, _) = cli(s, &["user", "list"], "");
    assert_eq!(code, 0);
    assert_eq!(
        out.lines().filter(|l| l.starts_with("admin\t")).count(),
        1,
        "{out}"
    );
    assert_eq!(
        std::fs::read_to_string(&path).unwrap().trim(),
        password,
        "a restart keeps the first password"
    );
    assert_eq!(login(s, "admin", &password).status, 200);
}

/// A fresh server of the same backend with a few audited changes (the scenario's own is
/// broken for good).
fn fresh_server(s: &Server) -> Server {
    let fresh = Server::start(s.backend).unwrap();
    add_user(&fresh, "eve", "admin");
    for _ in 0..3 {
        assert_eq!(login(&fresh, "eve", PASSWORD).status, 200);
    }
    assert_eq!(verify(&fresh).0, 0);
    fresh
}

autoflow_tests::on_both_databases!(
    a_user_signs_in_triggers_a_run_and_signs_out,
    users_through_the_api,
    sign_ins_are_limited_per_address_and_per_user,
    audit_verify_names_the_first_broken_entry,
    the_first_start_makes_a_user_who_signs_in,
);
