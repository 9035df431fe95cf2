//! `file-sink`: writes records to a JSON Lines or CSV file (through WASI preopens), durably.
//!
//! Config: `{ "path": "/out/paid.jsonl", "format": "jsonl" | "csv", "append": false,
//! "columns": ["id", "amount"], "delimiter": "," }`. The file is truncated at `open` unless
//! `append`; `flush` flushes the buffer and syncs the file to disk.
use std::fs::{File, OpenOptions};
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};

use autoflow_plugin_sdk::{Error, Metadata, Record, Sink, host};
use serde_json::Value;

mod config;
mod csv;

#[cfg(test)]
mod tests;

pub use config::{CONFIG_SCHEMA, Config, Format, Settings};

/// The CSV state: columns once known, and whether the header is still to be written.
#[derive(Debug)]
struct CsvState {
    columns: Option<Vec<String>>,
    header_due: bool,
    delimiter: u8,
    warned_extra: bool,
}

/// The sink: one open file.
#[derive(Debug)]
pub struct FileSink {
    path: String,
    out: BufWriter<File>,
    csv: Option<CsvState>,
    written: u64,
    /// The file was created by `open`: its directory entry is synced at the first flush.
    sync_dir: bool,
    scratch: Vec<u8>,
}

impl Sink for FileSink {
    type Config = Config;

    fn metadata() -> Metadata {
        Metadata::new(
            "file-sink",
            env!("CARGO_PKG_VERSION"),
            "Writes records to a JSON Lines file (each value on its own line) or a CSV file \
             (a header, then one row per JSON object); flush syncs the file to disk.",
        )
        .config_schema(CONFIG_SCHEMA)
    }

    fn open(config: Config) -> Result<Self, Error> {
        let s = config.settings().map_err(Error::InvalidConfig)?;
        let fatal =
            |what: &str, e: std::io::Error| Error::Fatal(format!("cannot {what} {}: {e}", s.path));
        let existing = std::fs::metadata(&s.path).ok();
        let old_len = if s.append {
            existing.as_ref().map_or(0, |m| m.len())
        } else {
            0
        };
        let mut file = OpenOptions::new()
            .create(true)
            .write(true)
            .read(s.append)
            .append(s.append)
            .truncate(!s.append)
            .open(&s.path)
            .map_err(|e| fatal("open", e))?;
        let mut out = Vec::new();
        if old_len > 0 {
            // A line cut short (by a crash) must not swallow the first new record.
            let mut last = [0u8];
            file.seek(SeekFrom::Start(old_len - 1))
                .and_then(|_| file.read_exact(&mut last))
                .map_err(|e| fatal("read", e))?;
            if last[0] != b'\n' {
                out.push(b'\n');
            }
        }
        let csv = match s.format {
            Format::Jsonl => None,
            Format::Csv => {
                let mut columns = s.columns;
                if old_len > 0 {
                    file.seek(SeekFrom::Start(0))
                        .map_err(|e| fatal("read", e))?;
                    let header = csv::read_header(BufReader::new(&mut file), s.delimiter)
                        .map_err(|e| fatal("read the header of", e))?;
                    match &columns {
                        Some(c) if *c != header => {
                            return Err(Error::InvalidConfig(format!(
                                "columns {c:?} differ from the header {header:?} of {}, which is appended to",
                                s.path
                            )));
                        }
                        _ => columns = Some(header),
                    }
                }
                let header_due = old_len == 0;
                if let (Some(c), true) = (&columns, header_due) {
                    csv::push_row(&mut out, c.iter().map(|c| c.as_str().into()), s.delimiter);
                }
                Some(CsvState {
                    header_due: header_due && columns.is_none(),
                    columns,
                    delimiter: s.delimiter,
                    warned_extra: false,
                })
            }
        };
        let mut out_w = BufWriter::with_capacity(64 * 1024, file);
        out_w.write_all(&out).map_err(|e| fatal("write", e))?;
        Ok(FileSink {
            path: s.path,
            out: out_w,
            csv,
            written: 0,
            sync_dir: existing.is_none(),
            scratch: out,
        })
    }

    fn write(&mut self, records: Vec<Record>) -> Result<(), Error> {
        let n = records.len() as u64;
        match &mut self.csv {
            None => {
                self.scratch.clear();
                jsonl_lines(&mut self.scratch, &records, self.written, &self.path)?;
            }
            Some(state) => {
                self.scratch.clear();
                for (i, r) in records.iter().enumerate() {
                    let at = || {
                        format!(
                            "{}: batch index {i} (record {} written)",
                            self.path,
                            self.written + i as u64 + 1
                        )
                    };
                    let object = match serde_json::from_slice::<Value>(&r.value) {
                        Ok(Value::Object(o)) => o,
                        Ok(_) => {
                            return Err(Error::Fatal(format!(
                                "{}: value is not a JSON object",
                                at()
                            )));
                        }
                        Err(e) => {
                            return Err(Error::Fatal(format!(
                                "{}: value is not valid JSON: {e}",
                                at()
                            )));
                        }
                    };
                    let columns = state
                        .columns
                        .get_or_insert_with(|| object.keys().cloned().collect());
                    if state.header_due {
                        csv::push_row(
                            &mut self.scratch,
                            columns.iter().map(|c| c.as_str().into()),
                            state.delimiter,
                        );
                        state.header_due = false;
                    }
                    let cells = columns
                        .iter()
                        .map(|c| csv::cell_text(csv::lookup(&object, c)));
                    csv::push_row(&mut self.scratch, cells, state.delimiter);
                    if !state.warned_extra && object.keys().any(|k| !covered(columns, k)) {
                        state.warned_extra = true;
                        host::warn(&format!(
                            "{}: keys outside the columns {columns:?} are not written",
                            at()
                        ));
                    }
                }
            }
        }
        // The whole batch or nothing: a bad record fails before any of it is written.
        self.out
            .write_all(&self.scratch)
            .map_err(|e| Error::Fatal(format!("cannot write {}: {e}", self.path)))?;
        self.written += n;
        if n > 0 {
            host::count("records_written", n);
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), Error> {
        let fatal = |e: std::io::Error| Error::Fatal(format!("cannot flush {}: {e}", self.path));
        self.out.flush().map_err(fatal)?;
        self.out.get_ref().sync_all().map_err(fatal)?;
        if self.sync_dir {
            // Best effort: make the new file's directory entry durable too (not every
            // platform lets a directory be opened).
            let dir = std::path::Path::new(&self.path)
                .parent()
                .filter(|d| !d.as_os_str().is_empty());
            if let Ok(d) = File::open(dir.unwrap_or(std::path::Path::new("."))) {
                let _ = d.sync_all();
            }
            self.sync_dir = false;
        }
        Ok(())
    }
}

/// Whether top-level key `key` is written by some column (itself, or a path inside it).
fn covered(columns: &[String], key: &str) -> bool {
    columns.iter().any(|c| {
        c == key
            || c.strip_prefix(key)
                .is_some_and(|rest| rest.starts_with('.'))
    })
}

/// Appends each value as one line. A value holding a line break is written compacted if it
/// is JSON (line breaks in JSON are only whitespace), and is an error otherwise.
fn jsonl_lines(
    out: &mut Vec<u8>,
    records: &[Record],
    written: u64,
    path: &str,
) -> Result<(), Error> {
    for (i, r) in records.iter().enumerate() {
        if r.value.contains(&b'\n') {
            let compact = serde_json::from_slice::<Value>(&r.value).map_err(|_| {
                Error::Fatal(format!(
                    "{path}: batch index {i} (record {} written): the value holds a line break \
                     and is not JSON, so it cannot be written as one line",
                    written + i as u64 + 1
                ))
            })?;
            serde_json::to_writer(&mut *out, &compact)
                .map_err(|e| Error::Fatal(format!("cannot write {path}: {e}")))?;
        } else {
            out.extend_from_slice(&r.value);
        }
        out.push(b'\n');
    }
    Ok(())
}

autoflow_plugin_sdk::export_sink!(FileSink);
