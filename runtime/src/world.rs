//! The one `bindgen!` site of the host: typed bindings for the three plugin worlds (as Spin's
//! `spin-world` crate). It sits below the engine and the capabilities, and imports neither:
//! the engine implements `host` and links everything; each capability of
//! [`crate::integrations`] implements its interface (`sql`, `messaging`) on its own state.
//!
//! The source world generates the shared `types`, `host`, `sql` and `messaging` interfaces; the transform and sink
//! worlds reuse them through `with`, so one `Record` type and one `Host` impl serve all three.
//! Resources (`sql.transaction`) are the generated placeholder types: their capability keeps
//! their values in its own table.
#![allow(missing_docs, clippy::all)]

/// Bindings of `autoflow:plugin/source-plugin` (and the shared interfaces).
pub mod source {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "autoflow:plugin/source-plugin@0.1.0",
        imports: {
            "autoflow:plugin/sql": async | trappable,
            "autoflow:plugin/messaging": async | trappable,
            default: trappable,
        },
        exports: { default: async },
    });
}

/// Bindings of `autoflow:plugin/transform-plugin`.
pub mod transform {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "autoflow:plugin/transform-plugin@0.1.0",
        imports: { default: trappable },
        exports: { default: async },
        with: {
            "autoflow:plugin/types": super::source::autoflow::plugin::types,
            "autoflow:plugin/host": super::source::autoflow::plugin::host,
            "autoflow:plugin/sql": super::source::autoflow::plugin::sql,
            "autoflow:plugin/messaging": super::source::autoflow::plugin::messaging,
        },
    });
}

/// Bindings of `autoflow:plugin/sink-plugin`.
pub mod sink {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "autoflow:plugin/sink-plugin@0.1.0",
        imports: { default: trappable },
        exports: { default: async },
        with: {
            "autoflow:plugin/types": super::source::autoflow::plugin::types,
            "autoflow:plugin/host": super::source::autoflow::plugin::host,
            "autoflow:plugin/sql": super::source::autoflow::plugin::sql,
            "autoflow:plugin/messaging": super::source::autoflow::plugin::messaging,
        },
    });
}

pub use source::autoflow::plugin::host::Level;
pub use source::autoflow::plugin::types::{
    Batch, Error as PluginError, Metadata, Processed, Record, Rejection,
};

impl From<Record> for crate::record::Record {
    fn from(r: Record) -> Self {
        let Record {
            key,
            value,
            headers,
            timestamp,
        } = r;
        Self {
            key,
            value,
            headers,
            timestamp,
        }
    }
}

impl From<crate::record::Record> for Record {
    fn from(r: crate::record::Record) -> Self {
        let crate::record::Record {
            key,
            value,
            headers,
            timestamp,
        } = r;
        Self {
            key,
            value,
            headers,
            timestamp,
        }
    }
}
