//! Backfills against real server processes on both databases: 48 hourly slots with
//! concurrency 4 give 48 runs, never more than 4 queued or running at once (from the runs'
//! own times), each with its slot's time as its `slot` parameter, seen in its sink's log; the
//! same range again skips every slot that succeeded; a backfill cancelled stops queueing and
//! cancels its runs; the CLI's `pipeline backfill --wait` runs a range by dates; bad ranges
//! are 422s that name the field.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use std::time::Duration;

use autoflow_tests::server::{Server, wait_for};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(300);

/// An hourly pipeline whose sink logs each record after its run's `slot` (the generator's one
/// record, resumed from its cursor, is read by the first run only).
const HOURLY: &str = "name: hourly\nschedule: { cron: \"0 0 * * * *\", timezone: UTC }\n\
    params:\n  slot: { type: string, default: \"\" }\n\
    steps:\n  - id: gen\n    plugin: generator@latest\n    config: { count: 1 }\n  \
    - id: sink\n    plugin: log-sink@latest\n    input: gen\n    config: { prefix: \"${params.slot} \" }\n";

fn backfill(s: &Server, pipeline: &str, body: Value) -> autoflow_tests::server::Resp {
    s.call(
        "POST",
        &format!("/v1/pipelines/{pipeline}/backfills"),
        Some(&s.admin),
        Some(("application/json", body.to_string().into_bytes())),
    )
}

/// Waits for backfill `id` to end; it as shown then.
fn wait_backfill(s: &Server, id: &str, max_active: i64) -> Value {
    let mut b = Value::Null;
    wait_for(WAIT, &format!("backfill {id} to end"), || {
        b = s.get(&format!("/v1/backfills/{id}")).json();
        let p = &b["progress"];
        let active = p["queued"].as_i64().unwrap() + p["running"].as_i64().unwrap();
        assert!(active <= max_active, "{b}");
        b["status"] != "running"
    });
    b
}

/// The pipeline's runs queued by a backfill, oldest first.
fn backfill_runs(s: &Server) -> Vec<Value> {
    let runs = s.get("/v1/pipelines/hourly/runs?limit=500").json();
    let mut runs: Vec<Value> = runs
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["trigger"] == "backfill")
        .cloned()
        .collect();
    runs.sort_by_key(|r| r["created_at"].as_i64().unwrap());
    runs
}

/// The most runs queued or running at one instant, from their own times.
fn most_at_once(runs: &[Value]) -> usize {
    let mut edges: Vec<(i64, i32)> = Vec::new();
    for r in runs {
        edges.push((r["created_at"].as_i64().unwrap(), 1));
        edges.push((r["finished_at"].as_i64().unwrap(), -1));
    }
    // An end and a start at the same millisecond: the end first.
    edges.sort();
    let (mut now, mut most) = (0, 0);
    for (_, d) in edges {
        now += d;
        most = most.max(now);
    }
    usize::try_from(most).unwrap()
}

/// 2026-01-01T00:00:00Z, Unix ms.
const JAN_1: i64 = 1_767_225_600_000;

/// Slot `h` hours after [`JAN_1`], as RFC 3339.
fn hour(h: i64) -> String {
    format!("{}Z", chrono_like(JAN_1 + h * 3_600_000))
}

/// `ms` as `YYYY-MM-DDTHH:MM:SS` (UTC), computed here rather than by the server.
fn chrono_like(ms: i64) -> String {
    let secs = ms / 1000;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // 2026-01-01 is day 20454 since the epoch; the test's slots stay in January 2026.
    let day_of_jan = days - 20_454 + 1;
    assert!((1..=31).contains(&day_of_jan), "{ms}");
    format!(
        "2026-01-{day_of_jan:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn forty_eight_hourly_slots_run_four_at_a_time_each_with_its_slot(s: &mut Server) {
    assert_eq!(s.apply(&s.admin, "hourly", HOURLY).status, 201);
    let r = backfill(
        s,
        "hourly",
        json!({"from": "2026-01-01T00:00:00Z", "to": "2026-01-03T00:00:00Z", "concurrency": 4}),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let made = r.json();
    assert_eq!(made["progress"]["slots"], 48, "{made}");
    assert_eq!(made["from_time"], "2026-01-01T00:00:00Z");
    let p = &made["progress"];
    assert_eq!(
        p["queued"].as_i64().unwrap()
            + p["running"].as_i64().unwrap()
            + p["succeeded"].as_i64().unwrap(),
        4,
        "the first four slots are queued at once: {made}"
    );
    let id = made["id"].as_str().unwrap();
    let done = wait_backfill(s, id, 4);
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["progress"]["succeeded"], 48, "{done}");
    let runs = backfill_runs(s);
    assert_eq!(runs.len(), 48);
    let most = most_at_once(&runs);
    assert!((1..=4).contains(&most), "{most} runs at once");
    let mut slots: Vec<String> = runs
        .iter()
        .map(|r| {
            let shown = s
                .get(&format!("/v1/runs/{}", r["id"].as_str().unwrap()))
                .json();
            assert_eq!(shown["status"], "succeeded", "{shown}");
            let slot = shown["params"]["slot"].as_str().unwrap().to_string();
            let at = shown["fire_at"].as_i64().unwrap();
            assert_eq!(
                slot,
                format!("{}Z", chrono_like(at)),
                "its slot is its fire time"
            );
            slot
        })
        .collect();
    slots.sort();
    let expected: Vec<String> = (0..48).map(hour).collect();
    assert_eq!(slots, expected);
    // The slot reached the step's config: a sink's line starts with its own run's slot (the
    // generator's one record goes to the first run or runs to read it; the rest read none).
    let mut lines = 0;
    for r in &runs {
        let id = r["id"].as_str().unwrap();
        let slot = s.get(&format!("/v1/runs/{id}")).json()["params"]["slot"].clone();
        for line in s.logged(id, "sink") {
            let line = line.as_str().unwrap().to_string();
            assert!(
                line.starts_with(&format!("{} {{", slot.as_str().unwrap())),
                "{line}"
            );
            lines += 1;
        }
    }
    assert!(lines >= 1, "no run logged its record");
    // The same range again: every slot already succeeded, so every slot is skipped.
    let again = backfill(
        s,
        "hourly",
        json!({"from": "2026-01-01", "to": "2026-01-03", "concurrency": 4}),
    );
    assert_eq!(again.status, 202, "{}", again.text());
    let again = wait_backfill(s, again.json()["id"].as_str().unwrap(), 4);
    assert_eq!(again["status"], "succeeded", "{again}");
    assert_eq!(again["progress"]["skipped"], 48, "{again}");
    assert_eq!(backfill_runs(s).len(), 48);
    // Asked to run them again, one at a time, then cancelled: it stops, and its run with it.
    let rerun = backfill(
        s,
        "hourly",
        json!({"from": "2026-01-01", "to": "2026-01-03", "rerun_succeeded": true}),
    );
    assert_eq!(rerun.status, 202, "{}", rerun.text());
    let rerun_id = rerun.json()["id"].as_str().unwrap().to_string();
    let cancel = format!("/v1/backfills/{rerun_id}/cancel");
    let r = s.call("POST", &cancel, Some(&s.admin), None);
    assert_eq!(r.status, 200, "{}", r.text());
    let b = s.get(&format!("/v1/backfills/{rerun_id}")).json();
    assert_eq!(b["status"], "cancelled", "{b}");
    wait_for(WAIT, "the cancelled backfill's runs to end", || {
        let p = &s.get(&format!("/v1/backfills/{rerun_id}")).json()["progress"];
        p["queued"] == 0 && p["running"] == 0
    });
    let b = s.get(&format!("/v1/backfills/{rerun_id}")).json();
    let ran = 48 - b["progress"]["pending"].as_i64().unwrap();
    assert!((1..48).contains(&ran), "it stopped queueing: {b}");
    assert_eq!(s.call("POST", &cancel, Some(&s.admin), None).status, 409);
    let listed = s.get("/v1/backfills?pipeline=hourly").json();
    assert_eq!(listed.as_array().unwrap().len(), 3, "{listed}");
    assert_eq!(listed[0]["id"], rerun_id.as_str());
}

fn the_cli_backfills_a_range_of_dates_and_bad_ranges_are_named(s: &mut Server) {
    assert_eq!(s.apply(&s.admin, "hourly", HOURLY).status, 201);
    let (code, out, err) = s.cli(
        &s.admin,
        &[
            "pipeline",
            "backfill",
            "hourly",
            "--from",
            "2026-01-05",
            "--to",
            "2026-01-05T03:00:00Z",
            "--concurrency",
            "2",
            "--wait",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let id = out.trim();
    assert!(err.contains(&format!("{id}  succeeded")), "{err}");
    assert!(err.contains("3/3 done (3 succeeded"), "{err}");
    let (code, out, _) = s.cli(&s.admin, &["pipeline", "backfills", "hourly"]);
    assert_eq!(code, 0);
    assert!(out.starts_with(id), "{out}");
    let no_schedule = "name: plain\nsteps:\n  - id: gen\n    plugin: generator@latest\n  \
        - id: sink\n    plugin: log-sink@latest\n    input: gen\n";
    assert_eq!(s.apply(&s.admin, "plain", no_schedule).status, 201);
    for (pipeline, body, status, why) in [
        (
            "hourly",
            json!({"from": "2026-01-02", "to": "2026-01-01"}),
            422,
            "to: \"2026-01-01\" is not after from",
        ),
        (
            "hourly",
            json!({"from": "yesterday", "to": "2026-01-01"}),
            422,
            "from: \"yesterday\" is neither",
        ),
        (
            "hourly",
            json!({"from": "2026-01-01", "to": "2026-01-02", "concurrency": 0}),
            422,
            "concurrency: 0 is not between 1 and 64",
        ),
        (
            "hourly",
            json!({"from": "2020-01-01", "to": "2026-01-01"}),
            422,
            "more than 10000 slots",
        ),
        (
            "hourly",
            json!({"from": "2026-01-01T00:10:00Z", "to": "2026-01-01T00:20:00Z"}),
            422,
            "has no slot in",
        ),
        (
            "plain",
            json!({"from": "2026-01-01", "to": "2026-01-02"}),
            422,
            "pipeline \"plain\" has no schedule",
        ),
        (
            "nothing",
            json!({"from": "2026-01-01", "to": "2026-01-02"}),
            404,
            "no pipeline \"nothing\"",
        ),
    ] {
        let r = backfill(s, pipeline, body);
        assert_eq!(r.status, status, "{}", r.text());
        assert!(
            r.json()["message"].as_str().unwrap().contains(why),
            "{why}: {}",
            r.text()
        );
    }
    let r = backfill(
        s,
        "hourly",
        json!({"from": "2026-01-01", "to": "2026-01-02", "speed": 9}),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(
        s.get("/v1/backfills?pipeline=hourly")
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(s.get("/v1/backfills/nope").status, 404);
}

autoflow_tests::on_both_databases!(
    forty_eight_hourly_slots_run_four_at_a_time_each_with_its_slot,
    the_cli_backfills_a_range_of_dates_and_bad_ranges_are_named,
);
