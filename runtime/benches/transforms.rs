//! Bench: records/s through each new built-in transform (split, flatten, sample and its
//! reservoir, mask, dedupe, jq, json-schema, route, aggregate) at batch 1024, as a component
//! against the same plugin crate compiled natively, in the same run.
//!
//! Per transform, one thread, no executor: the component is instantiated and opened once
//! (`StepInstance`, on a current-thread runtime) and `process` is called with a batch of 1024
//! records (the copies into and out of the component included); the native twin is the same
//! crate as an rlib, opened once through the SDK's `TestHost::open` and driven with
//! `TestHost::batch`. Both get the same batches (dedupe: fresh ids per batch, half of them
//! repeated from the batch before, so half the records are duplicates). Each round ends with a
//! `finish` call on both sides (what a reservoir passes on; nothing for the others); records
//! passed on count every output's (route's named ones too). Native and wasm take
//! turns in rounds (`AUTOFLOW_BENCH_ROUNDS`, default 5, of `AUTOFLOW_BENCH_BATCHES` batches,
//! default 40) so that a drift of the machine's speed hits both; the figures are totals over
//! the rounds: records per wall second and per CPU second of the process (all threads, from
//! `/proc/self/stat`, 10 ms ticks).
//! Run: `cargo bench -p autoflow --bench transforms`.
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use autoflow::engine::{Engine, EngineConfig, Plugin, StepHost, StepInstance, StepLimits};
use autoflow::registry::{builtin, cache::digest_of};
use autoflow_plugin_sdk::testing::TestHost;
use autoflow_plugin_sdk::{Record, Transform};

mod common;
use common::{cpus, loadavg, process_cpu, thousands};

const BATCH: usize = 1024;
/// The issue's goal: no transform below this share of its native twin per CPU-second.
const GOAL_RATIO: f64 = 0.5;
const SECRET: (&str, &str) = ("mask-key", "bench-secret");

/// An order of about 400 bytes: nested customer, a card number, three items.
fn order(id: u64) -> Record {
    let status = ["paid", "pending", "refunded"][(id % 3) as usize];
    let v = serde_json::json!({
        "id": id,
        "status": status,
        "customer": {
            "name": format!("Customer {}", id % 997),
            "email": format!("c{}@example.com", id % 997),
            "address": { "city": "Berlin", "zip": format!("{:05}", id % 99_999) },
        },
        "card": format!("4000{:012}", id.wrapping_mul(7919) % 1_000_000_000_000),
        "items": (0..3).map(|k| serde_json::json!({
            "sku": format!("SKU-{}", (id + k) % 113), "qty": (id + k) % 5 + 1, "price": 0.25 * ((id * 7 + k) % 40) as f64,
        })).collect::<Vec<_>>(),
    });
    Record::new(v.to_string())
}

/// Batch `b`: ids `b * 512 ..`, so half of a batch's ids were in the batch before.
fn batch(b: u64) -> Vec<Record> {
    (0..BATCH as u64).map(|i| order(b * 512 + i)).collect()
}

type WitRecord = autoflow::engine::bindings::Record;

fn to_wit(r: &Record) -> WitRecord {
    WitRecord {
        key: r.key.clone(),
        value: r.value.clone(),
        headers: r.headers.clone(),
        timestamp: r.timestamp,
    }
}

/// Totals of one side over all rounds.
#[derive(Default, Clone, Copy)]
struct Side {
    records: u64,
    out: u64,
    wall: Duration,
    cpu: Duration,
}

impl Side {
    fn rate(&self) -> f64 {
        self.records as f64 / self.wall.as_secs_f64()
    }
    fn cpu_rate(&self) -> f64 {
        self.records as f64 / self.cpu.as_secs_f64().max(1e-9)
    }
}

fn timed(side: &mut Side, records: u64, f: impl FnOnce() -> Result<u64>) -> Result<()> {
    let cpu0 = process_cpu();
    let t = Instant::now();
    let out = f()?;
    side.wall += t.elapsed();
    if let (Some(a), Some(b)) = (cpu0, process_cpu()) {
        side.cpu += b.saturating_sub(a);
    }
    side.records += records;
    side.out += out;
    Ok(())
}

/// Runs transform `T` natively and as the built-in component `name` with `config`.
fn bench<T: Transform>(
    rt: &tokio::runtime::Runtime,
    engine: &Engine,
    name: &str,
    config: &str,
    rounds: usize,
    batches: u64,
) -> Result<(Side, Side)> {
    let e = |e: autoflow_plugin_sdk::Error| anyhow!("{name}: {e}");
    let mut host = TestHost::new().secret(SECRET.0, SECRET.1);
    let mut native = host.open::<T>(config).map_err(e)?;
    // `NAME/VARIANT` is plugin NAME with another config.
    let plugin_name = name.split('/').next().unwrap_or(name);
    let b = builtin::all()
        .find(|b| b.name == plugin_name)
        .ok_or_else(|| anyhow!("no built-in {name}"))?;
    let plugin: Arc<Plugin> = engine.load(&digest_of(b.bytes), b.bytes)?;
    let mut inst: StepInstance = rt.block_on(async {
        let mut host = StepHost::new("bench", Arc::new(|_| {}));
        host.secrets = BTreeMap::from([(SECRET.0.to_string(), SECRET.1.to_string())]);
        let sandbox = autoflow::engine::Sandbox {
            limits: StepLimits::default(),
            mounts: vec![],
            host,
        };
        let mut inst = engine.instantiate(&plugin, sandbox).await?;
        inst.open(config, None).await?;
        Ok::<_, anyhow::Error>(inst)
    })?;
    let (mut n, mut w) = (Side::default(), Side::default());
    let mut next = 0u64;
    for _ in 0..rounds {
        // The same batches for both sides; each side sees fresh ids (dedupe).
        let inputs: Vec<Vec<Record>> = (next..next + batches).map(batch).collect();
        next += batches;
        let wit: Vec<Vec<WitRecord>> = inputs
            .iter()
            .map(|b| b.iter().map(to_wit).collect())
            .collect();
        let mut copies = inputs.clone();
        timed(&mut n, batches * BATCH as u64, || {
            let mut out = 0;
            for b in copies.drain(..) {
                out += native_out(&host.batch(&mut native, b).map_err(e)?);
            }
            out += native_out(&host.finish(&mut native).map_err(e)?);
            Ok(out)
        })?;
        timed(&mut w, batches * BATCH as u64, || {
            let mut out = 0;
            for b in &wit {
                let p = rt
                    .block_on(inst.process(b))
                    .with_context(|| name.to_string())?;
                out += wasm_out(&p);
            }
            let finished = rt
                .block_on(inst.finish())
                .with_context(|| name.to_string())?;
            out += finished.as_ref().map_or(0, wasm_out);
            Ok(out)
        })?;
    }
    if n.out != w.out {
        return Err(anyhow!(
            "{name}: native passed {} records, wasm {}",
            n.out,
            w.out
        ));
    }
    Ok((n, w))
}

/// Records a native batch passed on, over every output.
fn native_out(p: &autoflow_plugin_sdk::Processed) -> u64 {
    (p.records.len() + p.routed.iter().map(|(_, r)| r.len()).sum::<usize>()) as u64
}

/// Records a component's batch passed on, over every output.
fn wasm_out(p: &autoflow::engine::bindings::Processed) -> u64 {
    (p.records.len() + p.routed.iter().map(|r| r.records.len()).sum::<usize>()) as u64
}

/// One transform's bench: `bench::<T>` for its crate's type.
type Case = fn(&tokio::runtime::Runtime, &Engine, &str, &str, usize, u64) -> Result<(Side, Side)>;

fn env_u64(name: &str, default: u64) -> Result<u64> {
    match std::env::var(name) {
        Ok(v) => v.parse().with_context(|| format!("{name}={v:?}")),
        Err(_) => Ok(default),
    }
}

fn main() -> Result<()> {
    let rounds = env_u64("AUTOFLOW_BENCH_ROUNDS", 5)?.max(1) as usize;
    let batches = env_u64("AUTOFLOW_BENCH_BATCHES", 40)?.max(1);
    println!(
        "# transforms: each built-in transform at batch {BATCH}, component vs the same crate natively, one thread"
    );
    println!(
        "# {rounds} rounds of {batches} batches per side ({} records), native and wasm in turn; {} CPUs, load average {} at start",
        thousands((rounds as u64 * batches * BATCH as u64) as f64),
        cpus(),
        loadavg()
    );
    let engine = Engine::new(EngineConfig::default())?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let cases: Vec<(&str, String, Case)> = vec![
        ("split", r#"{"field":"items","keep":["id","customer"],"as":"item"}"#.into(), bench::<split::Split> as Case),
        ("flatten", "{}".into(), bench::<flatten::Flatten> as Case),
        ("sample", r#"{"rate":0.1,"key":"customer.email"}"#.into(), bench::<sample::Sample> as Case),
        ("sample/reservoir", r#"{"reservoir":1000}"#.into(), bench::<sample::Sample> as Case),
        (
            "mask",
            format!(r#"{{"secret":"{}","fields":{{"customer.email":"hash","customer.name":{{"truncate":3}},"card":"redact"}}}}"#, SECRET.0),
            bench::<mask::Mask> as Case,
        ),
        ("dedupe", r#"{"key":"id"}"#.into(), bench::<dedupe::Dedupe> as Case),
        (
            "jq",
            r#"{"program":"{id, email: .customer.email, total: ([.items[] | .qty * .price] | add)}"}"#.into(),
            bench::<jq::Jq> as Case,
        ),
        (
            "json-schema",
            r#"{"schema":{"type":"object","required":["id","customer","items"],"properties":{"id":{"type":"integer","minimum":0},"status":{"enum":["paid","pending","refunded"]},"customer":{"type":"object","required":["email"],"properties":{"email":{"type":"string","pattern":"@"}}},"items":{"type":"array","minItems":1,"items":{"type":"object","required":["sku","qty"],"properties":{"qty":{"type":"integer","minimum":1}}}}}}}"#.into(),
            bench::<json_schema::JsonSchema> as Case,
        ),
        (
            "route",
            r#"{"routes":[{"output":"refunds","when":{"field":"status","equals":"refunded"}},{"output":"berlin-big","when":{"all":[{"field":"customer.address.city","equals":"Berlin"},{"field":"items.0.qty","op":"gte","value":4}]}},{"output":"vip","when":{"field":"customer.name","op":"in","value":["Customer 1","Customer 2"]}}]}"#.into(),
            bench::<route::Route> as Case,
        ),
        (
            // Order ids as event times: 1-second windows per status, ids of the batch before
            // within the allowed lateness.
            "aggregate",
            r#"{"group_by":["status"],"window":{"size_ms":1000,"time_field":"id","allowed_lateness_ms":1024},"aggregates":{"n":{"op":"count"},"qty":{"op":"sum","field":"items.0.qty"},"buyers":{"op":"distinct","field":"customer.email"},"top":{"op":"max","field":"items.0.price"}}}"#.into(),
            bench::<aggregate::Aggregate> as Case,
        ),
    ];
    println!();
    println!(
        "| {:<16} | {:>12} | {:>12} | {:>8} | {:>16} | {:>14} | {:>9} | {:>9} |",
        "transform",
        "native rec/s",
        "wasm rec/s",
        "wall x",
        "native rec/CPU-s",
        "wasm rec/CPU-s",
        "CPU x",
        "out/in"
    );
    println!(
        "|{:-<18}|{:->14}|{:->14}|{:->10}|{:->18}|{:->16}|{:->11}|{:->11}|",
        "", "", "", "", "", "", "", ""
    );
    let mut worst: Option<(String, f64)> = None;
    for (name, config, f) in &cases {
        let (n, w) = f(&rt, &engine, name, config, rounds, batches)?;
        let cpu_x = w.cpu_rate() / n.cpu_rate();
        println!(
            "| {:<16} | {:>12} | {:>12} | {:>8.2} | {:>16} | {:>14} | {:>9.2} | {:>9.2} |",
            name,
            thousands(n.rate()),
            thousands(w.rate()),
            w.rate() / n.rate(),
            thousands(n.cpu_rate()),
            thousands(w.cpu_rate()),
            cpu_x,
            n.out as f64 / n.records as f64,
        );
        if worst.as_ref().is_none_or(|(_, x)| cpu_x < *x) {
            worst = Some((name.to_string(), cpu_x));
        }
    }
    println!();
    println!(
        "(wall x, CPU x: wasm over native, records per wall second and per CPU second; out/in: records passed on per record in)"
    );
    if let Some((name, x)) = worst {
        println!(
            "goal: every transform >= {GOAL_RATIO} x native per CPU-second: lowest {name} {x:.2} -> {}",
            if x >= GOAL_RATIO { "MET" } else { "NOT MET" }
        );
    }
    println!("load average at end: {}", loadavg());
    Ok(())
}
