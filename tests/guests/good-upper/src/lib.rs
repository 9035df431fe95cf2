//! Well-behaved transform: upper-cases each value, and per batch counts `seen` and logs a line.
use autoflow_plugin_sdk::*;

/// Upper-cases each record's value (ASCII only).
pub struct Upper;

impl Transform for Upper {
    type Config = serde_json::Value;
    fn metadata() -> Metadata {
        Metadata::new("good-upper", "0.1.0", "Upper-cases each value (test guest)")
    }
    fn open(_: Self::Config) -> Result<Self> {
        Ok(Upper)
    }
    fn process(&mut self, r: Record, out: &mut Output) -> Result<()> {
        out.emit(Record {
            value: r.value.to_ascii_uppercase(),
            ..r
        });
        Ok(())
    }
}

/// The `Transform` trait sees one record at a time, so the per-batch host calls wrap the SDK's
/// own adapter around the generated `transform` export.
#[cfg(target_arch = "wasm32")]
mod export {
    use autoflow_plugin_sdk::__private::bindings::source::autoflow::plugin::types as wit;
    use autoflow_plugin_sdk::__private::bindings::transform::exports::autoflow::plugin::transform::Guest;
    use autoflow_plugin_sdk::host;
    use autoflow_plugin_sdk::transform::adapter::Adapter;

    struct PerBatch;

    impl Guest for PerBatch {
        fn describe() -> wit::Metadata {
            Adapter::<super::Upper>::describe()
        }
        fn open(config: String) -> Result<(), wit::Error> {
            Adapter::<super::Upper>::open(config)
        }
        fn process(records: Vec<wit::Record>) -> Result<wit::Processed, wit::Error> {
            let n = records.len() as u64;
            host::count("seen", n);
            host::info(&format!("good-upper: upper-casing a batch of {n} records"));
            Adapter::<super::Upper>::process(records)
        }
    }

    autoflow_plugin_sdk::__private::bindings::transform::__export_transform_world!(
        PerBatch with_types_in autoflow_plugin_sdk::__private::bindings::transform
    );
}
