//! Nesting depth of a YAML text, counted the way libyaml tokenizes it: the open flow
//! collections (`[`, `{`) plus the open block collections. A block mapping or sequence opens
//! where a key (`key:`, `? `, a `: ` after no key) or an entry (`- `) is more indented than the
//! collection around it; a sequence of entries at the column of its mapping's keys counts as a
//! level of its own, and so does an entry of a flow sequence that is a pair (`[a: b]`).
//! Brackets inside quoted scalars, comments, block scalars (`|`, `>`) and block-context plain
//! scalars (`a[0]`) open nothing; a quote inside a plain scalar starts no string, a `#` not
//! after a blank starts no comment; every line break libyaml knows ends a line.

use super::{Depth, starts_char};

mod flow;

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
pub(super) struct Yaml<'a> {
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
    pub(super) fn new(s: &'a [u8], depth: &'a mut Depth) -> Self {
        Yaml {
            s,
            at: Mark {
                pos: 0,
                line: 1,
                column: 0,
            },
            blocks: Vec::new(),
            property_column: None,
            depth,
        }
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
        self.blocks
            .last()
            .map_or(-1, |&(col, _)| isize::try_from(col).unwrap_or(isize::MAX))
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
            Some(&(col, Kind::Map)) if col == column => {
                self.open_block(column, Kind::IndentlessSeq)
            }
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

    pub(super) fn run(&mut self) {
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
                        // `? ` opens a mapping with a complex key; a `: ` that follows no key
                        // (an empty or tagged one) opens one too.
                        _ => {
                            self.unroll(column, false);
                            self.key(column);
                        }
                    }
                    self.bump();
                }
                b'[' | b'{' => {
                    self.unroll(column, false);
                    let inner = self.flow();
                    self.maybe_key(column, inner);
                }
                b'"' | b'\'' => {
                    self.unroll(column, false);
                    self.quoted(b);
                    self.maybe_key(column, 0);
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
        let marker = matches!(
            self.s.get(self.at.pos..self.at.pos + 3),
            Some(b"---" | b"...")
        );
        if !marker || !self.blankz_at(3) {
            return false;
        }
        self.blocks.clear();
        for _ in 0..3 {
            self.bump();
        }
        true
    }

    /// After a node that may have been a key (a flow collection `inner` levels deep, a quoted
    /// scalar): its `: `, and then the levels inside the key count below the mapping's.
    fn maybe_key(&mut self, column: usize, inner: usize) {
        self.skip_blanks();
        if self.peek() == Some(b':') && self.blankz_at(1) {
            self.key(column);
            self.depth
                .observe(self.blocks.len() + inner, self.at.line, column);
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
            let marker = self.at.column == 0
                && matches!(
                    self.s.get(self.at.pos..self.at.pos + 3),
                    Some(b"---" | b"...")
                );
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
        let mut indent = (explicit > 0).then(|| {
            if parent >= 0 {
                parent + explicit
            } else {
                explicit
            }
        });
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
