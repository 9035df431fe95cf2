//! Scheduling and durable execution: cron schedules ([`cron`], [`ticker`]), the queue's
//! workers ([`worker`]) and their prompt wake-up ([`dispatch`]). The queue itself lives in the
//! database (`store::queue`).
mod attempt;
pub mod error;
pub mod dispatch;
pub mod plans;
pub mod ticker;
pub mod worker;

use crate::pipeline::Pipeline;
use crate::store::queue::RunSpec;

/// How runs of `pipeline` are to be run: its worker labels, concurrency limit and attempts.
pub fn run_spec(pipeline: &Pipeline) -> RunSpec {
    RunSpec {
        labels: pipeline.labels.clone(),
        concurrency: pipeline.concurrency.unwrap_or(0),
        max_attempts: pipeline.retry.as_ref().map_or(1, |r| r.max_attempts.max(1)),
    }
}
