//! `log-sink`: writes each record's value to the run log, at a configured level.
//!
//! Config: `{ "level": "info", "prefix": "" }`, both optional. Values are logged as text
//! (invalid UTF-8 is replaced by U+FFFD) and counted in the run metric `records_written`.
use autoflow_plugin_sdk::{Error, Level, Metadata, Record, Sink, host};
use serde::Deserialize;

#[cfg(test)]
mod tests;

/// JSON Schema (draft 2020-12) of [`Config`].
pub const CONFIG_SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "log-sink config",
  "type": "object",
  "properties": {
    "level": {
      "description": "Log level of each line (default info).",
      "enum": ["trace", "debug", "info", "warn", "error"],
      "default": "info"
    },
    "prefix": {
      "description": "Text put before each value (default empty).",
      "type": "string",
      "default": ""
    }
  },
  "required": [],
  "additionalProperties": false
}"#;

/// The level a line is logged at, as written in the config.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// `trace`
    Trace,
    /// `debug`
    Debug,
    /// `info` (the default)
    #[default]
    Info,
    /// `warn`
    Warn,
    /// `error`
    Error,
}

impl From<LogLevel> for Level {
    fn from(l: LogLevel) -> Self {
        match l {
            LogLevel::Trace => Level::Trace,
            LogLevel::Debug => Level::Debug,
            LogLevel::Info => Level::Info,
            LogLevel::Warn => Level::Warn,
            LogLevel::Error => Level::Error,
        }
    }
}

/// The step's configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Level of each log line.
    #[serde(default)]
    pub level: LogLevel,
    /// Text put before each value.
    #[serde(default)]
    pub prefix: String,
}

/// The sink: logs every record it is given.
#[derive(Debug)]
pub struct LogSink {
    level: Level,
    prefix: String,
    line: String,
}

impl Sink for LogSink {
    type Config = Config;

    fn metadata() -> Metadata {
        Metadata::new(
            "log-sink",
            env!("CARGO_PKG_VERSION"),
            "Writes each record's value to the run log as one line, at the configured level.",
        )
        .config_schema(CONFIG_SCHEMA)
    }

    fn open(config: Config) -> Result<Self, Error> {
        Ok(LogSink {
            level: config.level.into(),
            prefix: config.prefix,
            line: String::new(),
        })
    }

    fn write(&mut self, records: Vec<Record>) -> Result<(), Error> {
        let n = records.len() as u64;
        for r in &records {
            self.line.clear();
            self.line.push_str(&self.prefix);
            self.line.push_str(&String::from_utf8_lossy(&r.value));
            host::log(self.level, &self.line);
        }
        if n > 0 {
            host::count("records_written", n);
        }
        Ok(())
    }
}

autoflow_plugin_sdk::export_sink!(LogSink);
