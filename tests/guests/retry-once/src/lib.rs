//! Flaky transform: the first `process` call in an instance fails as retryable, later ones work.
use std::sync::atomic::{AtomicU32, Ordering};

use autoflow_plugin_sdk::*;

/// `process` calls so far in this component instance.
static CALLS: AtomicU32 = AtomicU32::new(0);

/// Fails once, then passes records on unchanged.
pub struct RetryOnce;

impl Transform for RetryOnce {
    type Config = serde_json::Value;
    fn metadata() -> Metadata {
        Metadata::new(
            "retry-once",
            "0.1.0",
            "Fails its first call as retryable (test guest)",
        )
    }
    fn open(_: Self::Config) -> Result<Self> {
        Ok(RetryOnce)
    }
    fn process(&mut self, r: Record, out: &mut Output) -> Result<()> {
        if CALLS.fetch_add(1, Ordering::Relaxed) == 0 {
            return Err(Error::Retryable("try again".into()));
        }
        out.emit(r);
        Ok(())
    }
}
export_transform!(RetryOnce);
