//! Progress while a local run goes, and the summary table when it ends.
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

use crate::executor::{Plan, RunReport, StepCounters};

/// Prints a progress line every so often until `done` fires: rewritten in place on a
/// terminal, one line every 5 s otherwise.
pub fn spawn(plan: &Plan, counters: Vec<Arc<StepCounters>>) -> tokio::sync::oneshot::Sender<()> {
    let (done, mut finished) = tokio::sync::oneshot::channel::<()>();
    let ids: Vec<String> = plan.steps.iter().map(|s| s.id.clone()).collect();
    let tty = std::io::stderr().is_terminal();
    let every = if tty {
        Duration::from_millis(250)
    } else {
        Duration::from_secs(5)
    };
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = &mut finished => break,
                _ = tick.tick() => {
                    let line: Vec<String> = ids.iter().zip(&counters)
                        .map(|(id, c)| format!("{id} {}", StepCounters::get(&c.records_out)))
                        .collect();
                    let mut err = std::io::stderr().lock();
                    if tty {
                        let _ = write!(err, "\r\x1b[2K{}", line.join(" | "));
                    } else {
                        let _ = writeln!(err, "progress: {}", line.join(" | "));
                    }
                    let _ = err.flush();
                }
            }
        }
        if tty {
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
        }
    });
    done
}

/// The end-of-run table: records in, out and rejected per step, and time inside the plugin.
pub fn summary(name: &str, report: &RunReport, plugins: &[String]) -> String {
    let mut rows = vec![
        ["step", "plugin", "in", "out", "rejected", "time"]
            .map(String::from)
            .to_vec(),
    ];
    for (s, plugin) in report.steps.iter().zip(plugins) {
        rows.push(vec![
            s.id.clone(),
            plugin.clone(),
            s.records_in.to_string(),
            s.records_out.to_string(),
            s.rejected.to_string(),
            format!("{:.1} ms", s.busy.as_secs_f64() * 1000.0),
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = format!(
        "run {name}: {} in {:.3} s\n",
        serde_json::to_value(report.outcome)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default(),
        report.duration.as_secs_f64()
    );
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, v)| {
                if c >= 2 {
                    format!("{v:>w$}", w = widths[c])
                } else {
                    format!("{v:<w$}", w = widths[c])
                }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}
