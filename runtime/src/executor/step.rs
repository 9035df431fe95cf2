//! One step's task in a run: instantiate, open, then read, process or write batches until its
//! input ends, retrying retryable failures, and report what it did.
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use tokio::sync::mpsc::{Receiver, Sender};

use super::dead_letter::{DeadLetter, DeadLetterSink};
use super::plan::{PlannedStep, RetrySettings};
use super::report::{Outcome, StepCounters, StepErrorReport, StepReport};
use crate::engine::bindings::{Processed, Record};
use crate::engine::{
    Engine, LogLevel, LogSink, PluginKind, Sandbox, StepError, StepHost, StepInstance,
    instance_record_bytes,
};

/// A batch as it travels between steps: shared, so fan-out does not copy it.
pub type Chunk = Arc<Vec<Record>>;

/// A step reading from this one: its input queue, and which output of this step it reads.
pub(crate) struct Consumer {
    /// `None`: the default output; else a named output (`input: STEP.OUTPUT`).
    pub output: Option<String>,
    /// Its input queue.
    pub tx: Sender<Chunk>,
}

/// What every step task of a run shares.
#[derive(Clone)]
pub(crate) struct Shared {
    pub engine: Engine,
    pub logs: LogSink,
    pub dead_letters: DeadLetterSink,
    pub retry: RetrySettings,
    /// Set by the first step that fails; the others stop at their next batch.
    pub failed: Arc<AtomicBool>,
    /// Message acknowledgements its steps asked for, held until the run commits.
    pub acks: crate::integrations::PendingAcks,
    /// Whether a step yields after each send (the run is on a multi-thread runtime; see
    /// [`send_all`]). Read once per run, not at every batch.
    pub yield_after_send: bool,
}

/// A call into the plugin, for the retry loop.
enum Call<'a> {
    Open(Option<&'a str>),
    Next(u32),
    Process(&'a [Record]),
    Finish,
    Write(&'a [Record]),
    Flush,
}

enum Reply {
    Batch(Option<crate::engine::bindings::Batch>),
    Processed(Processed),
    Finished(Option<Processed>),
    Done,
}

/// The running step: its instance, counters and retry count.
struct Running<'a> {
    inst: StepInstance,
    step: &'a PlannedStep,
    shared: &'a Shared,
    counters: &'a StepCounters,
    retries: u64,
}

impl Running<'_> {
    /// The step's own retry settings, else the run's.
    fn retry(&self) -> &RetrySettings {
        self.step.retry.as_ref().unwrap_or(&self.shared.retry)
    }

    /// After `e` on `batch`: with `then: dead_letter`, a retryable error whose retries are
    /// used up turns the batch's records into dead letters and the step goes on; otherwise the
    /// error stands.
    fn dead_letter_or_fail(&self, batch: &[Record], e: StepError) -> Result<(), StepError> {
        if !(e.is_retryable() && self.retry().dead_letter_exhausted) {
            return Err(e);
        }
        let reason = format!(
            "retries used up ({} attempts): {e}",
            self.retry().max_attempts
        );
        self.log(
            LogLevel::Warn,
            format!("{} records dead-lettered: {reason}", batch.len()),
        );
        StepCounters::add(&self.counters.rejected, batch.len() as u64);
        for record in batch {
            (self.shared.dead_letters)(DeadLetter {
                step: self.step.id.clone(),
                digest: self.step.plugin.digest.clone(),
                reason: reason.clone(),
                record: record.clone().into(),
            });
        }
        Ok(())
    }

    fn log(&self, level: LogLevel, message: String) {
        (self.shared.logs)(crate::engine::LogLine {
            step: Some(self.step.id.as_str().into()),
            level,
            message,
            at: std::time::SystemTime::now(),
        });
    }

    /// Makes one call, retrying retryable failures with backoff.
    async fn call(&mut self, call: Call<'_>) -> Result<Reply, StepError> {
        let mut attempt = 1;
        loop {
            let started = Instant::now();
            let result = match &call {
                Call::Open(cursor) => self
                    .inst
                    .open(&self.step.config, *cursor)
                    .await
                    .map(|()| Reply::Done),
                Call::Next(max) => self.inst.next(*max).await.map(Reply::Batch),
                Call::Process(records) => self.inst.process(records).await.map(Reply::Processed),
                Call::Finish => self.inst.finish().await.map(Reply::Finished),
                Call::Write(records) => self.inst.write(records).await.map(|()| Reply::Done),
                Call::Flush => self.inst.flush().await.map(|()| Reply::Done),
            };
            // The call's own time: its wall time less the time it spent yielding to other steps.
            let own = started.elapsed().saturating_sub(self.inst.take_suspended());
            StepCounters::add(&self.counters.busy_ns, own.as_nanos() as u64);
            StepCounters::add(&self.counters.calls, 1);
            let printed = self.inst.take_output();
            if !printed.trim().is_empty() {
                self.log(LogLevel::Info, printed.trim_end().to_string());
            }
            match result {
                Err(e) if e.is_retryable() && attempt < self.retry().max_attempts => {
                    let wait = self.retry().backoff(attempt - 1);
                    self.log(
                        LogLevel::Warn,
                        format!(
                            "attempt {attempt} failed ({e}); retrying in {} ms",
                            wait.as_millis()
                        ),
                    );
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                    self.retries += 1;
                }
                other => return other,
            }
        }
    }

    fn cancelled(&self) -> bool {
        self.shared.failed.load(Ordering::SeqCst)
    }
}

/// Sends `chunk` to every consumer of the default output; waits while a consumer's queue is
/// full (backpressure).
///
/// Then, on a multi-thread runtime, yields once. A consumer woken by the send waits in this
/// worker's LIFO slot, which the other workers neither take from nor hear of: it would run
/// only when this step's next plugin call is suspended at an epoch tick, and the steps of a
/// run would mostly take turns on one core. Yielding puts this step at the back of the
/// worker's queue, where an idle worker (which is told) takes it, while the consumer runs.
/// On one thread there is no one to hand over to, and the yield only breaks the producer's
/// run of batches (`runtime/benches/pipeline.rs`, batch 1024, two cores: 0.53-0.54 of native
/// without the yield, 0.68-0.91 with it; one thread: 0.41-0.44 without, 0.39 with).
/// `yield_after` is [`Shared::yield_after_send`].
async fn send_all(outputs: &[Consumer], chunk: Chunk, yield_after: bool) {
    send_to(outputs, None, chunk).await;
    if yield_after {
        tokio::task::yield_now().await;
    }
}

/// Sends `chunk` to the consumers of `output` (`None`: the default one); a chunk for an output
/// nobody reads is dropped.
async fn send_to(outputs: &[Consumer], output: Option<&str>, chunk: Chunk) {
    for c in outputs.iter().filter(|c| c.output.as_deref() == output) {
        // A closed consumer has stopped because the run failed; the loop sees the flag.
        let _ = c.tx.send(chunk.clone()).await;
    }
}

/// Passes a transform's results on: each named output's records, then the default output's;
/// counts them all as records out. `yield_after` is [`Shared::yield_after_send`].
async fn pass_on(counters: &StepCounters, outputs: &[Consumer], out: Processed, yield_after: bool) {
    let mut any = false;
    for routed in out.routed {
        StepCounters::add(&counters.records_out, routed.records.len() as u64);
        StepCounters::add(&counters.bytes_out, bytes_of(&routed.records));
        if !routed.records.is_empty() {
            send_to(outputs, Some(&routed.output), Arc::new(routed.records)).await;
            any = true;
        }
    }
    StepCounters::add(&counters.records_out, out.records.len() as u64);
    StepCounters::add(&counters.bytes_out, bytes_of(&out.records));
    if !out.records.is_empty() {
        send_all(outputs, Arc::new(out.records), yield_after).await;
    } else if any && yield_after {
        tokio::task::yield_now().await;
    }
}

/// Whether the current runtime is a multi-thread one, where [`send_all`] yields.
pub(crate) fn on_multi_thread_runtime() -> bool {
    let flavor = tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor());
    matches!(flavor, Ok(tokio::runtime::RuntimeFlavor::MultiThread))
}

fn bytes_of(records: &[Record]) -> u64 {
    records.iter().map(instance_record_bytes).sum()
}

/// Runs step `step` to its end and reports. `input` is its merged input queue (none for
/// sources); `outputs` are its consumers' queues.
pub(crate) async fn run_step(
    shared: Shared,
    step: PlannedStep,
    counters: Arc<StepCounters>,
    input: Option<Receiver<Chunk>>,
    outputs: Vec<Consumer>,
) -> StepReport {
    let mut report = StepReport::starting(&step);
    let result = drive(&shared, &step, &counters, input, outputs, &mut report).await;
    match result {
        Ok(outcome) => report.outcome = outcome,
        Err(e) => {
            shared.failed.store(true, Ordering::SeqCst);
            (shared.logs)(crate::engine::LogLine {
                step: Some(step.id.as_str().into()),
                level: LogLevel::Error,
                message: format!("step failed: {e}"),
                at: std::time::SystemTime::now(),
            });
            report.outcome = Outcome::Failed;
            report.error = Some(StepErrorReport::from(&e));
        }
    }
    report.records_in = StepCounters::get(&counters.records_in);
    report.records_out = StepCounters::get(&counters.records_out);
    report.rejected = StepCounters::get(&counters.rejected);
    report.bytes_in = StepCounters::get(&counters.bytes_in);
    report.bytes_out = StepCounters::get(&counters.bytes_out);
    report.calls = StepCounters::get(&counters.calls);
    report.batches = StepCounters::get(&counters.batches);
    report.busy = std::time::Duration::from_nanos(StepCounters::get(&counters.busy_ns));
    let outcome = match report.outcome {
        Outcome::Succeeded => "succeeded",
        Outcome::Failed => "failed",
        Outcome::Cancelled => "cancelled",
    };
    tracing::info!(outcome, records_out = report.records_out, "step ended");
    report
}

/// The body of a step; the outputs are dropped when it returns, which ends its consumers' input.
async fn drive(
    shared: &Shared,
    step: &PlannedStep,
    counters: &StepCounters,
    input: Option<Receiver<Chunk>>,
    outputs: Vec<Consumer>,
    report: &mut StepReport,
) -> Result<Outcome, StepError> {
    let mut host = StepHost::new(&step.id, shared.logs.clone());
    host.state = crate::engine::StepState::new(step.state.clone());
    host.secrets = step.secrets.clone();
    host.connections = step.connections.clone();
    host.acks = shared.acks.clone();
    host.allow_hosts = step.allow_hosts.clone();
    let sandbox = Sandbox {
        limits: step.limits,
        mounts: step.mounts.clone(),
        host,
    };
    let inst = shared.engine.instantiate(&step.plugin, sandbox).await?;
    let mut run = Running {
        inst,
        step,
        shared,
        counters,
        retries: 0,
    };
    let outcome = body(&mut run, input, &outputs, report).await;
    drop(outputs);
    report.retries = run.retries;
    report.fuel_used = run.inst.fuel_used();
    report.memory_peak_bytes = run.inst.memory_peak();
    report.counters = run.inst.host().counters.clone();
    report.state = run.inst.host().state.entries().clone();
    let dropped = run.inst.host().dropped_lines();
    if dropped > 0 {
        run.log(
            LogLevel::Warn,
            format!("{dropped} log lines dropped: the step's log budget was spent"),
        );
    }
    if outcome.is_err() {
        shared.failed.store(true, Ordering::SeqCst);
    }
    outcome
}

async fn body(
    run: &mut Running<'_>,
    mut input: Option<Receiver<Chunk>>,
    outputs: &[Consumer],
    report: &mut StepReport,
) -> Result<Outcome, StepError> {
    let counters = run.counters;
    let cursor = run.step.cursor.clone();
    run.call(Call::Open(cursor.as_deref())).await?;
    match run.step.plugin.kind {
        PluginKind::Source => loop {
            if run.cancelled() {
                return Ok(Outcome::Cancelled);
            }
            let Reply::Batch(batch) = run.call(Call::Next(run.step.batch_size)).await? else {
                continue;
            };
            let Some(batch) = batch else { break };
            let n = batch.records.len() as u64;
            let bytes = bytes_of(&batch.records);
            StepCounters::add(&counters.batches, 1);
            StepCounters::add(&counters.records_in, n);
            StepCounters::add(&counters.bytes_in, bytes);
            StepCounters::add(&counters.records_out, n);
            StepCounters::add(&counters.bytes_out, bytes);
            if batch.cursor.is_some() {
                report.cursor = batch.cursor;
            }
            if n > 0 {
                send_all(
                    outputs,
                    Arc::new(batch.records),
                    run.shared.yield_after_send,
                )
                .await;
            }
        },
        PluginKind::Transform => {
            let Some(rx) = input.as_mut() else {
                return Ok(Outcome::Succeeded);
            };
            while let Some(chunk) = rx.recv().await {
                if run.cancelled() {
                    return Ok(Outcome::Cancelled);
                }
                StepCounters::add(&counters.batches, 1);
                StepCounters::add(&counters.records_in, chunk.len() as u64);
                StepCounters::add(&counters.bytes_in, bytes_of(&chunk));
                let out = match run.call(Call::Process(&chunk)).await {
                    Ok(Reply::Processed(out)) => out,
                    Ok(_) => continue,
                    Err(e) => {
                        run.dead_letter_or_fail(&chunk, e)?;
                        continue;
                    }
                };
                for rejection in out.rejected {
                    let Some(record) = chunk.get(rejection.index as usize) else {
                        return Err(StepError::Fatal(format!(
                            "the plugin rejected record {} of a batch of {}",
                            rejection.index,
                            chunk.len()
                        )));
                    };
                    StepCounters::add(&counters.rejected, 1);
                    (run.shared.dead_letters)(DeadLetter {
                        step: run.step.id.clone(),
                        digest: run.step.plugin.digest.clone(),
                        reason: rejection.reason,
                        record: record.clone().into(),
                    });
                }
                let out = Processed {
                    rejected: Vec::new(),
                    ..out
                };
                pass_on(counters, outputs, out, run.shared.yield_after_send).await;
            }
            if run.cancelled() {
                return Ok(Outcome::Cancelled);
            }
            // The input has ended: what the transform held back goes on before its consumers'
            // inputs end.
            if let Reply::Finished(Some(out)) = run.call(Call::Finish).await? {
                pass_on(counters, outputs, out, run.shared.yield_after_send).await;
            }
        }
        PluginKind::Sink => {
            if let Some(rx) = input.as_mut() {
                while let Some(chunk) = rx.recv().await {
                    if run.cancelled() {
                        return Ok(Outcome::Cancelled);
                    }
                    let bytes = bytes_of(&chunk);
                    StepCounters::add(&counters.batches, 1);
                    StepCounters::add(&counters.records_in, chunk.len() as u64);
                    StepCounters::add(&counters.bytes_in, bytes);
                    if let Err(e) = run.call(Call::Write(&chunk)).await {
                        run.dead_letter_or_fail(&chunk, e)?;
                        continue;
                    }
                    StepCounters::add(&counters.records_out, chunk.len() as u64);
                    StepCounters::add(&counters.bytes_out, bytes);
                }
            }
            if run.cancelled() {
                return Ok(Outcome::Cancelled);
            }
            run.call(Call::Flush).await?;
        }
    }
    Ok(if run.cancelled() {
        Outcome::Cancelled
    } else {
        Outcome::Succeeded
    })
}
