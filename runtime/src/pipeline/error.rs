//! Errors of parsing and validating a pipeline: each one names the place it is about.

use std::fmt;

use serde::Serialize;

/// One problem with a pipeline definition.
///
/// Displayed as `line L, column C: <message>` for parse errors and `<path>: <message>` for
/// validation problems (see the module docs for every text).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PipelineError {
    /// The text is not well-formed YAML or JSON, or does not fit the model
    /// (unknown field, wrong type, missing required field).
    #[error("{}{message}", LocationPrefix(.location))]
    Parse {
        /// Where in the text, when the parser knows it.
        location: Option<Location>,
        /// The parser's message, prefixed with the path inside the document (`steps[0]: ...`)
        /// when there is one.
        message: String,
    },
    /// The document parsed but breaks a rule of the model.
    #[error("{path}: {message}")]
    Invalid {
        /// Where: `name`, `steps[1].input`, `steps[0].mounts[0].host`, `steps`, ...
        path: String,
        /// What is wrong there.
        message: String,
    },
}

impl PipelineError {
    /// A validation problem at `path`.
    pub fn invalid(path: impl Into<String>, message: impl Into<String>) -> Self {
        PipelineError::Invalid {
            path: path.into(),
            message: message.into(),
        }
    }

    /// The path the problem is about (`None` for parse errors, whose message carries it).
    pub fn path(&self) -> Option<&str> {
        match self {
            PipelineError::Parse { .. } => None,
            PipelineError::Invalid { path, .. } => Some(path),
        }
    }
}

/// A place in the text of a pipeline file: 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Location {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

struct LocationPrefix<'a>(&'a Option<Location>);

impl fmt::Display for LocationPrefix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(Location { line, column }) => write!(f, "line {line}, column {column}: "),
            None => Ok(()),
        }
    }
}

/// Every problem validation found, in a stable order (see the module docs). Never empty.
///
/// Displayed as the problems one per line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct ValidationErrors(pub Vec<PipelineError>);

impl ValidationErrors {
    /// The problems.
    pub fn problems(&self) -> &[PipelineError] {
        &self.0
    }

    /// The problems as display strings, e.g. for an API response or a test.
    pub fn messages(&self) -> Vec<String> {
        self.0.iter().map(ToString::to_string).collect()
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}

impl From<PipelineError> for ValidationErrors {
    fn from(error: PipelineError) -> Self {
        ValidationErrors(vec![error])
    }
}

impl IntoIterator for ValidationErrors {
    type Item = PipelineError;
    type IntoIter = std::vec::IntoIter<PipelineError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}
