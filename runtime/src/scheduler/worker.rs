//! A worker: claims runs from the queue with a lease, runs each with the executor while a
//! heartbeat renews the lease, and ends it fenced by its attempt number: succeeded (with the
//! checkpoints), failed, retried later after a retryable failure, cancelled on request, or
//! handed back when the worker stops. `autoflow server` runs one in process; `autoflow worker`
//! runs one alone against a shared PostgreSQL.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tokio::task::JoinSet;

use crate::api::AppState;
use crate::engine::LogLine;
use crate::executor::{self, DeadLetter, Outcome, Plan, RunReport, RunSinks};
use crate::store::checkpoints::Checkpoint;
use crate::store::now_ms;
use crate::store::dead_letters::Origin;
use crate::store::queue::{Claimed, Ending, Finish};
use super::plans::{PlanCache, Prepared};
use crate::secrets::Redactor;

use crate::store::runs::Line;

/// How a worker works.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Its id in the `workers` table and in run leases.
    pub id: String,
    /// Host and process, for people.
    pub name: String,
    /// What it can reach or do; it only claims runs whose labels it has.
    pub labels: Vec<String>,
    /// Runs at once.
    pub slots: usize,
    /// A claim holds a run this long without a heartbeat (renewed every third of it).
    pub lease: Duration,
    /// Wait this long between looks at the queue when nothing wakes the worker.
    pub poll: Duration,
    /// On stop, let running runs finish for this long, then hand them back.
    pub drain: Duration,
}

impl WorkerOptions {
    /// Options with a fresh id, this host's name, and `slots` runs at once.
    pub fn new(labels: Vec<String>, slots: usize) -> Self {
        let host = std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_string()).unwrap_or_default();
        Self {
            id: format!("w-{}", crate::store::random_hex(6)),
            name: format!("{}:{}", if host.is_empty() { "localhost" } else { &host }, std::process::id()),
            labels,
            slots: slots.max(1),
            lease: Duration::from_secs(30),
            poll: Duration::from_millis(500),
            drain: Duration::from_secs(30),
        }
    }
}

/// Why a run's execution was stopped from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// The lease was lost: another worker has the run; write nothing.
    Lost,
    /// A cancel was requested.
    Cancel,
    /// The worker is stopping: hand the run back.
    Release,
}

/// Claims and runs runs until `stop` turns true, then drains (see [`WorkerOptions::drain`]).
pub async fn run(state: AppState, opts: WorkerOptions, mut stop: watch::Receiver<bool>) -> anyhow::Result<()> {
    state.store.register_worker(&opts.id, &opts.name, &opts.labels).await?;
    tracing::info!(worker = %opts.id, labels = ?opts.labels, slots = opts.slots, "worker started");
    let beat = tokio::spawn(worker_heartbeats(state.clone(), opts.id.clone(), opts.lease / 3));
    let listen = super::dispatch::listen(&state);
    let slots = Arc::new(Semaphore::new(opts.slots));
    let plans = Arc::new(PlanCache::default());
    let finisher = Finisher::start(state.clone());
    let (release_tx, release_rx) = watch::channel(false);
    let mut running = JoinSet::new();
    let lease_ms = i64::try_from(opts.lease.as_millis()).unwrap_or(i64::MAX);
    loop {
        while running.try_join_next().is_some() {}
        let first = tokio::select! {
            p = slots.clone().acquire_owned() => p?,
            _ = stop.changed() => break,
        };
        if *stop.borrow() {
            break;
        }
        // Claim for every free slot at once: one transaction for all.
        let mut permits = vec![first];
        while let Ok(p) = slots.clone().try_acquire_owned() {
            permits.push(p);
        }
        match state.store.claim(&opts.id, &opts.labels, lease_ms, permits.len()).await {
            Ok(claims) if !claims.is_empty() => {
                for (claimed, permit) in claims.into_iter().zip(permits) {
                    let (state, opts, release) = (state.clone(), opts.clone(), release_rx.clone());
                    let (plans, finisher) = (plans.clone(), finisher.clone());
                    running.spawn(async move {
                        run_one(&state, &plans, &finisher, &opts, claimed, release).await;
                        drop(permit);
                    });
                }
            }
            Ok(_) => {
                drop(permits);
                tokio::select! {
                    () = state.wake.notified() => {}
                    () = tokio::time::sleep(opts.poll) => {}
                    _ = stop.changed() => break,
                }
            }
            Err(e) => {
                drop(permits);
                tracing::error!("cannot claim a run: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
    tracing::info!(worker = %opts.id, runs = running.len(), "worker stopping");
    let drained = tokio::time::timeout(opts.drain, async {
        while running.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        let _ = release_tx.send(true);
        while running.join_next().await.is_some() {}
    }
    beat.abort();
    if let Some(l) = listen {
        l.abort();
    }
    state.store.worker_stopped(&opts.id).await?;
    Ok(())
}

async fn worker_heartbeats(state: AppState, id: String, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        if let Err(e) = state.store.worker_heartbeat(&id).await {
            tracing::warn!("worker heartbeat: {e}");
        }
    }
}

/// Renews the lease of `run` until told otherwise; on a lost lease, a cancel request or the
/// worker's release, records why in `why` and cancels the execution.
async fn lease_keeper(
    state: AppState,
    run: Claimed,
    lease: Duration,
    mut release: watch::Receiver<bool>,
    why: Arc<Mutex<Option<Stop>>>,
    cancel: watch::Sender<bool>,
) {
    let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
    let stop = |s: Stop| {
        if let Ok(mut w) = why.lock() {
            w.get_or_insert(s);
        }
        let _ = cancel.send(true);
    };
    loop {
        tokio::select! {
            () = tokio::time::sleep(lease / 3) => {}
            r = release.changed() => {
                if r.is_ok() && *release.borrow() {
                    return stop(Stop::Release);
                }
            }
        }
        match state.store.heartbeat(&run.id, run.attempt, lease_ms).await {
            Ok(None) => return stop(Stop::Lost),
            Ok(Some(true)) => return stop(Stop::Cancel),
            Ok(Some(false)) => {}
            Err(e) => tracing::warn!("run {}: cannot renew its lease: {e}", run.id),
        }
    }
}

fn host_line(level: &str, message: String) -> Line {
    (now_ms(), None, level.to_string(), "host".to_string(), message)
}

async fn run_one(
    state: &AppState,
    plans: &PlanCache,
    finisher: &Finisher,
    opts: &WorkerOptions,
    run: Claimed,
    release: watch::Receiver<bool>,
) {
    let (tx, rx) = mpsc::unbounded_channel::<Line>();
    let writer = tokio::spawn(write_logs(state.clone(), run.tenant.clone(), run.id.clone(), rx));
    let _ = tx.send(host_line(
        "info",
        format!("run started: {} version {}, attempt {} on worker {}", run.pipeline, run.version, run.attempt, opts.id),
    ));
    let why = Arc::new(Mutex::new(None));
    let (cancel_tx, cancel_rx) = watch::channel(false);
    let keeper = tokio::spawn(lease_keeper(state.clone(), run.clone(), opts.lease, release, why.clone(), cancel_tx));
    let result = execute(state, plans, &run, tx.clone(), cancel_rx).await;
    keeper.abort();
    let stopped = why.lock().ok().and_then(|w| *w);
    let (line, ending) = settle(&run, stopped, result);
    let _ = tx.send(line);
    drop(tx);
    // The lines the writer still holds go with the ending, in one transaction: a follower that
    // sees the end has seen every line.
    let logs = writer.await.unwrap_or_else(|e| {
        tracing::error!("run {}: log writer ended abnormally: {e}", run.id);
        Vec::new()
    });
    let result = match ending {
        Some(ending) => {
            let finish = Finish { run: run.id.clone(), tenant: run.tenant.clone(), attempt: run.attempt, ending, logs };
            finisher.finish(finish).await
        }
        None => state.store.append_logs(&run.tenant, &run.id, &logs).await.map(|()| true).map_err(|e| e.to_string()),
    };
    match result {
        Ok(true) => {}
        Ok(false) => tracing::warn!("run {} attempt {}: another worker holds the run now; result dropped", run.id, run.attempt),
        Err(e) => tracing::error!("run {}: cannot record the result: {e}", run.id),
    }
}

/// Writes the ends of runs that end together in one transaction (one commit for all).
#[derive(Clone)]
struct Finisher(mpsc::UnboundedSender<(Finish, oneshot::Sender<Result<bool, String>>)>);

impl Finisher {
    /// Starts the task that writes.
    fn start(state: AppState) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<(Finish, oneshot::Sender<Result<bool, String>>)>();
        tokio::spawn(async move {
            let mut batch = Vec::new();
            while rx.recv_many(&mut batch, 64).await > 0 {
                let (items, replies): (Vec<Finish>, Vec<_>) = batch.drain(..).unzip();
                match state.store.finish_many(&items).await {
                    Ok(held) => replies.into_iter().zip(held).for_each(|(r, h)| drop(r.send(Ok(h)))),
                    Err(e) => replies.into_iter().for_each(|r| drop(r.send(Err(e.to_string())))),
                }
            }
        });
        Finisher(tx)
    }

    /// Writes `finish` with whatever else ends meanwhile; whether its attempt held the run.
    async fn finish(&self, finish: Finish) -> Result<bool, String> {
        let (tx, rx) = oneshot::channel();
        self.0.send((finish, tx)).map_err(|_| "the finisher stopped".to_string())?;
        rx.await.map_err(|_| "the finisher stopped".to_string())?
    }
}

fn complete(status: &'static str, report: Option<serde_json::Value>, error: Option<String>) -> Option<Ending> {
    Some(Ending::Complete { status, report, error, checkpoints: Vec::new() })
}

/// The last log line of an attempt and what to record.
/// `None`: write nothing but the lines (another worker holds the run now).
fn settle(run: &Claimed, stopped: Option<Stop>, result: Result<Executed, String>) -> (Line, Option<Ending>) {
    let Executed { report, plan, previous, redactor } = match result {
        Ok(r) => r,
        Err(e) => return (host_line("error", format!("run failed: {e}")), complete("failed", None, Some(e))),
    };
    // Nothing a plugin said (errors in the report) may carry a secret's value out.
    let value = serde_json::to_string(&report).ok().and_then(|t| serde_json::from_str(&redactor.apply(&t)).ok());
    match stopped {
        Some(Stop::Lost) => {
            let line = host_line("warn", format!("attempt {} lost its lease; another worker has the run", run.attempt));
            return (line, None);
        }
        Some(Stop::Release) => {
            let line = host_line("warn", format!("attempt {} handed back: the worker is stopping", run.attempt));
            return (line, Some(Ending::Release));
        }
        Some(Stop::Cancel) => {
            return (host_line("warn", "run cancelled".into()), complete("cancelled", value, Some("cancelled".into())));
        }
        None => {}
    }
    match report.outcome {
        Outcome::Succeeded => {
            let checkpoints = checkpoints_of(&report, &previous);
            let record = Some(Ending::Complete { status: "succeeded", report: value, error: None, checkpoints });
            (host_line("info", "run succeeded".into()), record)
        }
        Outcome::Cancelled => (host_line("warn", "run cancelled".into()), complete("cancelled", value, None)),
        Outcome::Failed => {
            let (kind, error) = match report.failure() {
                Some((step, e)) => (e.kind.clone(), redactor.apply(&format!("step {step:?}: {}: {}", e.kind, e.message))),
                None => ("fatal".to_string(), "a step failed".to_string()),
            };
            if kind == "retryable" && run.attempt < run.max_attempts {
                let retry = u32::try_from(run.attempt - 1).unwrap_or(u32::MAX);
                let wait = plan.retry.backoff(retry);
                let not_before = now_ms() + i64::try_from(wait.as_millis()).unwrap_or(i64::MAX);
                let line = host_line(
                    "warn",
                    format!("attempt {} of {} failed: {error}; retrying in {} ms", run.attempt, run.max_attempts, wait.as_millis()),
                );
                return (line, Some(Ending::Retry { not_before, error }));
            }
            (host_line("error", format!("run failed: {error}")), complete("failed", value, Some(error)))
        }
    }
}

/// What a successful run leaves for the next: each step's last cursor (or the one it started
/// from) and its state, for the steps where either changed.
fn checkpoints_of(report: &RunReport, previous: &[Checkpoint]) -> Vec<Checkpoint> {
    report
        .steps
        .iter()
        .filter_map(|s| {
            let before = previous.iter().find(|c| c.step == s.id);
            let cursor = s.cursor.clone().or_else(|| before.and_then(|c| c.cursor.clone()));
            let unchanged = before.is_some_and(|b| b.cursor == cursor && b.state == s.state);
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

async fn execute(
    state: &AppState,
    plans: &PlanCache,
    run: &Claimed,
    tx: mpsc::UnboundedSender<Line>,
    cancel: watch::Receiver<bool>,
) -> Result<Executed, String> {
    let Prepared { mut plan, grants } = plans.plan(state, run).await?;
    if let Some(replay) = &run.replay {
        let letters = state.store.dead_letters_by_id(&run.tenant, &replay.ids).await.map_err(|e| e.to_string())?;
        let records = letters.into_iter().map(|d| d.record).collect();
        plan = plan.replay(&replay.step, records)?;
    }
    let redactor = grant_secrets(state, run, &mut plan, &grants).await?;
    let previous = state.store.checkpoints(&run.tenant, &run.pipeline).await.map_err(|e| e.to_string())?;
    for step in &mut plan.steps {
        if let Some(c) = previous.iter().find(|c| c.step == step.id) {
            step.cursor = c.cursor.clone();
            step.state = c.state.clone();
        }
    }
    let logs_tx = tx.clone();
    let redact = redactor.clone();
    let logs = Arc::new(move |line: LogLine| {
        let at = line.at.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
        let level = serde_json::to_value(line.level).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
        let message = redact.apply(&line.message);
        let _ = logs_tx.send((at, line.step.as_deref().map(str::to_string), level, "plugin".into(), message));
    });
    drop(tx);
    let (dead_tx, dead_rx) = mpsc::unbounded_channel::<DeadLetter>();
    let dead_writer = tokio::spawn(write_dead_letters(state.clone(), run.clone(), dead_rx));
    let redact = redactor.clone();
    let dead_letters = Arc::new(move |mut d: DeadLetter| {
        d.reason = redact.apply(&d.reason);
        let _ = dead_tx.send(d);
    });
    let counters = executor::new_counters(&plan);
    let report = executor::execute_until(&state.engine, &plan, RunSinks { logs, dead_letters }, &counters, cancel).await;
    // Every dead letter is stored before the run's end is.
    dead_writer.await.map_err(|e| format!("the dead-letter writer ended abnormally: {e}"))??;
    Ok(Executed { report, plan, previous, redactor })
}

/// What an attempt's execution leaves.
struct Executed {
    report: RunReport,
    plan: Plan,
    /// The checkpoints it started from.
    previous: Vec<Checkpoint>,
    /// The values of the secrets it was granted, to keep out of what it records.
    redactor: Redactor,
}

/// Reads, opens and hands each step the secrets it is granted; the redactor of their values.
async fn grant_secrets(state: &AppState, run: &Claimed, plan: &mut Plan, grants: &HashMap<String, Vec<String>>) -> Result<Redactor, String> {
    let mut names: Vec<String> = plan.steps.iter().filter_map(|s| grants.get(&s.id)).flatten().cloned().collect();
    names.sort();
    names.dedup();
    if names.is_empty() {
        return Ok(Redactor::default());
    }
    let sealed = state.store.sealed_secrets(&run.tenant, &names).await.map_err(|e| e.to_string())?;
    let mut values = HashMap::new();
    for (name, nonce, ciphertext) in sealed {
        let value = state.master_key.open(&run.tenant, &name, &nonce, &ciphertext)?;
        values.insert(name, String::from_utf8_lossy(&value).into_owned());
    }
    for step in &mut plan.steps {
        for name in grants.get(&step.id).into_iter().flatten() {
            let value = values.get(name).ok_or_else(|| format!("step {:?}: secret {name:?} is not set (PUT /v1/secrets/{name})", step.id))?;
            step.secrets.insert(name.clone(), value.clone());
        }
    }
    Ok(Redactor::new(values.into_values()))
}

/// Stores a run's dead letters in batches as they come.
async fn write_dead_letters(state: AppState, run: Claimed, mut rx: mpsc::UnboundedReceiver<DeadLetter>) -> Result<(), String> {
    let mut batch = Vec::new();
    let origin = Origin { tenant: &run.tenant, run: &run.id, pipeline: &run.pipeline, version: run.version, attempt: run.attempt };
    while rx.recv_many(&mut batch, 500).await > 0 {
        let rows: Vec<_> = batch.drain(..).map(|d| (d.step, d.digest, d.reason, d.record)).collect();
        state.store.insert_dead_letters(&origin, &rows).await.map_err(|e| format!("cannot store dead letters: {e}"))?;
    }
    Ok(())
}

/// Writes a run's log lines in batches while it runs (every 100 ms, or 1000 lines); returns
/// the lines it still holds when the run ends, which go with the run's ending.
async fn write_logs(state: AppState, tenant: String, run: String, mut rx: mpsc::UnboundedReceiver<Line>) -> Vec<Line> {
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
        if let Err(e) = state.store.append_logs(&tenant, &run, &batch).await {
            tracing::error!("run {run}: cannot store {} log lines: {e}", batch.len());
        }
        batch.clear();
    }
}
