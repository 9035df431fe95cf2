//! Sinks: the trait a plugin implements, and its adapter to the `sink` export.
use serde::de::DeserializeOwned;

use crate::{Error, Metadata, Record};

/// A sink plugin. Implement it and call [`export_sink!`](crate::export_sink).
pub trait Sink: Sized + 'static {
    /// The step's configuration, parsed from its JSON.
    type Config: DeserializeOwned;

    /// Name, version, description and config schema.
    fn metadata() -> Metadata;

    /// Builds the sink from its configuration.
    fn open(config: Self::Config) -> Result<Self, Error>;

    /// Writes one batch; it may buffer until [`Sink::flush`].
    fn write(&mut self, records: Vec<Record>) -> Result<(), Error>;

    /// Makes everything written so far durable.
    fn flush(&mut self) -> Result<(), Error> {
        Ok(())
    }
}

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod adapter {
    use std::marker::PhantomData;

    use super::Sink;
    use crate::bindings::sink::exports::autoflow::plugin0_1_0::sink::Guest;
    use crate::bindings::source::autoflow::plugin0_1_0::types as wit;
    use crate::heap::ExportCall;
    use crate::{convert, instance, parse_config};

    /// Implements the generated `sink` export for any [`Sink`].
    pub struct Adapter<T>(PhantomData<T>);

    impl<T: Sink> Guest for Adapter<T> {
        fn describe() -> wit::Metadata {
            let _call = ExportCall::start();
            T::metadata().into()
        }
        fn open(config: String) -> Result<(), wit::Error> {
            let _call = ExportCall::start();
            instance::set(T::open(parse_config(&config)?)?);
            Ok(())
        }
        fn write(records: Vec<wit::Record>) -> Result<(), wit::Error> {
            let _call = ExportCall::start();
            let records = convert::records_in(records);
            Ok(instance::with::<T, _>(|t| t.write(records))?)
        }
        fn flush() -> Result<(), wit::Error> {
            let _call = ExportCall::start();
            Ok(instance::with::<T, _>(|t| t.flush())?)
        }
    }
}

/// Exports a [`Sink`] implementation as this component's `sink` interface.
#[macro_export]
macro_rules! export_sink {
    ($t:ty) => {
        #[cfg(target_arch = "wasm32")]
        type __AutoflowSinkExport = $crate::sink::adapter::Adapter<$t>;
        #[cfg(target_arch = "wasm32")]
        $crate::__private::bindings::sink::__export_sink_world!(
            __AutoflowSinkExport with_types_in $crate::__private::bindings::sink
        );
    };
}
