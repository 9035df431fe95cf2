//! The executor loop: claims the oldest queued run (`UPDATE ... WHERE status = 'queued' ...
//! RETURNING`), builds its plan from the version's pinned digests, runs it with
//! [`crate::executor`], and writes the report and the log lines (batched) back.
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::api::AppState;
use crate::engine::LogLine;
use crate::executor::{self, DeadLetter, Outcome, RunSinks};
use crate::pipeline::Format;
use crate::store::now_ms;
use crate::store::runs::Claimed;

/// A log line on its way to the database: `(at, step, level, source, message)`.
type Line = (i64, Option<String>, String, String, String);

/// Runs queued runs one after the other, forever.
pub async fn run_loop(state: AppState) {
    loop {
        match state.store.claim_run().await {
            Ok(Some(run)) => run_one(&state, run).await,
            Ok(None) => {
                let _ = tokio::time::timeout(Duration::from_millis(500), state.wake.notified()).await;
            }
            Err(e) => {
                tracing::error!("cannot claim a run: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

fn host_line(level: &str, message: String) -> Line {
    (now_ms(), None, level.to_string(), "host".to_string(), message)
}

async fn run_one(state: &AppState, run: Claimed) {
    let (tx, rx) = mpsc::unbounded_channel::<Line>();
    let writer = tokio::spawn(write_logs(state.clone(), run.tenant.clone(), run.id.clone(), rx));
    let _ = tx.send(host_line("info", format!("run started: {} version {}", run.pipeline, run.version)));
    let (status, report, error) = match execute(state, &run, tx.clone()).await {
        Ok(report) => {
            let status = match report.outcome {
                Outcome::Succeeded => "succeeded",
                Outcome::Failed => "failed",
                Outcome::Cancelled => "cancelled",
            };
            let error = report.failure().map(|(step, e)| format!("step {step:?}: {}: {}", e.kind, e.message));
            let value = serde_json::to_value(&report).ok();
            (status, value, error)
        }
        Err(e) => ("failed", None, Some(e)),
    };
    let end = match &error {
        Some(e) => host_line("error", format!("run {status}: {e}")),
        None => host_line("info", format!("run {status}")),
    };
    let _ = tx.send(end);
    drop(tx);
    // Lines first, then the status: a follower that sees the end has seen every line.
    if let Err(e) = writer.await {
        tracing::error!("run {}: log writer ended abnormally: {e}", run.id);
    }
    if let Err(e) = state.store.finish_run(&run.id, status, report.as_ref(), error.as_deref()).await {
        tracing::error!("run {}: cannot record the result: {e}", run.id);
    }
}

async fn execute(state: &AppState, run: &Claimed, tx: mpsc::UnboundedSender<Line>) -> Result<executor::RunReport, String> {
    let version = state
        .store
        .version(&run.tenant, &run.pipeline, Some(run.version))
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("version {} of {:?} is gone", run.version, run.pipeline))?;
    let pipeline = crate::pipeline::parse(&version.definition.to_string(), Some(Format::Json)).map_err(|e| e.to_string())?;
    let (_validated, plan) = crate::server::apply::pinned_plan(state, &pipeline, &version.plugins)
        .await
        .map_err(|e| format!("cannot prepare the run: {e}"))?;
    let logs_tx = tx.clone();
    let logs = Arc::new(move |line: LogLine| {
        let at = line.at.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
        let level = serde_json::to_value(line.level).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
        let _ = logs_tx.send((at, line.step.as_deref().map(str::to_string), level, "plugin".into(), line.message));
    });
    let dead_tx = tx;
    let dead_letters = Arc::new(move |d: DeadLetter| {
        let message = format!("dead letter: {}", d.to_json());
        let _ = dead_tx.send((now_ms(), Some(d.step.clone()), "warn".into(), "dead-letter".into(), message));
    });
    let counters = executor::new_counters(&plan);
    Ok(executor::execute(&state.engine, &plan, RunSinks { logs, dead_letters }, &counters).await)
}

/// Writes log lines in batches: whatever arrived, at most every 100 ms.
async fn write_logs(state: AppState, tenant: String, run: String, mut rx: mpsc::UnboundedReceiver<Line>) {
    let mut batch = Vec::new();
    while rx.recv_many(&mut batch, 1000).await > 0 {
        let deadline = tokio::time::sleep(Duration::from_millis(100));
        tokio::pin!(deadline);
        while batch.len() < 1000 {
            tokio::select! {
                n = rx.recv_many(&mut batch, 1000) => if n == 0 { break },
                () = &mut deadline => break,
            }
        }
        if let Err(e) = state.store.append_logs(&tenant, &run, &batch).await {
            tracing::error!("run {run}: cannot store {} log lines: {e}", batch.len());
        }
        batch.clear();
    }
}
