//! Native unit tests for plugins: run a source, transform or sink in-process, without wasm,
//! against a recording host.
//!
//! ```
//! use autoflow_plugin_sdk::{testing::TestHost, Record};
//! # use autoflow_plugin_sdk::*;
//! # struct Upper;
//! # impl Transform for Upper {
//! #     type Config = serde_json::Value;
//! #     fn metadata() -> Metadata { Metadata::new("upper", "0.1.0", "upper-cases") }
//! #     fn open(_: Self::Config) -> Result<Self> { Ok(Upper) }
//! #     fn process(&mut self, r: Record, out: &mut Output) -> Result<()> {
//! #         out.emit(Record::new(r.value.to_ascii_uppercase())); Ok(())
//! #     }
//! # }
//! let out = TestHost::new().transform::<Upper>("{}", vec![Record::new("a")]).unwrap();
//! assert_eq!(out.records[0].value, b"A");
//! ```
use std::cell::RefCell;
use std::collections::BTreeMap;

use crate::{Batch, Error, Level, Processed, Record, Sink, Source, Transform, parse_config};

/// A host for native tests: it records log lines and counters, keeps state in memory and
/// serves the secrets it was given.
#[derive(Debug, Default, Clone)]
pub struct TestHost {
    /// Log lines written by the plugin, in order.
    pub logs: Vec<(Level, String)>,
    /// Counters incremented by the plugin.
    pub counters: BTreeMap<String, u64>,
    /// The step's state.
    pub state: BTreeMap<String, Vec<u8>>,
    /// Secrets granted to the step.
    pub secrets: BTreeMap<String, String>,
}

thread_local! {
    static CURRENT: RefCell<Option<TestHost>> = const { RefCell::new(None) };
}

/// Runs `f` on the host of the current test; outside one, host calls are dropped.
#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
pub(crate) fn with_host<R: Default>(f: impl FnOnce(&mut TestHost) -> R) -> R {
    CURRENT.with(|c| c.borrow_mut().as_mut().map(f).unwrap_or_default())
}

impl TestHost {
    /// An empty host.
    pub fn new() -> Self {
        Self::default()
    }

    /// Grants a secret, builder style.
    pub fn secret(mut self, name: &str, value: &str) -> Self {
        self.secrets.insert(name.into(), value.into());
        self
    }

    /// Runs `f` with this host installed for the current thread, then takes it back: host
    /// calls made by plugin code inside `f` (logs, counters, state, secrets) land here. Use it
    /// to drive a plugin's trait methods directly, batch by batch.
    pub fn run<R>(&mut self, f: impl FnOnce() -> R) -> R {
        CURRENT.with(|c| *c.borrow_mut() = Some(std::mem::take(self)));
        let out = f();
        CURRENT.with(|c| {
            if let Some(h) = c.borrow_mut().take() {
                *self = h;
            }
        });
        out
    }

    /// Opens transform `T` with `config` (JSON text) and processes one batch.
    pub fn transform<T: Transform>(
        &mut self,
        config: &str,
        records: Vec<Record>,
    ) -> Result<Processed, Error> {
        self.run(|| {
            let mut t = T::open(parse_config(config)?)?;
            crate::transform::run_batch(&mut t, records)
        })
    }

    /// Opens source `S` with `config` and a resume `cursor`, and reads batches of `max` until
    /// it ends; returns every batch.
    pub fn source<S: Source>(
        &mut self,
        config: &str,
        cursor: Option<String>,
        max: u32,
    ) -> Result<Vec<Batch>, Error> {
        self.run(|| {
            let mut s = S::open(parse_config(config)?, cursor)?;
            let mut batches = Vec::new();
            while let Some(b) = s.next(max)? {
                batches.push(b);
            }
            Ok(batches)
        })
    }

    /// Opens sink `S` with `config`, writes `records` as one batch and flushes.
    pub fn sink<S: Sink>(&mut self, config: &str, records: Vec<Record>) -> Result<(), Error> {
        self.run(|| {
            let mut s = S::open(parse_config(config)?)?;
            s.write(records)?;
            s.flush()
        })
    }
}
