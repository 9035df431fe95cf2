//! The wasmtime engine: component model, pooling allocator, epoch ticker, optional fuel, the
//! linker with WASI, outbound HTTP, the `autoflow:plugin/host` imports and each capability of
//! [`crate::integrations`] (projected from a step's [`HostState`]), and loading of plugins.
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, InstanceAllocationStrategy, PoolingAllocationConfig};

mod capture;
mod error;
mod host;
mod http;
mod instance;
mod limits;
mod plugin;
mod state;

/// The plugin worlds' bindings, generated once in [`crate::world`].
pub use crate::world as bindings;
pub use capture::Capture;
pub use error::StepError;
pub use host::{HostState, LogLevel, LogLine, LogSink, StepHost};
pub use http::MAX_HTTP_BODY_BYTES;
pub use instance::{Mount, Sandbox, StepInstance, record_bytes as instance_record_bytes};
pub use limits::{LimitHit, StepLimits};
pub use plugin::{CONTRACT_VERSION, CONTRACT_VERSIONS, Plugin, PluginKind};
pub use state::{MAX_STATE_BYTES, StateFull, StepState};

use crate::integrations::{Integrations, messaging, sql};
use crate::registry::cache::{CompiledCache, Origin};
use crate::telemetry;

/// Errors of building the engine or loading a plugin.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// wasmtime refused the engine configuration.
    #[error("engine configuration: {0}")]
    Config(String),
    /// The bytes are not a loadable component, or not one of ours.
    #[error("{0}")]
    Invalid(String),
    /// The compiled-artifact cache failed.
    #[error("compiled cache: {0}")]
    Cache(String),
}

/// `Result` with the engine [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How the engine is built.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Use the pooling allocator (fast instantiation); otherwise allocate on demand.
    pub pooling: bool,
    /// Instrument code with fuel, so steps can have a `fuel` limit.
    pub fuel: bool,
    /// Concurrent instances the pool holds.
    pub max_instances: u32,
    /// The largest `memory_mb` any step may have.
    pub max_memory_mb: u64,
    /// Period of the epoch ticker that enforces wall-clock deadlines.
    pub epoch_tick: Duration,
    /// Where compiled components are cached; `None` disables the disk cache.
    pub cache_dir: Option<PathBuf>,
    /// The limits a plugin's `describe` runs under (`--describe-timeout-ms`).
    pub describe_limits: StepLimits,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            pooling: true,
            fuel: false,
            max_instances: 256,
            max_memory_mb: 4096,
            epoch_tick: Duration::from_millis(2),
            cache_dir: None,
            describe_limits: StepLimits::DESCRIBE,
        }
    }
}

/// The shared engine; cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    engine: wasmtime::Engine,
    linker: Linker<HostState>,
    config: EngineConfig,
    cache: Option<CompiledCache>,
    loaded: Mutex<HashMap<String, Arc<Plugin>>>,
    integrations: Integrations,
    ticker_stop: Arc<AtomicBool>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
        if self.config.pooling {
            telemetry::engine_instance_slots(-f64::from(self.config.max_instances));
        }
    }
}

impl Engine {
    /// Builds the engine, its linker and its epoch ticker, with clients of its own under the
    /// default egress policy (no non-public address allowed).
    pub fn new(config: EngineConfig) -> Result<Self> {
        Self::with_integrations(config, Integrations::new(crate::egress::Policy::default()))
    }

    /// [`Engine::new`] whose steps connect through `integrations` (the process's clients) and
    /// reach outbound HTTP under the same egress policy ([`Integrations::egress`]).
    pub fn with_integrations(config: EngineConfig, integrations: Integrations) -> Result<Self> {
        let engine = wasmtime::Engine::new(&wasmtime_config(&config)?)
            .map_err(|e| Error::Config(format!("{e:#}")))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| Error::Config(format!("{e:#}")))?;
        // Outbound HTTP: every request goes through the step's egress checks (http.rs).
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
            .map_err(|e| Error::Config(format!("{e:#}")))?;
        bindings::source::autoflow::plugin0_1_0::host::add_to_linker::<_, HasSelf<_>>(
            &mut linker,
            |s| s,
        )
        .map_err(|e| Error::Config(format!("{e:#}")))?;
        bindings::source::autoflow::plugin0_1_0::types::add_to_linker::<_, HasSelf<_>>(
            &mut linker,
            |s| s,
        )
        .map_err(|e| Error::Config(format!("{e:#}")))?;
        // Each capability's imports on its own state in the step's store.
        sql::add_to_linker(&mut linker, |s: &mut HostState| &mut s.sql)
            .map_err(|e| Error::Config(format!("{e:#}")))?;
        messaging::add_to_linker(&mut linker, |s: &mut HostState| &mut s.messaging)
            .map_err(|e| Error::Config(format!("{e:#}")))?;
        let cache = match &config.cache_dir {
            Some(dir) => {
                Some(CompiledCache::open(dir, &engine).map_err(|e| Error::Cache(e.to_string()))?)
            }
            None => None,
        };
        let ticker_stop = Arc::new(AtomicBool::new(false));
        spawn_ticker(engine.clone(), config.epoch_tick, ticker_stop.clone());
        if config.pooling {
            telemetry::engine_instance_slots(f64::from(config.max_instances));
        }
        Ok(Self {
            inner: Arc::new(Inner {
                engine,
                linker,
                config,
                cache,
                loaded: Mutex::new(HashMap::new()),
                integrations,
                ticker_stop,
            }),
        })
    }

    /// The wasmtime engine.
    pub fn wasmtime(&self) -> &wasmtime::Engine {
        &self.inner.engine
    }

    /// The clients of the connections plugins use (shared by every run on this engine).
    pub fn integrations(&self) -> &Integrations {
        &self.inner.integrations
    }

    /// How this engine was built.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// Loads the component `bytes` whose sha256 is `digest` (hex): from memory if loaded
    /// before, else from the compiled cache, else compiled (and cached). Checks that it exports
    /// exactly one plugin world and imports nothing the host lacks.
    pub fn load(&self, digest: &str, bytes: &[u8]) -> Result<Arc<Plugin>> {
        if let Some(p) = self.lock_loaded().get(digest) {
            telemetry::compiled_cache("memory");
            return Ok(p.clone());
        }
        let started = std::time::Instant::now();
        let (component, origin) = self.compile(digest, bytes)?;
        let mut plugin = Plugin::new(digest, component, &self.inner.linker, &self.inner.engine)?;
        plugin.origin = origin;
        plugin.load_time = started.elapsed();
        telemetry::compiled_cache(match origin {
            crate::registry::cache::Origin::Cache => "disk",
            crate::registry::cache::Origin::Compiled => "miss",
        });
        tracing::debug!(
            digest,
            ?origin,
            ms = plugin.load_time.as_millis() as u64,
            "plugin loaded"
        );
        let plugin = Arc::new(plugin);
        self.lock_loaded()
            .insert(digest.to_string(), plugin.clone());
        Ok(plugin)
    }

    fn lock_loaded(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Plugin>>> {
        self.inner.loaded.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn compile(&self, digest: &str, bytes: &[u8]) -> Result<(Component, Origin)> {
        let _span = tracing::info_span!("compile", digest, bytes = bytes.len()).entered();
        // Only the binary format: a text (WAT) module would otherwise be compiled, or found in
        // the cache, under the digest of its text.
        if !bytes.starts_with(b"\0asm") {
            return Err(Error::Invalid(
                "not a binary WebAssembly component (no \\0asm header)".into(),
            ));
        }
        match &self.inner.cache {
            Some(cache) => cache
                .load_or_compile(&self.inner.engine, digest, bytes)
                .map_err(|e| Error::Invalid(e.to_string())),
            None => Component::from_binary(&self.inner.engine, bytes)
                .map(|c| (c, Origin::Compiled))
                .map_err(|e| Error::Invalid(format!("not a loadable component: {e:#}"))),
        }
    }
}

fn wasmtime_config(config: &EngineConfig) -> Result<Config> {
    let mut c = Config::new();
    c.wasm_component_model(true);
    c.epoch_interruption(true);
    c.consume_fuel(config.fuel);
    c.max_wasm_stack(1 << 20);
    c.wasm_backtrace_max_frames(std::num::NonZeroUsize::new(BACKTRACE_FRAMES));
    // `AUTOFLOW_WASM_PROFILER=perfmap` writes /tmp/perf-PID.map, so that `perf` names the
    // plugins' compiled functions (for profiling a pipeline; off by default).
    if std::env::var("AUTOFLOW_WASM_PROFILER").as_deref() == Ok("perfmap") {
        c.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    c.async_stack_size(2 << 20);
    if config.pooling {
        let max_memory = usize::try_from(config.max_memory_mb << 20)
            .map_err(|_| Error::Config("max_memory_mb too large".into()))?;
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(config.max_instances)
            .total_core_instances(config.max_instances * 16)
            .total_memories(config.max_instances * 2)
            .total_tables(config.max_instances * 4)
            .total_stacks(config.max_instances)
            .max_core_instances_per_component(64)
            .max_memories_per_component(8)
            .max_tables_per_component(16)
            .max_component_instance_size(1 << 20)
            .max_core_instance_size(4 << 20)
            .table_elements(limits::MAX_TABLE_ELEMENTS)
            .max_memory_size(max_memory)
            // Keep the first 2 MiB of a memory slot resident between instances and reset it
            // with PAGEMAP_SCAN (Linux 6.7+) where available: a fresh instance then takes no
            // page faults (runtime/benches/instantiate.rs measures the difference).
            .linear_memory_keep_resident(2 << 20)
            .pagemap_scan(wasmtime::Enabled::Auto)
            .table_keep_resident(64 << 10);
        c.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    Ok(c)
}

/// Frames of the guest's stack kept with a trap (wasmtime keeps 20 by default): enough to tell
/// unbounded recursion from one out-of-bounds access (see [`StepError`]).
pub const BACKTRACE_FRAMES: usize = 256;

/// Advances the engine's epoch every `tick` until `stop` is set: the clock behind deadlines.
fn spawn_ticker(engine: wasmtime::Engine, tick: Duration, stop: Arc<AtomicBool>) {
    let spawned = std::thread::Builder::new()
        .name("autoflow-epoch".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(tick);
                engine.increment_epoch();
            }
        });
    if let Err(e) = spawned {
        tracing::error!("cannot start the epoch ticker: {e}; deadlines will not be enforced");
    }
}
