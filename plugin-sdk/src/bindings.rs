//! The one `wit_bindgen::generate!` site of the SDK: guest bindings for the three plugin worlds
//! of `autoflow:plugin@0.2.0` (whose sources and sinks are 0.1.0's).
//!
//! The source world generates the shared `types`, `host`, `sql` and `messaging` interfaces; the
//! transform and sink worlds reuse them through `with`, so a record (or an SQL value, or a
//! message) is one Rust type whatever the world.
#![allow(missing_docs, unsafe_code, clippy::all)]

/// Bindings of the `source-plugin` world (and the shared interfaces).
pub mod source {
    wit_bindgen::generate!({
        path: "wit",
        world: "autoflow:plugin/source-plugin@0.2.0",
        runtime_path: "::autoflow_plugin_sdk::wit_bindgen::rt",
        pub_export_macro: true,
        export_macro_name: "__export_source_world",
        generate_all,
        default_bindings_module: "$crate::__private::bindings::source",
    });
}

/// Bindings of the `transform-plugin` world of 0.2.0 (the 0.1.0 interfaces reused).
pub mod transform {
    wit_bindgen::generate!({
        path: "wit",
        world: "autoflow:plugin/transform-plugin@0.2.0",
        runtime_path: "::autoflow_plugin_sdk::wit_bindgen::rt",
        pub_export_macro: true,
        export_macro_name: "__export_transform_world",
        default_bindings_module: "$crate::__private::bindings::transform",
        with: {
            "autoflow:plugin/types@0.1.0": super::source::autoflow::plugin0_1_0::types,
            "autoflow:plugin/host@0.1.0": super::source::autoflow::plugin0_1_0::host,
            "autoflow:plugin/sql@0.1.0": super::source::autoflow::plugin0_1_0::sql,
            "autoflow:plugin/messaging@0.1.0": super::source::autoflow::plugin0_1_0::messaging,
        },
    });
}

/// Bindings of the `sink-plugin` world.
pub mod sink {
    wit_bindgen::generate!({
        path: "wit",
        world: "autoflow:plugin/sink-plugin@0.2.0",
        runtime_path: "::autoflow_plugin_sdk::wit_bindgen::rt",
        pub_export_macro: true,
        export_macro_name: "__export_sink_world",
        default_bindings_module: "$crate::__private::bindings::sink",
        with: {
            "autoflow:plugin/types@0.1.0": super::source::autoflow::plugin0_1_0::types,
            "autoflow:plugin/host@0.1.0": super::source::autoflow::plugin0_1_0::host,
            "autoflow:plugin/sql@0.1.0": super::source::autoflow::plugin0_1_0::sql,
            "autoflow:plugin/messaging@0.1.0": super::source::autoflow::plugin0_1_0::messaging,
        },
    });
}
