//! Misbehaving transform: `process` allocates and touches 1 MiB chunks forever (memory limits).
use std::hint::black_box;

use autoflow_plugin_sdk::*;

const CHUNK: usize = 1 << 20;
const PAGE: usize = 4096;

/// Grows its memory without bound in `process`.
pub struct Bomb;

impl Transform for Bomb {
    type Config = serde_json::Value;
    fn metadata() -> Metadata {
        Metadata::new(
            "memory-bomb",
            "0.1.0",
            "Allocates memory forever in process (test guest)",
        )
    }
    fn open(_: Self::Config) -> Result<Self> {
        Ok(Bomb)
    }
    fn process(&mut self, _: Record, _: &mut Output) -> Result<()> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            let mut chunk = Vec::<u8>::with_capacity(CHUNK);
            chunk.resize(CHUNK, 0);
            for page in (0..CHUNK).step_by(PAGE) {
                chunk[page] = 0xA5;
            }
            hoard.push(black_box(chunk));
            black_box(&mut hoard);
        }
    }
}
export_transform!(Bomb);
