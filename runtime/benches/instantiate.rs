//! Bench: a fresh instance of the built-in `json-filter` plus one call, per iteration.
//!
//! Autoflow's `Engine::instantiate` (pooling allocator, and on demand) against "raw wasmtime":
//! the same component on the same `wasmtime::Engine` (same configuration, same pool), with a bare
//! `Linker` holding WASI p2 and no-op `autoflow:plugin/host` imports, a fresh default `WasiCtx`
//! and `Store` per iteration, called through the same generated bindings. The ratio autoflow/raw
//! is what Autoflow's sandbox setup adds per instance.
//!
//! One iteration = build the sandbox, instantiate, make the call(s), drop the instance (which
//! returns its slot to the pool). Every cell is measured in blocks of `BLOCK` iterations, and
//! the blocks of all cells are interleaved round-robin, so that a slow spell of the machine hits
//! every cell alike. Run: `cargo bench -p autoflow --bench instantiate`.
//! Env: `AUTOFLOW_BENCH_ITERS` (measured iterations per cell, default 20000).
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use autoflow::engine::bindings::source::autoflow::plugin0_1_0::{
    host as wit_host, types as wit_types,
};
use autoflow::engine::bindings::transform_v2::TransformPluginPre;
use autoflow::engine::bindings::{Level, Record};
use autoflow::engine::{Capture, Engine, EngineConfig, Plugin, Sandbox, StepHost, StepLimits};
use autoflow::registry::{builtin, cache::digest_of};
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Enabled, InstanceAllocationStrategy, PoolingAllocationConfig, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

mod common;
use common::{cpus, loadavg, minor_faults, quantile, sorted};

/// The issue's goal: median of a fresh pooled instance plus one call.
const GOAL_US: f64 = 10.0;
const FILTER_CONFIG: &str = r#"{"field":"status","equals":"paid"}"#;
/// Untimed iterations of every cell before measuring.
const WARMUP: usize = 2_000;
/// Iterations per block; blocks of all cells are interleaved.
const BLOCK: usize = 50;
/// Untimed calls on a warm instance after instantiating it.
const WARM_CALLS: usize = 10;
/// Batches of the no-wasm breakdown.
const REPS: usize = 5;

/// Store data of the raw variant: WASI and nothing else.
struct Raw {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for Raw {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl wit_types::Host for Raw {}

impl wit_host::Host for Raw {
    fn log(&mut self, _level: Level, _message: String) -> wasmtime::Result<()> {
        Ok(())
    }
    fn count(&mut self, _name: String, _delta: u64) -> wasmtime::Result<()> {
        Ok(())
    }
    fn state_get(&mut self, _key: String) -> wasmtime::Result<Option<Vec<u8>>> {
        Ok(None)
    }
    fn state_set(&mut self, _key: String, _value: Vec<u8>) -> wasmtime::Result<()> {
        Ok(())
    }
    fn secret(&mut self, _name: String) -> wasmtime::Result<Option<String>> {
        Ok(None)
    }
}

/// What each iteration does after instantiating.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Call {
    None,
    Describe,
    OpenProcess,
}

impl Call {
    fn label(self) -> &'static str {
        match self {
            Call::None => "instantiate only",
            Call::Describe => "instantiate + describe()",
            Call::OpenProcess => "instantiate + open() + process(1 rec)",
        }
    }
}

/// One engine (pooling or on demand) with json-filter loaded both ways.
struct Setup {
    engine: Engine,
    plugin: Arc<Plugin>,
    raw: RawSetup,
}

/// json-filter on a bare wasmtime engine: WASI p2 and no-op host imports.
struct RawSetup {
    engine: wasmtime::Engine,
    pre: TransformPluginPre<Raw>,
}

impl RawSetup {
    fn new(engine: &wasmtime::Engine, bytes: &[u8]) -> Result<Self> {
        let mut linker: Linker<Raw> = Linker::new(engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wit_host::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
        wit_types::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
        let component = Component::new(engine, bytes)?;
        let pre = TransformPluginPre::new(linker.instantiate_pre(&component)?)?;
        Ok(Self {
            engine: engine.clone(),
            pre,
        })
    }
}

impl Setup {
    fn new(pooling: bool, bytes: &[u8]) -> Result<Self> {
        let engine = Engine::new(EngineConfig {
            pooling,
            ..EngineConfig::default()
        })?;
        let plugin = engine.load(&digest_of(bytes), bytes)?;
        let raw = RawSetup::new(engine.wasmtime(), bytes)?;
        Ok(Self {
            engine,
            plugin,
            raw,
        })
    }

    /// One Autoflow iteration.
    async fn autoflow(&self, call: Call, record: &[Record]) -> Result<()> {
        let sandbox = Sandbox {
            limits: StepLimits::default(),
            mounts: vec![],
            host: StepHost::new("bench", Arc::new(|_| {})),
        };
        let mut inst = self.engine.instantiate(&self.plugin, sandbox).await?;
        match call {
            Call::None => {}
            Call::Describe => {
                inst.describe().await?;
            }
            Call::OpenProcess => {
                inst.open(FILTER_CONFIG, None).await?;
                let out = inst.process(record).await?;
                if out.records.len() + out.rejected.len() != 1 {
                    bail!("unexpected process result");
                }
            }
        }
        drop(inst);
        Ok(())
    }
}

impl RawSetup {
    /// One raw-wasmtime iteration.
    async fn fresh(&self, call: Call, record: &[Record]) -> Result<()> {
        let state = Raw {
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
        };
        let mut store = Store::new(&self.engine, state);
        // The shared engine has epoch interruption on; keep the raw store clear of it.
        store.set_epoch_deadline(1 << 40);
        let plugin = self.pre.instantiate_async(&mut store).await?;
        let t = plugin.autoflow_plugin0_2_0_transform();
        match call {
            Call::None => {}
            Call::Describe => {
                t.call_describe(&mut store).await?;
            }
            Call::OpenProcess => {
                t.call_open(&mut store, FILTER_CONFIG)
                    .await?
                    .map_err(|e| anyhow!("open: {e:?}"))?;
                let out = t
                    .call_process(&mut store, record)
                    .await?
                    .map_err(|e| anyhow!("process: {e:?}"))?;
                if out.records.len() + out.rejected.len() != 1 {
                    bail!("unexpected process result");
                }
            }
        }
        drop(store);
        Ok(())
    }
}

/// Per-iteration timings of one cell, in µs, and the minor page faults it took.
#[derive(Default)]
struct Samples {
    us: Vec<f64>,
    faults: u64,
}

impl Samples {
    /// Times `n` iterations of `f`.
    async fn run<F, Fut>(&mut self, n: usize, mut f: F) -> Result<()>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<()>>,
    {
        let faults = minor_faults();
        for _ in 0..n {
            let t = Instant::now();
            f().await?;
            self.us.push(t.elapsed().as_secs_f64() * 1e6);
        }
        self.add_faults(faults);
        Ok(())
    }

    fn add_faults(&mut self, before: Option<u64>) {
        if let (Some(a), Some(b)) = (before, minor_faults()) {
            self.faults += b.saturating_sub(a);
        }
    }

    fn stats(&self) -> (f64, f64) {
        let s = sorted(self.us.clone());
        (quantile(&s, 0.5), quantile(&s, 0.99))
    }

    fn cell(&self) -> String {
        let (m, p) = self.stats();
        format!("{m:.1} / {p:.1}")
    }

    fn faults_per_iter(&self) -> f64 {
        self.faults as f64 / self.us.len().max(1) as f64
    }
}

async fn warm<F, Fut>(mut f: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<()>>,
{
    for _ in 0..WARMUP {
        f().await?;
    }
    Ok(())
}

impl Setup {
    /// `n` timed calls on one Autoflow instance made for them (after `WARM_CALLS` untimed).
    async fn autoflow_warm(
        &self,
        call: Call,
        record: &[Record],
        n: usize,
        out: &mut Samples,
    ) -> Result<()> {
        let sandbox = Sandbox {
            limits: StepLimits::default(),
            mounts: vec![],
            host: StepHost::new("bench", Arc::new(|_| {})),
        };
        let mut inst = self.engine.instantiate(&self.plugin, sandbox).await?;
        let mut faults = None;
        for i in 0..WARM_CALLS + n {
            if i == WARM_CALLS {
                faults = minor_faults();
            }
            let t = Instant::now();
            match call {
                Call::None => {}
                Call::Describe => {
                    inst.describe().await?;
                }
                Call::OpenProcess => {
                    inst.open(FILTER_CONFIG, None).await?;
                    inst.process(record).await?;
                }
            }
            if i >= WARM_CALLS {
                out.us.push(t.elapsed().as_secs_f64() * 1e6);
            }
        }
        out.add_faults(faults);
        Ok(())
    }
}

impl RawSetup {
    /// The same on one raw-wasmtime instance.
    async fn warm(&self, call: Call, record: &[Record], n: usize, out: &mut Samples) -> Result<()> {
        let state = Raw {
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
        };
        let mut store = Store::new(&self.engine, state);
        store.set_epoch_deadline(1 << 40);
        let plugin = self.pre.instantiate_async(&mut store).await?;
        let t = plugin.autoflow_plugin0_2_0_transform();
        let mut faults = None;
        for i in 0..WARM_CALLS + n {
            if i == WARM_CALLS {
                faults = minor_faults();
            }
            let started = Instant::now();
            match call {
                Call::None => {}
                Call::Describe => {
                    t.call_describe(&mut store).await?;
                }
                Call::OpenProcess => {
                    t.call_open(&mut store, FILTER_CONFIG)
                        .await?
                        .map_err(|e| anyhow!("open: {e:?}"))?;
                    t.call_process(&mut store, record)
                        .await?
                        .map_err(|e| anyhow!("process: {e:?}"))?;
                }
            }
            if i >= WARM_CALLS {
                out.us.push(started.elapsed().as_secs_f64() * 1e6);
            }
        }
        out.add_faults(faults);
        Ok(())
    }
}

/// Times `f` alone (no wasm), for the breakdown; µs per call, median of `REPS` batches.
fn micro(n: usize, mut f: impl FnMut()) -> f64 {
    let mut per_rep = Vec::new();
    for _ in 0..n / 10 {
        f();
    }
    for _ in 0..REPS {
        let t = Instant::now();
        for _ in 0..n {
            f();
        }
        per_rep.push(t.elapsed().as_secs_f64() * 1e6 / n as f64);
    }
    common::median(&per_rep)
}

/// One cell of the main tables: Autoflow against raw wasmtime on the same engine.
struct Cell {
    setup: usize,
    warm: bool,
    call: Call,
    autoflow: Samples,
    raw: Samples,
}

/// One cell of the experiments: raw wasmtime on a differently configured pool.
struct ExpCell {
    variant: usize,
    call: Call,
    samples: Samples,
}

/// An engine of the experiments, with its epoch ticker (like Autoflow's, so the process has
/// the same threads).
struct Variant {
    label: &'static str,
    raw: RawSetup,
    stop: Arc<AtomicBool>,
}

impl Drop for Variant {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn main() -> Result<()> {
    let iters: usize = match std::env::var("AUTOFLOW_BENCH_ITERS") {
        Ok(v) => v.parse().context("AUTOFLOW_BENCH_ITERS")?,
        Err(_) => 20_000,
    };
    let blocks = iters.div_ceil(BLOCK);
    let filter = builtin::all()
        .find(|b| b.name == "json-filter")
        .ok_or_else(|| anyhow!("no built-in json-filter"))?;
    let mut value = String::new();
    generator::write_order(&mut value, 1, 0);
    let record = [Record {
        key: None,
        value: value.into_bytes(),
        headers: vec![],
        timestamp: None,
    }];
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let fresh_calls = [Call::None, Call::Describe, Call::OpenProcess];
    let warm_calls = [Call::Describe, Call::OpenProcess];
    let exp_calls = [Call::None, Call::Describe, Call::OpenProcess];

    println!(
        "# instantiate: fresh instance of built-in json-filter ({} bytes) + one call",
        filter.bytes.len()
    );
    println!(
        "# {} measured iterations per cell in blocks of {BLOCK} interleaved across cells, {WARMUP} warm-up; tokio current_thread; {} CPUs; load average {} at start",
        blocks * BLOCK,
        cpus(),
        loadavg()
    );

    let setups = [
        Setup::new(true, filter.bytes)?,
        Setup::new(false, filter.bytes)?,
    ];
    let mut cells: Vec<Cell> = Vec::new();
    for setup in 0..setups.len() {
        for &call in &fresh_calls {
            cells.push(Cell {
                setup,
                warm: false,
                call,
                autoflow: Samples::default(),
                raw: Samples::default(),
            });
        }
        for &call in &warm_calls {
            cells.push(Cell {
                setup,
                warm: true,
                call,
                autoflow: Samples::default(),
                raw: Samples::default(),
            });
        }
    }
    let variants = variants(filter.bytes)?;
    let mut exp: Vec<ExpCell> = (0..variants.len())
        .flat_map(|variant| {
            exp_calls.iter().map(move |&call| ExpCell {
                variant,
                call,
                samples: Samples::default(),
            })
        })
        .collect();

    rt.block_on(async {
        for c in cells.iter().filter(|c| !c.warm) {
            let s = &setups[c.setup];
            warm(|| s.autoflow(c.call, &record)).await?;
            warm(|| s.raw.fresh(c.call, &record)).await?;
        }
        for c in &exp {
            let v = &variants[c.variant];
            warm(|| v.raw.fresh(c.call, &record)).await?;
        }
        for _ in 0..blocks {
            for c in &mut cells {
                let (s, call) = (&setups[c.setup], c.call);
                if c.warm {
                    s.autoflow_warm(call, &record, BLOCK, &mut c.autoflow)
                        .await?;
                    s.raw.warm(call, &record, BLOCK, &mut c.raw).await?;
                } else {
                    c.autoflow.run(BLOCK, || s.autoflow(call, &record)).await?;
                    c.raw.run(BLOCK, || s.raw.fresh(call, &record)).await?;
                }
            }
            for c in &mut exp {
                let (v, call) = (&variants[c.variant], c.call);
                c.samples.run(BLOCK, || v.raw.fresh(call, &record)).await?;
            }
        }
        Ok::<_, anyhow::Error>(())
    })?;
    let breakdown = rt.block_on(async { breakdown_of(&setups[0]) });
    let labels: Vec<&str> = variants.iter().map(|v| v.label).collect();
    drop(variants);

    let find = |setup: usize, warm: bool, call: Call| {
        cells
            .iter()
            .find(|c| c.setup == setup && c.warm == warm && c.call == call)
    };
    let header = |first: &str| {
        println!(
            "| {:<40} | {:>18} | {:>18} | {:>6} | {:>18} | {:>18} | {:>6} |",
            first,
            "autoflow pooling",
            "raw pooling",
            "ratio",
            "autoflow on-demand",
            "raw on-demand",
            "ratio"
        );
        println!(
            "|{:-<42}|{:->20}|{:->20}|{:->8}|{:->20}|{:->20}|{:->8}|",
            "", "", "", "", "", "", ""
        );
    };
    let mut goal_median = f64::NAN;
    for (warm, title, calls) in [
        (
            false,
            "fresh instance + call(s), then drop: median / p99 µs per iteration",
            &fresh_calls[..],
        ),
        (
            true,
            "call(s) on an already-instantiated instance: median / p99 µs per iteration",
            &warm_calls[..],
        ),
    ] {
        println!();
        println!("{title}");
        header(if warm { "warm instance" } else { "iteration" });
        for &call in calls {
            let label = if warm {
                call.label().trim_start_matches("instantiate + ")
            } else {
                call.label()
            };
            let mut line = format!("| {label:<40} |");
            for setup in 0..setups.len() {
                let Some(c) = find(setup, warm, call) else {
                    continue;
                };
                let (am, _) = c.autoflow.stats();
                let (rm, _) = c.raw.stats();
                if setup == 0 && !warm && call == Call::Describe {
                    goal_median = am;
                }
                line.push_str(&format!(
                    " {:>18} | {:>18} | {:>5.2}x |",
                    c.autoflow.cell(),
                    c.raw.cell(),
                    am / rm
                ));
            }
            println!("{line}");
        }
    }
    println!();
    println!("minor page faults per iteration (whole process)");
    header("iteration");
    for (warm, calls) in [(false, &fresh_calls[..]), (true, &warm_calls[..])] {
        for &call in calls {
            let label = if warm {
                format!(
                    "warm: {}",
                    call.label().trim_start_matches("instantiate + ")
                )
            } else {
                call.label().to_string()
            };
            let mut line = format!("| {label:<40} |");
            for setup in 0..setups.len() {
                let Some(c) = find(setup, warm, call) else {
                    continue;
                };
                line.push_str(&format!(
                    " {:>18.1} | {:>18.1} | {:>6} |",
                    c.autoflow.faults_per_iter(),
                    c.raw.faults_per_iter(),
                    ""
                ));
            }
            println!("{line}");
        }
    }

    println!();
    println!(
        "experiments: raw wasmtime, fresh instance (+ call) then drop, on a pooling engine like Autoflow's with one change: median / p99 µs (minor faults per iteration)"
    );
    println!(
        "| {:<56} | {:>24} | {:>24} | {:>24} |",
        "pool config", "instantiate only", "+ describe()", "+ open() + process()"
    );
    println!("|{:-<58}|{:->26}|{:->26}|{:->26}|", "", "", "", "");
    for label in VARIANTS {
        let i = labels.iter().position(|l| *l == label);
        let mut line = format!("| {label:<56} |");
        for &call in &exp_calls {
            let text = match exp.iter().find(|c| Some(c.variant) == i && c.call == call) {
                Some(c) => format!("{} ({:.1})", c.samples.cell(), c.samples.faults_per_iter()),
                None => "unavailable here".into(),
            };
            line.push_str(&format!(" {text:>24} |"));
        }
        println!("{line}");
    }

    println!();
    println!("breakdown (pooling engine, no wasm; µs per operation, median of {REPS} batches):");
    for (what, us) in &breakdown {
        println!("  {what:<64} {us:>8.2}");
    }
    println!();
    println!(
        "goal: fresh pooled instance + one call (describe) <= {GOAL_US} µs median; measured {goal_median:.1} µs -> {}",
        if goal_median <= GOAL_US {
            "MET"
        } else {
            "NOT MET"
        }
    );
    println!("load average at end: {}", loadavg());
    Ok(())
}

/// Autoflow's pooling configuration for `EngineConfig::default()` (a copy of the private
/// `engine::wasmtime_config` as of commit 6fc1aee), with `tweak` applied to the pool.
fn pooled_engine(tweak: &dyn Fn(&mut PoolingAllocationConfig)) -> Result<wasmtime::Engine> {
    let d = EngineConfig::default();
    let n = d.max_instances;
    let mut c = wasmtime::Config::new();
    c.wasm_component_model(true);
    c.epoch_interruption(true);
    c.consume_fuel(false);
    c.max_wasm_stack(1 << 20);
    c.async_stack_size(2 << 20);
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(n)
        .total_core_instances(n * 16)
        .total_memories(n * 2)
        .total_tables(n * 4)
        .total_stacks(n)
        .max_core_instances_per_component(64)
        .max_memories_per_component(8)
        .max_tables_per_component(16)
        .max_component_instance_size(1 << 20)
        .max_core_instance_size(4 << 20)
        .table_elements(1 << 20)
        .max_memory_size(usize::try_from(d.max_memory_mb << 20)?)
        .linear_memory_keep_resident(2 << 20)
        .pagemap_scan(Enabled::Auto)
        .table_keep_resident(64 << 10);
    tweak(&mut pool);
    c.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Ok(wasmtime::Engine::new(&c)?)
}

/// The pool configurations of the experiments (raw wasmtime on pooling engines that differ from
/// Autoflow's in one setting): Autoflow's, then one change each. They show what resetting a
/// memory slot between instances costs the next instance.
const VARIANTS: [&str; 4] = [
    "as Autoflow (keep_resident 2 MiB, pagemap_scan Auto)",
    "pagemap_scan(No): memset the 2 MiB kept resident",
    "keep_resident 64 KiB, madvise the rest (before 6fc1aee)",
    "keep_resident 64 KiB + decommit_batch_size(64)",
];

fn tweak(i: usize, p: &mut PoolingAllocationConfig) {
    match i {
        1 => {
            p.pagemap_scan(Enabled::No);
        }
        2 => {
            p.linear_memory_keep_resident(64 << 10)
                .pagemap_scan(Enabled::No);
        }
        3 => {
            p.linear_memory_keep_resident(64 << 10)
                .pagemap_scan(Enabled::No)
                .decommit_batch_size(64);
        }
        _ => {}
    }
}

/// The experiments' engines; a configuration the system refuses is left out.
fn variants(bytes: &[u8]) -> Result<Vec<Variant>> {
    let mut out = Vec::new();
    for (i, label) in VARIANTS.iter().enumerate() {
        let Ok(engine) = pooled_engine(&|p| tweak(i, p)) else {
            continue;
        };
        let stop = Arc::new(AtomicBool::new(false));
        let (e, s) = (engine.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(2));
                e.increment_epoch();
            }
        });
        out.push(Variant {
            label,
            raw: RawSetup::new(&engine, bytes)?,
            stop,
        });
    }
    Ok(out)
}

/// Costs of the pieces Autoflow's `instantiate` builds around the instance, measured alone.
fn breakdown_of(setup: &Setup) -> Vec<(String, f64)> {
    let wt = setup.engine.wasmtime();
    let n = 20_000;
    let mut out = Vec::new();
    out.push((
        "WasiCtx::builder().build() (raw's WASI context)".to_string(),
        micro(n, || drop(std::hint::black_box(WasiCtx::builder().build()))),
    ));
    out.push((
        "WasiCtxBuilder as Autoflow configures it (+2 Capture streams)".to_string(),
        micro(n, || {
            let output = Capture::new(4096);
            let mut b = WasiCtxBuilder::new();
            b.stdout(output.clone())
                .stderr(output)
                .allow_tcp(false)
                .allow_udp(false)
                .allow_ip_name_lookup(false);
            drop(std::hint::black_box(b.build()));
        }),
    ));
    out.push((
        "Store::new(engine, ()) + drop".to_string(),
        micro(n, || drop(std::hint::black_box(Store::new(wt, ())))),
    ));
    out.push((
        "StepHost::new(\"bench\", Arc::new(|_| {})) + drop".to_string(),
        micro(n, || {
            drop(std::hint::black_box(StepHost::new(
                "bench",
                Arc::new(|_| {}),
            )))
        }),
    ));
    out.push((
        "tokio::time::timeout(30 s, <ready future>).await (poll once)".to_string(),
        micro(n, || {
            let fut = tokio::time::timeout(Duration::from_secs(30), std::future::ready(1u8));
            let waker = std::task::Waker::noop();
            let mut cx = std::task::Context::from_waker(waker);
            let mut fut = std::pin::pin!(fut);
            let _ = std::hint::black_box(fut.as_mut().poll(&mut cx));
        }),
    ));
    out.push((
        "Instant::now()".to_string(),
        micro(n * 10, || {
            std::hint::black_box(Instant::now());
        }),
    ));
    out
}
