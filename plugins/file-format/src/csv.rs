//! A streaming RFC 4180 CSV record reader: quoted fields with delimiters, `""` escapes and
//! line breaks; LF or CRLF line ends; blank lines between records are skipped (unless
//! [`CsvReader::keep_blank_lines`] says otherwise).
use std::io::{self, BufRead};

/// Why a record could not be read.
#[derive(Debug)]
pub enum CsvError {
    /// The underlying read failed.
    Io(io::Error),
    /// A field of the record starting at this byte offset is not UTF-8.
    Utf8(u64),
    /// The record starting at this byte offset has a quoted field that never closes.
    Unterminated(u64),
}

impl From<io::Error> for CsvError {
    fn from(e: io::Error) -> Self {
        CsvError::Io(e)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a field.
    Start,
    /// Inside an unquoted field.
    Unquoted,
    /// Inside a quoted field.
    Quoted,
    /// Just after a quote inside a quoted field: an escape or the closing quote.
    QuoteSeen,
}

/// What scanning one physical line found.
enum Scan {
    /// The record goes on past this line (or the input ended).
    More,
    /// The line ended the record.
    Done,
    /// A field is not UTF-8.
    BadUtf8,
}

/// Reads CSV records from `R`, tracking the byte offset. The fields of the last record read
/// are kept in one string buffer.
#[derive(Debug)]
pub struct CsvReader<R> {
    inner: R,
    delimiter: u8,
    offset: u64,
    line: Vec<u8>,
    field: Vec<u8>,
    text: String,
    ends: Vec<usize>,
    skip_blank: bool,
}

impl<R: BufRead> CsvReader<R> {
    /// A reader positioned at byte `offset` of its input.
    pub fn new(inner: R, delimiter: u8, offset: u64) -> Self {
        CsvReader {
            inner,
            delimiter,
            offset,
            line: Vec::with_capacity(256),
            field: Vec::new(),
            text: String::with_capacity(256),
            ends: Vec::new(),
            skip_blank: true,
        }
    }

    /// Reads a blank line between records as a record of one empty field instead of skipping
    /// it, builder style.
    pub fn keep_blank_lines(mut self) -> Self {
        self.skip_blank = false;
        self
    }

    /// The byte offset just after the last record read.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The underlying reader, to seek it; set the new position with [`CsvReader::set_offset`].
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// Sets the offset the underlying reader now stands at.
    pub fn set_offset(&mut self, offset: u64) {
        self.offset = offset;
    }

    /// The fields of the last record read.
    pub fn fields(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        (0..self.ends.len()).map(|i| {
            let from = if i == 0 { 0 } else { self.ends[i - 1] };
            self.text.get(from..self.ends[i]).unwrap_or_default()
        })
    }

    /// Reads the next record (see [`CsvReader::fields`]); returns the byte offset where it
    /// starts, or `None` at the end of the input.
    pub fn read_record(&mut self) -> Result<Option<u64>, CsvError> {
        self.text.clear();
        self.ends.clear();
        self.field.clear();
        let mut state = State::Start;
        let mut start = None;
        loop {
            self.line.clear();
            let n = self.inner.read_until(b'\n', &mut self.line)?;
            let line_start = self.offset;
            self.offset += n as u64;
            let record_start = match start {
                Some(s) => s,
                None if n == 0 => return Ok(None),
                // A blank line between records.
                None if self.skip_blank && matches!(self.line.as_slice(), b"\n" | b"\r\n") => {
                    continue;
                }
                None => *start.insert(line_start),
            };
            if n == 0 {
                if state == State::Quoted {
                    return Err(CsvError::Unterminated(record_start));
                }
                return self
                    .end_field()
                    .map(|()| Some(record_start))
                    .ok_or(CsvError::Utf8(record_start));
            }
            match self.scan(&mut state) {
                Scan::More => {}
                Scan::Done => {
                    return self
                        .end_field()
                        .map(|()| Some(record_start))
                        .ok_or(CsvError::Utf8(record_start));
                }
                Scan::BadUtf8 => return Err(CsvError::Utf8(record_start)),
            }
        }
    }

    /// Scans the current line, moving on `state`.
    fn scan(&mut self, state: &mut State) -> Scan {
        let mut i = 0;
        while i < self.line.len() {
            let b = self.line[i];
            match *state {
                State::Quoted if b == b'"' => *state = State::QuoteSeen,
                State::Quoted => self.field.push(b),
                State::QuoteSeen if b == b'"' => {
                    self.field.push(b'"');
                    *state = State::Quoted;
                }
                State::Start | State::Unquoted | State::QuoteSeen => {
                    if b == self.delimiter {
                        if self.end_field().is_none() {
                            return Scan::BadUtf8;
                        }
                        *state = State::Start;
                    } else if b == b'\n' {
                        return Scan::Done;
                    } else if b == b'\r' && self.line.get(i + 1) == Some(&b'\n') {
                        // The CR of a CRLF line end.
                    } else if b == b'"' && *state == State::Start {
                        *state = State::Quoted;
                    } else {
                        // Text after a closing quote, or a quote inside an unquoted field, is
                        // kept as it is (lenient, like most readers).
                        self.field.push(b);
                        *state = State::Unquoted;
                    }
                }
            }
            i += 1;
        }
        Scan::More
    }

    /// Moves the field being read into the record; `None` if it is not UTF-8.
    fn end_field(&mut self) -> Option<()> {
        self.text.push_str(std::str::from_utf8(&self.field).ok()?);
        self.ends.push(self.text.len());
        self.field.clear();
        Some(())
    }
}
