//! A linear pre-scan that bounds the nesting depth of a pipeline text before it is deserialised.
//!
//! libyaml's scanner costs time quadratic in the depth of flow collections (every token looks at
//! every open level), so 100,000 nested `[` took tens of seconds to refuse; serde_json and
//! serde_norway stop at 128 levels only after reading them. This scan reads each byte once and
//! refuses a text deeper than [`MAX_NESTING_DEPTH`] with
//! `line L, column C: nesting depth exceeds 64 levels (it reaches N)`, placed at the opening that
//! went past the limit.
//!
//! For JSON the depth is the number of open brackets outside strings. For YAML it is counted
//! the way libyaml tokenizes ([`yaml`]). The scan may count more than the parser would (mostly
//! where the text is not valid YAML), and must never count less: the tests compare it with
//! libyaml on random texts.

mod yaml;

use super::error::{Location, PipelineError};
use super::parse::Format;

/// Levels of nesting a pipeline text may have (the top-level mapping is level 1; a step's
/// config is at level 4 in either format). No real pipeline comes close; the parsers' own limit
/// is 128.
pub const MAX_NESTING_DEPTH: usize = 64;

/// Refuses `text` when it nests deeper than [`MAX_NESTING_DEPTH`], with the place where it went
/// past the limit and the depth it reaches.
pub fn check(text: &str, format: Format) -> Result<(), PipelineError> {
    let depth = measure(text, format);
    match depth.over {
        None => Ok(()),
        Some(location) => Err(PipelineError::Parse {
            location: Some(location),
            message: format!(
                "nesting depth exceeds {MAX_NESTING_DEPTH} levels (it reaches {})",
                depth.deepest
            ),
        }),
    }
}

/// Scans `text` as `format`.
fn measure(text: &str, format: Format) -> Depth {
    let mut depth = Depth::default();
    match format {
        Format::Json => json(text.as_bytes(), &mut depth),
        Format::Yaml => yaml::Yaml::new(text.as_bytes(), &mut depth).run(),
    }
    depth
}

/// The deepest level `text` reaches, as the scan counts.
#[cfg(test)]
pub(super) fn deepest(text: &str, format: Format) -> usize {
    measure(text, format).deepest
}

/// The deepest level seen and where the limit was first passed.
#[derive(Debug, Default)]
pub(super) struct Depth {
    deepest: usize,
    over: Option<Location>,
}

impl Depth {
    /// Records that `level` levels are open at `line`, 0-based `column`.
    pub(super) fn observe(&mut self, level: usize, line: usize, column: usize) {
        self.deepest = self.deepest.max(level);
        if level > MAX_NESTING_DEPTH && self.over.is_none() {
            self.over = Some(Location {
                line,
                column: column + 1,
            });
        }
    }
}

/// Whether `b` starts a character (is not a UTF-8 continuation byte): columns count characters.
pub(super) fn starts_char(b: u8) -> bool {
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
