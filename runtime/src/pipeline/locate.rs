//! Where in a YAML pipeline text a validation problem's path (`steps[1].input`,
//! `alerts[0].channels[1]`, `limits`) is: the line and column of the deepest part of the path
//! that the text spells in block style. Best effort, for showing each problem at its place (an
//! editor's marker): a path into a flow collection (`{...}`, `[...]`) or a field the text lacks
//! (a missing `plugin:`) is placed at the nearest node that is there.
use super::error::Location;

/// One part of a path: a field or a list index.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part<'a> {
    Key(&'a str),
    Index(usize),
}

/// The parts of `path` (`steps[1].input` -> `steps`, `1`, `input`); `None` if it is not a path.
fn parts(path: &str) -> Option<Vec<Part<'_>>> {
    let mut out = Vec::new();
    for segment in path.split('.') {
        let (key, mut rest) = match segment.find('[') {
            Some(i) => (&segment[..i], &segment[i..]),
            None => (segment, ""),
        };
        let key_ok = !key.is_empty()
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !key_ok {
            return None;
        }
        out.push(Part::Key(key));
        while !rest.is_empty() {
            let close = rest.find(']')?;
            let n: usize = rest.get(1..close)?.parse().ok()?;
            out.push(Part::Index(n));
            rest = &rest[close + 1..];
            if !rest.is_empty() && !rest.starts_with('[') {
                return None;
            }
        }
    }
    Some(out)
}

/// The problem path at the front of a validation message (`steps[1].input: no step ...`).
pub fn path_of(message: &str) -> Option<&str> {
    let (path, _) = message.split_once(": ")?;
    parts(path).map(|_| path)
}

/// A line of the text: its 0-based number, indent (spaces) and content after the indent.
struct Line<'a> {
    number: usize,
    indent: usize,
    text: &'a str,
}

fn lines(text: &str) -> Vec<Line<'_>> {
    text.lines()
        .enumerate()
        .filter_map(|(number, raw)| {
            let text = raw.trim_start_matches(' ');
            let blank = text.trim().is_empty() || text.starts_with('#');
            let marker = text.starts_with("---") || text.starts_with("...");
            (!blank && !marker).then(|| Line {
                number,
                indent: raw.len() - text.len(),
                text,
            })
        })
        .collect()
}

/// A node found so far: the line it starts on and the column of its content, and the range of
/// lines (indexes into [`lines`]) that hold what is under it.
#[derive(Clone, Copy)]
struct Node {
    at: Location,
    column: usize,
    from: usize,
    to: usize,
}

/// The column of `line`'s content once any leading `- ` markers are taken off (a sequence item's
/// first field sits after its dash).
fn content_column(line: &Line<'_>) -> usize {
    let mut column = line.indent;
    let mut text = line.text;
    while let Some(rest) = text.strip_prefix('-').filter(|r| r.starts_with(' ')) {
        let trimmed = rest.trim_start_matches(' ');
        column += 1 + rest.len() - trimmed.len();
        text = trimmed;
    }
    column
}

/// The line and column of the node `path` names in the YAML `text`, or of the deepest part of
/// it found; `None` when not even its first part is there.
pub fn locate(text: &str, path: &str) -> Option<Location> {
    let parts = parts(path)?;
    let lines = lines(text);
    let first = lines.first()?;
    let mut node = Node {
        at: Location {
            line: first.number + 1,
            column: first.indent + 1,
        },
        column: first.indent,
        from: 0,
        to: lines.len(),
    };
    let mut found = None;
    for part in parts {
        let Some(next) = child(&lines, node, &part) else {
            break;
        };
        node = next;
        found = Some(node.at);
    }
    found
}

fn child(lines: &[Line<'_>], node: Node, part: &Part<'_>) -> Option<Node> {
    let range = node.from..node.to;
    match part {
        Part::Key(key) => {
            for i in range.clone() {
                let line = &lines[i];
                let column = content_column(line);
                if column != node.column {
                    continue;
                }
                let content = &line.text[column - line.indent..];
                let rest = content
                    .strip_prefix(key)
                    .or_else(|| {
                        content
                            .strip_prefix('"')
                            .and_then(|c| c.strip_prefix(key))
                            .and_then(|c| c.strip_prefix('"'))
                    })
                    .and_then(|r| r.strip_prefix(':'));
                let Some(rest) = rest else { continue };
                let at = Location {
                    line: line.number + 1,
                    column: column + 1,
                };
                let value = rest.trim();
                if !value.is_empty() && !value.starts_with('#') {
                    // An inline value: nothing under it can be told apart by line.
                    return Some(Node {
                        at,
                        column: usize::MAX,
                        from: i,
                        to: i,
                    });
                }
                let to = (i + 1..node.to)
                    .find(|&j| {
                        lines[j].indent < column
                            || lines[j].indent == column && !lines[j].text.starts_with("- ")
                    })
                    .unwrap_or(node.to);
                let inner = lines.get(i + 1).filter(|_| i + 1 < to)?;
                return Some(Node {
                    at,
                    column: inner.indent,
                    from: i + 1,
                    to,
                });
            }
            None
        }
        Part::Index(n) => {
            let items: Vec<usize> = range
                .filter(|&i| lines[i].indent == node.column && lines[i].text.starts_with("- "))
                .collect();
            let &i = items.get(*n)?;
            let to = items.get(n + 1).copied().unwrap_or(node.to);
            let line = &lines[i];
            let column = {
                let rest = &line.text[1..];
                line.indent + 1 + rest.len() - rest.trim_start_matches(' ').len()
            };
            Some(Node {
                at: Location {
                    line: line.number + 1,
                    column: column + 1,
                },
                column,
                from: i,
                to,
            })
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const TEXT: &str = "\
name: demo
# a comment
steps:
  - id: gen
    plugin: generator@latest
    config:
      count: 20
  - id: keep
    plugin: filter@latest
    input: gen
    mounts:
      - host: /data
        guest: /in
alerts:
- when: run_failed
  channels: [ops, pager]
";

    fn at(path: &str) -> Option<(usize, usize)> {
        locate(TEXT, path).map(|l| (l.line, l.column))
    }

    #[test]
    fn paths_are_found_at_their_line_and_column() {
        assert_eq!(at("name"), Some((1, 1)));
        assert_eq!(at("steps"), Some((3, 1)));
        assert_eq!(at("steps[0]"), Some((4, 5)));
        assert_eq!(at("steps[0].id"), Some((4, 5)));
        assert_eq!(at("steps[0].config.count"), Some((7, 7)));
        assert_eq!(at("steps[1].input"), Some((10, 5)));
        assert_eq!(at("steps[1].mounts[0].host"), Some((12, 9)));
        assert_eq!(at("steps[1].mounts[0].guest"), Some((13, 9)));
        assert_eq!(at("alerts[0].when"), Some((15, 3)));
        // Inside a flow list: the field that holds it.
        assert_eq!(at("alerts[0].channels[1]"), Some((16, 3)));
        // A field the text lacks: the nearest node that is there.
        assert_eq!(at("steps[1].limits"), Some((8, 5)));
        assert_eq!(at("steps[5]"), Some((3, 1)));
        assert_eq!(at("schedule"), None);
    }

    #[test]
    fn only_paths_are_read_from_messages() {
        assert_eq!(
            path_of("steps[1].input: no step \"x\""),
            Some("steps[1].input")
        );
        assert_eq!(path_of("name: must not be empty"), Some("name"));
        assert_eq!(path_of("line 3, column 5: did not find"), None);
        assert_eq!(path_of("no colon here"), None);
    }
}
