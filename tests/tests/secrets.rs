//! Secrets on a real server, on SQLite and on PostgreSQL: a canary secret granted to a step is
//! usable by it, and its value appears nowhere else: not in any API answer, not in the run's
//! logs or errors, not in the database in clear.
// Test code: failing loudly is its job.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]
use autoflow_tests::guests;
use autoflow_tests::server::{Backend, Server};
use serde_json::{Value, json};

fn pipeline(name: &str, config: &str, secrets: &str) -> String {
    format!(
        "name: {name}\nsteps:\n  - id: gen\n    plugin: generator@latest\n    config: {{ count: 2 }}\n  \
         - id: use\n    plugin: secret-user@latest\n    input: gen\n    config: {config}\n    secrets: [{secrets}]\n  \
         - id: sink\n    plugin: log-sink@latest\n    input: use\n"
    )
}

/// Every byte of the database: the SQLite files, or each PostgreSQL table as JSON text (bytea
/// as hex).
fn database_text(s: &Server) -> Vec<u8> {
    match s.backend {
        Backend::Sqlite => {
            let mut all = Vec::new();
            for entry in std::fs::read_dir(s.data.path()).unwrap() {
                let path = entry.unwrap().path();
                if path.file_name().unwrap().to_string_lossy().starts_with("autoflow.db") {
                    all.extend(std::fs::read(&path).unwrap());
                }
            }
            assert!(!all.is_empty());
            all
        }
        Backend::Postgres => {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                use sqlx::Connection;
                let mut conn = sqlx::PgConnection::connect(&s.database).await.unwrap();
                let tables: Vec<String> =
                    sqlx::query_scalar("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'").fetch_all(&mut conn).await.unwrap();
                let mut all = Vec::new();
                for t in tables {
                    let rows: Option<String> = sqlx::query_scalar(&format!("SELECT string_agg(row_to_json(x)::text, ' ') FROM {t} x"))
                        .fetch_one(&mut conn)
                        .await
                        .unwrap();
                    all.extend(rows.unwrap_or_default().into_bytes());
                }
                all
            })
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn a_canary_secret_is_usable_and_appears_nowhere_else(s: &mut Server) {
    let canary = format!("canary-{}", autoflow::store::random_hex(12));
    let r = s.push(&s.admin, "secret-user", "1.0.0", std::fs::read(guests::SECRET_USER).unwrap());
    assert_eq!(r.status, 201, "{}", r.text());
    let put = s.call("PUT", "/v1/secrets/canary", Some(&s.admin), Some(("application/json", json!({ "value": canary }).to_string().into_bytes())));
    assert_eq!(put.status, 200, "{}", put.text());
    let mut answers = vec![put.text()];
    // Used by the step it is granted to.
    assert_eq!(s.apply(&s.admin, "uses", &pipeline("uses", "{}", "canary")).status, 201);
    let run = s.run_and_wait(&s.admin, "uses", None);
    assert_eq!(run["status"], "succeeded", "{run}");
    let id = run["id"].as_str().unwrap();
    let logs = s.get(&format!("/v1/runs/{id}/logs"));
    let lines: Vec<Value> = logs.json().as_array().unwrap().clone();
    let sunk: Vec<&str> = lines.iter().filter(|l| l["step"] == "sink").map(|l| l["message"].as_str().unwrap()).collect();
    let expected = format!("{{\"len\":{}}}", canary.len());
    assert_eq!(sunk, [expected.as_str(), expected.as_str()]);
    assert!(lines.iter().any(|l| l["step"] == "use" && l["message"] == "using the secret [secret]"), "{lines:?}");
    answers.push(logs.text());
    answers.push(run.to_string());
    // A plugin error naming it is redacted in the run's error and report.
    assert_eq!(s.apply(&s.admin, "leaks", &pipeline("leaks", "{ fail: true }", "canary")).status, 201);
    let failed = s.run_and_wait(&s.admin, "leaks", None);
    assert_eq!(failed["status"], "failed");
    assert!(failed["error"].as_str().unwrap().contains("the server refused the token [secret]"), "{failed}");
    answers.push(failed.to_string());
    answers.push(s.get(&format!("/v1/runs/{}/logs", failed["id"].as_str().unwrap())).text());
    // A secret that is not set fails the run before it starts, saying which.
    assert_eq!(s.apply(&s.admin, "unset", &pipeline("unset", "{}", "canary, missing")).status, 201);
    let unset = s.run_and_wait(&s.admin, "unset", None);
    assert!(unset["error"].as_str().unwrap().contains("step \"use\": secret \"missing\" is not set"), "{unset}");
    // Listed by name only; editors may list, viewers may not; only admins set them.
    let (viewer, _) = s.create_token(&s.admin, "viewer", None);
    let (editor, _) = s.create_token(&s.admin, "editor", None);
    let listed = s.call("GET", "/v1/secrets", Some(&editor), None);
    assert_eq!(listed.json()[0]["name"], "canary", "{}", listed.text());
    answers.push(listed.text());
    assert_eq!(s.call("GET", "/v1/secrets", Some(&viewer), None).status, 403);
    let body = Some(("application/json", br#"{"value": "x"}"#.to_vec()));
    assert_eq!(s.call("PUT", "/v1/secrets/other", Some(&editor), body).status, 403);
    let other_tenant = s.create_tenant("elsewhere");
    assert_eq!(s.call("GET", "/v1/secrets", Some(&other_tenant), None).json(), json!([]));
    for path in ["/v1/audit?limit=1000", "/v1/pipelines/uses", "/v1/pipelines/uses/checkpoints", &format!("/v1/runs/{id}/attempts")] {
        answers.push(s.get(path).text());
    }
    for text in &answers {
        assert!(!text.contains(&canary), "the canary leaked: {text}");
    }
    // Not in the database in clear (nor as hex).
    let db = database_text(s);
    assert!(!contains(&db, canary.as_bytes()), "the canary is in the database in clear");
    let hex: String = canary.bytes().map(|b| format!("{b:02x}")).collect();
    assert!(!contains(&db, hex.as_bytes()));
    // Deleted: gone from the list, and runs needing it fail.
    assert_eq!(s.call("DELETE", "/v1/secrets/canary", Some(&s.admin), None).status, 200);
    assert_eq!(s.call("GET", "/v1/secrets", Some(&s.admin), None).json(), json!([]));
    assert_eq!(s.run_and_wait(&s.admin, "uses", None)["status"], "failed");
    // The master key was created with the data dir, readable by its owner only.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(s.data.path().join("master.key")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

autoflow_tests::on_both_databases!(a_canary_secret_is_usable_and_appears_nowhere_else);
