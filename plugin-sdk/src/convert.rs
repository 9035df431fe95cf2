//! Conversions between the SDK's types and the generated WIT bindings.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
use crate::bindings::source::autoflow::plugin0_1_0::types as wit;
use crate::bindings::transform::exports::autoflow::plugin0_2_0::transform as wit_transform;
use crate::{Batch, Error, Metadata, Processed, Record};

impl From<wit::Record> for Record {
    fn from(r: wit::Record) -> Self {
        Record {
            key: r.key,
            value: r.value,
            headers: r.headers,
            timestamp: r.timestamp,
        }
    }
}

impl From<Record> for wit::Record {
    fn from(r: Record) -> Self {
        wit::Record {
            key: r.key,
            value: r.value,
            headers: r.headers,
            timestamp: r.timestamp,
        }
    }
}

impl From<Error> for wit::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::InvalidConfig(m) => wit::Error::InvalidConfig(m),
            Error::Retryable(m) => wit::Error::Retryable(m),
            Error::Fatal(m) => wit::Error::Fatal(m),
        }
    }
}

impl From<wit::Error> for Error {
    fn from(e: wit::Error) -> Self {
        match e {
            wit::Error::InvalidConfig(m) => Error::InvalidConfig(m),
            wit::Error::Retryable(m) => Error::Retryable(m),
            wit::Error::Fatal(m) => Error::Fatal(m),
        }
    }
}

impl From<Metadata> for wit::Metadata {
    fn from(m: Metadata) -> Self {
        wit::Metadata {
            name: m.name,
            version: m.version,
            description: m.description,
            config_schema: m.config_schema,
        }
    }
}

impl From<Batch> for wit::Batch {
    fn from(b: Batch) -> Self {
        wit::Batch {
            records: b.records.into_iter().map(Into::into).collect(),
            cursor: b.cursor,
        }
    }
}

impl From<Processed> for wit_transform::Processed {
    fn from(p: Processed) -> Self {
        wit_transform::Processed {
            records: p.records.into_iter().map(Into::into).collect(),
            routed: p
                .routed
                .into_iter()
                .map(|(output, records)| wit_transform::Routed {
                    output,
                    records: records.into_iter().map(Into::into).collect(),
                })
                .collect(),
            rejected: p
                .rejected
                .into_iter()
                .map(|(index, reason)| wit::Rejection { index, reason })
                .collect(),
        }
    }
}

/// Converts a batch of generated records into SDK records.
pub(crate) fn records_in(records: Vec<wit::Record>) -> Vec<Record> {
    records.into_iter().map(Into::into).collect()
}
