//! The one `bindgen!` site of the host: typed bindings for the three plugin worlds.
//!
//! The source world generates the shared `types`, `host`, `sql` and `messaging` interfaces; the transform and sink
//! worlds reuse them through `with`, so one `Record` type and one `Host` impl serve all three.
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
        with: { "autoflow:plugin/sql.transaction": crate::integrations::sql::Transaction },
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
