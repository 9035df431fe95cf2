//! The process's metrics: recorded through the `metrics` facade by the parts that see the
//! events (workers, the HTTP API, the engine's compiled cache) and shown as Prometheus text by
//! [`Export`] (`GET /metrics` on the server, `--metrics-listen` on a worker). Each family is
//! named once here, with its labels; no label carries a run id, so the series stay as many as
//! the tenants, pipelines, steps, routes and statuses. Nothing here imports the rest of the
//! crate: any floor may record. Without an installed recorder ([`Export::install`]) every
//! recording is a no-op.
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub mod logs;
pub mod traces;

/// Runs whose first attempt started, by `tenant` and `pipeline`.
pub const RUNS_STARTED: &str = "autoflow_runs_started_total";
/// Runs that ended (committed), by `tenant`, `pipeline` and `status`.
pub const RUNS_FINISHED: &str = "autoflow_runs_finished_total";
/// Wall-clock time of a run's last attempt, by `tenant`, `pipeline` and `status`.
pub const RUN_DURATION: &str = "autoflow_run_duration_seconds";
/// Attempts that failed retryably and were queued again, by `tenant` and `pipeline`.
pub const RUN_RETRIES: &str = "autoflow_run_retries_total";
/// Time a step spent inside its plugin in one run, by `tenant`, `pipeline` and `step`.
pub const STEP_BUSY: &str = "autoflow_step_busy_seconds";
/// Records a step received, by `tenant`, `pipeline` and `step`.
pub const STEP_RECORDS_IN: &str = "autoflow_step_records_in_total";
/// Records a step passed on.
pub const STEP_RECORDS_OUT: &str = "autoflow_step_records_out_total";
/// Records a step rejected (dead-lettered).
pub const STEP_RECORDS_REJECTED: &str = "autoflow_step_records_rejected_total";
/// Bytes a step received.
pub const STEP_BYTES_IN: &str = "autoflow_step_bytes_in_total";
/// Bytes a step passed on.
pub const STEP_BYTES_OUT: &str = "autoflow_step_bytes_out_total";
/// Fuel a metered step burnt.
pub const STEP_FUEL: &str = "autoflow_step_fuel_used_total";
/// The high-water mark of a step's plugin memory in the last run that ended (bytes), by
/// `tenant`, `pipeline` and `step`.
pub const STEP_MEMORY_PEAK: &str = "autoflow_step_memory_peak_bytes";
/// Retries of a step's failed plugin calls within runs.
pub const STEP_RETRIES: &str = "autoflow_step_call_retries_total";
/// Records dead-lettered, by `tenant` and `pipeline`.
pub const DEAD_LETTERS: &str = "autoflow_dead_letters_total";
/// Runs queued (due or waiting for a retry's backoff), read from the store at each scrape.
pub const QUEUE_DEPTH: &str = "autoflow_queue_depth";
/// Age of the oldest queued run that is due, seconds (0 when none), read at each scrape.
pub const QUEUE_OLDEST_AGE: &str = "autoflow_queue_oldest_age_seconds";
/// From a run being due (queued, or its backoff over) to a worker claiming it.
pub const CLAIM_WAIT: &str = "autoflow_claim_wait_seconds";
/// One claim transaction of a worker (whether or not it found runs).
pub const CLAIM_DURATION: &str = "autoflow_claim_duration_seconds";
/// Runs taken over from a worker whose lease expired.
pub const LEASE_TAKEOVERS: &str = "autoflow_lease_takeovers_total";
/// Leases this worker lost (another worker holds the run now).
pub const LEASES_LOST: &str = "autoflow_leases_lost_total";
/// From a schedule slot's time to its run being queued, by `tenant` and `pipeline`.
pub const SCHEDULE_LAG: &str = "autoflow_schedule_lag_seconds";
/// HTTP requests answered, by `method`, matched `route` template and `status`.
pub const HTTP_REQUESTS: &str = "autoflow_http_requests_total";
/// Time to answer an HTTP request (to its head), by `method` and `route`.
pub const HTTP_DURATION: &str = "autoflow_http_request_duration_seconds";
/// Plugins looked up in the compiled cache, by `result`: `memory` (loaded before), `disk`
/// (compiled before, read from the cache folder) or `miss` (compiled now).
pub const COMPILED_CACHE: &str = "autoflow_compiled_cache_total";
/// Plugin instances alive (a step running, or a plugin being described), over the process's
/// engines.
pub const ENGINE_INSTANCES: &str = "autoflow_engine_instances";
/// Instances the engines' pooling allocators hold at most (their `--max-instances`).
pub const ENGINE_INSTANCE_SLOTS: &str = "autoflow_engine_instance_slots";
/// One write of a running run's progress to the store.
pub const PROGRESS_WRITE: &str = "autoflow_progress_write_seconds";
/// Alert deliveries, by `tenant`, `channel` and `outcome`: each attempt `delivered`, `retry`
/// (it failed and is tried again) or `failed` (its attempts used up), and `rate_limited` (held
/// back, without an attempt, while its channel is over its rate).
pub const ALERT_DELIVERIES: &str = "autoflow_alert_deliveries_total";
/// One alert delivery attempt, from connecting to the receiver's answer, by `tenant` and
/// `channel`.
pub const ALERT_DELIVERY_DURATION: &str = "autoflow_alert_delivery_seconds";

/// Bucket bounds of the duration histograms, seconds.
const BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// The Prometheus exposition of this process's metrics, and the token that guards it.
#[derive(Clone)]
pub struct Export {
    handle: PrometheusHandle,
    token: Option<Arc<str>>,
}

/// The process's one recorder (a second install would fail).
static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

impl Export {
    /// Installs the Prometheus recorder for the process (once; later calls share it), with
    /// `token` as the bearer token a scrape must send (`None`: open). `None` when a recorder
    /// could not be installed.
    pub fn install(token: Option<String>) -> Option<Export> {
        let handle = HANDLE
            .get_or_init(|| {
                let builder = PrometheusBuilder::new()
                    .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)
                    .ok()?;
                match builder.install_recorder() {
                    Ok(h) => Some(h),
                    Err(e) => {
                        tracing::warn!("cannot install the metrics recorder: {e}");
                        None
                    }
                }
            })
            .clone()?;
        let token = token.filter(|t| !t.is_empty()).map(Arc::from);
        Some(Export { handle, token })
    }

    /// Whether `authorization` (the request's header) may see the metrics.
    pub fn allows(&self, authorization: Option<&str>) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        let given = authorization
            .and_then(|h| h.strip_prefix("Bearer "))
            .unwrap_or("");
        subtle::ConstantTimeEq::ct_eq(given.as_bytes(), token.as_bytes()).into()
    }

    /// The text exposition of every family recorded so far.
    pub fn render(&self) -> String {
        self.handle.run_upkeep();
        self.handle.render()
    }
}

fn seconds(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// A run's first attempt started.
pub fn run_started(tenant: &str, pipeline: &str) {
    let labels = [
        ("tenant", tenant.to_string()),
        ("pipeline", pipeline.to_string()),
    ];
    counter!(RUNS_STARTED, &labels).increment(1);
}

/// A run ended with `status` (committed), its last attempt having taken `duration`.
pub fn run_finished(tenant: &str, pipeline: &str, status: &str, duration: Duration) {
    let labels = [
        ("tenant", tenant.to_string()),
        ("pipeline", pipeline.to_string()),
        ("status", status.to_string()),
    ];
    counter!(RUNS_FINISHED, &labels).increment(1);
    histogram!(RUN_DURATION, &labels).record(seconds(duration));
}

/// An attempt failed retryably and its run was queued again.
pub fn run_retried(tenant: &str, pipeline: &str) {
    let labels = [
        ("tenant", tenant.to_string()),
        ("pipeline", pipeline.to_string()),
    ];
    counter!(RUN_RETRIES, &labels).increment(1);
}

/// What one step did in one attempt, as its metrics count it.
#[derive(Debug, Clone, Default)]
pub struct StepNumbers {
    /// Step id.
    pub step: String,
    /// Records received.
    pub records_in: u64,
    /// Records passed on.
    pub records_out: u64,
    /// Records rejected.
    pub rejected: u64,
    /// Bytes received.
    pub bytes_in: u64,
    /// Bytes passed on.
    pub bytes_out: u64,
    /// Time inside the plugin.
    pub busy: Duration,
    /// Fuel burnt, when metered.
    pub fuel_used: Option<u64>,
    /// Retries of failed calls.
    pub retries: u64,
    /// The high-water mark of its plugin instance's linear memory, bytes.
    pub memory_peak_bytes: u64,
}

/// The steps of an attempt of a run of `pipeline` ended (recorded with the run's end).
pub fn steps_finished(tenant: &str, pipeline: &str, steps: &[StepNumbers]) {
    let mut dead = 0;
    for s in steps {
        let labels = [
            ("tenant", tenant.to_string()),
            ("pipeline", pipeline.to_string()),
            ("step", s.step.clone()),
        ];
        counter!(STEP_RECORDS_IN, &labels).increment(s.records_in);
        counter!(STEP_RECORDS_OUT, &labels).increment(s.records_out);
        counter!(STEP_RECORDS_REJECTED, &labels).increment(s.rejected);
        counter!(STEP_BYTES_IN, &labels).increment(s.bytes_in);
        counter!(STEP_BYTES_OUT, &labels).increment(s.bytes_out);
        counter!(STEP_RETRIES, &labels).increment(s.retries);
        if let Some(fuel) = s.fuel_used {
            counter!(STEP_FUEL, &labels).increment(fuel);
        }
        histogram!(STEP_BUSY, &labels).record(seconds(s.busy));
        gauge!(STEP_MEMORY_PEAK, &labels).set(s.memory_peak_bytes as f64);
        dead += s.rejected;
    }
    let labels = [
        ("tenant", tenant.to_string()),
        ("pipeline", pipeline.to_string()),
    ];
    counter!(DEAD_LETTERS, &labels).increment(dead);
}

/// The queue as the store has it now: runs queued, and how long the oldest due one has waited.
pub fn queue(depth: u64, oldest_age: Duration) {
    gauge!(QUEUE_DEPTH).set(depth as f64);
    gauge!(QUEUE_OLDEST_AGE).set(seconds(oldest_age));
}

/// A claim transaction took `took`; `waits` are how long each run it claimed had been due.
pub fn claimed(took: Duration, waits: impl IntoIterator<Item = Duration>) {
    histogram!(CLAIM_DURATION).record(seconds(took));
    for w in waits {
        histogram!(CLAIM_WAIT).record(seconds(w));
    }
}

/// A claim took over a run whose worker's lease had expired.
pub fn lease_taken_over() {
    counter!(LEASE_TAKEOVERS).increment(1);
}

/// This worker lost a run's lease to another.
pub fn lease_lost() {
    counter!(LEASES_LOST).increment(1);
}

/// A schedule slot's run was queued `lag` after the slot's time.
pub fn schedule_fired(tenant: &str, pipeline: &str, lag: Duration) {
    let labels = [
        ("tenant", tenant.to_string()),
        ("pipeline", pipeline.to_string()),
    ];
    histogram!(SCHEDULE_LAG, &labels).record(seconds(lag));
}

/// An HTTP request to `route` (the matched template, such as `/v1/runs/{id}`) was answered
/// `status` after `took`.
pub fn http_request(method: &str, route: &str, status: u16, took: Duration) {
    let labels = [
        ("method", method.to_string()),
        ("route", route.to_string()),
        ("status", status.to_string()),
    ];
    counter!(HTTP_REQUESTS, &labels).increment(1);
    let labels = [("method", method.to_string()), ("route", route.to_string())];
    histogram!(HTTP_DURATION, &labels).record(seconds(took));
}

/// A plugin was found in the compiled cache (`memory`, `disk`) or compiled (`miss`).
pub fn compiled_cache(result: &'static str) {
    counter!(COMPILED_CACHE, "result" => result).increment(1);
}

/// A plugin instance came to life (`1`) or went (`-1`).
pub fn engine_instances(change: f64) {
    gauge!(ENGINE_INSTANCES).increment(change);
}

/// A pooling engine with `slots` instance slots was built (`slots`) or dropped (`-slots`).
pub fn engine_instance_slots(change: f64) {
    gauge!(ENGINE_INSTANCE_SLOTS).increment(change);
}

/// A running run's progress was written to the store in `took`.
pub fn progress_written(took: Duration) {
    histogram!(PROGRESS_WRITE).record(seconds(took));
}

/// An alert delivery to the tenant's `channel` had `outcome` (see [`ALERT_DELIVERIES`]); `took`
/// is its attempt's time (`None`: no attempt was made).
pub fn alert_delivery(tenant: &str, channel: &str, outcome: &'static str, took: Option<Duration>) {
    let labels = [
        ("tenant", tenant.to_string()),
        ("channel", channel.to_string()),
    ];
    if let Some(took) = took {
        histogram!(ALERT_DELIVERY_DURATION, &labels).record(seconds(took));
    }
    let [tenant, channel] = labels;
    counter!(
        ALERT_DELIVERIES,
        &[tenant, channel, ("outcome", outcome.to_string())]
    )
    .increment(1);
}
