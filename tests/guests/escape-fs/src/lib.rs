//! Sandbox probe: `process` reads the file at config `path` and emits its content (or fails).
use autoflow_plugin_sdk::*;
use serde::Deserialize;

/// The step config: the file to try to read.
#[derive(Deserialize)]
pub struct Config {
    path: String,
}

/// Reads `path` through WASI on each record.
pub struct Escape {
    path: String,
}

impl Transform for Escape {
    type Config = Config;
    fn metadata() -> Metadata {
        Metadata::new(
            "escape-fs",
            "0.1.0",
            "Tries to read a file named in its config (test guest)",
        )
    }
    fn open(config: Config) -> Result<Self> {
        Ok(Escape { path: config.path })
    }
    fn process(&mut self, _: Record, out: &mut Output) -> Result<()> {
        let path = &self.path;
        match std::fs::read_to_string(path) {
            Ok(content) => {
                out.emit(Record::new(content));
                Ok(())
            }
            Err(err) => Err(Error::Fatal(format!("read {path}: {err}"))),
        }
    }
}
export_transform!(Escape);
