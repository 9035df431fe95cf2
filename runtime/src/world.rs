//! The one `bindgen!` site of the host: typed bindings for the plugin worlds of both contract
//! versions, `autoflow:plugin@0.1.0` (in `wit/deps/`) and `@0.2.0` (in `wit/`), as Spin's
//! `spin-world` crate binds `spin@2.0.0` beside its newest package. It sits below the engine and the capabilities, and imports neither:
//! the engine implements `host` and links everything; each capability of
//! [`crate::integrations`] implements its interface (`sql`, `messaging`) on its own state.
//!
//! The source world generates the shared `types`, `host`, `sql` and `messaging` interfaces
//! (0.1.0's, which 0.2.0 reuses); the transform and sink worlds reuse them through `with`, so
//! one `Record` type and one `Host` impl serve every world of both versions. Only `transform`
//! differs between the versions: `transform` binds 0.1.0's, `transform_v2` 0.2.0's (named
//! outputs, `finish`).
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
            "autoflow:plugin/types@0.1.0": super::source::autoflow::plugin0_1_0::types,
            "autoflow:plugin/host@0.1.0": super::source::autoflow::plugin0_1_0::host,
            "autoflow:plugin/sql@0.1.0": super::source::autoflow::plugin0_1_0::sql,
            "autoflow:plugin/messaging@0.1.0": super::source::autoflow::plugin0_1_0::messaging,
        },
    });
}

/// Bindings of `autoflow:plugin/transform-plugin@0.2.0`: named outputs and `finish`.
pub mod transform_v2 {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "autoflow:plugin/transform-plugin@0.2.0",
        imports: { default: trappable },
        exports: { default: async },
        with: {
            "autoflow:plugin/types@0.1.0": super::source::autoflow::plugin0_1_0::types,
            "autoflow:plugin/host@0.1.0": super::source::autoflow::plugin0_1_0::host,
            "autoflow:plugin/sql@0.1.0": super::source::autoflow::plugin0_1_0::sql,
            "autoflow:plugin/messaging@0.1.0": super::source::autoflow::plugin0_1_0::messaging,
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
            "autoflow:plugin/types@0.1.0": super::source::autoflow::plugin0_1_0::types,
            "autoflow:plugin/host@0.1.0": super::source::autoflow::plugin0_1_0::host,
            "autoflow:plugin/sql@0.1.0": super::source::autoflow::plugin0_1_0::sql,
            "autoflow:plugin/messaging@0.1.0": super::source::autoflow::plugin0_1_0::messaging,
        },
    });
}

pub use source::autoflow::plugin0_1_0::host::Level;
pub use source::autoflow::plugin0_1_0::types::{
    Batch, Error as PluginError, Metadata, Processed as ProcessedV1, Record, Rejection,
};
pub use transform_v2::exports::autoflow::plugin0_2_0::transform::{Processed, Routed};

impl From<ProcessedV1> for Processed {
    /// A 0.1.0 transform's batch: everything to the default output.
    fn from(p: ProcessedV1) -> Self {
        Self {
            records: p.records,
            routed: Vec::new(),
            rejected: p.rejected,
        }
    }
}

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
