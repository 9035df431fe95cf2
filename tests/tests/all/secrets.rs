//! Secrets on a real server, on SQLite and on PostgreSQL: a canary secret granted to a step is
//! usable by it, and its value appears nowhere else: not in any API answer, not in the run's
//! logs or errors, not in the database in clear, not even where a plugin kept it (its step
//! state, its dead letters), which it gets back intact; and such plugin data, sealed for its
//! tenant, pipeline and step, does not open anywhere else.
// Test code: failing loudly is its job.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]
use autoflow_tests::guests;
use autoflow_tests::server::{Backend, Server};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

fn pipeline(name: &str, config: &str, secrets: &str) -> String {
    format!(
        "name: {name}\nsteps:\n  - id: gen\n    plugin: generator@latest\n    config: {{ count: 2 }}\n  \
         - id: use\n    plugin: secret-user@latest\n    input: gen\n    config: {config}\n    secrets: [{secrets}]\n  \
         - id: sink\n    plugin: log-sink@latest\n    input: use\n"
    )
}

/// A pipeline whose step `keep` keeps the granted canary in its state and passes it on to
/// `refuse`, which rejects every record (naming it): state and dead letters holding the secret.
fn keeping(count: u32) -> String {
    format!(
        "name: keeps\nsteps:\n  - id: gen\n    plugin: generator@latest\n    config: {{ count: {count} }}\n  \
         - id: keep\n    plugin: secret-user@latest\n    input: gen\n    config: {{ keep: true }}\n    secrets: [canary]\n  \
         - id: refuse\n    plugin: secret-user@latest\n    input: keep\n    config: {{ refuse: true }}\n    secrets: [canary]\n  \
         - id: sink\n    plugin: log-sink@latest\n    input: refuse\n"
    )
}

/// Sets up secret-user, the canary secret and pipeline `keeps` (two records); the canary.
fn with_keeping(s: &Server) -> String {
    let canary = format!("canary-{}", autoflow::store::random_hex(12));
    let r = s.push(
        &s.admin,
        "secret-user",
        "1.0.0",
        std::fs::read(guests::SECRET_USER).unwrap(),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let put = s.call(
        "PUT",
        "/v1/secrets/canary",
        Some(&s.admin),
        Some((
            "application/json",
            json!({ "value": canary }).to_string().into_bytes(),
        )),
    );
    assert_eq!(put.status, 200, "{}", put.text());
    assert_eq!(s.apply(&s.admin, "keeps", &keeping(2)).status, 201);
    canary
}

/// The checkpoint of step `step` of pipeline `keeps`, as the API shows it.
fn checkpoint_of(s: &Server, step: &str) -> Value {
    let all = s.get("/v1/pipelines/keeps/checkpoints");
    assert_eq!(all.status, 200, "{}", all.text());
    all.json()
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["step"] == step)
        .cloned()
        .unwrap_or_else(|| panic!("no checkpoint of {step}: {}", all.text()))
}

/// The dead letters of run `id`, as the API shows them.
fn letters_of(s: &Server, id: &str) -> Vec<Value> {
    let r = s.get(&format!("/v1/runs/{id}/dead-letters"));
    assert_eq!(r.status, 200, "{}", r.text());
    r.json().as_array().unwrap().clone()
}

/// Whether every dead letter of run `id` shows the canary redacted in its record, headers and
/// reason, with `kept` (whether the step got its state back holding the secret), and says that
/// the record the step was given held the secret.
fn redacted_letters(s: &Server, id: &str, kept: bool) -> Vec<Value> {
    let letters = letters_of(s, id);
    assert_eq!(letters.len(), 2, "{letters:?}");
    for d in &letters {
        assert_eq!(d["step"], "refuse", "{d}");
        assert_eq!(
            d["value"],
            json!({ "token": "[secret]", "kept": kept }),
            "{d}"
        );
        assert_eq!(d["headers"], json!([["token", "[secret]"]]), "{d}");
        assert_eq!(
            d["reason"], "refused the token [secret]: the record holds the secret",
            "{d}"
        );
    }
    letters
}

/// Runs SQL `statements` on the server's database (where the server is running), through the
/// store's pool.
fn sql(s: &Server, statements: &[&str]) {
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

/// A number the database answers to `query`.
fn count(s: &Server, query: &str) -> i64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = autoflow::store::Store::connect(&s.database).await.unwrap();
        sqlx::query_scalar::<_, i64>(query)
            .fetch_one(&store.pool)
            .await
            .unwrap_or_else(|e| panic!("{query}: {e}"))
    })
}

/// Every byte of the database: the SQLite files, or each PostgreSQL table as JSON text (bytea
/// as hex).
fn database_text(s: &Server) -> Vec<u8> {
    match s.backend {
        Backend::Sqlite => {
            let mut all = Vec::new();
            for entry in std::fs::read_dir(s.data.path()).unwrap() {
                let path = entry.unwrap().path();
                if path
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("autoflow.db")
                {
                    all.extend(std::fs::read(&path).unwrap());
                }
            }
            assert!(!all.is_empty());
            all
        }
        Backend::Postgres => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                use sqlx::Connection;
                let mut conn = sqlx::PgConnection::connect(&s.database).await.unwrap();
                let tables: Vec<String> = sqlx::query_scalar(
                    "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'",
                )
                .fetch_all(&mut conn)
                .await
                .unwrap();
                let mut all = Vec::new();
                for t in tables {
                    let rows: Option<String> = sqlx::query_scalar(&format!(
                        "SELECT string_agg(row_to_json(x)::text, ' ') FROM {t} x"
                    ))
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
    let r = s.push(
        &s.admin,
        "secret-user",
        "1.0.0",
        std::fs::read(guests::SECRET_USER).unwrap(),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let put = s.call(
        "PUT",
        "/v1/secrets/canary",
        Some(&s.admin),
        Some((
            "application/json",
            json!({ "value": canary }).to_string().into_bytes(),
        )),
    );
    assert_eq!(put.status, 200, "{}", put.text());
    let mut answers = vec![put.text()];
    // Used by the step it is granted to.
    assert_eq!(
        s.apply(&s.admin, "uses", &pipeline("uses", "{}", "canary"))
            .status,
        201
    );
    let run = s.run_and_wait(&s.admin, "uses", None);
    assert_eq!(run["status"], "succeeded", "{run}");
    let id = run["id"].as_str().unwrap();
    let logs = s.get(&format!("/v1/runs/{id}/logs"));
    let lines: Vec<Value> = logs.json().as_array().unwrap().clone();
    let sunk: Vec<&str> = lines
        .iter()
        .filter(|l| l["step"] == "sink")
        .map(|l| l["message"].as_str().unwrap())
        .collect();
    let expected = format!("{{\"len\":{}}}", canary.len());
    assert_eq!(sunk, [expected.as_str(), expected.as_str()]);
    assert!(
        lines
            .iter()
            .any(|l| l["step"] == "use" && l["message"] == "using the secret [secret]"),
        "{lines:?}"
    );
    answers.push(logs.text());
    answers.push(run.to_string());
    // A plugin error naming it is redacted in the run's error and report.
    assert_eq!(
        s.apply(
            &s.admin,
            "leaks",
            &pipeline("leaks", "{ fail: true }", "canary")
        )
        .status,
        201
    );
    let failed = s.run_and_wait(&s.admin, "leaks", None);
    assert_eq!(failed["status"], "failed");
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("the server refused the token [secret]"),
        "{failed}"
    );
    answers.push(failed.to_string());
    answers.push(
        s.get(&format!("/v1/runs/{}/logs", failed["id"].as_str().unwrap()))
            .text(),
    );
    // A secret that is not set fails the run before it starts, saying which.
    assert_eq!(
        s.apply(
            &s.admin,
            "unset",
            &pipeline("unset", "{}", "canary, missing")
        )
        .status,
        201
    );
    let unset = s.run_and_wait(&s.admin, "unset", None);
    assert!(
        unset["error"]
            .as_str()
            .unwrap()
            .contains("step \"use\": secret \"missing\" is not set"),
        "{unset}"
    );
    // Listed by name only; editors may list, viewers may not; only admins set them.
    let (viewer, _) = s.create_token(&s.admin, "viewer", None);
    let (editor, _) = s.create_token(&s.admin, "editor", None);
    let listed = s.call("GET", "/v1/secrets", Some(&editor), None);
    assert_eq!(listed.json()[0]["name"], "canary", "{}", listed.text());
    answers.push(listed.text());
    assert_eq!(
        s.call("GET", "/v1/secrets", Some(&viewer), None).status,
        403
    );
    let body = Some(("application/json", br#"{"value": "x"}"#.to_vec()));
    assert_eq!(
        s.call("PUT", "/v1/secrets/other", Some(&editor), body)
            .status,
        403
    );
    let other_tenant = s.create_tenant("elsewhere");
    assert_eq!(
        s.call("GET", "/v1/secrets", Some(&other_tenant), None)
            .json(),
        json!([])
    );
    // Kept by a plugin in its step state and passed on into dead letters: what the API shows
    // of them is redacted, and the plugin gets its state back intact on the next run.
    assert_eq!(s.apply(&s.admin, "keeps", &keeping(2)).status, 201);
    let first = s.run_and_wait(&s.admin, "keeps", None);
    assert_eq!(first["status"], "succeeded", "{first}");
    let keep = checkpoint_of(s, "keep");
    assert_eq!(
        keep["state"]["token"],
        STANDARD.encode("[secret]"),
        "{keep}"
    );
    redacted_letters(s, first["id"].as_str().unwrap(), false);
    assert_eq!(
        s.apply(&s.admin, "keeps", &keeping(4)).status,
        201,
        "two more records"
    );
    let second = s.run_and_wait(&s.admin, "keeps", None);
    assert_eq!(second["status"], "succeeded", "{second}");
    redacted_letters(s, second["id"].as_str().unwrap(), true);
    let all = s.get("/v1/pipelines/keeps/dead-letters");
    assert_eq!(all.json().as_array().unwrap().len(), 4, "{}", all.text());
    assert!(
        !all.text().contains(&STANDARD.encode(&canary)),
        "{}",
        all.text()
    );
    answers.push(all.text());
    // A replay hands the refusing step its records intact.
    let r = s.call(
        "POST",
        "/v1/pipelines/keeps/dead-letters/replay",
        Some(&s.admin),
        Some(("application/json", b"{}".to_vec())),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let replayed = s.wait_run(&s.admin, r.json()["id"].as_str().unwrap());
    assert_eq!(
        letters_of(s, replayed["id"].as_str().unwrap()).len(),
        4,
        "{replayed}"
    );
    assert!(
        letters_of(s, replayed["id"].as_str().unwrap())
            .iter()
            .all(|d| d["reason"] == "refused the token [secret]: the record holds the secret")
    );
    answers.push(
        s.get(&format!(
            "/v1/runs/{}/dead-letters",
            replayed["id"].as_str().unwrap()
        ))
        .text(),
    );
    for path in [
        "/v1/audit?limit=1000",
        "/v1/pipelines/uses",
        "/v1/pipelines/uses/checkpoints",
        "/v1/pipelines/keeps/checkpoints",
        &format!("/v1/runs/{id}/attempts"),
        &format!("/v1/runs/{}", second["id"].as_str().unwrap()),
        &format!("/v1/runs/{}/logs", second["id"].as_str().unwrap()),
    ] {
        answers.push(s.get(path).text());
    }
    for text in &answers {
        assert!(!text.contains(&canary), "the canary leaked: {text}");
    }
    // Not in the database in clear (nor as hex, nor as the base64 that plain step state had),
    // and no row of plugin data is plain.
    let db = database_text(s);
    assert!(
        !contains(&db, canary.as_bytes()),
        "the canary is in the database in clear"
    );
    let hex: String = canary.bytes().map(|b| format!("{b:02x}")).collect();
    assert!(!contains(&db, hex.as_bytes()));
    assert!(
        !contains(&db, STANDARD.encode(&canary).as_bytes()),
        "the canary's state is in the database in base64"
    );
    assert_eq!(
        count(
            s,
            "SELECT COUNT(*) FROM checkpoints WHERE sealed IS NULL OR state <> '{}' OR cursor IS NOT NULL"
        ),
        0
    );
    assert_eq!(
        count(
            s,
            "SELECT COUNT(*) FROM dead_letters WHERE sealed IS NULL OR headers <> '[]' OR record_key IS NOT NULL"
        ),
        0
    );
    // Deleted: gone from the list, and runs needing it fail.
    assert_eq!(
        s.call("DELETE", "/v1/secrets/canary", Some(&s.admin), None)
            .status,
        200
    );
    assert_eq!(
        s.call("GET", "/v1/secrets", Some(&s.admin), None).json(),
        json!([])
    );
    assert_eq!(s.run_and_wait(&s.admin, "uses", None)["status"], "failed");
    // The master key was created with the data dir, readable by its owner only.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(s.data.path().join("master.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

/// Plugin data sealed for one step does not open as another's: the listing fails and so does
/// the next run, saying which row; rows from before sealing (plain) still read, redacted, are
/// handed back intact, and are sealed when written again; a worker with another master key
/// does not start.
fn sealed_plugin_data_opens_only_where_it_was_written(s: &mut Server) {
    let canary = with_keeping(s);
    let first = s.run_and_wait(&s.admin, "keeps", None);
    assert_eq!(first["status"], "succeeded", "{first}");
    let first_id = first["id"].as_str().unwrap();
    let source = first["report"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|st| st["id"] == "gen")
        .unwrap()
        .clone();
    assert!(
        source.get("cursor").is_none(),
        "a cursor is kept in its sealed checkpoint, not in the report: {source}"
    );
    // Rows as they were written before sealing: a plain state, a plain dead letter.
    let plain_state = json!({ "token": STANDARD.encode(&canary) }).to_string();
    let plain_record = json!({ "token": canary, "kept": false }).to_string();
    let headers = json!([["token", canary]]).to_string();
    sql(
        s,
        &[
            &format!(
                "UPDATE checkpoints SET sealed = NULL, state = '{plain_state}' WHERE step_id = 'keep'"
            ),
            &format!(
                "UPDATE dead_letters SET sealed = NULL, record_value = {}, headers = '{headers}' WHERE id = (SELECT MIN(id) FROM dead_letters)",
                bytes_literal(s, plain_record.as_bytes())
            ),
        ],
    );
    assert_eq!(
        checkpoint_of(s, "keep")["state"]["token"],
        STANDARD.encode("[secret]")
    );
    redacted_letters(s, first_id, false);
    assert_eq!(s.apply(&s.admin, "keeps", &keeping(4)).status, 201);
    let second = s.run_and_wait(&s.admin, "keeps", None);
    assert_eq!(second["status"], "succeeded", "{second}");
    redacted_letters(s, second["id"].as_str().unwrap(), true);
    assert_eq!(
        count(
            s,
            "SELECT COUNT(*) FROM checkpoints WHERE step_id = 'keep' AND sealed IS NOT NULL AND state = '{}'"
        ),
        1,
        "sealed again"
    );
    // Step keep's sealed state moved to step gen's row: it does not open there.
    sql(
        s,
        &[
            "UPDATE checkpoints SET sealed = (SELECT c.sealed FROM checkpoints c WHERE c.step_id = 'keep') WHERE step_id = 'gen'",
        ],
    );
    let listed = s.get("/v1/pipelines/keeps/checkpoints");
    assert_eq!(listed.status, 500, "{}", listed.text());
    assert!(!listed.text().contains(&canary));
    let refused = s.run_and_wait(&s.admin, "keeps", None);
    assert_eq!(refused["status"], "failed", "{refused}");
    let error = refused["error"].as_str().unwrap();
    assert!(
        error.contains("the checkpoint of step \"gen\" of pipeline \"keeps\" does not open with this server's master key"),
        "{error}"
    );
    // A dead letter of step refuse, said to be step keep's, or another run's: neither opens.
    sql(
        s,
        &[&format!(
            "UPDATE dead_letters SET step_id = 'keep' WHERE id = (SELECT MAX(id) FROM dead_letters WHERE run_id = '{first_id}')"
        )],
    );
    let listed = s.get(&format!("/v1/runs/{first_id}/dead-letters"));
    assert_eq!(listed.status, 500, "{}", listed.text());
    sql(
        s,
        &[&format!(
            "UPDATE dead_letters SET step_id = 'refuse', run_id = '{}' WHERE step_id = 'keep'",
            second["id"].as_str().unwrap()
        )],
    );
    assert_eq!(s.get("/v1/pipelines/keeps/dead-letters").status, 500);
    // A worker given another master key refuses to start, rather than seal what no one else opens.
    let elsewhere = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(autoflow_tests::autoflow_bin())
        .args(["worker", "--database", &s.database])
        .arg("--data-dir")
        .arg(elsewhere.path())
        .env("AUTOFLOW_MASTER_KEY", STANDARD.encode([7u8; 32]))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("is not the one this database's secrets, step state and dead letters are sealed with"), "{stderr}");
    let log = std::fs::read_to_string(s.data.path().join("server.log")).unwrap();
    assert!(
        log.contains(&format!(
            "the dead letter of step \"refuse\" of run {} of pipeline \"keeps\" does not open",
            second["id"].as_str().unwrap()
        )),
        "{log}"
    );
    assert!(!log.contains(&canary), "{log}");
}

/// `bytes` as an SQL literal of the server's database.
fn bytes_literal(s: &Server, bytes: &[u8]) -> String {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    match s.backend {
        Backend::Sqlite => format!("X'{hex}'"),
        Backend::Postgres => format!("'\\x{hex}'::bytea"),
    }
}

autoflow_tests::on_both_databases!(
    a_canary_secret_is_usable_and_appears_nowhere_else,
    sealed_plugin_data_opens_only_where_it_was_written
);
