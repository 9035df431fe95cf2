//! `csv-parse`: CSV text in each record (its whole value, or a string field) becomes one JSON
//! object record per data row.
//!
//! Config: `{ "header": true, "columns": ["id", "name"], "delimiter": ",", "field": "body",
//! "keep": ["device"], "types": "string" | "infer", "skip_empty_lines": true }`. Quoting
//! follows RFC 4180 (the reader is `file-format`'s, the one `file-source` uses). Rows are
//! numbered from 1 in each text, the header being row 1; a bad row rejects its whole input
//! record, so that a dead letter, once fixed and replayed, gives every row once.
use std::borrow::Cow;

use autoflow_json_path::{kind, object, utf8};
use autoflow_plugin_sdk::{Error, Metadata, Output, Record, Transform};
use file_format::{Cells, CsvError, CsvReader, RowWriter};
use serde_json::{Map, Value};

mod config;
#[cfg(test)]
mod tests;

pub use config::{CONFIG_SCHEMA, Config, Names, Settings};

/// The transform: its checked settings.
#[derive(Debug)]
pub struct CsvParse {
    s: Settings,
}

/// Parent fields kept for the rows of one record: their top-level keys, and the members
/// written as JSON (`"k":v,...`, no braces).
#[derive(Debug, Default)]
struct Kept {
    keys: Vec<String>,
    members: Vec<u8>,
}

impl CsvParse {
    /// Builds the transform from `config`; the error names the offending key.
    pub fn new(config: Config) -> Result<Self, String> {
        Ok(CsvParse {
            s: config.settings()?,
        })
    }

    /// The row records (JSON objects) of one record's value, or why it is rejected.
    pub fn rows(&self, value: &[u8]) -> Result<Vec<Vec<u8>>, String> {
        let Some(field) = &self.s.field else {
            return self.parse(utf8(value, "value")?, &Kept::default());
        };
        let root = object(value)?;
        let text = match field.get(&root) {
            Some(Value::String(text)) => text,
            Some(other) => {
                return Err(format!(
                    "{} is {}, not a string",
                    field.as_str(),
                    kind(other)
                ));
            }
            None => return Err(format!("{} is missing", field.as_str())),
        };
        let kept = self.kept(&root)?;
        self.parse(text, &kept)
            .map_err(|e| format!("{}: {e}", field.as_str()))
    }

    /// The `keep` fields of `root` (a missing one is skipped).
    fn kept(&self, root: &Map<String, Value>) -> Result<Kept, String> {
        let mut kept = Map::new();
        for p in &self.s.keep {
            if let Some(v) = p.get(root) {
                p.set(&mut kept, v.clone())?;
            }
        }
        let json = serde_json::to_vec(&kept).map_err(|e| e.to_string())?;
        Ok(Kept {
            keys: kept.keys().cloned().collect(),
            // The object without its braces.
            members: json
                .get(1..json.len().saturating_sub(1))
                .unwrap_or_default()
                .to_vec(),
        })
    }

    /// Parses CSV `text` into row records after the `kept` members.
    fn parse(&self, text: &str, kept: &Kept) -> Result<Vec<Vec<u8>>, String> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut reader = CsvReader::new(text.as_bytes(), self.s.delimiter, 0);
        if !self.s.skip_empty_lines {
            reader = reader.keep_blank_lines();
        }
        let mut rows = Rows {
            text,
            reader,
            row: 0,
        };
        let Some((writer, named_by)) = self.writer(&mut rows, kept)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        while let Some(start) = rows.next()? {
            let n = rows.reader.fields().len();
            if n != writer.width() {
                return Err(format!(
                    "{} has {n} fields, {named_by} has {}",
                    rows.place(start),
                    writer.width()
                ));
            }
            out.push(writer.object_after(&kept.members, rows.reader.fields()));
        }
        Ok(out)
    }

    /// The writer of this text's rows and what names the columns ("the header", "columns"),
    /// reading the header row if there is one; `None` for a text without even a header.
    fn writer<'w>(
        &'w self,
        rows: &mut Rows<'_>,
        kept: &Kept,
    ) -> Result<Option<(Cow<'w, RowWriter>, &'static str)>, String> {
        match &self.s.names {
            Names::Given {
                writer,
                skip_header: false,
            } => Ok(Some((Cow::Borrowed(writer), "columns"))),
            Names::Given {
                writer,
                skip_header: true,
            } => {
                let Some(_) = rows.next()? else {
                    return Ok(None);
                };
                let n = rows.reader.fields().len();
                if n != writer.width() {
                    return Err(format!(
                        "the header has {n} fields, columns has {}",
                        writer.width()
                    ));
                }
                Ok(Some((Cow::Borrowed(writer), "columns")))
            }
            Names::Header => {
                if rows.next()?.is_none() {
                    return Ok(None);
                }
                let names: Vec<&str> = rows.reader.fields().collect();
                let writer = header_writer(&names, kept, self.s.cells)?;
                Ok(Some((Cow::Owned(writer), "the header")))
            }
        }
    }
}

/// The writer for a header row: every name good ([`config::name_problem`]), none a kept field.
fn header_writer(names: &[&str], kept: &Kept, cells: Cells) -> Result<RowWriter, String> {
    if let Some((i, problem)) = config::name_problem(names.iter().copied()) {
        return Err(format!("header column {}: {problem}", i + 1));
    }
    let keys: Vec<&str> = kept.keys.iter().map(String::as_str).collect();
    if let Some((_, c)) = config::clash(names.iter().copied(), &keys) {
        return Err(format!(
            "header column {c:?} clashes with the kept field {c}"
        ));
    }
    RowWriter::new(names.iter().copied(), cells)
}

/// The rows of one text, counted.
struct Rows<'t> {
    text: &'t str,
    reader: CsvReader<&'t [u8]>,
    /// The number of the last row read (from 1).
    row: usize,
}

impl Rows<'_> {
    /// Reads the next row; returns the byte offset where it starts.
    fn next(&mut self) -> Result<Option<u64>, String> {
        let read = self.reader.read_record();
        let next = self.row + 1;
        let place = |at| format!("row {next} (line {})", line_at(self.text, at));
        let start = match read {
            Ok(start) => start,
            Err(CsvError::Unterminated(at)) => {
                return Err(format!("{}: a quoted field is never closed", place(at)));
            }
            Err(CsvError::Utf8(at)) => return Err(format!("{}: not UTF-8", place(at))),
            Err(CsvError::Io(e)) => return Err(format!("cannot read the CSV text: {e}")),
        };
        if start.is_some() {
            self.row = next;
        }
        Ok(start)
    }

    /// "row R (line L)" for the last row read, which starts at byte `start`.
    fn place(&self, start: u64) -> String {
        format!("row {} (line {})", self.row, line_at(self.text, start))
    }
}

/// The 1-based line number of byte `offset` of `text`.
fn line_at(text: &str, offset: u64) -> usize {
    let end = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(text.len());
    1 + text.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
}

impl Transform for CsvParse {
    type Config = Config;

    fn metadata() -> Metadata {
        Metadata::new(
            "csv-parse",
            env!("CARGO_PKG_VERSION"),
            "Parses the CSV text (RFC 4180) of each record's value, or of a string field, into \
             one JSON object record per row, named by the header or by `columns`; a bad row \
             rejects its whole record with the row and line.",
        )
        .config_schema(CONFIG_SCHEMA)
    }

    fn open(config: Config) -> Result<Self, Error> {
        CsvParse::new(config).map_err(Error::InvalidConfig)
    }

    fn process(&mut self, record: Record, out: &mut Output) -> Result<(), Error> {
        match self.rows(&record.value) {
            Ok(rows) => {
                for value in rows {
                    out.emit(Record {
                        key: record.key.clone(),
                        value,
                        headers: record.headers.clone(),
                        timestamp: record.timestamp,
                    });
                }
            }
            Err(reason) => out.reject(reason),
        }
        Ok(())
    }
}

autoflow_plugin_sdk::export_transform!(CsvParse);
