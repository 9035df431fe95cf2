//! Reading a pipeline definition from YAML or JSON text into the [`Pipeline`] model.
//!
//! YAML is read by `serde_norway`, the maintained fork of the deprecated `serde_yaml` 0.9 (on
//! `unsafe-libyaml-norway`, the maintained fork of its libyaml translation): the same scanner
//! that the nesting-depth pre-scan models (`depth/yaml.rs`), the same error texts and
//! locations, and the same reading of scalars (YAML 1.2's core schema: `on`, `no`, `yes`, `y`
//! are strings, `true`/`True`/`TRUE` booleans). A duplicate field of the model is refused
//! (``duplicate field `name` ``); a repeated key in a free-form `config` keeps the last value, as
//! serde_yaml did. A document whose aliases are followed more than 100 times per event it
//! holds is refused (`repetition limit exceeded`), so an alias bomb is never expanded.

use std::path::Path;

use super::error::{Location, PipelineError};
use super::model::Pipeline;

/// The syntax of a pipeline text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// YAML (1.1, as read by libyaml).
    Yaml,
    /// JSON.
    Json,
}

impl Format {
    /// The format a file's extension names: `.yaml`/`.yml` or `.json` (any case); `None` otherwise.
    pub fn from_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "yaml" | "yml" => Some(Format::Yaml),
            "json" => Some(Format::Json),
            _ => None,
        }
    }

    /// The format of `text` judged by its content: JSON if the first character that is not
    /// white space is `{`, YAML otherwise.
    pub fn detect(text: &str) -> Format {
        if strip_bom(text).trim_start().starts_with('{') {
            Format::Json
        } else {
            Format::Yaml
        }
    }
}

/// Parses a pipeline definition. `format_hint` (usually from the file extension, see
/// [`Format::from_path`]) wins over detection by content ([`Format::detect`]).
///
/// Only the shape is checked here (syntax, field names, types, required fields); call
/// [`Pipeline::validate`] for the rest. The error carries the line and column and, for
/// model errors, the path inside the document:
/// `line 4, column 5: steps[0]: unknown field `plugn`, expected one of ...`. A text nested
/// deeper than [`super::MAX_NESTING_DEPTH`] is refused first, in time linear in its length.
pub fn parse(text: &str, format_hint: Option<Format>) -> Result<Pipeline, PipelineError> {
    let text = strip_bom(text);
    if text.trim().is_empty() {
        return Err(PipelineError::Parse {
            location: None,
            message: "the pipeline definition is empty".to_owned(),
        });
    }
    let format = format_hint.unwrap_or_else(|| Format::detect(text));
    super::depth::check(text, format)?;
    match format {
        Format::Yaml => parse_yaml(text),
        Format::Json => parse_json(text),
    }
}

fn strip_bom(text: &str) -> &str {
    text.strip_prefix('\u{feff}').unwrap_or(text)
}

fn parse_yaml(text: &str) -> Result<Pipeline, PipelineError> {
    serde_norway::from_str(text).map_err(|err| {
        // serde_norway's messages already start with the path (`steps[0]: unknown field ...`).
        let location = err.location().map(|l| Location {
            line: l.line(),
            column: l.column(),
        });
        PipelineError::Parse {
            location,
            message: without_location(err.to_string(), location),
        }
    })
}

fn parse_json(text: &str) -> Result<Pipeline, PipelineError> {
    let mut de = serde_json::Deserializer::from_str(text);

    serde_path_to_error::deserialize(&mut de)
        .map_err(|err| {
            let path = err.path().to_string();
            let inner = err.into_inner();
            json_error(&inner, json_path(path, &inner))
        })
        .and_then(|pipeline| {
            de.end()
                .map(|()| pipeline)
                .map_err(|e| json_error(&e, None))
        })
}

/// The path to show for a JSON model error, in serde_norway's style: none at the top level, and
/// for an unknown field the object holding it (serde_path_to_error includes the field itself).
fn json_path(path: String, err: &serde_json::Error) -> Option<String> {
    let message = err.to_string();
    let unknown = message
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split_once('`'))
        .map(|(field, _)| field);
    let path = match unknown {
        Some(field) if path == field => return None,
        Some(field) => path
            .strip_suffix(field)
            .and_then(|p| p.strip_suffix('.'))
            .map(str::to_owned)
            .unwrap_or(path),
        None => path,
    };
    (path != ".").then_some(path)
}

fn json_error(err: &serde_json::Error, path: Option<String>) -> PipelineError {
    let location = (err.line() > 0).then(|| Location {
        line: err.line(),
        column: err.column(),
    });
    let message = without_location(err.to_string(), location);
    PipelineError::Parse {
        location,
        message: match path {
            Some(path) => format!("{path}: {message}"),
            None => message,
        },
    }
}

/// Drops the first ` at line L column C` from a parser message: the location is shown in front.
fn without_location(message: String, location: Option<Location>) -> String {
    let Some(Location { line, column }) = location else {
        return message;
    };
    let suffix = format!(" at line {line} column {column}");
    match message.find(&suffix) {
        Some(at) => format!("{}{}", &message[..at], &message[at + suffix.len()..]),
        None => message,
    }
}
