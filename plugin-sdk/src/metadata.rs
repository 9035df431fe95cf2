//! What a plugin says of itself: name, version, description and config schema.

/// A plugin's self-description, returned by `describe`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    /// Short name, such as `json-filter`.
    pub name: String,
    /// Semantic version, such as `0.1.0`.
    pub version: String,
    /// One or two sentences for people.
    pub description: String,
    /// JSON Schema (as JSON text) that the step's config must satisfy.
    pub config_schema: Option<String>,
}

impl Metadata {
    /// Metadata with no config schema.
    pub fn new(name: &str, version: &str, description: &str) -> Self {
        Self {
            name: name.into(),
            version: version.into(),
            description: description.into(),
            config_schema: None,
        }
    }

    /// Sets the JSON Schema of the config, builder style.
    pub fn config_schema(mut self, schema: &str) -> Self {
        self.config_schema = Some(schema.into());
        self
    }
}
