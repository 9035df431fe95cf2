//! One attempt of a run on a worker: prepare its plan (cached), hand its steps their secrets
//! and checkpoints, execute it while its log lines and dead letters are written, and decide how
//! the attempt ends (succeeded with checkpoints, failed, retried later, cancelled, handed back).
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tracing::Instrument;

use super::error::AttemptError;
use super::plans::{PlanCache, Prepared};
use crate::control::{Core, input};
use crate::engine::LogLine;
use crate::executor::{self, DeadLetter, Outcome, Plan, RunReport, RunSinks, StepCounters};
use crate::secrets::{MasterKey, Redactor};
use crate::status::RunStatus;
use crate::store::checkpoints::Checkpoint;
use crate::store::dead_letters::Origin;
use crate::store::now_ms;
use crate::store::queue::{Claimed, Ending};
use crate::store::runs::{Line, Progress, StepProgress};

/// Why a run's execution was stopped from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stop {
    /// The lease was lost: another worker has the run; write nothing.
    Lost,
    /// A cancel was requested.
    Cancel,
    /// The worker is stopping: hand the run back.
    Release,
}

/// How long a run interrupted by the store waits before it is claimed again.
const INTERRUPTED_BACKOFF_MS: i64 = 1000;

/// A host event as a log line of the run.
pub(super) fn host_line(level: &str, message: String) -> Line {
    (
        now_ms(),
        None,
        level.to_string(),
        "host".to_string(),
        message,
    )
}

fn complete(
    status: RunStatus,
    report: Option<serde_json::Value>,
    error: Option<String>,
) -> Option<Ending> {
    Some(Ending::Complete {
        status,
        report,
        error,
        checkpoints: Vec::new(),
    })
}

/// The last log line of an attempt and what to record, its checkpoints sealed with `key`.
/// `None`: write nothing but the lines (another worker holds the run now).
pub(super) fn settle(
    key: &MasterKey,
    run: &Claimed,
    stopped: Option<Stop>,
    result: Result<Executed, AttemptError>,
) -> (Line, Option<Ending>) {
    let Executed {
        report,
        plan,
        previous,
        redactor,
    } = match result {
        Ok(r) => r,
        Err(AttemptError::Failed(e)) => {
            return (
                host_line("error", format!("run failed: {e}")),
                complete(RunStatus::Failed, None, Some(e)),
            );
        }
        Err(AttemptError::Transient(e)) => {
            let line = host_line(
                "warn",
                format!(
                    "attempt {} interrupted: the store failed ({e}); the run goes back to the queue",
                    run.attempt
                ),
            );
            let not_before = now_ms() + INTERRUPTED_BACKOFF_MS;
            return (
                line,
                Some(Ending::Interrupted {
                    not_before,
                    error: e,
                }),
            );
        }
    };
    // The report as stored; nothing a plugin said (errors in it) may carry a secret's value out.
    let value = || {
        if redactor.is_empty() {
            serde_json::to_value(&report).ok()
        } else {
            serde_json::to_string(&report)
                .ok()
                .and_then(|t| serde_json::from_str(&redactor.apply(&t)).ok())
        }
    };
    match stopped {
        Some(Stop::Lost) => {
            let line = host_line(
                "warn",
                format!(
                    "attempt {} lost its lease; another worker has the run",
                    run.attempt
                ),
            );
            return (line, None);
        }
        Some(Stop::Release) => {
            let line = host_line(
                "warn",
                format!(
                    "attempt {} handed back: the worker is stopping",
                    run.attempt
                ),
            );
            return (line, Some(Ending::Release));
        }
        Some(Stop::Cancel) => {
            return (
                host_line("warn", "run cancelled".into()),
                complete(RunStatus::Cancelled, value(), Some("cancelled".into())),
            );
        }
        None => {}
    }
    match report.outcome {
        Outcome::Succeeded => {
            let sealed = checkpoints_of(&report, &previous)
                .iter()
                .map(|c| c.seal(key, &run.tenant, &run.pipeline))
                .collect();
            match sealed {
                Ok(checkpoints) => {
                    let record = Some(Ending::Complete {
                        status: RunStatus::Succeeded,
                        report: value(),
                        error: None,
                        checkpoints,
                    });
                    (host_line("info", "run succeeded".into()), record)
                }
                Err(e) => {
                    let error = format!("cannot keep the checkpoints: {e}");
                    (
                        host_line("error", format!("run failed: {error}")),
                        complete(RunStatus::Failed, value(), Some(error)),
                    )
                }
            }
        }
        Outcome::Cancelled => (
            host_line("warn", "run cancelled".into()),
            complete(RunStatus::Cancelled, value(), None),
        ),
        Outcome::Failed => {
            let (kind, error) = match report.failure() {
                Some((step, e)) => (
                    e.kind.clone(),
                    redactor.apply(&format!("step {step:?}: {}", e.summary())),
                ),
                None => ("fatal".to_string(), "a step failed".to_string()),
            };
            if kind == "retryable" && run.attempt < run.max_attempts {
                let retry = u32::try_from(run.attempt - 1).unwrap_or(u32::MAX);
                let wait = plan.retry.backoff(retry);
                let not_before = now_ms() + i64::try_from(wait.as_millis()).unwrap_or(i64::MAX);
                let line = host_line(
                    "warn",
                    format!(
                        "attempt {} of {} failed: {error}; retrying in {} ms",
                        run.attempt,
                        run.max_attempts,
                        wait.as_millis()
                    ),
                );
                return (line, Some(Ending::Retry { not_before, error }));
            }
            (
                host_line("error", format!("run failed: {error}")),
                complete(RunStatus::Failed, value(), Some(error)),
            )
        }
    }
}

/// What a successful run leaves for the next: each step's last cursor (or the one it started
/// from) and its state, for the steps where either changed or whose row is not sealed yet.
fn checkpoints_of(report: &RunReport, previous: &[Checkpoint]) -> Vec<Checkpoint> {
    report
        .steps
        .iter()
        .filter_map(|s| {
            let before = previous.iter().find(|c| c.step == s.id);
            let cursor = s
                .cursor
                .clone()
                .or_else(|| before.and_then(|c| c.cursor.clone()));
            let unchanged =
                before.is_some_and(|b| b.sealed && b.cursor == cursor && b.state == s.state);
            let something = cursor.is_some() || !s.state.is_empty() || before.is_some();
            (something && !unchanged).then(|| Checkpoint {
                step: s.id.clone(),
                cursor,
                state: s.state.clone(),
                ..Checkpoint::default()
            })
        })
        .collect()
}

/// Runs attempt `run`: its plan from `plans` (a replay's records, or the run's input records,
/// injected), its secrets and checkpoints handed to its steps, its log lines to `tx` and its
/// dead letters to the store. `cancel` aborts it where it is.
pub(super) async fn execute(
    state: &Core,
    plans: &PlanCache,
    run: &Claimed,
    tx: mpsc::UnboundedSender<Line>,
    cancel: watch::Receiver<bool>,
    progress: Option<Duration>,
) -> Result<Executed, AttemptError> {
    let Prepared {
        mut plan, grants, ..
    } = plans.plan(state, run).await?;
    if let Some(replay) = &run.replay {
        let letters = state
            .store
            .dead_letters_by_id(&state.master_key, &run.tenant, &replay.ids)
            .await?;
        let records = letters.into_iter().map(|d| d.record).collect();
        plan = plan.replay(&replay.step, records)?;
    }
    // What it was started with: its parameters' values, and records for its trigger-source.
    let (params, sealed) = state.store.run_inputs(&run.tenant, &run.id).await?;
    if let Some(values) = &params {
        plan.apply_params(values);
    }
    if run.replay.is_none()
        && let (Some(fed), Some(sealed)) = (plan.inject.as_mut(), sealed)
    {
        let records = input::open(&state.master_key, &run.tenant, &run.pipeline, &sealed)?;
        fed.records = records.into_iter().map(Into::into).collect();
    }
    let redactor = grant_secrets(state, run, &mut plan, &grants).await?;
    let previous = state
        .store
        .checkpoints(&state.master_key, &run.tenant, &run.pipeline)
        .await?;
    for step in &mut plan.steps {
        if let Some(c) = previous.iter().find(|c| c.step == step.id) {
            step.cursor = c.cursor.clone();
            step.state = c.state.clone();
        }
    }
    let redact = redactor.clone();
    let logs = Arc::new(move |line: LogLine| {
        let at = line
            .at
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let message = redact.apply(&line.message);
        let _ = tx.send((
            at,
            line.step.as_deref().map(str::to_string),
            line.level.as_str().into(),
            "plugin".into(),
            message,
        ));
    });
    let (dead_tx, dead_rx) = mpsc::unbounded_channel::<DeadLetter>();
    let dead_writer = tokio::spawn(write_dead_letters(state.clone(), run.clone(), dead_rx));
    let redact = redactor.clone();
    let dead_letters = Arc::new(move |mut d: DeadLetter| {
        d.reason = redact.apply(&d.reason);
        let _ = dead_tx.send(d);
    });
    let counters = executor::new_counters(&plan);
    let ids: Vec<String> = plan.steps.iter().map(|s| s.id.clone()).collect();
    let (stop_progress, stopped) = watch::channel(false);
    let progress = progress.map(|every| {
        let counters = counters.clone();
        let task = write_progress(state.clone(), run.clone(), ids, counters, every, stopped);
        tokio::spawn(task.in_current_span())
    });
    let report = executor::execute_until(
        &state.engine,
        &plan,
        RunSinks { logs, dead_letters },
        &counters,
        cancel,
    )
    .await;
    // A write under way finishes first (the run's end comes after it).
    let _ = stop_progress.send(true);
    if let Some(p) = progress {
        let _ = p.await;
    }
    // Every dead letter is stored before the run's end is.
    dead_writer
        .await
        .map_err(|e| format!("the dead-letter writer ended abnormally: {e}"))??;
    Ok(Executed {
        report,
        plan,
        previous,
        redactor,
    })
}

/// Each step's counters now, as `progress` shows them.
fn snapshot(ids: &[String], counters: &[Arc<StepCounters>]) -> Vec<StepProgress> {
    ids.iter()
        .zip(counters)
        .map(|(id, c)| StepProgress {
            id: id.clone(),
            records_in: StepCounters::get(&c.records_in),
            records_out: StepCounters::get(&c.records_out),
            rejected: StepCounters::get(&c.rejected),
            bytes_in: StepCounters::get(&c.bytes_in),
            bytes_out: StepCounters::get(&c.bytes_out),
            batches: StepCounters::get(&c.batches),
            busy_ms: StepCounters::get(&c.busy_ns) / 1_000_000,
        })
        .collect()
}

/// Writes the run's counters to the store every `every` while they change, until `stop` turns
/// true (the execution ended) or the attempt no longer holds the run. One small fenced UPDATE
/// per write; a write that fails is tried at the next tick.
async fn write_progress(
    state: Core,
    run: Claimed,
    ids: Vec<String>,
    counters: Vec<Arc<StepCounters>>,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut last = None;
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let steps = snapshot(&ids, &counters);
        if last.as_ref() == Some(&steps) {
            continue;
        }
        let progress = Progress {
            at: now_ms(),
            attempt: run.attempt,
            steps,
        };
        let started = std::time::Instant::now();
        match state
            .store
            .set_progress(&run.id, run.attempt, &progress)
            .await
        {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                tracing::warn!("cannot write the run's progress: {e}");
                continue;
            }
        }
        crate::telemetry::progress_written(started.elapsed());
        last = Some(progress.steps);
    }
}

impl Executed {
    /// What each step did, for the metrics.
    pub(super) fn step_numbers(&self) -> Vec<crate::telemetry::StepNumbers> {
        self.report
            .steps
            .iter()
            .map(|s| crate::telemetry::StepNumbers {
                step: s.id.clone(),
                records_in: s.records_in,
                records_out: s.records_out,
                rejected: s.rejected,
                bytes_in: s.bytes_in,
                bytes_out: s.bytes_out,
                busy: s.busy,
                fuel_used: s.fuel_used,
                retries: s.retries,
                memory_peak_bytes: s.memory_peak_bytes,
            })
            .collect()
    }

    /// The message acknowledgements its steps held; to send once its success is committed.
    pub(super) fn acks(&self) -> crate::integrations::PendingAcks {
        self.report.acks.clone()
    }
}

/// What an attempt's execution leaves.
pub(super) struct Executed {
    report: RunReport,
    plan: Plan,
    /// The checkpoints it started from.
    previous: Vec<Checkpoint>,
    /// The values of the secrets it was granted, to keep out of what it records.
    redactor: Redactor,
}

/// Reads, opens and hands each step the secrets it is granted; the redactor of their values.
async fn grant_secrets(
    state: &Core,
    run: &Claimed,
    plan: &mut Plan,
    grants: &HashMap<String, Vec<String>>,
) -> Result<Redactor, AttemptError> {
    let mut names: Vec<String> = plan
        .steps
        .iter()
        .filter_map(|s| grants.get(&s.id))
        .flatten()
        .cloned()
        .collect();
    names.extend(plan.connection_secrets());
    names.sort();
    names.dedup();
    if names.is_empty() {
        return Ok(Redactor::default());
    }
    let sealed = state.store.sealed_secrets(&run.tenant, &names).await?;
    let values = state.master_key.open_all(&run.tenant, sealed)?;
    for step in &mut plan.steps {
        for name in grants.get(&step.id).into_iter().flatten() {
            let value = values.get(name).ok_or_else(|| {
                format!(
                    "step {:?}: secret {name:?} is not set (PUT /v1/secrets/{name})",
                    step.id
                )
            })?;
            step.secrets.insert(name.clone(), value.clone());
        }
    }
    plan.open_connections(&values)?;
    Ok(Redactor::new(values.into_values()))
}

/// Stores a run's dead letters in batches as they come.
async fn write_dead_letters(
    state: Core,
    run: Claimed,
    mut rx: mpsc::UnboundedReceiver<DeadLetter>,
) -> Result<(), AttemptError> {
    let mut batch = Vec::new();
    let origin = Origin {
        tenant: &run.tenant,
        run: &run.id,
        pipeline: &run.pipeline,
        version: run.version,
        attempt: run.attempt,
    };
    while rx.recv_many(&mut batch, 500).await > 0 {
        let rows: Vec<_> = batch
            .drain(..)
            .map(|d| (d.step, d.digest, d.reason, d.record))
            .collect();
        state
            .store
            .insert_dead_letters(&state.master_key, &origin, &rows)
            .await?;
    }
    Ok(())
}

/// Log lines a run's writer holds while the database cannot take them; past it they are dropped.
const MAX_HELD_LINES: usize = 10_000;

/// Writes a run's log lines in batches while it runs (every 100 ms, or 1000 lines); returns
/// the lines it still holds when the run ends, which go with the run's ending.
pub(super) async fn write_logs(
    state: Core,
    tenant: String,
    run: String,
    mut rx: mpsc::UnboundedReceiver<Line>,
) -> Vec<Line> {
    let mut batch = Vec::new();
    loop {
        if rx.recv_many(&mut batch, 1000).await == 0 {
            return batch;
        }
        let deadline = tokio::time::sleep(Duration::from_millis(100));
        tokio::pin!(deadline);
        while batch.len() < 1000 {
            tokio::select! {
                n = rx.recv_many(&mut batch, 1000) => if n == 0 { return batch },
                () = &mut deadline => break,
            }
        }
        match state.store.append_logs(&tenant, &run, &batch).await {
            Ok(()) => batch.clear(),
            // Kept for the next write (or the run's ending), up to a bound.
            Err(e) if e.is_transient() && batch.len() < MAX_HELD_LINES => {
                tracing::warn!("run {run}: cannot store {} log lines yet: {e}", batch.len());
            }
            Err(e) => {
                tracing::error!("run {run}: cannot store {} log lines: {e}", batch.len());
                batch.clear();
            }
        }
    }
}
