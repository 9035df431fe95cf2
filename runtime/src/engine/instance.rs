//! One step's live instance: its own `Store` with its limits, made from the plugin's
//! `InstancePre`, and the typed calls into it, each under a deadline.
use std::path::PathBuf;
use std::time::{Duration, Instant};

use wasmtime::component::ResourceTable;
use wasmtime::{Store, UpdateDeadline};
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use super::bindings::{
    Batch, Metadata, PluginError, Processed, Record, sink::SinkPlugin, source::SourcePlugin,
    transform::TransformPlugin, transform_v2::TransformPlugin as TransformV2Plugin,
};
use super::capture::Capture;
use super::limits::{LimitHit, MemoryCap};
use super::plugin::{Plugin, PluginPre};
use super::{Engine, HostState, PluginKind, StepError, StepHost, StepLimits};
use crate::integrations::Grants;
use crate::integrations::messaging::MessagingState;
use crate::integrations::sql::SqlState;
use crate::telemetry;

/// How much of a guest's stdout/stderr is kept for error messages.
const OUTPUT_TAIL: usize = 4096;
/// Slack given to the epoch deadline before the watchdog abandons a call stuck in the host.
const WATCHDOG_GRACE: Duration = Duration::from_millis(50);

/// A host directory made visible to the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The host directory (already checked against the allowed roots).
    pub host: PathBuf,
    /// Where the guest sees it (absolute).
    pub guest: String,
    /// Whether the guest may write there.
    pub writable: bool,
}

/// Everything a step is granted: limits, mounts, and its host (log sink, state, secrets).
pub struct Sandbox {
    /// Resource limits.
    pub limits: StepLimits,
    /// Directories it may see.
    pub mounts: Vec<Mount>,
    /// Its plugin-facing host.
    pub host: StepHost,
}

enum Exports {
    Source(SourcePlugin),
    Transform(TransformPlugin),
    TransformV2(TransformV2Plugin),
    Sink(SinkPlugin),
}

/// A running step: one instance in one store.
pub struct StepInstance {
    store: Store<HostState>,
    exports: Exports,
    limits: StepLimits,
    poisoned: Option<StepError>,
    _alive: Alive,
}

/// Counts a plugin instance in [`telemetry::ENGINE_INSTANCES`] while it lives.
struct Alive;

impl Alive {
    fn new() -> Self {
        telemetry::engine_instances(1.0);
        Alive
    }
}

impl Drop for Alive {
    fn drop(&mut self) {
        telemetry::engine_instances(-1.0);
    }
}

impl Engine {
    /// Instantiates `plugin` in a fresh store under `sandbox`.
    pub async fn instantiate(
        &self,
        plugin: &Plugin,
        sandbox: Sandbox,
    ) -> Result<StepInstance, StepError> {
        let Sandbox {
            limits,
            mounts,
            mut host,
        } = sandbox;
        if limits.fuel.is_some() && !self.config().fuel {
            return Err(StepError::Instantiate(
                "a fuel limit needs an engine with fuel metering enabled".into(),
            ));
        }
        if limits.memory_mb > self.config().max_memory_mb {
            return Err(StepError::Instantiate(format!(
                "memory_mb {} exceeds the engine maximum of {}",
                limits.memory_mb,
                self.config().max_memory_mb
            )));
        }
        let output = Capture::new(OUTPUT_TAIL);
        let mut wasi = WasiCtxBuilder::new();
        wasi.stdout(output.clone())
            .stderr(output.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        for m in &mounts {
            let perms = if m.writable {
                FsPerms::ReadWrite
            } else {
                FsPerms::ReadOnly
            };
            wasi.preopened_dir(&m.host, &m.guest, perms).map_err(|e| {
                StepError::Instantiate(format!("mount {} -> {}: {e:#}", m.host.display(), m.guest))
            })?;
        }
        let http = super::http::HttpState::new(
            host.step.clone(),
            host.logs.clone(),
            &host.allow_hosts,
            self.integrations().egress().clone(),
        );
        // The capabilities own the step's grants from here on.
        let grants = Grants::new(host.step.clone(), std::mem::take(&mut host.connections));
        let sql = SqlState::new(grants.clone(), self.integrations().clone());
        let messaging = MessagingState::new(grants, self.integrations().clone(), host.acks.clone());
        let state = HostState {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            memory: MemoryCap::new(limits.memory_bytes()),
            step: host,
            deadline: Instant::now() + limits.timeout(),
            output,
            suspended_ns: Default::default(),
            sql,
            messaging,
            http,
        };
        let mut store = Store::new(self.wasmtime(), state);
        store.limiter(|s| &mut s.memory);
        let timeout_ms = limits.timeout_ms;
        store.epoch_deadline_callback(move |ctx| {
            if Instant::now() >= ctx.data().deadline {
                return Err(LimitHit::Timeout { timeout_ms }.into());
            }
            // Yield to the other tasks, counting the time they take: it is not the guest's.
            let suspended = ctx.data().suspended_ns.clone();
            Ok(UpdateDeadline::YieldCustom(
                1,
                Box::pin(async move {
                    let at = Instant::now();
                    tokio::task::yield_now().await;
                    let ns = u64::try_from(at.elapsed().as_nanos()).unwrap_or(u64::MAX);
                    suspended.fetch_add(ns, std::sync::atomic::Ordering::Relaxed);
                }),
            ))
        });
        store.set_epoch_deadline(1);
        store.set_hostcall_fuel(hostcall_fuel(&limits));
        if self.config().fuel {
            store
                .set_fuel(limits.fuel.unwrap_or(u64::MAX))
                .map_err(|e| StepError::Instantiate(format!("{e:#}")))?;
        }
        let alive = Alive::new();
        let instantiated = tokio::time::timeout(limits.timeout() + WATCHDOG_GRACE, async {
            Ok::<_, wasmtime::Error>(match &plugin.pre {
                PluginPre::Source(p) => Exports::Source(p.instantiate_async(&mut store).await?),
                PluginPre::Transform(p) => {
                    Exports::Transform(p.instantiate_async(&mut store).await?)
                }
                PluginPre::TransformV2(p) => {
                    Exports::TransformV2(p.instantiate_async(&mut store).await?)
                }
                PluginPre::Sink(p) => Exports::Sink(p.instantiate_async(&mut store).await?),
            })
        })
        .await;
        let exports = match instantiated {
            Err(_) => return Err(StepError::Timeout { timeout_ms }),
            Ok(Err(e)) => {
                let printed = store.data().output.take();
                return Err(StepError::from_trap(e, &limits, &printed));
            }
            Ok(Ok(x)) => x,
        };
        Ok(StepInstance {
            store,
            exports,
            limits,
            poisoned: None,
            _alive: alive,
        })
    }
}

impl StepInstance {
    /// The world this instance implements.
    pub fn kind(&self) -> PluginKind {
        match self.exports {
            Exports::Source(_) => PluginKind::Source,
            Exports::Transform(_) | Exports::TransformV2(_) => PluginKind::Transform,
            Exports::Sink(_) => PluginKind::Sink,
        }
    }

    /// The step's host: its counters, state and log budget.
    pub fn host(&self) -> &StepHost {
        &self.store.data().step
    }

    /// The high-water mark of the instance's linear memory so far, bytes.
    pub fn memory_peak(&self) -> u64 {
        self.store.data().memory.peak_bytes as u64
    }

    /// Fuel burnt so far, when metered.
    pub fn fuel_used(&self) -> Option<u64> {
        let left = self.store.get_fuel().ok()?;
        Some(self.limits.fuel.unwrap_or(u64::MAX) - left)
    }

    /// Starts a call: refuses if an earlier trap poisoned the instance, and arms the deadline.
    fn begin(&mut self) -> Result<(), StepError> {
        if let Some(e) = &self.poisoned {
            return Err(e.clone());
        }
        self.store.data_mut().deadline = Instant::now() + self.limits.timeout();
        self.store.set_epoch_deadline(1);
        Ok(())
    }

    fn watchdog(&self) -> Duration {
        self.limits.timeout() + WATCHDOG_GRACE
    }

    /// Ends a call: names a trap or a timeout (and poisons the instance), or unwraps the
    /// plugin's own result.
    fn settle<T>(
        &mut self,
        res: Result<wasmtime::Result<Result<T, PluginError>>, tokio::time::error::Elapsed>,
    ) -> Result<T, StepError> {
        let err = match res {
            Ok(Ok(Ok(v))) => return Ok(v),
            Ok(Ok(Err(plugin))) => return Err(plugin.into()),
            Ok(Err(trap)) => {
                let printed = self.store.data().output.take();
                StepError::from_trap(trap, &self.limits, &printed)
            }
            Err(_) => StepError::Timeout {
                timeout_ms: self.limits.timeout_ms,
            },
        };
        self.poisoned = Some(err.clone());
        Err(err)
    }

    fn check_output<'a>(&self, records: impl Iterator<Item = &'a Record>) -> Result<(), StepError> {
        let bytes: u64 = records.map(record_bytes).sum();
        if bytes > self.limits.max_output_bytes {
            return Err(StepError::OutputTooLarge {
                limit: self.limits.max_output_bytes,
                bytes: Some(bytes),
            });
        }
        Ok(())
    }

    fn wrong_kind(&self, call: &str) -> StepError {
        StepError::Instantiate(format!("`{call}` called on a {} plugin", self.kind()))
    }

    /// Calls `describe`.
    pub async fn describe(&mut self) -> Result<Metadata, StepError> {
        self.begin()?;
        let fut_timeout = self.watchdog();
        let store = &mut self.store;
        let res = match &self.exports {
            Exports::Source(p) => {
                tokio::time::timeout(
                    fut_timeout,
                    p.autoflow_plugin0_1_0_source().call_describe(store),
                )
                .await
            }
            Exports::Transform(p) => {
                tokio::time::timeout(
                    fut_timeout,
                    p.autoflow_plugin0_1_0_transform().call_describe(store),
                )
                .await
            }
            Exports::TransformV2(p) => {
                tokio::time::timeout(
                    fut_timeout,
                    p.autoflow_plugin0_2_0_transform().call_describe(store),
                )
                .await
            }
            Exports::Sink(p) => {
                tokio::time::timeout(
                    fut_timeout,
                    p.autoflow_plugin0_1_0_sink().call_describe(store),
                )
                .await
            }
        };
        self.settle(res.map(|r| r.map(Ok)))
    }

    /// Opens the plugin with its config (JSON text); `cursor` is passed to sources only.
    pub async fn open(&mut self, config: &str, cursor: Option<&str>) -> Result<(), StepError> {
        self.begin()?;
        let fut_timeout = self.watchdog();
        let store = &mut self.store;
        let res = match &self.exports {
            Exports::Source(p) => {
                let call = p
                    .autoflow_plugin0_1_0_source()
                    .call_open(store, config, cursor);
                tokio::time::timeout(fut_timeout, call).await
            }
            Exports::Transform(p) => {
                let call = p.autoflow_plugin0_1_0_transform().call_open(store, config);
                tokio::time::timeout(fut_timeout, call).await
            }
            Exports::TransformV2(p) => {
                let call = p.autoflow_plugin0_2_0_transform().call_open(store, config);
                tokio::time::timeout(fut_timeout, call).await
            }
            Exports::Sink(p) => {
                tokio::time::timeout(
                    fut_timeout,
                    p.autoflow_plugin0_1_0_sink().call_open(store, config),
                )
                .await
            }
        };
        self.settle(res)
    }

    /// A source's `next`: up to `max` records, `None` at the end.
    pub async fn next(&mut self, max: u32) -> Result<Option<Batch>, StepError> {
        self.begin()?;
        let Exports::Source(p) = &self.exports else {
            return Err(self.wrong_kind("next"));
        };
        let call = p
            .autoflow_plugin0_1_0_source()
            .call_next(&mut self.store, max);
        let res = tokio::time::timeout(self.limits.timeout() + WATCHDOG_GRACE, call).await;
        let batch = self.settle(res)?;
        if let Some(b) = &batch {
            self.check_output(b.records.iter())?;
        }
        Ok(batch)
    }

    /// A transform's `process`; a 0.1.0 transform's records all go to the default output.
    pub async fn process(&mut self, records: &[Record]) -> Result<Processed, StepError> {
        self.begin()?;
        let limit = self.watchdog();
        let res = match &self.exports {
            Exports::Transform(p) => {
                let call = p
                    .autoflow_plugin0_1_0_transform()
                    .call_process(&mut self.store, records);
                tokio::time::timeout(limit, call)
                    .await
                    .map(|r| r.map(|r| r.map(Processed::from)))
            }
            Exports::TransformV2(p) => {
                let call = p
                    .autoflow_plugin0_2_0_transform()
                    .call_process(&mut self.store, records);
                tokio::time::timeout(limit, call).await
            }
            _ => return Err(self.wrong_kind("process")),
        };
        let processed = self.settle(res)?;
        self.check_processed(&processed)?;
        Ok(processed)
    }

    /// A transform's `finish`, after its last batch: what it held back. A 0.1.0 transform
    /// holds nothing back (`None`, no call).
    pub async fn finish(&mut self) -> Result<Option<Processed>, StepError> {
        self.begin()?;
        let limit = self.watchdog();
        let res = match &self.exports {
            Exports::Transform(_) => return Ok(None),
            Exports::TransformV2(p) => {
                let call = p
                    .autoflow_plugin0_2_0_transform()
                    .call_finish(&mut self.store);
                tokio::time::timeout(limit, call).await
            }
            _ => return Err(self.wrong_kind("finish")),
        };
        let processed = self.settle(res)?;
        if !processed.rejected.is_empty() {
            return Err(StepError::Fatal(format!(
                "finish rejected {} records: there is no batch for an index to point into",
                processed.rejected.len()
            )));
        }
        self.check_processed(&processed)?;
        Ok(Some(processed))
    }

    /// A transform's named outputs with `config` (JSON text), beside the default one; none for
    /// a 0.1.0 transform, a source or a sink.
    pub async fn outputs(&mut self, config: &str) -> Result<Vec<String>, StepError> {
        self.begin()?;
        let limit = self.watchdog();
        let Exports::TransformV2(p) = &self.exports else {
            return Ok(Vec::new());
        };
        let call = p
            .autoflow_plugin0_2_0_transform()
            .call_outputs(&mut self.store, config);
        let res = tokio::time::timeout(limit, call).await;
        self.settle(res)
    }

    /// Checks a transform's result against the output cap: every output's records together.
    fn check_processed(&self, processed: &Processed) -> Result<(), StepError> {
        let routed = processed.routed.iter().flat_map(|r| r.records.iter());
        self.check_output(processed.records.iter().chain(routed))
    }

    /// A sink's `write`.
    pub async fn write(&mut self, records: &[Record]) -> Result<(), StepError> {
        self.begin()?;
        let Exports::Sink(p) = &self.exports else {
            return Err(self.wrong_kind("write"));
        };
        let call = p
            .autoflow_plugin0_1_0_sink()
            .call_write(&mut self.store, records);
        let res = tokio::time::timeout(self.limits.timeout() + WATCHDOG_GRACE, call).await;
        self.settle(res)
    }

    /// A sink's `flush`.
    pub async fn flush(&mut self) -> Result<(), StepError> {
        self.begin()?;
        let Exports::Sink(p) = &self.exports else {
            return Err(self.wrong_kind("flush"));
        };
        let call = p.autoflow_plugin0_1_0_sink().call_flush(&mut self.store);
        let res = tokio::time::timeout(self.limits.timeout() + WATCHDOG_GRACE, call).await;
        self.settle(res)
    }

    /// Takes the time the instance spent suspended at epoch yields (other tasks running) since
    /// the last take: a call's wall time minus this is the guest's own time.
    pub fn take_suspended(&self) -> Duration {
        Duration::from_nanos(
            self.store
                .data()
                .suspended_ns
                .swap(0, std::sync::atomic::Ordering::Relaxed),
        )
    }

    /// Takes what the guest printed since the last call.
    pub fn take_output(&self) -> String {
        self.store.data().output.take()
    }
}

/// Bytes wasmtime lets one call copy out of the guest: the output cap, with room for the
/// records' own layout, so that a return far over the cap is stopped while being copied.
fn hostcall_fuel(limits: &StepLimits) -> usize {
    usize::try_from(
        limits
            .max_output_bytes
            .saturating_mul(2)
            .saturating_add(16 << 20),
    )
    .unwrap_or(usize::MAX)
}

/// Bytes a record occupies: key, value and headers.
pub fn record_bytes(r: &Record) -> u64 {
    let headers: usize = r.headers.iter().map(|(k, v)| k.len() + v.len()).sum();
    (r.value.len() + r.key.as_ref().map_or(0, Vec::len) + headers) as u64
}
