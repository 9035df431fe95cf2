//! Misbehaving transform: `process` spins forever in a busy loop (for fuel/epoch limits).
use std::hint::black_box;

use autoflow_plugin_sdk::*;

/// Never returns from `process`.
pub struct Spin;

impl Transform for Spin {
    type Config = serde_json::Value;
    fn metadata() -> Metadata {
        Metadata::new(
            "spin-loop",
            "0.1.0",
            "Busy-loops forever in process (test guest)",
        )
    }
    fn open(_: Self::Config) -> Result<Self> {
        Ok(Spin)
    }
    fn process(&mut self, _: Record, _: &mut Output) -> Result<()> {
        let mut counter = 0u64;
        loop {
            counter = black_box(counter.wrapping_add(1));
        }
    }
}
export_transform!(Spin);
