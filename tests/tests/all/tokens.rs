//! Scoped tokens, and tokens of users and service accounts (issue 15), on real servers on SQLite
//! and PostgreSQL: a walker over every route of `/openapi.json` with a token of the route's own
//! scope (let through) and of another scope (refused 403 naming both); a service account's
//! token that may only trigger runs; a user's token that follows the user's role down and
//! stops when the user is disabled; a token made in a signed-in session belonging to its user;
//! and no token made with more rights than its maker's.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use serde_json::{Value, json};

use super::people::{PASSWORD, add_user, cli, json_body, login, session_cookie};
use autoflow_tests::server::{Resp, Server};

/// Makes a token through the API with `token` (`body` as `POST /v1/tokens` takes it).
fn make(s: &Server, token: &str, body: Value) -> Resp {
    s.call("POST", "/v1/tokens", Some(token), json_body(body))
}

/// A new admin token narrowed to `scopes`: its text.
fn scoped(s: &Server, scopes: &[&str]) -> String {
    let r = make(
        s,
        &s.admin,
        json!({"name": "scoped", "role": "admin", "scopes": scopes}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["token"].as_str().unwrap().to_string()
}

/// `path` with each `{param}` filled in with something of the right shape.
fn filled(path: &str) -> String {
    path.split('/')
        .map(|seg| match seg {
            "{version}" | "{id}" => "1",
            s if s.starts_with('{') => "nothing-here",
            s => s,
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Calls `method path` with `token` (an empty JSON object as the body of a write).
fn call(s: &Server, method: &str, path: &str, token: &str) -> Resp {
    let body = (method != "get").then(|| ("application/json", b"{}".to_vec()));
    s.call(&method.to_uppercase(), &filled(path), Some(token), body)
}

fn every_route_lets_its_own_scope_through_and_refuses_another(s: &mut Server) {
    let doc = s.get("/openapi.json").json();
    let mut routes: Vec<(String, String, String)> = Vec::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            if let Some(scope) = op["x-autoflow-scope"].as_str() {
                routes.push((method.clone(), path.clone(), scope.to_string()));
            }
        }
    }
    let mut scopes: Vec<String> = routes.iter().map(|r| r.2.clone()).collect();
    scopes.sort();
    scopes.dedup();
    assert!(scopes.len() >= 20, "{scopes:?}");
    for wanted in [
        "runs:trigger",
        "runs:cancel",
        "pipelines:read",
        "secrets:write",
    ] {
        assert!(scopes.iter().any(|s| s == wanted), "{wanted} in {scopes:?}");
    }
    let tokens: Vec<String> = scopes.iter().map(|sc| scoped(s, &[sc])).collect();
    let token_of = |scope: &str| &tokens[scopes.iter().position(|s| s == scope).unwrap()];
    for (method, path, scope) in &routes {
        let mine = call(s, method, path, token_of(scope));
        assert!(
            !mine.text().contains("needs scope"),
            "{method} {path} with a {scope} token: {} {}",
            mine.status,
            mine.text()
        );
        let i = scopes.iter().position(|s| s == scope).unwrap();
        let other = &scopes[(i + 1) % scopes.len()];
        let refused = call(s, method, path, token_of(other));
        assert_eq!(refused.status, 403, "{method} {path} with a {other} token");
        assert_eq!(
            refused.json()["message"],
            format!("this needs scope {scope}, and the token's scopes are: {other}"),
            "{method} {path}"
        );
    }
    // A wildcard holds every action on its resource, and nothing else.
    let pipelines = scoped(s, &["pipelines:*"]);
    assert_eq!(call(s, "get", "/v1/pipelines", &pipelines).status, 200);
    assert_eq!(
        call(s, "put", "/v1/pipelines/{name}", &pipelines).status,
        422
    );
    assert_eq!(call(s, "get", "/v1/secrets", &pipelines).status, 403);

    // An unknown scope is refused at creation, through the API and the CLI.
    let r = make(
        s,
        &s.admin,
        json!({"name": "x", "role": "viewer", "scopes": ["runs:launch"]}),
    );
    assert_eq!(r.status, 400);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .starts_with("unknown scope \"runs:launch\" (the scopes are "),
        "{}",
        r.text()
    );
    let (code, _, err) = cli(s, &["token", "create", "--scope", "runs:launch"], "");
    assert_ne!(code, 0);
    assert!(
        err.contains("--scope: unknown scope \"runs:launch\""),
        "{err}"
    );
}

fn a_service_account_token_only_triggers_runs(s: &mut Server) {
    let r = make(
        s,
        &s.admin,
        json!({"name": "nightly", "role": "editor", "scopes": ["runs:trigger", "runs:read"],
               "service_account": "etl-bot"}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let bot = r.json()["token"].as_str().unwrap().to_string();
    let info = &r.json()["info"];
    assert_eq!(info["service_account"], "etl-bot");
    assert_eq!(info["user"], Value::Null);
    assert_eq!(info["scopes"], json!(["runs:read", "runs:trigger"]));

    let run = s.call("POST", "/v1/pipelines/demo/runs", Some(&bot), None);
    assert_eq!(run.status, 202, "{}", run.text());
    let id = run.json()["id"].as_str().unwrap().to_string();
    let seen = s.call("GET", &format!("/v1/runs/{id}"), Some(&bot), None);
    assert_eq!(seen.status, 200);
    let cancel = s.call("POST", &format!("/v1/runs/{id}/cancel"), Some(&bot), None);
    assert_eq!(cancel.status, 403);
    assert_eq!(s.call("GET", "/v1/pipelines", Some(&bot), None).status, 403);

    // The list and the audit log say whose it is and what it may do.
    let list = s.get("/v1/tokens").json();
    let listed = list
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "nightly")
        .unwrap()
        .clone();
    assert_eq!(listed["service_account"], "etl-bot");
    let audit = s.get("/v1/audit?limit=1000").json();
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "token.create"
                && e["detail"]
                    == "role editor; scopes runs:read runs:trigger; service account etl-bot"),
        "{audit}"
    );
    // The CLI makes one too.
    let (code, out, err) = cli(
        s,
        &[
            "token",
            "create",
            "--role",
            "editor",
            "--service-account",
            "loader",
            "--scope",
            "plugins:read,pipelines:read",
        ],
        "",
    );
    assert_eq!(code, 0, "{err}");
    let loader = out.trim();
    assert_eq!(s.call("GET", "/v1/plugins", Some(loader), None).status, 200);
    assert_eq!(s.call("GET", "/v1/secrets", Some(loader), None).status, 403);
}

fn a_users_token_follows_the_user(s: &mut Server) {
    add_user(s, "bea", "editor");
    let (code, out, err) = cli(
        s,
        &["token", "create", "--role", "admin", "--user", "bea"],
        "",
    );
    assert_eq!(code, 0, "{err}");
    let bea = out.trim().to_string();
    // Admin on paper, editor in fact: it writes, but does not reach an admin route.
    let yaml = "name: mine\nsteps:\n  - id: gen\n    plugin: generator@latest\n    config: { count: 1 }\n  - id: out\n    plugin: log-sink@latest\n    input: gen\n";
    assert_eq!(s.apply(&bea, "mine", yaml).status, 201);
    let r = s.call("GET", "/v1/tokens", Some(&bea), None);
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["message"], "this needs the admin role");
    // Down to viewer: it reads only. Disabled: it stops.
    let (code, _, err) = cli(
        s,
        &[
            "user", "grant", "bea", "--role", "viewer", "--tenant", "default",
        ],
        "",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(s.call("GET", "/v1/pipelines", Some(&bea), None).status, 200);
    let r = s.call("POST", "/v1/pipelines/demo/runs", Some(&bea), None);
    assert_eq!(r.status, 403);
    let (code, _, err) = cli(s, &["user", "disable", "bea"], "");
    assert_eq!(code, 0, "{err}");
    let r = s.call("GET", "/v1/pipelines", Some(&bea), None);
    assert_eq!(r.status, 401);
    assert_eq!(
        r.json()["message"],
        "the token's user is disabled or has no role in its tenant"
    );
    // No such user: refused.
    let (code, _, err) = cli(s, &["token", "create", "--user", "nobody"], "");
    assert_ne!(code, 0);
    assert!(err.contains("--user: no user \"nobody\""), "{err}");
}

fn a_token_carries_at_most_its_makers_rights(s: &mut Server) {
    // Made in a signed-in session: it is the user's.
    add_user(s, "cal", "admin");
    let r = login(s, "cal", PASSWORD);
    let cookie = session_cookie(&r);
    let csrf = r.json()["csrf_token"].as_str().unwrap().to_string();
    let r = s.call_with(
        "POST",
        "/v1/tokens",
        None,
        json_body(json!({"name": "cal's", "role": "admin"})),
        &[("cookie", &cookie), ("x-csrf-token", &csrf)],
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["info"]["user"], "cal");
    let cals = r.json()["token"].as_str().unwrap().to_string();
    assert_eq!(s.call("GET", "/v1/tokens", Some(&cals), None).status, 200);

    // A narrowed token makes only tokens within its scopes; without scopes, it passes its own.
    let keeper = scoped(s, &["tokens:read", "tokens:write"]);
    let r = make(
        s,
        &keeper,
        json!({"name": "wider", "role": "viewer", "scopes": ["pipelines:read"]}),
    );
    assert_eq!(r.status, 403);
    assert_eq!(
        r.json()["message"],
        "a token carries at most its creator's rights: scope pipelines:read is not among yours (tokens:read tokens:write)"
    );
    let r = make(s, &keeper, json!({"name": "same", "role": "viewer"}));
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        r.json()["info"]["scopes"],
        json!(["tokens:read", "tokens:write"])
    );
    // Nothing was made by the refused request.
    let names: Vec<Value> = s
        .get("/v1/tokens")
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].clone())
        .collect();
    assert!(!names.contains(&json!("wider")), "{names:?}");
}

autoflow_tests::on_both_databases!(
    every_route_lets_its_own_scope_through_and_refuses_another,
    a_service_account_token_only_triggers_runs,
    a_users_token_follows_the_user,
    a_token_carries_at_most_its_makers_rights,
);
