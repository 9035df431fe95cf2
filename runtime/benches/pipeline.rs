//! Bench: records/s through generator -> json-filter -> json-map -> file-sink.
//!
//! The wasm pipeline is a hand-built `executor::Plan` of the built-in plugins run by
//! `executor::execute`, at batch sizes 1, 64 and 1024, on a multi-thread tokio runtime (as the
//! `autoflow` binary uses) and on a current-thread one (one core, like the native baseline).
//! The sink is the built-in `file-sink` (JSON Lines) writing into a temp dir mounted rw
//! (`log-sink` cannot be told to log nothing: it calls `host::log` once per record).
//!
//! The native baseline runs the same plugin crates compiled natively (rlibs), in one thread:
//! `Generator::next(1024)`, then `TestHost::transform::<JsonFilter>` and `::<JsonMap>` per batch
//! (which re-open the transform, i.e. re-parse its config, for every batch: ~µs per 1024
//! records), then the same `FileSink` writing to a temp file; and once more with an in-memory
//! `Vec` as the sink.
//!
//! Records/s = generated records / wall time of the whole run (instantiation included). Each
//! wasm run is made right after a native run, and the ratio reported is the median over the
//! repetitions of those pairs' ratios: the machine's speed drifts between runs.
//! Run: `cargo bench -p autoflow --bench pipeline`. Env: `AUTOFLOW_BENCH_RECORDS` (default
//! 1,000,000; batch size 1 is capped at 100,000), `AUTOFLOW_BENCH_REPS` (default 5; every
//! repetition runs every configuration once), `AUTOFLOW_BENCH_BATCHES` (default `1,64,1024`).
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use autoflow::engine::{Engine, EngineConfig, Mount, Plugin, StepLimits};
use autoflow::executor::{self, Outcome, Plan, PlannedStep, RetrySettings, RunReport, RunSinks};
use autoflow::registry::{builtin, cache::digest_of};
use autoflow_plugin_sdk::testing::TestHost;
use autoflow_plugin_sdk::{Sink, Source, parse_config};

mod common;
use common::{cpus, loadavg, process_cpu, thousands};

const SEED: u64 = 42;
/// Keeps `status == "paid"`: about 70% of the generator's orders.
const FILTER: &str = r#"{"field":"status","equals":"paid"}"#;
const MAP: &str = r#"{"select":["id","user","amount","status"],"rename":{"amount":"total"},"set":{"source":"bench"}}"#;
const BATCH_SIZES: [u32; 3] = [1, 64, 1024];
const BATCH1_CAP: u64 = 100_000;
const NATIVE_BATCH: u32 = 1024;
/// The issue's goal: the wasm pipeline at batch 1024 reaches this share of native throughput.
const GOAL_RATIO: f64 = 0.6;

fn generator_config(count: u64) -> String {
    format!(r#"{{"count":{count},"seed":{SEED}}}"#)
}

/// One measured run.
#[derive(Clone, Copy)]
struct Run {
    records: u64,
    written: u64,
    wall: Duration,
    cpu: Option<Duration>,
}

impl Run {
    fn rate(&self) -> f64 {
        self.records as f64 / self.wall.as_secs_f64()
    }
    fn cpu_rate(&self) -> Option<f64> {
        self.cpu
            .filter(|c| !c.is_zero())
            .map(|c| self.records as f64 / c.as_secs_f64())
    }
}

/// Median run by throughput.
fn median_run(runs: &[Run]) -> Result<Run> {
    let mut v = runs.to_vec();
    v.sort_by(|a, b| a.rate().total_cmp(&b.rate()));
    v.get(v.len() / 2)
        .copied()
        .ok_or_else(|| anyhow!("no runs"))
}

fn timed<T>(f: impl FnOnce() -> Result<T>) -> Result<(T, Duration, Option<Duration>)> {
    let cpu0 = process_cpu();
    let t = Instant::now();
    let out = f()?;
    let wall = t.elapsed();
    let cpu = match (cpu0, process_cpu()) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    Ok((out, wall, cpu))
}

struct Plugins {
    generator: Arc<Plugin>,
    filter: Arc<Plugin>,
    map: Arc<Plugin>,
    sink: Arc<Plugin>,
}

fn load(engine: &Engine, name: &str) -> Result<Arc<Plugin>> {
    let b = builtin::all()
        .find(|b| b.name == name)
        .ok_or_else(|| anyhow!("no built-in {name}"))?;
    Ok(engine.load(&digest_of(b.bytes), b.bytes)?)
}

fn step(
    id: &str,
    plugin: &Arc<Plugin>,
    config: &str,
    inputs: Vec<usize>,
    batch: u32,
) -> PlannedStep {
    PlannedStep {
        id: id.into(),
        plugin: plugin.clone(),
        config: config.into(),
        input_outputs: vec![None; inputs.len()],
        inputs,
        limits: StepLimits::default(),
        mounts: vec![],
        secrets: BTreeMap::new(),
        connections: BTreeMap::new(),
        allow_hosts: vec![],
        state: BTreeMap::new(),
        cursor: None,
        retry: None,
        batch_size: batch,
    }
}

fn plan(p: &Plugins, count: u64, batch: u32, out_dir: &Path) -> Plan {
    let mut sink = step(
        "sink",
        &p.sink,
        r#"{"path":"/out/bench.jsonl","format":"jsonl"}"#,
        vec![2],
        batch,
    );
    sink.mounts = vec![Mount {
        host: out_dir.to_path_buf(),
        guest: "/out".into(),
        writable: true,
    }];
    Plan {
        steps: vec![
            step(
                "generate",
                &p.generator,
                &generator_config(count),
                vec![],
                batch,
            ),
            step("filter", &p.filter, FILTER, vec![0], batch),
            step("map", &p.map, MAP, vec![1], batch),
            sink,
        ],
        retry: RetrySettings::default(),
        inject: None,
    }
}

fn run_wasm(
    rt: &tokio::runtime::Runtime,
    engine: &Engine,
    plan: &Plan,
) -> Result<(RunReport, Run)> {
    let counters = executor::new_counters(plan);
    let sinks = RunSinks {
        logs: Arc::new(|_| {}),
        dead_letters: Arc::new(|_| {}),
    };
    let (report, wall, cpu) =
        timed(|| Ok(rt.block_on(executor::execute(engine, plan, sinks, &counters))))?;
    if report.outcome != Outcome::Succeeded {
        let errors: Vec<String> = report
            .steps
            .iter()
            .filter_map(|s| s.error.as_ref().map(|e| format!("{}: {}", s.id, e.message)))
            .collect();
        bail!("wasm run {:?}: {}", report.outcome, errors.join("; "));
    }
    let records = report.steps[0].records_out;
    let written = report.steps[3].records_in;
    Ok((
        report,
        Run {
            records,
            written,
            wall,
            cpu,
        },
    ))
}

/// Where the native pipeline writes.
enum NativeSink<'a> {
    File(&'a Path),
    Vec,
}

fn run_native(count: u64, sink: NativeSink<'_>) -> Result<Run> {
    let e = |e: autoflow_plugin_sdk::Error| anyhow!("{e}");
    let ((records, written), wall, cpu) = timed(|| {
        let mut generator =
            generator::Generator::open(parse_config(&generator_config(count)).map_err(e)?, None)
                .map_err(e)?;
        let mut host = TestHost::new();
        let mut file = match &sink {
            NativeSink::File(path) => {
                let config = serde_json::json!({"path": path, "format": "jsonl"}).to_string();
                Some(file_sink::FileSink::open(parse_config(&config).map_err(e)?).map_err(e)?)
            }
            NativeSink::Vec => None,
        };
        let mut buf: Vec<u8> = Vec::new();
        let (mut records, mut written, mut bytes) = (0u64, 0u64, 0u64);
        while let Some(batch) = generator.next(NATIVE_BATCH).map_err(e)? {
            records += batch.records.len() as u64;
            let kept = host
                .transform::<json_filter::JsonFilter>(FILTER, batch.records)
                .map_err(e)?;
            let mapped = host
                .transform::<json_map::JsonMap>(MAP, kept.records)
                .map_err(e)?;
            written += mapped.records.len() as u64;
            match file.as_mut() {
                Some(f) => f.write(mapped.records).map_err(e)?,
                None => {
                    buf.clear();
                    for r in &mapped.records {
                        buf.extend_from_slice(&r.value);
                        buf.push(b'\n');
                    }
                    bytes += std::hint::black_box(&buf).len() as u64;
                }
            }
        }
        if let Some(f) = file.as_mut() {
            f.flush().map_err(e)?;
        }
        std::hint::black_box(bytes);
        Ok((records, written))
    })?;
    Ok(Run {
        records,
        written,
        wall,
        cpu,
    })
}

type SdkRecord = autoflow_plugin_sdk::Record;
type WitRecord = autoflow::engine::bindings::Record;

fn to_wit(r: &SdkRecord) -> WitRecord {
    WitRecord {
        key: r.key.clone(),
        value: r.value.clone(),
        headers: r.headers.clone(),
        timestamp: r.timestamp,
    }
}

/// Median µs of `n` timed runs of `f` after `n / 10` untimed ones; `prep` (untimed) makes
/// each run's input.
fn time_each<I>(
    n: usize,
    mut prep: impl FnMut() -> I,
    mut f: impl FnMut(I) -> Result<()>,
) -> Result<f64> {
    let mut us = Vec::with_capacity(n);
    for i in 0..n + n / 10 {
        let input = prep();
        let t = Instant::now();
        f(input)?;
        if i >= n / 10 {
            us.push(t.elapsed().as_secs_f64() * 1e6);
        }
    }
    Ok(common::median(&us))
}

/// One step's cost per batch of 1024 records, one thread, no executor: the plugin crate
/// natively against the built-in component through `StepInstance` (copies in and out included).
fn per_step(
    rt: &tokio::runtime::Runtime,
    engine: &Engine,
    p: &Plugins,
    dir: &Path,
    n: usize,
) -> Result<Vec<(String, f64, f64)>> {
    let e = |e: autoflow_plugin_sdk::Error| anyhow!("{e}");
    let big = generator_config(1 << 40);
    let mut host = TestHost::new();
    // Inputs: one batch as it arrives at each step.
    let mut native_gen =
        generator::Generator::open(parse_config(&big).map_err(e)?, None).map_err(e)?;
    let generated = native_gen
        .next(NATIVE_BATCH)
        .map_err(e)?
        .ok_or_else(|| anyhow!("no batch"))?
        .records;
    let kept = host
        .transform::<json_filter::JsonFilter>(FILTER, generated.clone())
        .map_err(e)?
        .records;
    let mapped = host
        .transform::<json_map::JsonMap>(MAP, kept.clone())
        .map_err(e)?
        .records;
    let (wit_generated, wit_kept, wit_mapped): (Vec<_>, Vec<_>, Vec<_>) = (
        generated.iter().map(to_wit).collect(),
        kept.iter().map(to_wit).collect(),
        mapped.iter().map(to_wit).collect(),
    );
    let sink_config =
        serde_json::json!({"path": dir.join("native-step.jsonl"), "format": "jsonl"}).to_string();
    let mut native_sink =
        file_sink::FileSink::open(parse_config(&sink_config).map_err(e)?).map_err(e)?;

    let instance = |plugin: &Arc<Plugin>, config: &str, mounts: Vec<Mount>| {
        rt.block_on(async {
            let host = autoflow::engine::StepHost::new("bench", Arc::new(|_| {}));
            let sandbox = autoflow::engine::Sandbox {
                limits: StepLimits::default(),
                mounts,
                host,
            };
            let mut inst = engine.instantiate(plugin, sandbox).await?;
            inst.open(config, None).await?;
            Ok::<_, anyhow::Error>(inst)
        })
    };
    let mut w_gen = instance(&p.generator, &big, vec![])?;
    let mut w_filter = instance(&p.filter, FILTER, vec![])?;
    let mut w_map = instance(&p.map, MAP, vec![])?;
    let mount = Mount {
        host: dir.to_path_buf(),
        guest: "/out".into(),
        writable: true,
    };
    let mut w_sink = instance(
        &p.sink,
        r#"{"path":"/out/wasm-step.jsonl","format":"jsonl"}"#,
        vec![mount],
    )?;

    let mut rows = Vec::new();
    rows.push((
        format!("generator next({NATIVE_BATCH})"),
        time_each(
            n,
            || (),
            |()| {
                native_gen.next(NATIVE_BATCH).map_err(e)?;
                Ok(())
            },
        )?,
        time_each(
            n,
            || (),
            |()| {
                rt.block_on(w_gen.next(NATIVE_BATCH))?;
                Ok(())
            },
        )?,
    ));
    rows.push((
        format!("json-filter process({})", wit_generated.len()),
        time_each(
            n,
            || generated.clone(),
            |r| {
                host.transform::<json_filter::JsonFilter>(FILTER, r)
                    .map_err(e)?;
                Ok(())
            },
        )?,
        time_each(
            n,
            || (),
            |()| {
                rt.block_on(w_filter.process(&wit_generated))?;
                Ok(())
            },
        )?,
    ));
    rows.push((
        format!("json-map process({})", wit_kept.len()),
        time_each(
            n,
            || kept.clone(),
            |r| {
                host.transform::<json_map::JsonMap>(MAP, r).map_err(e)?;
                Ok(())
            },
        )?,
        time_each(
            n,
            || (),
            |()| {
                rt.block_on(w_map.process(&wit_kept))?;
                Ok(())
            },
        )?,
    ));
    rows.push((
        format!("file-sink write({})", wit_mapped.len()),
        time_each(n, || mapped.clone(), |r| native_sink.write(r).map_err(e))?,
        time_each(
            n,
            || (),
            |()| {
                rt.block_on(w_sink.write(&wit_mapped))?;
                Ok(())
            },
        )?,
    ));
    Ok(rows)
}

/// The batch sizes to run: `AUTOFLOW_BENCH_BATCHES` (comma-separated), else 1, 64 and 1024.
fn batch_sizes() -> Result<Vec<u32>> {
    match std::env::var("AUTOFLOW_BENCH_BATCHES") {
        Ok(v) => v
            .split(',')
            .map(|b| {
                b.trim()
                    .parse()
                    .with_context(|| format!("AUTOFLOW_BENCH_BATCHES={v:?}"))
            })
            .collect(),
        Err(_) => Ok(BATCH_SIZES.to_vec()),
    }
}

fn env_u64(name: &str, default: u64) -> Result<u64> {
    match std::env::var(name) {
        Ok(v) => v
            .replace(['_', ','], "")
            .parse()
            .with_context(|| format!("{name}={v:?}")),
        Err(_) => Ok(default),
    }
}

fn main() -> Result<()> {
    let n = env_u64("AUTOFLOW_BENCH_RECORDS", 1_000_000)?;
    let reps = env_u64("AUTOFLOW_BENCH_REPS", 5)?.max(1) as usize;
    let tmp = tempfile::tempdir()?;
    let native_path = tmp.path().join("native.jsonl");
    let wasm_dir = tmp.path().join("wasm");
    std::fs::create_dir_all(&wasm_dir)?;

    println!("# pipeline: generator -> json-filter -> json-map -> file-sink (jsonl, temp dir)");
    println!(
        "# {} records (batch 1: {} max); median of {reps} repetitions, each running every configuration once; filter {FILTER}; map {MAP}",
        thousands(n as f64),
        thousands(BATCH1_CAP.min(n) as f64)
    );
    println!("# {} CPUs, load average {} at start", cpus(), loadavg());

    let engine = Engine::new(EngineConfig::default())?;
    let plugins = Plugins {
        generator: load(&engine, "generator")?,
        filter: load(&engine, "json-filter")?,
        map: load(&engine, "json-map")?,
        sink: load(&engine, "file-sink")?,
    };
    let multi = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let single = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;

    // Warm up both: the page cache, the pool, the allocators.
    let warm = 20_000.min(n);
    run_native(warm, NativeSink::File(&native_path))?;
    run_wasm(&multi, &engine, &plan(&plugins, warm, 1024, &wasm_dir))?;
    run_wasm(&single, &engine, &plan(&plugins, warm, 1024, &wasm_dir))?;

    // Every repetition runs every configuration once, each wasm run right after a native
    // run: the machine's speed drifts (other tenants, frequency), so a wasm run is compared
    // with the native run next to it, and the ratio reported is the median of those pairs.
    struct Row {
        label: String,
        run: Run,
        report: Option<RunReport>,
        ratios: Vec<f64>,
    }
    let configs: Vec<(u32, &str, &tokio::runtime::Runtime)> = batch_sizes()?
        .into_iter()
        .flat_map(|b| [(b, "multi-thread", &multi), (b, "current-thread", &single)])
        .collect();
    let mut native_file = Vec::new();
    let mut native_vec = Vec::new();
    let mut wasm: Vec<Vec<(Run, RunReport, f64)>> = configs.iter().map(|_| Vec::new()).collect();
    let mut identical = true;
    for rep in 0..reps {
        native_vec.push(run_native(n, NativeSink::Vec)?);
        for (i, &(batch, _, rt)) in configs.iter().enumerate() {
            let native = run_native(n, NativeSink::File(&native_path))?;
            native_file.push(native);
            let count = if batch == 1 { BATCH1_CAP.min(n) } else { n };
            let (report, run) = run_wasm(rt, &engine, &plan(&plugins, count, batch, &wasm_dir))?;
            // The wasm pipeline must write exactly what the native one wrote.
            if rep == 0 && count == n {
                identical &=
                    std::fs::read(wasm_dir.join("bench.jsonl"))? == std::fs::read(&native_path)?;
            }
            wasm[i].push((run, report, run.rate() / native.rate()));
        }
    }
    let native_file = median_run(&native_file)?;
    let native_vec = median_run(&native_vec)?;
    let mut rows: Vec<Row> = Vec::new();
    for (&(batch, name, _), mut runs) in configs.iter().zip(wasm) {
        let m = median_run(&runs.iter().map(|(r, _, _)| *r).collect::<Vec<_>>())?;
        let ratios = common::sorted(runs.iter().map(|(_, _, x)| *x).collect());
        let report = runs
            .iter()
            .position(|(r, _, _)| r.wall == m.wall)
            .map(|i| runs.swap_remove(i).1);
        rows.push(Row {
            label: format!("wasm, batch {batch:>4}, {name}"),
            run: m,
            report,
            ratios,
        });
    }

    let native_rate = native_file.rate();
    println!();
    println!(
        "| {:<36} | {:>9} | {:>9} | {:>7} | {:>12} | {:>13} | {:>8} | {:>11} |",
        "run", "records", "written", "wall s", "records/s", "rec/CPU-s", "/native", "range"
    );
    println!(
        "|{:-<38}|{:->11}|{:->11}|{:->9}|{:->14}|{:->15}|{:->10}|{:->13}|",
        "", "", "", "", "", "", "", ""
    );
    let line = |label: &str, r: &Run, ratio: Option<f64>, range: String| {
        println!(
            "| {:<36} | {:>9} | {:>9} | {:>7.2} | {:>12} | {:>13} | {:>8} | {:>11} |",
            label,
            thousands(r.records as f64),
            thousands(r.written as f64),
            r.wall.as_secs_f64(),
            thousands(r.rate()),
            r.cpu_rate().map_or("?".into(), thousands),
            ratio.map_or(String::new(), |x| format!("{x:.2}")),
            range
        );
    };
    line(
        "native, batch 1024, file-sink",
        &native_file,
        Some(1.0),
        String::new(),
    );
    line(
        "native, batch 1024, Vec sink",
        &native_vec,
        Some(native_vec.rate() / native_rate),
        String::new(),
    );
    let spread = |v: &[f64]| match (v.first(), v.last()) {
        (Some(lo), Some(hi)) => format!("{lo:.2}-{hi:.2}"),
        _ => String::new(),
    };
    for row in &rows {
        line(
            &row.label,
            &row.run,
            Some(common::median(&row.ratios)),
            spread(&row.ratios),
        );
    }
    println!();
    println!(
        "(batch 1 runs are capped at {} records; records/s: median run; /native: median over the repetitions of wasm records/s over the native file-sink run made just before it, range: lowest-highest of those; rec/CPU-s = records per CPU-second of the process, all threads)",
        thousands(BATCH1_CAP as f64)
    );
    println!(
        "output check: every full-size wasm run of the first repetition wrote {} the same bytes as the native file-sink run ({} records written)",
        if identical { "exactly" } else { "NOT" },
        thousands(native_file.written as f64)
    );
    println!();
    println!("time inside each plugin (StepCounters::busy) in the median wasm run per batch size:");
    for row in &rows {
        let Some(report) = &row.report else { continue };
        let parts: Vec<String> = report
            .steps
            .iter()
            .map(|s| {
                format!(
                    "{} {:.2}s/{} calls ({:.1} µs/call)",
                    s.id,
                    s.busy.as_secs_f64(),
                    thousands(s.calls as f64),
                    s.busy.as_secs_f64() * 1e6 / s.calls.max(1) as f64
                )
            })
            .collect();
        println!(
            "  {}: wall {:.2}s; {}",
            row.label,
            row.run.wall.as_secs_f64(),
            parts.join(", ")
        );
    }
    println!();
    let row_of = |label: &str| rows.iter().find(|r| r.label == label);
    let goal = |what: &str, ratio: Option<f64>| {
        let Some(x) = ratio else { return };
        println!(
            "goal: wasm at batch 1024 >= {GOAL_RATIO} x native ({what}): {x:.2} -> {}",
            if x >= GOAL_RATIO { "MET" } else { "NOT MET" }
        );
    };
    goal(
        "multi-thread runtime, as the CLI",
        row_of("wasm, batch 1024, multi-thread").map(|r| common::median(&r.ratios)),
    );
    goal(
        "current-thread runtime, 1 core like native",
        row_of("wasm, batch 1024, current-thread").map(|r| common::median(&r.ratios)),
    );
    if let (Some(w), Some(nat)) = (
        row_of("wasm, batch 1024, multi-thread").and_then(|r| r.run.cpu_rate()),
        native_file.cpu_rate(),
    ) {
        let x = w / nat;
        println!(
            "goal: wasm at batch 1024 >= {GOAL_RATIO} x native (records per CPU-second, multi-thread, median runs): {x:.2} -> {}",
            if x >= GOAL_RATIO { "MET" } else { "NOT MET" }
        );
    }
    println!();
    println!(
        "per step, one batch of 1024 generated records, one thread, no executor (median µs per batch; wasm = StepInstance call, copies in/out included):"
    );
    println!(
        "| {:<28} | {:>10} | {:>10} | {:>11} |",
        "step", "native", "wasm", "wasm/native"
    );
    println!("|{:-<30}|{:->12}|{:->12}|{:->13}|", "", "", "", "");
    let steps = per_step(&single, &engine, &plugins, tmp.path(), 300)?;
    let (mut tn, mut tw) = (0.0, 0.0);
    for (name, native, wasm) in &steps {
        tn += native;
        tw += wasm;
        println!(
            "| {name:<28} | {native:>10.0} | {wasm:>10.0} | {:>10.2}x |",
            wasm / native
        );
    }
    println!(
        "| {:<28} | {tn:>10.0} | {tw:>10.0} | {:>10.2}x |",
        "sum",
        tw / tn
    );
    println!(
        "(native throughput over wasm throughput, compute only, one thread: {:.2})",
        tn / tw
    );
    println!("load average at end: {}", loadavg());
    Ok(())
}
