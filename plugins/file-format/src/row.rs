//! Turning a CSV row into a JSON object, with optional number, boolean and null inference.

/// How a cell's text becomes a JSON value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cells {
    /// Every cell is a string.
    Strings,
    /// A cell that is exactly a JSON number ([`is_json_number`]) or `true`/`false` is written
    /// as one; every other cell, the empty one too, is a string.
    Typed,
    /// As [`Cells::Typed`], and an empty cell is `null`.
    TypedOrNull,
}

/// Writes `s` as a JSON string literal.
pub fn push_json_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut from = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[from..i]);
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(b >> 4) as usize],
                HEX[(b & 15) as usize],
            ]);
        } else {
            out.extend_from_slice(escape);
        }
        from = i + 1;
    }
    out.extend_from_slice(&bytes[from..]);
    out.push(b'"');
}

/// Whether `s` is a number in JSON's grammar (`-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`)
/// that also fits a double. `007`, `+1`, `.5`, `1.` and `NaN` are not.
pub fn is_json_number(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = usize::from(b.first() == Some(&b'-'));
    let digits = |i: &mut usize| {
        let from = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i - from
    };
    let int_start = i;
    let int_len = digits(&mut i);
    if int_len == 0 || (int_len > 1 && b[int_start] == b'0') {
        return false;
    }
    let mut plain = true;
    if b.get(i) == Some(&b'.') {
        i += 1;
        plain = false;
        if digits(&mut i) == 0 {
            return false;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        plain = false;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    // Long integers and anything with a fraction or exponent must stay finite as a double.
    i == b.len() && ((plain && int_len <= 300) || s.parse::<f64>().is_ok_and(f64::is_finite))
}

/// Builds JSON objects from rows under a fixed header.
#[derive(Debug, Clone)]
pub struct RowWriter {
    /// Each column's key, already written as `"key":`.
    keys: Vec<Vec<u8>>,
    cells: Cells,
}

impl RowWriter {
    /// A writer for `header`; fails on a duplicate column name.
    pub fn new<'a>(header: impl Iterator<Item = &'a str>, cells: Cells) -> Result<Self, String> {
        let mut names: Vec<&str> = Vec::new();
        let mut keys = Vec::new();
        for name in header {
            if names.contains(&name) {
                return Err(format!("duplicate column {name:?} in the header"));
            }
            names.push(name);
            let mut key = Vec::with_capacity(name.len() + 3);
            push_json_string(&mut key, name);
            key.push(b':');
            keys.push(key);
        }
        Ok(RowWriter { keys, cells })
    }

    /// Number of columns.
    pub fn width(&self) -> usize {
        self.keys.len()
    }

    /// The JSON object of one row of exactly [`RowWriter::width`] cells.
    pub fn object<'a>(&self, cells: impl Iterator<Item = &'a str>) -> Vec<u8> {
        self.object_after(b"", cells)
    }

    /// The JSON object of `members` (object members already written as JSON, `"k":v,...`,
    /// without braces; may be empty) followed by the row's columns.
    pub fn object_after<'a>(
        &self,
        members: &[u8],
        cells: impl Iterator<Item = &'a str>,
    ) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + members.len() + 16 * self.keys.len());
        out.push(b'{');
        out.extend_from_slice(members);
        for (i, (key, cell)) in self.keys.iter().zip(cells).enumerate() {
            if i > 0 || !members.is_empty() {
                out.push(b',');
            }
            out.extend_from_slice(key);
            self.push_cell(&mut out, cell);
        }
        out.push(b'}');
        out
    }

    /// Writes one cell as the JSON value [`Cells`] makes of it.
    fn push_cell(&self, out: &mut Vec<u8>, cell: &str) {
        let typed = match self.cells {
            Cells::Strings => false,
            Cells::TypedOrNull if cell.is_empty() => {
                out.extend_from_slice(b"null");
                return;
            }
            Cells::Typed | Cells::TypedOrNull => {
                cell == "true" || cell == "false" || is_json_number(cell)
            }
        };
        if typed {
            out.extend_from_slice(cell.as_bytes());
        } else {
            push_json_string(out, cell);
        }
    }
}
