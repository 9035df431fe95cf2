//! Misbehaving transform: `process` panics (the host must turn the trap into a step error).
use autoflow_plugin_sdk::*;

/// Panics in `process`.
pub struct Panicker;

impl Transform for Panicker {
    type Config = serde_json::Value;
    fn metadata() -> Metadata {
        Metadata::new("panicker", "0.1.0", "Panics in process (test guest)")
    }
    fn open(_: Self::Config) -> Result<Self> {
        Ok(Panicker)
    }
    fn process(&mut self, _: Record, _: &mut Output) -> Result<()> {
        panic!("boom: the guest panicked on purpose");
    }
}
export_transform!(Panicker);
