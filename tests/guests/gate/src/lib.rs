//! Gated transform: fails every call as retryable while the file at `path` (in a mount) is
//! missing, and passes records on once it exists (a downstream that comes back, for the tests
//! of run retries).
use autoflow_plugin_sdk::*;

/// The config: the gate file.
#[derive(serde::Deserialize)]
pub struct Config {
    /// Open when this file exists.
    pub path: String,
}

/// Checks the gate on every record.
pub struct Gate(String);

impl Transform for Gate {
    type Config = Config;
    fn metadata() -> Metadata {
        Metadata::new(
            "gate",
            "0.1.0",
            "Retryable failure until a file exists (test guest)",
        )
    }
    fn open(config: Config) -> Result<Self> {
        Ok(Gate(config.path))
    }
    fn process(&mut self, r: Record, out: &mut Output) -> Result<()> {
        if std::fs::metadata(&self.0).is_err() {
            return Err(Error::Retryable(format!("the gate {} is closed", self.0)));
        }
        out.emit(r);
        Ok(())
    }
}
export_transform!(Gate);
