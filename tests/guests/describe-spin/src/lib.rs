//! Misbehaving transform: `describe` (the SDK's `metadata`) spins forever in a busy loop, as a
//! plugin uploaded to hold a core would.
use std::hint::black_box;

use autoflow_plugin_sdk::*;

/// Never answers `describe`.
pub struct DescribeSpin;

impl Transform for DescribeSpin {
    type Config = serde_json::Value;
    fn metadata() -> Metadata {
        let mut counter = 0u64;
        loop {
            counter = black_box(counter.wrapping_add(1));
        }
    }
    fn open(_: Self::Config) -> Result<Self> {
        Ok(DescribeSpin)
    }
    fn process(&mut self, record: Record, out: &mut Output) -> Result<()> {
        out.emit(record);
        Ok(())
    }
}
export_transform!(DescribeSpin);
