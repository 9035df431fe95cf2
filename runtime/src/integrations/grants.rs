//! What a step was granted of the pipeline's connections, and the one check every SQL and
//! messaging call makes: the connection is granted, and is of the wanted sort.
use std::collections::BTreeMap;
use std::sync::Arc;

use super::ConnectionKind;
use crate::pipeline::connection::scheme_only;
use crate::world::PluginError;

/// A connection granted to a step: its name in the pipeline and its URL, secrets expanded.
#[derive(Clone, PartialEq, Eq)]
pub struct Grant {
    /// The service kind.
    pub kind: ConnectionKind,
    /// The URL, credentials included: never shown.
    pub url: String,
}

impl std::fmt::Debug for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grant")
            .field("kind", &self.kind)
            .field("url", &scheme_only(&self.url))
            .finish()
    }
}

/// The connections granted to one step, by name; cheap to clone (each capability of the step
/// holds them).
#[derive(Debug, Clone, Default)]
pub struct Grants {
    step: Arc<str>,
    by_name: Arc<BTreeMap<String, Grant>>,
}

impl Grants {
    /// `by_name`, granted to step `step`.
    pub fn new(step: Arc<str>, by_name: BTreeMap<String, Grant>) -> Self {
        Self {
            step,
            by_name: Arc::new(by_name),
        }
    }

    /// The connection `name` if it is granted to the step and is a SQL database (`sql`) or a
    /// message service (not `sql`).
    pub fn granted(&self, name: &str, sql: bool) -> Result<Grant, PluginError> {
        let grant = self.by_name.get(name).ok_or_else(|| {
            PluginError::InvalidConfig(format!(
                "connection {name:?} is not granted to step {:?} (list it in the step's `connections`)",
                self.step
            ))
        })?;
        if grant.kind.is_sql() != sql {
            let wanted = if sql {
                "a SQL database"
            } else {
                "a message service"
            };
            return Err(PluginError::InvalidConfig(format!(
                "connection {name:?} is not {wanted} ({:?})",
                grant.kind
            )));
        }
        Ok(grant.clone())
    }
}
