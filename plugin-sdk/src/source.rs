//! Sources: the trait a plugin implements, and its adapter to the `source` export.
use serde::de::DeserializeOwned;

use crate::{Error, Metadata, Record};

/// A batch of records read by a source, and where the source stands after them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    /// The records, in order.
    pub records: Vec<Record>,
    /// The position after these records; committed once the sinks flushed them, and given
    /// back to [`Source::open`] on the next run.
    pub cursor: Option<String>,
}

/// A source plugin. Implement it and call [`export_source!`](crate::export_source).
pub trait Source: Sized + 'static {
    /// The step's configuration, parsed from its JSON.
    type Config: DeserializeOwned;

    /// Name, version, description and config schema.
    fn metadata() -> Metadata;

    /// Builds the source; `cursor` is the last committed cursor, `None` on a first run.
    fn open(config: Self::Config, cursor: Option<String>) -> Result<Self, Error>;

    /// Reads up to `max` records; `None` once the source is exhausted for this run.
    fn next(&mut self, max: u32) -> Result<Option<Batch>, Error>;
}

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod adapter {
    use std::marker::PhantomData;

    use super::Source;
    use crate::bindings::source::autoflow::plugin0_1_0::types as wit;
    use crate::bindings::source::exports::autoflow::plugin0_1_0::source::Guest;
    use crate::heap::ExportCall;
    use crate::{instance, parse_config};

    /// Implements the generated `source` export for any [`Source`].
    pub struct Adapter<T>(PhantomData<T>);

    impl<T: Source> Guest for Adapter<T> {
        fn describe() -> wit::Metadata {
            let _call = ExportCall::start();
            T::metadata().into()
        }
        fn open(config: String, cursor: Option<String>) -> Result<(), wit::Error> {
            let _call = ExportCall::start();
            instance::set(T::open(parse_config(&config)?, cursor)?);
            Ok(())
        }
        fn next(max: u32) -> Result<Option<wit::Batch>, wit::Error> {
            let _call = ExportCall::start();
            Ok(instance::with::<T, _>(|t| t.next(max))?.map(Into::into))
        }
    }
}

/// Exports a [`Source`] implementation as this component's `source` interface.
#[macro_export]
macro_rules! export_source {
    ($t:ty) => {
        #[cfg(target_arch = "wasm32")]
        type __AutoflowSourceExport = $crate::source::adapter::Adapter<$t>;
        #[cfg(target_arch = "wasm32")]
        $crate::__private::bindings::source::__export_source_world!(
            __AutoflowSourceExport with_types_in $crate::__private::bindings::source
        );
    };
}
