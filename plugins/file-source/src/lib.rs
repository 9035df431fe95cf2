//! `file-source`: reads records from a JSON Lines or CSV file (through WASI preopens).
//!
//! Config: `{ "path": "/in/orders.jsonl", "format": "jsonl" | "csv", "delimiter": ",",
//! "infer_types": true }`. JSON Lines: every non-blank line is one record, verbatim. CSV: the
//! first row is the header, each later row becomes a JSON object in header order. The cursor
//! is the byte offset after the last record returned; a resumed run seeks there.
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};

use autoflow_plugin_sdk::{Batch, Error, Metadata, Record, Source};

mod config;

#[cfg(test)]
mod tests;

pub use config::{CONFIG_SCHEMA, Config, Format, Settings};
pub use file_format::{Cells, CsvError, CsvReader, RowWriter, is_json_number};

/// How the open file is read.
#[derive(Debug)]
enum Reader {
    /// JSON Lines, at a byte offset.
    Jsonl {
        inner: BufReader<File>,
        offset: u64,
        hint: usize,
    },
    /// CSV rows under a header.
    Csv {
        inner: CsvReader<BufReader<File>>,
        row: RowWriter,
    },
    /// Nothing to read (a CSV file without even a header).
    Empty,
}

/// The source: one open file.
#[derive(Debug)]
pub struct FileSource {
    path: String,
    reader: Reader,
}

impl Source for FileSource {
    type Config = Config;

    fn metadata() -> Metadata {
        Metadata::new(
            "file-source",
            env!("CARGO_PKG_VERSION"),
            "Reads records from a JSON Lines file (one record per line, verbatim) or a CSV file \
             (one JSON object per row, keyed by the header); resumes from a byte-offset cursor.",
        )
        .config_schema(CONFIG_SCHEMA)
    }

    fn open(config: Config, cursor: Option<String>) -> Result<Self, Error> {
        let s = config.settings().map_err(Error::InvalidConfig)?;
        let resume = match cursor {
            None => None,
            Some(c) => Some(c.trim().parse::<u64>().map_err(|_| {
                Error::Fatal(format!(
                    "invalid cursor {c:?} for {}: expected a byte offset",
                    s.path
                ))
            })?),
        };
        let io_err =
            |what: &str, e: std::io::Error| Error::Fatal(format!("cannot {what} {}: {e}", s.path));
        let file = File::open(&s.path).map_err(|e| io_err("open", e))?;
        let len = file.metadata().map_err(|e| io_err("stat", e))?.len();
        if let Some(c) = resume.filter(|c| *c > len) {
            return Err(Error::Fatal(format!(
                "cursor {c} is past the end of {} ({len} bytes): the file was truncated or replaced",
                s.path
            )));
        }
        let mut inner = BufReader::with_capacity(64 * 1024, file);
        let mut offset = skip_bom(&mut inner).map_err(|e| io_err("read", e))?;
        let reader = match s.format {
            Format::Jsonl => {
                if let Some(c) = resume.filter(|c| *c > offset) {
                    inner
                        .seek(SeekFrom::Start(c))
                        .map_err(|e| io_err("seek in", e))?;
                    offset = c;
                }
                Reader::Jsonl {
                    inner,
                    offset,
                    hint: 256,
                }
            }
            Format::Csv => {
                let mut csv = CsvReader::new(inner, s.delimiter, offset);
                if csv_read(&mut csv, &s.path)?.is_none() {
                    Reader::Empty
                } else {
                    let row = RowWriter::new(csv.fields(), cells(s.infer_types))
                        .map_err(|e| Error::Fatal(format!("{}: {e}", s.path)))?;
                    if let Some(c) = resume.filter(|c| *c > csv.offset()) {
                        csv.get_mut()
                            .seek(SeekFrom::Start(c))
                            .map_err(|e| io_err("seek in", e))?;
                        csv.set_offset(c);
                    }
                    Reader::Csv { inner: csv, row }
                }
            }
        };
        Ok(FileSource {
            path: s.path,
            reader,
        })
    }

    fn next(&mut self, max: u32) -> Result<Option<Batch>, Error> {
        let max = max.max(1) as usize;
        let mut records = Vec::with_capacity(max.min(4096));
        let offset = match &mut self.reader {
            Reader::Empty => return Ok(None),
            Reader::Jsonl {
                inner,
                offset,
                hint,
            } => {
                while records.len() < max {
                    let mut line = Vec::with_capacity(*hint);
                    let n = inner
                        .read_until(b'\n', &mut line)
                        .map_err(|e| Error::Fatal(format!("cannot read {}: {e}", self.path)))?;
                    if n == 0 {
                        break;
                    }
                    *offset += n as u64;
                    *hint = n + 16;
                    if line.last() == Some(&b'\n') {
                        line.pop();
                    }
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                    if !line.iter().all(u8::is_ascii_whitespace) {
                        records.push(Record::new(line));
                    }
                }
                *offset
            }
            Reader::Csv { inner, row } => {
                while records.len() < max {
                    let Some(start) = csv_read(inner, &self.path)? else {
                        break;
                    };
                    if inner.fields().len() != row.width() {
                        return Err(Error::Fatal(format!(
                            "{}: line {}: row has {} fields but the header has {}",
                            self.path,
                            line_at(&self.path, start),
                            inner.fields().len(),
                            row.width()
                        )));
                    }
                    records.push(Record::new(row.object(inner.fields())));
                }
                inner.offset()
            }
        };
        if records.is_empty() {
            return Ok(None);
        }
        Ok(Some(Batch {
            records,
            cursor: Some(offset.to_string()),
        }))
    }
}

/// How CSV cells are typed: `infer_types` gives numbers and booleans, else strings.
fn cells(infer_types: bool) -> Cells {
    if infer_types {
        Cells::Typed
    } else {
        Cells::Strings
    }
}

/// Skips a UTF-8 byte order mark at the start of the file; returns the offset after it.
fn skip_bom(r: &mut BufReader<File>) -> std::io::Result<u64> {
    if r.fill_buf()?.starts_with(b"\xEF\xBB\xBF") {
        r.consume(3);
        return Ok(3);
    }
    Ok(0)
}

/// Reads one CSV record, turning reader errors into fatal errors that name the line.
fn csv_read(csv: &mut CsvReader<BufReader<File>>, path: &str) -> Result<Option<u64>, Error> {
    csv.read_record().map_err(|e| {
        Error::Fatal(match e {
            CsvError::Io(e) => format!("cannot read {path}: {e}"),
            CsvError::Utf8(at) => format!("{path}: line {}: not valid UTF-8", line_at(path, at)),
            CsvError::Unterminated(at) => {
                format!(
                    "{path}: line {}: a quoted field is never closed",
                    line_at(path, at)
                )
            }
        })
    })
}

/// The 1-based line number of byte `offset` in the file at `path`, counted on demand (only
/// for error messages, so that resuming need not count lines); `?` if it cannot be read.
fn line_at(path: &str, offset: u64) -> String {
    let count = || -> std::io::Result<u64> {
        let mut r = BufReader::new(File::open(path)?).take(offset);
        let mut lines = 1;
        loop {
            let buf = r.fill_buf()?;
            if buf.is_empty() {
                return Ok(lines);
            }
            lines += buf.iter().filter(|b| **b == b'\n').count() as u64;
            let n = buf.len();
            r.consume(n);
        }
    };
    count().map_or_else(|_| "?".into(), |n| n.to_string())
}

autoflow_plugin_sdk::export_source!(FileSource);
