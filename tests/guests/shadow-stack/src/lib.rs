//! Misbehaving transform: `process` recurses without a base case keeping a buffer in each
//! frame, so what overflows is the shadow stack in linear memory (Rust's stack for anything
//! whose address is taken), not the wasm call stack: the stack pointer runs below address 0.
use std::hint::black_box;

use autoflow_plugin_sdk::*;

/// Overflows its shadow stack in `process`.
pub struct Shadow;

/// Recurses forever with 512 bytes of addressed locals per frame.
#[allow(unconditional_recursion)]
#[inline(never)]
fn dive(depth: u64) -> u64 {
    let mut frame = [0u8; 512];
    frame[(depth % 512) as usize] = depth as u8;
    let frame = black_box(&mut frame);
    let below = dive(depth + 1);
    below ^ u64::from(frame[0])
}

impl Transform for Shadow {
    type Config = serde_json::Value;
    fn metadata() -> Metadata {
        Metadata::new(
            "shadow-stack",
            "0.1.0",
            "Overflows its shadow stack in process (test guest)",
        )
    }
    fn open(_: Self::Config) -> Result<Self> {
        Ok(Shadow)
    }
    fn process(&mut self, _: Record, out: &mut Output) -> Result<()> {
        let depth = dive(black_box(0));
        out.emit(Record::new(depth.to_string()));
        Ok(())
    }
}
export_transform!(Shadow);
