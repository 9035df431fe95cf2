//! A step's time in the report is the time of its own calls: while a guest yields at an epoch
//! tick and other steps run, the clock of its call does not count.
// Test code: failing loudly is its job.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use autoflow::executor::{RunSinks, execute, new_counters, prepare::prepare};
use autoflow::pipeline::ValidationPolicy;
use autoflow::registry::LocalPlugins;
use autoflow_tests::guests;

use crate::common;

/// Two CPU-bound steps on one thread take turns: their times add up to the run's, not twice it.
#[tokio::test(flavor = "current_thread")]
async fn step_time_counts_the_guest_not_the_steps_sharing_its_thread() {
    let engine = common::engine(false);
    let slow = guests::SLOW;
    let yaml = format!(
        "name: busy\nsteps:\n  - id: gen\n    plugin: generator@0.1.0\n    config: {{ count: 4 }}\n  \
         - id: a\n    plugin: {slow}\n    input: gen\n    config: {{ ms: 100 }}\n  \
         - id: b\n    plugin: {slow}\n    input: gen\n    config: {{ ms: 100 }}\n  \
         - id: sa\n    plugin: log-sink@0.1.0\n    input: a\n  - id: sb\n    plugin: log-sink@0.1.0\n    input: b\n"
    );
    let pipeline = autoflow::pipeline::parse(&yaml, None)
        .unwrap()
        .validate(&ValidationPolicy::default())
        .unwrap();
    let plan = prepare(
        &engine,
        &pipeline,
        &LocalPlugins { blob_dir: None },
        Path::new("."),
        &BTreeMap::new(),
    )
    .await
    .unwrap();
    let sinks = RunSinks {
        logs: Arc::new(|_| {}),
        dead_letters: Arc::new(|_| {}),
    };
    let counters = new_counters(&plan);
    let started = Instant::now();
    let report = execute(&engine, &plan, sinks, &counters).await;
    let wall = started.elapsed();
    let busy = |id: &str| report.steps.iter().find(|s| s.id == id).unwrap().busy;
    let (a, b) = (busy("a"), busy("b"));
    // Each spun for 100 ms of wall time per record, taking turns with the other.
    assert!(wall >= Duration::from_millis(400), "{wall:?}");
    assert!(
        a >= Duration::from_millis(100) && b >= Duration::from_millis(100),
        "a {a:?}, b {b:?}"
    );
    assert!(
        a + b <= wall + Duration::from_millis(50),
        "a {a:?} + b {b:?} > the run's {wall:?}"
    );
}
