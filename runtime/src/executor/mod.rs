//! The executor: runs one run of a plan as a DAG of step tasks joined by bounded queues
//! (backpressure, fan-out, fan-in), dead-letters rejected records and reports per step.
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use tokio::sync::mpsc;

pub mod dead_letter;
pub mod plan;
pub mod prepare;
pub mod report;
mod step;

pub use dead_letter::{DeadLetter, DeadLetterFile, DeadLetterSink};
pub use plan::{Injection, Plan, PlannedStep, RetrySettings};
pub use report::{Outcome, RunReport, StepCounters, StepReport};

use crate::engine::{Engine, LogSink};
use step::{Chunk, Shared};

/// Batches a step's input queue holds before its producers wait.
pub const QUEUE_DEPTH: usize = 4;

/// Where a run's side outputs go.
#[derive(Clone)]
pub struct RunSinks {
    /// Log lines of every step.
    pub logs: LogSink,
    /// Refused records.
    pub dead_letters: DeadLetterSink,
}

/// Runs `plan` to its end. `counters` (one per step, as made by [`new_counters`]) can be read
/// while it runs, for progress.
pub async fn execute(
    engine: &Engine,
    plan: &Plan,
    sinks: RunSinks,
    counters: &[Arc<StepCounters>],
) -> RunReport {
    let (_keep, never) = tokio::sync::watch::channel(false);
    execute_until(engine, plan, sinks, counters, never).await
}

/// [`execute`], stopped when `cancel` turns true: every step is aborted where it is (a call in
/// progress included) and the run ends `cancelled`, with the counters as they were.
pub async fn execute_until(
    engine: &Engine,
    plan: &Plan,
    sinks: RunSinks,
    counters: &[Arc<StepCounters>],
    mut cancel: tokio::sync::watch::Receiver<bool>,
) -> RunReport {
    let started = Instant::now();
    let shared = Shared {
        engine: engine.clone(),
        logs: sinks.logs,
        dead_letters: sinks.dead_letters,
        retry: plan.retry,
        failed: Arc::new(AtomicBool::new(false)),
        acks: Default::default(),
        yield_after_send: step::on_multi_thread_runtime(),
    };
    let n = plan.steps.len();
    let mut senders: Vec<Option<mpsc::Sender<Chunk>>> = Vec::with_capacity(n);
    let mut receivers: Vec<Option<mpsc::Receiver<Chunk>>> = Vec::with_capacity(n);
    let mut feeder = None;
    for (i, step) in plan.steps.iter().enumerate() {
        let injected = plan.inject.as_ref().filter(|inj| inj.step == i);
        if let Some(inj) = injected {
            let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
            let (records, size) = (inj.records.clone(), step.batch_size.max(1) as usize);
            feeder = Some(tokio::spawn(async move {
                for chunk in records.chunks(size) {
                    if tx.send(Arc::new(chunk.to_vec())).await.is_err() {
                        break;
                    }
                }
            }));
            senders.push(None);
            receivers.push(Some(rx));
        } else if step.inputs.is_empty() {
            senders.push(None);
            receivers.push(None);
        } else {
            let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
            senders.push(Some(tx));
            receivers.push(Some(rx));
        }
    }
    let mut tasks = Vec::with_capacity(n);
    for (i, step) in plan.steps.iter().enumerate() {
        let outputs: Vec<_> = plan
            .consumers(i)
            .into_iter()
            .filter_map(|(j, output)| {
                let tx = senders[j].clone()?;
                Some(step::Consumer { output, tx })
            })
            .collect();
        let counters = counters.get(i).cloned().unwrap_or_default();
        let span = tracing::info_span!("step", step = %step.id);
        tasks.push(tokio::spawn(tracing::Instrument::instrument(
            step::run_step(
                shared.clone(),
                step.clone(),
                counters,
                receivers[i].take(),
                outputs,
            ),
            span,
        )));
    }
    // Each queue is held only by its producers from here on.
    drop(senders);
    let aborts: Vec<_> = tasks
        .iter()
        .map(tokio::task::JoinHandle::abort_handle)
        .collect();
    let cancelled = Arc::new(AtomicBool::new(false));
    let watcher = {
        let cancelled = cancelled.clone();
        tokio::spawn(async move {
            while !*cancel.borrow_and_update() {
                if cancel.changed().await.is_err() {
                    return; // nobody can cancel any more
                }
            }
            cancelled.store(true, std::sync::atomic::Ordering::SeqCst);
            aborts.iter().for_each(tokio::task::AbortHandle::abort);
        })
    };
    let mut steps = Vec::with_capacity(n);
    for (i, task) in tasks.into_iter().enumerate() {
        match task.await {
            Ok(report) => steps.push(report),
            Err(e) if e.is_cancelled() => {
                let mut report = StepReport::starting(&plan.steps[i]);
                report.outcome = Outcome::Cancelled;
                steps.push(report);
            }
            Err(e) => {
                let mut report = StepReport::starting(&plan.steps[i]);
                report.outcome = Outcome::Failed;
                report.error = Some(report::StepErrorReport {
                    kind: "internal".into(),
                    message: format!("the step's task ended abnormally: {e}"),
                });
                steps.push(report);
            }
        }
    }
    watcher.abort();
    if let Some(f) = feeder {
        f.abort();
    }
    let outcome = if cancelled.load(std::sync::atomic::Ordering::SeqCst) {
        Outcome::Cancelled
    } else if steps.iter().any(|s| s.outcome == Outcome::Failed) {
        Outcome::Failed
    } else if steps.iter().any(|s| s.outcome == Outcome::Cancelled) {
        Outcome::Cancelled
    } else {
        Outcome::Succeeded
    };
    let dead_letters = steps.iter().map(|s| s.rejected).sum();
    RunReport {
        outcome,
        steps,
        duration: started.elapsed(),
        dead_letters,
        acks: shared.acks,
    }
}

/// Fresh counters for every step of `plan`.
pub fn new_counters(plan: &Plan) -> Vec<Arc<StepCounters>> {
    plan.steps
        .iter()
        .map(|_| Arc::new(StepCounters::default()))
        .collect()
}
