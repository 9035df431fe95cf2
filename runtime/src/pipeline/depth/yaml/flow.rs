//! Flow collections (`[...]`, `{...}`) in a YAML text, from the opening bracket to the one that
//! closes it, over as many lines as it takes.

use super::Yaml;

/// An open flow collection, while [`Yaml::flow`] reads it.
#[derive(Debug, Default)]
struct FlowLevel {
    /// A sequence (`[`), whose entries may be mappings of one pair (`[a: b]`).
    seq: bool,
    /// The current entry is such a pair: what is inside it is one level deeper.
    pair: bool,
    /// The deepest nesting inside the current entry, relative to this collection.
    entry: usize,
    /// The deepest nesting inside the entries before it, relative to this collection.
    done: usize,
}

impl FlowLevel {
    /// At a `,` or the closing bracket.
    fn end_entry(&mut self) {
        self.done = self.done.max(self.entry + usize::from(self.pair));
        self.entry = 0;
        self.pair = false;
    }
}

impl Yaml<'_> {
    /// A flow collection from its opening bracket to the one that closes it, over as many lines
    /// as it takes; the deepest level inside it, relative to where it opens. In flow context
    /// every bracket opens or closes, except in quoted scalars and comments; quotes start a
    /// scalar only where a token starts; an entry of a sequence with a `:` or `?` in it is a
    /// mapping of one pair, one level more.
    pub(super) fn flow(&mut self) -> usize {
        let mut open: Vec<FlowLevel> = Vec::new();
        let mut pairs = 0usize;
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
                    open.push(FlowLevel {
                        seq: b == b'[',
                        ..FlowLevel::default()
                    });
                    self.depth.observe(
                        self.blocks.len() + open.len() + pairs,
                        self.at.line,
                        self.at.column,
                    );
                    self.bump();
                    in_plain = false;
                }
                b']' | b'}' => {
                    self.bump();
                    in_plain = false;
                    if let Some(mut closed) = open.pop() {
                        pairs = pairs.saturating_sub(usize::from(closed.pair));
                        closed.end_entry();
                        let nested = 1 + closed.done;
                        match open.last_mut() {
                            Some(parent) => parent.entry = parent.entry.max(nested),
                            None => return nested,
                        }
                    }
                }
                b',' => {
                    self.bump();
                    in_plain = false;
                    if let Some(level) = open.last_mut() {
                        pairs = pairs.saturating_sub(usize::from(level.pair));
                        level.end_entry();
                    }
                }
                b'"' | b'\'' if !in_plain => self.quoted(b),
                b':' | b'?' if !in_plain || (b == b':' && self.value_after_plain()) => {
                    let levels = open.len();
                    if let Some(level) = open.last_mut().filter(|l| l.seq && !l.pair) {
                        level.pair = true;
                        pairs += 1;
                        let inside = level.entry;
                        self.depth.observe(
                            self.blocks.len() + levels + pairs + inside,
                            self.at.line,
                            self.at.column,
                        );
                    }
                    self.bump();
                    in_plain = false;
                }
                b'&' | b'!' | b'*' if !in_plain => self.property(),
                b'-' if !in_plain && self.blankz_at(1) => self.bump(),
                _ => {
                    self.bump();
                    in_plain = true;
                }
            }
            after_blank = false;
        }
        open.first().map_or(0, |_| open.len())
    }

    /// At a `:` inside a flow plain scalar: whether it ends the scalar as a value indicator
    /// (before a blank, or before a flow indicator, which libyaml refuses).
    fn value_after_plain(&self) -> bool {
        self.blankz_at(1) || matches!(self.peek_at(1), Some(b',' | b'[' | b']' | b'{' | b'}'))
    }
}
