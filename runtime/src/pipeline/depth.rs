//! A linear pre-scan that bounds the nesting depth of a pipeline text before it is deserialised.
//!
//! libyaml's scanner costs time quadratic in the depth of flow collections (every token looks at
//! every open level), so 100,000 nested `[` took tens of seconds to refuse; serde_json and
//! serde_yaml stop at 128 levels only after reading them. This scan reads each byte once and
//! refuses a text deeper than [`MAX_NESTING_DEPTH`] with
//! `line L, column C: nesting depth exceeds 64 levels (it reaches N)`, placed at the opening that
//! went past the limit.
//!
//! For JSON the depth is the number of open brackets outside strings. For YAML it is the number
//! of open flow collections (`[`, `{`) plus the number of open block collections, followed the
//! way libyaml tokenizes: a mapping or sequence opens where a key (`key:`, `? `) or an entry
//! (`- `) is more indented than the collection around it, a sequence of entries at the column of
//! its mapping's keys counts as one more level, and brackets inside quoted scalars, comments,
//! block scalars (`|`, `>`) and block-context plain scalars (`a[0]`) open nothing. Where the
//! text is not valid YAML the scan may count more than the parser would, never less.

use super::error::{Location, PipelineError};
use super::parse::Format;

/// Levels of nesting a pipeline text may have (the top-level mapping is level 1; a step's
/// config is at level 4 in either format). No real pipeline comes close; the parsers' own limit
/// is 128.
pub const MAX_NESTING_DEPTH: usize = 64;

/// Refuses `text` when it nests deeper than [`MAX_NESTING_DEPTH`], with the place where it went
/// past the limit and the depth it reaches.
pub fn check(text: &str, format: Format) -> Result<(), PipelineError> {
    let mut depth = Depth::default();
    match format {
        Format::Json => json(text.as_bytes(), &mut depth),
        Format::Yaml => Yaml::new(text.as_bytes(), &mut depth).run(),
    }
    match depth.over {
        None => Ok(()),
        Some(location) => Err(PipelineError::Parse {
            location: Some(location),
            message: format!("nesting depth exceeds {MAX_NESTING_DEPTH} levels (it reaches {})", depth.deepest),
        }),
    }
}

/// The deepest level seen and where the limit was first passed.
#[derive(Debug, Default)]
struct Depth {
    deepest: usize,
    over: Option<Location>,
}

impl Depth {
    /// Records that `level` levels are open at `line`, 0-based `column`.
    fn observe(&mut self, level: usize, line: usize, column: usize) {
        self.deepest = self.deepest.max(level);
        if level > MAX_NESTING_DEPTH && self.over.is_none() {
            self.over = Some(Location { line, column: column + 1 });
        }
    }
}

/// Whether `b` starts a character (is not a UTF-8 continuation byte): columns count characters.
fn starts_char(b: u8) -> bool {
    b & 0xC0 != 0x80
}

fn json(s: &[u8], depth: &mut Depth) {
    let (mut line, mut column, mut level) = (1, 0, 0usize);
    let mut in_string = false;
    let mut escaped = false;
    for &b in s {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else {
            match b {
                b'"' => in_string = true,
                b'[' | b'{' => {
                    level += 1;
                    depth.observe(level, line, column);
                }
                b']' | b'}' => level = level.saturating_sub(1),
                _ => {}
            }
        }
        if b == b'\n' {
            line += 1;
            column = 0;
        } else if starts_char(b) {
            column += 1;
        }
    }
}

/// What an open block collection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A block mapping (its keys at the collection's column).
    Map,
    /// A block sequence more indented than its parent.
    Seq,
    /// A block sequence whose `-` are at the column of its parent mapping's keys.
    IndentlessSeq,
}

/// A place in the text, to come back to after looking ahead.
#[derive(Debug, Clone, Copy)]
struct Mark {
    pos: usize,
    line: usize,
    column: usize,
}

/// The YAML scan: a cursor and the open collections.
struct Yaml<'a> {
    s: &'a [u8],
    at: Mark,
    /// Open block collections, innermost last: (column of their keys or `-`, kind).
    blocks: Vec<(usize, Kind)>,
    /// After an anchor or a tag: its column, where libyaml places the node that follows it on
    /// the same line.
    property_column: Option<usize>,
    depth: &'a mut Depth,
}

impl<'a> Yaml<'a> {
    fn new(s: &'a [u8], depth: &'a mut Depth) -> Self {
        Yaml { s, at: Mark { pos: 0, line: 1, column: 0 }, blocks: Vec::new(), property_column: None, depth }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.at.pos).copied()
    }

    fn peek_at(&self, ahead: usize) -> Option<u8> {
        self.s.get(self.at.pos + ahead).copied()
    }

    /// The length of the line break `ahead` bytes on (`\n`, `\r\n`, `\r`, NEL, LS, PS), or 0.
    fn break_len(&self, ahead: usize) -> usize {
        let rest = self.s.get(self.at.pos + ahead..).unwrap_or_default();
        match rest {
            [b'\r', b'\n', ..] | [0xC2, 0x85, ..] => 2,
            [b'\n' | b'\r', ..] => 1,
            [0xE2, 0x80, 0xA8 | 0xA9, ..] => 3,
            _ => 0,
        }
    }

    fn is_break(&self) -> bool {
        self.break_len(0) > 0
    }

    /// A space, a tab, a line break or the end `ahead` bytes on.
    fn blankz_at(&self, ahead: usize) -> bool {
        matches!(self.peek_at(ahead), None | Some(b' ' | b'\t')) || self.break_len(ahead) > 0
    }

    fn eof(&self) -> bool {
        self.at.pos >= self.s.len()
    }

    /// Moves past one character byte or one line break.
    fn bump(&mut self) {
        let n = self.break_len(0);
        if n > 0 {
            self.at.pos += n;
            self.at.line += 1;
            self.at.column = 0;
        } else if let Some(b) = self.peek() {
            self.at.pos += 1;
            if starts_char(b) {
                self.at.column += 1;
            }
        }
    }

    fn skip_blanks(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.bump();
        }
    }

    /// Moves to the line break that ends this line (or the end).
    fn skip_to_break(&mut self) {
        while !self.eof() && !self.is_break() {
            self.bump();
        }
    }

    /// The column of the innermost open block collection, -1 at the top.
    fn indent(&self) -> isize {
        self.blocks.last().map_or(-1, |&(col, _)| isize::try_from(col).unwrap_or(isize::MAX))
    }

    fn open_block(&mut self, column: usize, kind: Kind) {
        self.blocks.push((column, kind));
        self.depth.observe(self.blocks.len(), self.at.line, column);
    }

    /// Closes the block collections a token at `column` ends (an entry `-` keeps a sequence at
    /// its column open).
    fn unroll(&mut self, column: usize, entry: bool) {
        while let Some(&(col, kind)) = self.blocks.last() {
            if col > column || (col == column && kind == Kind::IndentlessSeq && !entry) {
                self.blocks.pop();
            } else {
                break;
            }
        }
    }

    /// A `- ` at `column`.
    fn entry(&mut self, column: usize) {
        match self.blocks.last() {
            Some(&(col, Kind::Seq | Kind::IndentlessSeq)) if col == column => {}
            Some(&(col, Kind::Map)) if col == column => self.open_block(column, Kind::IndentlessSeq),
            _ => self.open_block(column, Kind::Seq),
        }
    }

    /// A mapping key at `column`.
    fn key(&mut self, column: usize) {
        match self.blocks.last() {
            Some(&(col, Kind::Map)) if col == column => {}
            Some(&(col, _)) if col > column => {}
            _ => self.open_block(column, Kind::Map),
        }
    }

    fn run(&mut self) {
        while !self.eof() {
            self.skip_blanks();
            let Some(b) = self.peek() else { break };
            if self.is_break() || b == b'#' {
                self.property_column = None;
                self.skip_to_break();
                self.bump();
                continue;
            }
            let column = self.property_column.take().unwrap_or(self.at.column);
            if self.at.column == 0 && self.document_marker() {
                continue;
            }
            match b {
                b'%' if column == 0 => self.skip_to_break(),
                b'-' | b'?' | b':' if self.blankz_at(1) => {
                    match b {
                        b'-' => {
                            self.unroll(column, true);
                            self.entry(column);
                        }
                        b'?' => {
                            self.unroll(column, false);
                            self.key(column);
                        }
                        _ => {}
                    }
                    self.bump();
                }
                b'[' | b'{' => {
                    self.unroll(column, false);
                    self.flow();
                    self.maybe_key(column);
                }
                b'"' | b'\'' => {
                    self.unroll(column, false);
                    self.quoted(b);
                    self.maybe_key(column);
                }
                b'|' | b'>' => {
                    self.unroll(column, false);
                    self.block_scalar();
                }
                b'&' | b'!' => {
                    self.unroll(column, false);
                    self.property();
                    self.property_column = Some(column);
                }
                _ => {
                    self.unroll(column, false);
                    self.plain(column);
                }
            }
        }
    }

    /// `---` or `...` at the start of a line: a new document, no open block collection.
    fn document_marker(&mut self) -> bool {
        let marker = matches!(self.s.get(self.at.pos..self.at.pos + 3), Some(b"---" | b"..."));
        if !marker || !self.blankz_at(3) {
            return false;
        }
        self.blocks.clear();
        for _ in 0..3 {
            self.bump();
        }
        true
    }

    /// After a node that may have been a key (a flow collection, a quoted scalar): its `: `.
    fn maybe_key(&mut self, column: usize) {
        self.skip_blanks();
        if self.peek() == Some(b':') && self.blankz_at(1) {
            self.key(column);
            self.bump();
        }
    }

    /// An anchor (`&a`) or a tag (`!t`, `!<...>`) before a node.
    fn property(&mut self) {
        self.bump();
        if self.peek() == Some(b'<') {
            while !self.eof() && !self.is_break() && self.peek() != Some(b'>') {
                self.bump();
            }
        }
        while !self.blankz_at(0) && !matches!(self.peek(), Some(b',' | b'[' | b']' | b'{' | b'}')) {
            self.bump();
        }
    }

    /// A quoted scalar, over as many lines as it takes.
    fn quoted(&mut self, quote: u8) {
        self.bump();
        while let Some(b) = self.peek() {
            if quote == b'"' && b == b'\\' {
                self.bump();
                self.bump();
            } else if b == quote {
                self.bump();
                if quote == b'\'' && self.peek() == Some(b'\'') {
                    self.bump();
                } else {
                    return;
                }
            } else {
                self.bump();
            }
        }
    }

    /// A flow collection from its opening bracket to the one that closes it, over as many lines
    /// as it takes. In flow context every bracket opens or closes, except in quoted scalars and
    /// comments; quotes start a scalar only where a token starts.
    fn flow(&mut self) {
        let mut level = 0usize;
        let mut in_plain = false;
        let mut after_blank = true;
        while let Some(b) = self.peek() {
            if self.is_break() || b == b' ' || b == b'\t' {
                self.bump();
                after_blank = true;
                continue;
            }
            match b {
                b'#' if !in_plain || after_blank => {
                    self.skip_to_break();
                    in_plain = false;
                }
                b'[' | b'{' => {
                    level += 1;
                    self.depth.observe(self.blocks.len() + level, self.at.line, self.at.column);
                    self.bump();
                    in_plain = false;
                }
                b']' | b'}' => {
                    self.bump();
                    level = level.saturating_sub(1);
                    in_plain = false;
                    if level == 0 {
                        return;
                    }
                }
                b',' => {
                    self.bump();
                    in_plain = false;
                }
                b'"' | b'\'' if !in_plain => self.quoted(b),
                b':' if !in_plain => self.bump(),
                b':' if self.blankz_at(1) || matches!(self.peek_at(1), Some(b',' | b'[' | b']' | b'{' | b'}')) => {
                    self.bump();
                    in_plain = false;
                }
                b'&' | b'!' | b'*' if !in_plain => self.property(),
                b'?' | b'-' if !in_plain && self.blankz_at(1) => self.bump(),
                _ => {
                    self.bump();
                    in_plain = true;
                }
            }
            after_blank = false;
        }
    }

    /// A plain scalar in block context, which may turn out to be a key (`key: `); brackets in it
    /// are text. When it ends with its line it may go on over the lines that are more indented
    /// than its collection.
    fn plain(&mut self, column: usize) {
        let mut after_blank = false;
        while let Some(b) = self.peek() {
            if self.is_break() {
                self.plain_lines();
                return;
            }
            match b {
                b'#' if after_blank => return,
                b':' if self.blankz_at(1) => {
                    self.key(column);
                    self.bump();
                    return;
                }
                _ => {}
            }
            after_blank = matches!(b, b' ' | b'\t');
            self.bump();
        }
    }

    /// The lines a plain scalar goes on over: blank lines, and lines more indented than its
    /// collection up to a comment or a `: ` (where libyaml ends it).
    fn plain_lines(&mut self) {
        let indent = self.indent();
        loop {
            let start = self.at;
            self.bump(); // the line break
            self.skip_blanks();
            if self.eof() {
                return;
            }
            if self.is_break() {
                continue;
            }
            let column = isize::try_from(self.at.column).unwrap_or(isize::MAX);
            let marker = self.at.column == 0 && matches!(self.s.get(self.at.pos..self.at.pos + 3), Some(b"---" | b"..."));
            if column <= indent || self.peek() == Some(b'#') || marker {
                self.at = start;
                return;
            }
            let mut after_blank = false;
            while let Some(b) = self.peek() {
                if self.is_break() {
                    break;
                }
                if (b == b'#' && after_blank) || (b == b':' && self.blankz_at(1)) {
                    return;
                }
                after_blank = matches!(b, b' ' | b'\t');
                self.bump();
            }
            if self.eof() {
                return;
            }
        }
    }

    /// A literal (`|`) or folded (`>`) block scalar: its header, then every line that is blank
    /// or indented at least as much as its content (libyaml's rule: an explicit indentation
    /// indicator, else the first non-blank line's).
    fn block_scalar(&mut self) {
        let parent = self.indent();
        self.bump();
        let mut explicit = 0isize;
        while let Some(b) = self.peek() {
            match b {
                b'1'..=b'9' => explicit = isize::from(b - b'0'),
                b'+' | b'-' => {}
                _ => break,
            }
            self.bump();
        }
        self.skip_blanks();
        if self.peek() == Some(b'#') {
            self.skip_to_break();
        }
        if !self.is_break() {
            // Not a block scalar header; libyaml refuses it. Scan on as tokens.
            return;
        }
        let mut indent = (explicit > 0).then(|| if parent >= 0 { parent + explicit } else { explicit });
        let mut blank_max = 0isize;
        loop {
            let start = self.at;
            self.bump(); // the line break
            let mut spaces = 0isize;
            while self.peek() == Some(b' ') {
                spaces += 1;
                self.bump();
            }
            if self.eof() {
                return;
            }
            if self.is_break() {
                blank_max = blank_max.max(spaces);
                continue;
            }
            let content = *indent.get_or_insert(spaces.max(blank_max).max(parent + 1).max(1));
            if spaces < content {
                self.at = start;
                return;
            }
            self.skip_to_break();
            if self.eof() {
                return;
            }
        }
    }
}
