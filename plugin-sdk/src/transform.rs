//! Transforms: the trait a plugin implements, and its adapter to the `transform` export of
//! `autoflow:plugin@0.2.0` (named outputs, `finish`).
use serde::de::DeserializeOwned;

use crate::{Error, Metadata, Record};

/// What a transform made of one batch: the records passed on to the default output, those
/// sent to named outputs, and `(index, reason)` for each input record it refused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Processed {
    /// Records passed on to the default output, in order.
    pub records: Vec<Record>,
    /// Records sent to named outputs: `(output, records)`, each output once, in the order of
    /// its first record.
    pub routed: Vec<(String, Vec<Record>)>,
    /// Refused input records: their index in the batch and why.
    pub rejected: Vec<(u32, String)>,
}

impl Processed {
    /// The records sent to output `name` (empty when none were).
    pub fn output(&self, name: &str) -> &[Record] {
        self.routed
            .iter()
            .find(|(n, _)| n == name)
            .map_or(&[], |(_, r)| r.as_slice())
    }
}

/// Where a transform puts its results while it processes a batch.
#[derive(Debug, Default)]
pub struct Output {
    current: u32,
    processed: Processed,
}

impl Output {
    /// Passes `record` on to the default output (what `input: STEP` reads).
    pub fn emit(&mut self, record: Record) {
        self.processed.records.push(record);
    }

    /// Sends `record` to the named output `output` (what `input: STEP.OUTPUT` reads); the
    /// name must be one of those [`Transform::outputs`] returns for the step's config.
    pub fn emit_to(&mut self, output: &str, record: Record) {
        let routed = &mut self.processed.routed;
        match routed.iter_mut().find(|(n, _)| n == output) {
            Some((_, records)) => records.push(record),
            None => routed.push((output.to_string(), vec![record])),
        }
    }

    /// Refuses the input record being processed; the host dead-letters it with `reason`.
    pub fn reject(&mut self, reason: impl Into<String>) {
        self.processed.rejected.push((self.current, reason.into()));
    }

    /// The index in the batch of the input record being processed (in `end_batch`, the last
    /// one's): to [`Output::reject_at`] it later.
    pub fn index(&self) -> u32 {
        self.current
    }

    /// Refuses input record `index` of the batch, for a transform that holds records back and
    /// decides in `end_batch` (one lookup per batch, say); the host dead-letters it.
    pub fn reject_at(&mut self, index: u32, reason: impl Into<String>) {
        self.processed.rejected.push((index, reason.into()));
    }
}

/// A transform plugin. Implement it and call [`export_transform!`](crate::export_transform).
pub trait Transform: Sized + 'static {
    /// The step's configuration, parsed from its JSON.
    type Config: DeserializeOwned;

    /// Name, version, description and config schema.
    fn metadata() -> Metadata;

    /// The named outputs a step with `config` sends records to with [`Output::emit_to`],
    /// beside the default one. The host checks every `input: STEP.OUTPUT` against them when a
    /// pipeline is applied. None by default.
    fn outputs(config: &Self::Config) -> Result<Vec<String>, Error> {
        let _ = config;
        Ok(Vec::new())
    }

    /// Builds the transform from its configuration.
    fn open(config: Self::Config) -> Result<Self, Error>;

    /// Handles one record: emit zero or more records, or reject it.
    fn process(&mut self, record: Record, out: &mut Output) -> Result<(), Error>;

    /// Called after the last record of each batch: emit what was held back (aggregates),
    /// or report per-batch metrics with one host call. Does nothing by default.
    fn end_batch(&mut self, out: &mut Output) -> Result<(), Error> {
        let _ = out;
        Ok(())
    }

    /// Called once after the run's last batch, before it commits: emit what is still held
    /// back (open windows, a reservoir). Rejections are not allowed here (there is no input
    /// record to point at). Does nothing by default.
    fn finish(&mut self, out: &mut Output) -> Result<(), Error> {
        let _ = out;
        Ok(())
    }
}

/// Runs `records` through `t` one by one, tracking each one's index for rejections.
pub(crate) fn run_batch<T: Transform>(t: &mut T, records: Vec<Record>) -> Result<Processed, Error> {
    let mut out = Output {
        current: 0,
        processed: Processed {
            records: Vec::with_capacity(records.len()),
            ..Processed::default()
        },
    };
    for (i, r) in records.into_iter().enumerate() {
        out.current = i as u32;
        t.process(r, &mut out)?;
    }
    t.end_batch(&mut out)?;
    Ok(out.processed)
}

/// Calls `t`'s [`Transform::finish`]; a rejection there is an error.
pub(crate) fn run_finish<T: Transform>(t: &mut T) -> Result<Processed, Error> {
    let mut out = Output::default();
    t.finish(&mut out)?;
    if !out.processed.rejected.is_empty() {
        return Err(Error::Fatal(
            "a transform cannot reject records in finish: there is no input record to point at"
                .into(),
        ));
    }
    Ok(out.processed)
}

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod adapter {
    use std::marker::PhantomData;

    use super::{Transform, run_batch, run_finish};
    use crate::bindings::source::autoflow::plugin0_1_0::types as wit;
    use crate::bindings::transform::exports::autoflow::plugin0_2_0::transform::{Guest, Processed};
    use crate::heap::ExportCall;
    use crate::{convert, instance, parse_config};

    /// Implements the generated `transform` export for any [`Transform`].
    pub struct Adapter<T>(PhantomData<T>);

    impl<T: Transform> Guest for Adapter<T> {
        fn describe() -> wit::Metadata {
            let _call = ExportCall::start();
            T::metadata().into()
        }
        fn outputs(config: String) -> Result<Vec<String>, wit::Error> {
            let _call = ExportCall::start();
            Ok(T::outputs(&parse_config(&config)?)?)
        }
        fn open(config: String) -> Result<(), wit::Error> {
            let _call = ExportCall::start();
            instance::set(T::open(parse_config(&config)?)?);
            Ok(())
        }
        fn process(records: Vec<wit::Record>) -> Result<Processed, wit::Error> {
            let _call = ExportCall::start();
            let records = convert::records_in(records);
            Ok(instance::with::<T, _>(|t| run_batch(t, records))?.into())
        }
        fn finish() -> Result<Processed, wit::Error> {
            let _call = ExportCall::start();
            Ok(instance::with::<T, _>(run_finish)?.into())
        }
    }
}

/// Exports a [`Transform`] implementation as this component's `transform` interface.
#[macro_export]
macro_rules! export_transform {
    ($t:ty) => {
        #[cfg(target_arch = "wasm32")]
        type __AutoflowTransformExport = $crate::transform::adapter::Adapter<$t>;
        #[cfg(target_arch = "wasm32")]
        $crate::__private::bindings::transform::__export_transform_world!(
            __AutoflowTransformExport with_types_in $crate::__private::bindings::transform
        );
    };
}
