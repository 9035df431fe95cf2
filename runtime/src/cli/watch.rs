//! `autoflow runs show ID --follow`: a table of the run's per-step counters, redrawn while it
//! runs (from its `progress`) until it ends, then its final counts (from its report). On a
//! terminal the table is redrawn in place; otherwise a new table is printed each time the
//! counters change.
use std::io::{IsTerminal, Write};
use std::time::Duration;

use serde_json::Value;

use super::client::Client;
use super::output;
use crate::wire::Run;

/// How often the run is read.
const EVERY: Duration = Duration::from_millis(500);

/// The columns: heading and the step field they show.
const COLUMNS: &[(&str, &str)] = &[
    ("IN", "records_in"),
    ("OUT", "records_out"),
    ("REJECTED", "rejected"),
    ("BYTES IN", "bytes_in"),
    ("BYTES OUT", "bytes_out"),
    ("BATCHES", "batches"),
    ("BUSY MS", "busy_ms"),
];

/// The table of `steps` (each an object with the fields of [`COLUMNS`] and `id`), under a
/// heading line.
pub fn table(heading: &str, steps: &[Value]) -> String {
    let width = steps
        .iter()
        .filter_map(|s| s["id"].as_str())
        .map(str::len)
        .max()
        .unwrap_or(0)
        .max(4);
    let mut out = format!("{heading}\n{:<width$}", "STEP");
    for (name, _) in COLUMNS {
        out.push_str(&format!(" {name:>10}"));
    }
    for s in steps {
        out.push_str(&format!("\n{:<width$}", s["id"].as_str().unwrap_or("?")));
        for (_, field) in COLUMNS {
            let v = s[*field]
                .as_u64()
                .map_or("-".to_string(), |n| n.to_string());
            out.push_str(&format!(" {v:>10}"));
        }
    }
    out
}

/// Follows run `id` until it ends.
pub async fn follow(c: &Client, id: &str) -> anyhow::Result<()> {
    let tty = std::io::stdout().is_terminal();
    let mut shown: Option<String> = None;
    loop {
        let run: Run = c.get(&format!("/v1/runs/{id}")).await?;
        let (heading, steps) = if run.status.is_final() {
            let steps = run.report.as_ref().map(|r| r["steps"].clone());
            (format!("run {id}: {}", run.status), steps)
        } else {
            let steps = run.progress.as_ref().map(|p| p["steps"].clone());
            (
                format!("run {id}: {} (attempt {})", run.status, run.attempt),
                steps,
            )
        };
        let steps = steps
            .and_then(|s| s.as_array().cloned())
            .unwrap_or_default();
        let text = table(&heading, &steps);
        if shown.as_deref() != Some(text.as_str()) {
            if tty && let Some(before) = &shown {
                // Back over the table shown before, and clear below.
                let lines = before.lines().count();
                let _ = write!(std::io::stdout(), "\x1b[{lines}A\r\x1b[J");
            }
            output::line(&text)?;
            shown = Some(text);
        }
        if run.status.is_final() {
            if let Some(error) = &run.error {
                output::line(format!("error: {error}"))?;
            }
            return Ok(());
        }
        tokio::time::sleep(EVERY).await;
    }
}
