//! Slow transform: passes records on unchanged after busy-waiting `ms` milliseconds on each (a
//! run that takes a known time, for the queue's tests: leases, cancellation, concurrency).
use std::time::{Duration, Instant};

use autoflow_plugin_sdk::*;

/// The config: milliseconds per record.
#[derive(serde::Deserialize)]
pub struct Config {
    /// Busy-wait this long per record.
    pub ms: u64,
}

/// Waits, then emits.
pub struct Slow(Duration);

impl Transform for Slow {
    type Config = Config;
    fn metadata() -> Metadata {
        Metadata::new(
            "slow",
            "0.1.0",
            "Waits `ms` milliseconds per record (test guest)",
        )
    }
    fn open(config: Config) -> Result<Self> {
        Ok(Slow(Duration::from_millis(config.ms)))
    }
    fn process(&mut self, r: Record, out: &mut Output) -> Result<()> {
        let start = Instant::now();
        while start.elapsed() < self.0 {
            std::hint::spin_loop();
        }
        out.emit(r);
        Ok(())
    }
}
export_transform!(Slow);
