//! Misbehaving transform: `process` writes step state in 1 MiB values under new keys until the
//! host refuses (the state cap).
use autoflow_plugin_sdk::*;

/// Grows its state without end.
pub struct StateHog;

impl Transform for StateHog {
    type Config = serde_json::Value;
    fn metadata() -> Metadata {
        Metadata::new(
            "state-hog",
            "0.1.0",
            "Writes state until the cap (test guest)",
        )
    }
    fn open(_: Self::Config) -> Result<Self> {
        Ok(StateHog)
    }
    fn process(&mut self, record: Record, out: &mut Output) -> Result<()> {
        let value = vec![7u8; 1 << 20];
        for i in 0..64 {
            host::state_set(&format!("chunk-{i}"), &value);
        }
        out.emit(record);
        Ok(())
    }
}
export_transform!(StateHog);
