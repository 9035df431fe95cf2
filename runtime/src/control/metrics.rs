//! A scrape of the process's metrics: the queue read from the store (its depth and the age of
//! its oldest due run, so that any server or worker of a database shows them), then every
//! family as Prometheus text ([`crate::telemetry::Export`]).
use std::time::Duration;

use super::Core;
use crate::telemetry::{self, Export};

/// The text exposition, the queue gauges read from the store just now.
pub async fn scrape(core: &Core, export: &Export) -> crate::store::Result<String> {
    let now = crate::store::now_ms();
    let stats = core.store.queue_stats(now).await?;
    let age = stats
        .oldest_due
        .map_or(0, |since| u64::try_from(now - since).unwrap_or(0));
    telemetry::queue(stats.queued, Duration::from_millis(age));
    Ok(export.render())
}
