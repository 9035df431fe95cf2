//! What the CLI prints on standard output (lines, JSON, the hint that a listing goes on), and a
//! quiet end when the reader of standard output is gone (`autoflow ... | head`).
use std::fmt::Display;
use std::io::{ErrorKind, Write};

use serde::Serialize;

/// Standard output was closed by its reader: the command stops, quietly.
#[derive(Debug, thiserror::Error)]
#[error("standard output was closed")]
pub struct Closed;

/// Whether `e` is the end of standard output, not a failure to report.
pub fn is_closed(e: &anyhow::Error) -> bool {
    e.downcast_ref::<Closed>().is_some()
}

/// Prints `text` and a newline; [`Closed`] when the reader is gone.
pub fn line(text: impl Display) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::BrokenPipe => Err(Closed.into()),
        Err(e) => Err(anyhow::Error::new(e).context("cannot write to standard output")),
    }
}

/// Prints `value` as indented JSON.
pub fn json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    line(serde_json::to_string_pretty(value)?)
}

/// Prints the rows of a listing: as one JSON array with `as_json`, else a line each.
pub fn rows<T: Serialize>(
    rows: &[T],
    as_json: bool,
    text: impl Fn(&T) -> String,
) -> anyhow::Result<()> {
    if as_json {
        return json(rows);
    }
    rows.iter().try_for_each(|r| line(text(r)))
}

/// Says on standard error how to get the next page, when there is one.
pub fn more(next: Option<&str>) {
    if let Some(after) = next {
        eprintln!("(more: --after {after})");
    }
}

/// A digest as the CLI shows it: `sha256:<hex>`, whether the server sent it with the prefix or
/// without.
pub fn digest(d: &str) -> String {
    format!("sha256:{}", d.strip_prefix("sha256:").unwrap_or(d))
}

/// A time in Unix milliseconds as people read it (UTC, to the second).
pub fn time(ms: i64) -> String {
    crate::pipeline::cron::rfc3339(ms).unwrap_or_else(|| ms.to_string())
}
