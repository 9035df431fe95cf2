//! A record as plain data: what the store keeps of a rejected record, and what a replay feeds
//! back. The engine's WIT record converts to and from it ([`crate::world`]).

/// One record: an optional key, the value, headers and an optional timestamp (Unix ms).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    /// The key, if any.
    pub key: Option<Vec<u8>>,
    /// The value.
    pub value: Vec<u8>,
    /// Headers, in order.
    pub headers: Vec<(String, String)>,
    /// When it happened, Unix ms, if known.
    pub timestamp: Option<i64>,
}
