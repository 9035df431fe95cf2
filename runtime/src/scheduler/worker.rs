//! A worker: claims runs from the queue with a lease, runs each with the executor while a
//! heartbeat renews the lease, and ends it fenced by its attempt number: succeeded (with the
//! checkpoints), failed, retried later after a retryable failure, cancelled on request, or
//! handed back when the worker stops. `autoflow server` runs one in process; `autoflow worker`
//! runs one alone against a shared PostgreSQL.
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tracing::Instrument;

use super::attempt::{Stop, execute, host_line, settle, write_logs};
use super::plans::PlanCache;
use crate::control::Core;
use crate::status::RunStatus;
use crate::store::queue::{Claimed, Ending, Finish};

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
    /// Write a running run's counters (its progress) at most this often while they change;
    /// `None`: never.
    pub progress: Option<Duration>,
    /// Where the runs' OpenLineage events go (`None`: nowhere).
    pub lineage: Option<crate::lineage::Emitter>,
}

impl WorkerOptions {
    /// Options with a fresh id, this host's name, and `slots` runs at once.
    pub fn new(labels: Vec<String>, slots: usize) -> Self {
        let host = std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_default();
        Self {
            id: format!("w-{}", crate::store::random_hex(6)),
            name: format!(
                "{}:{}",
                if host.is_empty() { "localhost" } else { &host },
                std::process::id()
            ),
            labels,
            slots: slots.max(1),
            lease: Duration::from_secs(30),
            poll: Duration::from_millis(500),
            drain: Duration::from_secs(30),
            progress: Some(Duration::from_millis(500)),
            lineage: None,
        }
    }
}

/// Claims and runs runs until `stop` turns true, then drains (see [`WorkerOptions::drain`]).
pub async fn run(
    state: Core,
    opts: WorkerOptions,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    state
        .store
        .register_worker(&opts.id, &opts.name, &opts.labels)
        .await?;
    tracing::info!(worker = %opts.id, labels = ?opts.labels, slots = opts.slots, "worker started");
    let beat = tokio::spawn(worker_heartbeats(
        state.clone(),
        opts.id.clone(),
        opts.lease / 3,
    ));
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
        let claiming = std::time::Instant::now();
        let claims = state
            .store
            .claim(&opts.id, &opts.labels, lease_ms, permits.len())
            .await;
        if let Ok(claims) = &claims {
            record_claims(claiming.elapsed(), claims);
        }
        match claims {
            Ok(claims) if !claims.is_empty() => {
                for (claimed, permit) in claims.into_iter().zip(permits) {
                    let (state, opts, release) = (state.clone(), opts.clone(), release_rx.clone());
                    let (plans, finisher) = (plans.clone(), finisher.clone());
                    let span = tracing::info_span!(
                        "run",
                        run = %claimed.id,
                        tenant = %claimed.tenant,
                        pipeline = %claimed.pipeline,
                        attempt = claimed.attempt,
                    );
                    crate::telemetry::traces::run_parent(
                        &span,
                        claimed.traceparent.as_deref(),
                        &claimed.tenant,
                        &claimed.id,
                    );
                    running.spawn(
                        async move {
                            run_one(&state, &plans, &finisher, &opts, claimed, release).await;
                            drop(permit);
                        }
                        .instrument(span),
                    );
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

/// The metrics of a claim that took `took` and returned `claims`.
fn record_claims(took: Duration, claims: &[Claimed]) {
    let now = crate::store::now_ms();
    let waits = claims
        .iter()
        .map(|c| Duration::from_millis(u64::try_from(now - c.due_since).unwrap_or(0)));
    crate::telemetry::claimed(took, waits);
    let started = std::time::SystemTime::now()
        .checked_sub(took)
        .unwrap_or(std::time::UNIX_EPOCH);
    for c in claims {
        crate::telemetry::traces::claimed(
            c.traceparent.as_deref(),
            &c.tenant,
            &c.id,
            c.attempt,
            started,
            took,
        );
        if c.taken_over {
            crate::telemetry::lease_taken_over();
        }
        if c.attempt == 1 {
            crate::telemetry::run_started(&c.tenant, &c.pipeline);
        }
    }
}

async fn worker_heartbeats(state: Core, id: String, every: Duration) {
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
    state: Core,
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
            Ok(None) => {
                crate::telemetry::lease_lost();
                return stop(Stop::Lost);
            }
            Ok(Some(true)) => return stop(Stop::Cancel),
            Ok(Some(false)) => {}
            Err(e) => tracing::warn!("run {}: cannot renew its lease: {e}", run.id),
        }
    }
}

async fn run_one(
    state: &Core,
    plans: &PlanCache,
    finisher: &Finisher,
    opts: &WorkerOptions,
    run: Claimed,
    release: watch::Receiver<bool>,
) {
    let started = std::time::Instant::now();
    tracing::info!("run attempt started");
    let (tx, rx) = mpsc::unbounded_channel::<Line>();
    let writer = tokio::spawn(write_logs(
        state.clone(),
        run.tenant.clone(),
        run.id.clone(),
        rx,
    ));
    let _ = tx.send(host_line(
        "info",
        format!(
            "run started: {} version {}, attempt {} on worker {}",
            run.pipeline, run.version, run.attempt, opts.id
        ),
    ));
    let lineage = match &opts.lineage {
        Some(emitter) => Some((emitter, plans.datasets(state, &run).await)),
        None => None,
    };
    let lineage_run = crate::lineage::RunRef {
        tenant: &run.tenant,
        pipeline: &run.pipeline,
        version: run.version,
        id: &run.id,
        attempt: run.attempt,
    };
    if let (Some((emitter, datasets)), 1) = (&lineage, run.attempt) {
        emitter.started(lineage_run, datasets);
    }
    let why = Arc::new(Mutex::new(None));
    let (cancel_tx, cancel_rx) = watch::channel(false);
    let keeper = tokio::spawn(lease_keeper(
        state.clone(),
        run.clone(),
        opts.lease,
        release,
        why.clone(),
        cancel_tx,
    ));
    let result = execute(state, plans, &run, tx.clone(), cancel_rx, opts.progress).await;
    keeper.abort();
    let stopped = why.lock().ok().and_then(|w| *w);
    let acks = result
        .as_ref()
        .map(super::attempt::Executed::acks)
        .unwrap_or_default();
    let steps = result
        .as_ref()
        .map(super::attempt::Executed::step_numbers)
        .unwrap_or_default();
    let (line, ending) = settle(&state.master_key, &run, stopped, result);
    let ended = ending.as_ref().and_then(|e| match e {
        Ending::Complete { status, .. } => Some(Some(*status)),
        Ending::Retry { .. } => Some(None),
        _ => None,
    });
    let error = match &ending {
        Some(Ending::Complete { error, .. }) => error.clone(),
        _ => None,
    };
    let succeeded = matches!(
        &ending,
        Some(Ending::Complete {
            status: RunStatus::Succeeded,
            ..
        })
    );
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
            let finish = Finish {
                run: run.id.clone(),
                tenant: run.tenant.clone(),
                attempt: run.attempt,
                ending,
                logs,
            };
            finisher.finish(finish).await
        }
        None => state
            .store
            .append_logs(&run.tenant, &run.id, &logs)
            .await
            .map(|()| true)
            .map_err(|e| e.to_string()),
    };
    if let (Ok(true), Some(ended)) = (&result, ended) {
        match ended {
            Some(status) => {
                // The steps first: a scrape that counts the run as finished counts its steps.
                crate::telemetry::steps_finished(&run.tenant, &run.pipeline, &steps);
                crate::telemetry::run_finished(
                    &run.tenant,
                    &run.pipeline,
                    status.as_str(),
                    started.elapsed(),
                );
                if let Some((emitter, datasets)) = &lineage {
                    emitter.ended(lineage_run, datasets, status, error.as_deref(), &steps);
                }
            }
            None => crate::telemetry::run_retried(&run.tenant, &run.pipeline),
        }
        tracing::info!(
            status = ended.map_or("retrying", RunStatus::as_str),
            "run attempt ended"
        );
    }
    // The run's checkpoints are committed when it succeeded: what came of its messages is
    // durable. Otherwise what it read goes back.
    state
        .integrations
        .settle(&acks, matches!(result, Ok(true)) && succeeded)
        .await;
    match result {
        Ok(true) => {}
        Ok(false) => tracing::warn!(
            "run {} attempt {}: another worker holds the run now; result dropped",
            run.id,
            run.attempt
        ),
        Err(e) => tracing::error!("run {}: cannot record the result: {e}", run.id),
    }
}

/// How long the ends of runs are retried while the database fails transiently (a full disk,
/// a lost connection): past it, the run's lease runs out and the run is taken again.
const FINISH_RETRY_FOR: Duration = Duration::from_secs(120);

/// [`crate::store::Store::finish_many`], tried again with backoff on transient errors.
async fn finish_retrying(state: &Core, items: &[Finish]) -> crate::store::Result<Vec<bool>> {
    let started = std::time::Instant::now();
    let mut delay = Duration::from_millis(100);
    loop {
        match state.store.finish_many(items).await {
            Err(e) if e.is_transient() && started.elapsed() < FINISH_RETRY_FOR => {
                tracing::warn!(
                    "cannot record the end of {} runs yet, trying again in {delay:?}: {e}",
                    items.len()
                );
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            other => return other,
        }
    }
}

/// Writes the ends of runs that end together in one transaction (one commit for all).
#[derive(Clone)]
struct Finisher(mpsc::UnboundedSender<(Finish, oneshot::Sender<Result<bool, String>>)>);

impl Finisher {
    /// Starts the task that writes.
    fn start(state: Core) -> Self {
        let (tx, mut rx) =
            mpsc::unbounded_channel::<(Finish, oneshot::Sender<Result<bool, String>>)>();
        tokio::spawn(async move {
            let mut batch = Vec::new();
            while rx.recv_many(&mut batch, 64).await > 0 {
                let (items, replies): (Vec<Finish>, Vec<_>) = batch.drain(..).unzip();
                match finish_retrying(&state, &items).await {
                    Ok(held) => replies
                        .into_iter()
                        .zip(held)
                        .for_each(|(r, h)| drop(r.send(Ok(h)))),
                    Err(e) => replies
                        .into_iter()
                        .for_each(|r| drop(r.send(Err(e.to_string())))),
                }
            }
        });
        Finisher(tx)
    }

    /// Writes `finish` with whatever else ends meanwhile; whether its attempt held the run.
    async fn finish(&self, finish: Finish) -> Result<bool, String> {
        let (tx, rx) = oneshot::channel();
        self.0
            .send((finish, tx))
            .map_err(|_| "the finisher stopped".to_string())?;
        rx.await.map_err(|_| "the finisher stopped".to_string())?
    }
}
