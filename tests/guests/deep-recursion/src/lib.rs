//! Misbehaving transform: `process` recurses without a base case (stack limits).
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

use autoflow_plugin_sdk::*;

/// Overflows its stack in `process`.
pub struct Deep;

/// Written on every call: an effect the optimizer must keep, so the recursion stays real.
static DEPTH: AtomicU64 = AtomicU64::new(0);

/// Recurses forever; using the callee's result after the call keeps it from being a tail call
/// or a loop. It keeps no locals in linear memory (no `black_box` of a local, which would spill
/// it to the shadow stack), so what overflows is the wasm call stack, a clean stack-overflow trap,
/// not the shadow stack running off the bottom of linear memory.
#[allow(unconditional_recursion)]
#[inline(never)]
fn dive(depth: u64) -> u64 {
    DEPTH.store(depth, Ordering::Relaxed);
    let below = dive(depth + 1);
    below ^ DEPTH.swap(depth, Ordering::Relaxed)
}

impl Transform for Deep {
    type Config = serde_json::Value;
    fn metadata() -> Metadata {
        Metadata::new(
            "deep-recursion",
            "0.1.0",
            "Recurses forever in process (test guest)",
        )
    }
    fn open(_: Self::Config) -> Result<Self> {
        Ok(Deep)
    }
    fn process(&mut self, _: Record, out: &mut Output) -> Result<()> {
        let depth = dive(black_box(0));
        out.emit(Record::new(depth.to_string()));
        Ok(())
    }
}
export_transform!(Deep);
