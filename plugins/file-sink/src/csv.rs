//! CSV output: cells with RFC 4180 quoting, rows from JSON objects, and reading back the
//! header of a file being appended to.
use std::borrow::Cow;
use std::io::BufRead;

use file_format::{CsvError, CsvReader};
use serde_json::{Map, Value};

/// Appends `text` as one cell, quoted if it holds the delimiter, a quote or a line break.
pub fn push_cell(out: &mut Vec<u8>, text: &str, delimiter: u8) {
    if text
        .bytes()
        .any(|b| b == delimiter || matches!(b, b'"' | b'\n' | b'\r'))
    {
        out.push(b'"');
        for part in text.split('"').enumerate() {
            if part.0 > 0 {
                out.extend_from_slice(b"\"\"");
            }
            out.extend_from_slice(part.1.as_bytes());
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(text.as_bytes());
    }
}

/// Appends one row of `cells` and a line end.
pub fn push_row<'a>(out: &mut Vec<u8>, cells: impl Iterator<Item = Cow<'a, str>>, delimiter: u8) {
    for (i, cell) in cells.enumerate() {
        if i > 0 {
            out.push(delimiter);
        }
        push_cell(out, &cell, delimiter);
    }
    out.push(b'\n');
}

/// The value of column `name` in `object`: the key itself, else a dotted path.
pub fn lookup<'v>(object: &'v Map<String, Value>, name: &str) -> Option<&'v Value> {
    if let Some(v) = object.get(name) {
        return Some(v);
    }
    let mut parts = name.split('.');
    let first = object.get(parts.next()?)?;
    parts.try_fold(first, |v, key| v.as_object()?.get(key))
}

/// A JSON value as cell text: strings bare, numbers and booleans as written, null (and a
/// missing value) empty, arrays and objects as compact JSON.
pub fn cell_text(v: Option<&Value>) -> Cow<'_, str> {
    match v {
        None | Some(Value::Null) => Cow::Borrowed(""),
        Some(Value::String(s)) => Cow::Borrowed(s),
        Some(Value::Bool(b)) => Cow::Borrowed(if *b { "true" } else { "false" }),
        Some(other) => Cow::Owned(other.to_string()),
    }
}

/// Reads the first row of a CSV file (the header) with `file-format`'s reader, the one
/// `file-source` reads the file with; a UTF-8 byte order mark before it is skipped.
pub fn read_header(r: impl BufRead, delimiter: u8) -> std::io::Result<Vec<String>> {
    let mut r = r;
    if r.fill_buf()?.starts_with(b"\xEF\xBB\xBF") {
        r.consume(3);
    }
    let mut csv = CsvReader::new(r, delimiter, 0);
    match csv.read_record() {
        Ok(Some(_)) => Ok(csv.fields().map(String::from).collect()),
        Ok(None) => Ok(vec![String::new()]),
        Err(CsvError::Io(e)) => Err(e),
        Err(CsvError::Utf8(_)) => Err(std::io::Error::other("the header row is not UTF-8")),
        Err(CsvError::Unterminated(_)) => Err(std::io::Error::other(
            "the header row has an unclosed quote",
        )),
    }
}
