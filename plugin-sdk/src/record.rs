//! The record type and its JSON helpers.
use serde::{Serialize, de::DeserializeOwned};

use crate::Error;

/// One record flowing through a pipeline: an opaque value with an optional key, headers and
/// event time. Built-in plugins carry UTF-8 JSON in `value`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    /// Optional key (partitioning, upserts, de-duplication).
    pub key: Option<Vec<u8>>,
    /// The payload.
    pub value: Vec<u8>,
    /// Headers in order; names may repeat.
    pub headers: Vec<(String, String)>,
    /// Event time in milliseconds since the Unix epoch.
    pub timestamp: Option<i64>,
}

impl Record {
    /// A record holding `value` and nothing else.
    pub fn new(value: impl Into<Vec<u8>>) -> Self {
        Self {
            value: value.into(),
            ..Self::default()
        }
    }

    /// A record whose value is `value` serialized as JSON.
    pub fn from_json<T: Serialize + ?Sized>(value: &T) -> Result<Self, Error> {
        serde_json::to_vec(value)
            .map(Self::new)
            .map_err(|e| Error::Fatal(format!("cannot serialize record as JSON: {e}")))
    }

    /// Parses the value as JSON into `T`. The error says why, for a rejection reason.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, String> {
        serde_json::from_slice(&self.value).map_err(|e| format!("value is not valid JSON: {e}"))
    }

    /// Replaces the value with `value` serialized as JSON, keeping key, headers and time.
    pub fn set_json<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.value = serde_json::to_vec(value)
            .map_err(|e| Error::Fatal(format!("cannot serialize record as JSON: {e}")))?;
        Ok(())
    }

    /// Sets the key, builder style.
    pub fn with_key(mut self, key: impl Into<Vec<u8>>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// The value as UTF-8 text, if it is.
    pub fn text(&self) -> Option<&str> {
        std::str::from_utf8(&self.value).ok()
    }

    /// The first header named `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}
