//! `{{name}}`: an Autoflow sink. It appends each record's value as a line to the file `path`
//! (inside a mount the step is granted) and makes it durable on `flush`.
use std::fs::{File, OpenOptions};
use std::io::Write;

use autoflow_plugin_sdk::*;

/// Its configuration.
#[derive(serde::Deserialize)]
#[serde(crate = "autoflow_plugin_sdk::serde", deny_unknown_fields)]
pub struct Config {
    /// The file to append to, as the plugin sees it (such as `/out/records.jsonl`).
    path: String,
}

/// The sink: the open file.
pub struct Plugin {
    file: File,
}

impl Sink for Plugin {
    type Config = Config;
    fn metadata() -> Metadata {
        Metadata::new("{{name}}", "0.1.0", "Appends each record's value as a line to `path`.").config_schema(
            r#"{"type":"object","properties":{"path":{"type":"string"}},"required":["path"],"additionalProperties":false}"#,
        )
    }
    fn open(config: Config) -> Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(&config.path);
        let file = file.map_err(|e| Error::Fatal(format!("cannot open {}: {e}", config.path)))?;
        Ok(Plugin { file })
    }
    fn write(&mut self, records: Vec<Record>) -> Result<()> {
        for r in records {
            self.file.write_all(&r.value).and_then(|()| self.file.write_all(b"\n")).map_err(|e| Error::Retryable(e.to_string()))?;
        }
        Ok(())
    }
    fn flush(&mut self) -> Result<()> {
        self.file.sync_all().map_err(|e| Error::Retryable(e.to_string()))
    }
}

export_sink!(Plugin);

#[cfg(test)]
mod tests {
    use super::*;
    use autoflow_plugin_sdk::testing::TestHost;

    #[test]
    fn appends_lines() {
        let dir = std::env::temp_dir().join(format!("{{name}}-test-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("out.jsonl");
        let config = format!("{{\"path\":{:?}}}", path.display().to_string());
        let written = TestHost::new().sink::<Plugin>(&config, vec![Record::new(r#"{"n":1}"#)]).map_err(|e| e.to_string());
        assert_eq!(written, Ok(()));
        assert_eq!(std::fs::read_to_string(&path).ok().as_deref(), Some("{\"n\":1}\n"));
    }
}
