//! A server whose embedded SQLite database fills its disk while runs are triggered and
//! running: every run acknowledged with 202 exists after a restart (and runs), a refusal is
//! 507 naming the full disk, `/healthz` says so, no connection keeps the write lock, and the
//! server recovers by itself once space is back.
//!
//! The disk is a small tmpfs the test mounts (it needs root) and unmounts. Without root or
//! `mount` the test prints a note and passes, unless `AUTOFLOW_REQUIRE_SERVICES=1`.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use autoflow_tests::server::{Backend, Server, wait_for};

/// A tmpfs mounted for the test's life.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size_mb: u32) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_mb}m"), "tmpfs"])
            .arg(dir.path())
            .output();
        match mounted {
            Ok(o) if o.status.success() => Some(Tmpfs { dir }),
            other => {
                let why = match other {
                    Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_string(),
                    Err(e) => e.to_string(),
                };
                if std::env::var("AUTOFLOW_REQUIRE_SERVICES").as_deref() == Ok("1") {
                    panic!("cannot mount a tmpfs (the disk-full test needs root): {why}");
                }
                eprintln!("note: skipping the disk-full test: cannot mount a tmpfs: {why}");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Fills the file system under `dir` with one file, until not one more byte fits.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    for chunk in [1 << 20, 4096, 1] {
        let buf = vec![0u8; chunk];
        while f.write_all(&buf).is_ok() {}
    }
    let _ = f.sync_all();
    path
}

/// Runs `sql` on the server's SQLite file from outside the server, with a short busy timeout.
fn outside(db: &Path, sql: &str) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use sqlx::{ConnectOptions, Connection};
        let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(db)
            .busy_timeout(Duration::from_secs(2))
            .connect()
            .await
            .map_err(|e| e.to_string())?;
        sqlx::raw_sql(sql)
            .execute(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        conn.close().await.map_err(|e| e.to_string())
    })
}

/// One trigger's answer: the run id for a 202, else the status and body.
fn trigger(s: &Server) -> Result<String, (u16, serde_json::Value)> {
    let r = s.call("POST", "/v1/pipelines/demo/runs", Some(&s.admin), None);
    match r.status {
        202 => Ok(r.json()["id"].as_str().unwrap().to_string()),
        status => Err((status, r.json())),
    }
}

#[test]
fn a_full_disk_loses_no_acknowledged_run_and_the_server_recovers() {
    let Some(disk) = Tmpfs::mount(256) else {
        return;
    };
    let data = tempfile::tempdir_in(disk.path()).unwrap();
    let db = data.path().join("autoflow.db");
    let mut s = Server::start_in(Backend::Sqlite, data, &[]).unwrap();
    assert_eq!(s.call("GET", "/healthz", None, None).status, 200);
    let mut acknowledged: Vec<String> = (0..5).map(|_| trigger(&s).unwrap()).collect();
    for id in &acknowledged {
        assert_eq!(s.wait_run(&s.admin, id)["status"], "succeeded");
    }

    // The write-ahead log emptied, then not one byte left: the next commits need space.
    outside(&db, "PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
    let filler = fill(disk.path());

    // Triggers from four clients while the accepted runs run and end (their ends, heartbeats
    // and log lines are writes too), until the full disk has refused some.
    let answers = Arc::new(Mutex::new(Vec::new()));
    std::thread::scope(|scope| {
        for _ in 0..4 {
            let (s, answers) = (&s, answers.clone());
            scope.spawn(move || {
                for _ in 0..15 {
                    let answer = trigger(s);
                    answers.lock().unwrap().push(answer);
                }
            });
        }
    });
    let answers = std::mem::take(&mut *answers.lock().unwrap());
    let mut refused = 0;
    for answer in answers {
        match answer {
            Ok(id) => acknowledged.push(id),
            Err((status, body)) => {
                assert_eq!(status, 507, "a trigger on a full disk: {body}");
                assert_eq!(body["error"], "insufficient_storage", "{body}");
                assert!(
                    body["message"].as_str().unwrap().contains("disk is full"),
                    "{body}"
                );
                refused += 1;
            }
        }
    }
    assert!(
        refused > 0,
        "the full disk refused no trigger: the test did not fill it"
    );
    wait_for(
        Duration::from_secs(60),
        "/healthz to report the full disk",
        || {
            let r = s.call("GET", "/healthz", None, None);
            r.status == 507 && r.text().contains("disk is full")
        },
    );

    // Space is back: the server recovers by itself, and no connection of it holds the lock.
    std::fs::remove_file(&filler).unwrap();
    wait_for(Duration::from_secs(30), "/healthz to recover", || {
        s.call("GET", "/healthz", None, None).status == 200
    });
    outside(&db, "BEGIN IMMEDIATE; ROLLBACK").expect("an outside writer gets the write lock");
    for _ in 0..5 {
        acknowledged.push(trigger(&s).expect("a trigger once space is back"));
    }
    for id in &acknowledged {
        assert_eq!(s.wait_run(&s.admin, id)["status"], "succeeded", "run {id}");
    }

    // Every acknowledged run was committed: it is there after a kill and a restart.
    s.restart();
    for id in &acknowledged {
        let r = s.get(&format!("/v1/runs/{id}"));
        assert_eq!(
            r.status,
            200,
            "acknowledged run {id} after a restart: {}",
            r.text()
        );
        assert_eq!(r.json()["status"], "succeeded", "run {id}");
    }
    let listed = s.get("/v1/pipelines/demo/runs?limit=1000").json();
    assert!(
        listed.as_array().map_or(0, Vec::len) >= acknowledged.len(),
        "{listed}"
    );
    drop(s);
}
