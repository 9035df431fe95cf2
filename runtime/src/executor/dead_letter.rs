//! Dead letters: records a step refused, with the reason, the step and the plugin's digest.
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::record::Record;

/// A refused record.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// The step that refused it.
    pub step: String,
    /// sha256 of the plugin that refused it.
    pub digest: String,
    /// Why.
    pub reason: String,
    /// The record as the step received it.
    pub record: Record,
}

impl DeadLetter {
    /// The dead letter as one JSON object: the value inline when it is JSON, else as text.
    pub fn to_json(&self) -> Value {
        let value = serde_json::from_slice::<Value>(&self.record.value).unwrap_or_else(|_| {
            Value::String(String::from_utf8_lossy(&self.record.value).into_owned())
        });
        let mut obj = json!({
            "step": self.step,
            "reason": self.reason,
            "plugin": format!("sha256:{}", self.digest),
            "value": value,
        });
        if let Some(key) = &self.record.key {
            obj["key"] = Value::String(String::from_utf8_lossy(key).into_owned());
        }
        if !self.record.headers.is_empty() {
            obj["headers"] = json!(self.record.headers);
        }
        if let Some(ts) = self.record.timestamp {
            obj["timestamp"] = json!(ts);
        }
        obj
    }
}

/// Where dead letters go.
pub type DeadLetterSink = Arc<dyn Fn(DeadLetter) + Send + Sync>;

/// A JSON-lines file of dead letters, created on the first one.
pub struct DeadLetterFile {
    path: PathBuf,
    out: Mutex<Option<BufWriter<File>>>,
}

impl DeadLetterFile {
    /// Dead letters will go to `path` (truncated when the first one arrives).
    pub fn new(path: &Path) -> Arc<Self> {
        Arc::new(Self {
            path: path.to_path_buf(),
            out: Mutex::new(None),
        })
    }

    /// Where they go.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one dead letter.
    pub fn push(&self, letter: &DeadLetter) -> std::io::Result<()> {
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        if out.is_none() {
            if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            *out = Some(BufWriter::new(File::create(&self.path)?));
        }
        if let Some(w) = out.as_mut() {
            serde_json::to_writer(&mut *w, &letter.to_json())?;
            w.write_all(b"\n")?;
        }
        Ok(())
    }

    /// Flushes to disk.
    pub fn flush(&self) -> std::io::Result<()> {
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(w) = out.as_mut() {
            w.flush()?;
            w.get_ref().sync_all()?;
        }
        Ok(())
    }
}
