//! OpenLineage run events (<https://openlineage.io/spec/2-0-2/OpenLineage.json>): a run's
//! `START` when its first attempt starts, and `COMPLETE`, `FAIL` or `ABORT` (cancelled) once its
//! end is committed, each with the pipeline's input and output datasets ([`datasets`]), POSTed
//! by the worker that ran it to the endpoint the operator configured (`--openlineage-url`, as
//! the OpenLineage clients' `OPENLINEAGE_URL`), so that a catalogue (Marquez, DataHub,
//! OpenMetadata) sees Autoflow's pipelines. The job is the pipeline, in namespace
//! `NAMESPACE/TENANT`; the run's id is a UUID made from Autoflow's run id, which the
//! `autoflow_run` facet also carries.
//!
//! Delivery is in order, by one task per process, each event tried three times with backoff;
//! an event the endpoint still refuses, or that finds the queue full (a slow endpoint), is
//! dropped with a warning: lineage never holds a run back.
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::status::RunStatus;
use crate::telemetry::StepNumbers;

pub mod datasets;

pub use datasets::{Dataset, Datasets};

/// The spec the events follow.
const SCHEMA_URL: &str = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/definitions/RunEvent";
/// Who produced them.
const PRODUCER: &str = concat!(
    "https://github.com/autoflow/autoflow/tree/v",
    env!("CARGO_PKG_VERSION")
);
/// Events waiting to be sent at most.
const QUEUE: usize = 1024;
/// Tries per event.
const ATTEMPTS: u32 = 3;
/// The first wait between tries (then four times as long).
const BACKOFF: Duration = Duration::from_millis(500);
/// One POST's limit.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Where the events go.
#[derive(Debug, Clone, clap::Args)]
pub struct LineageArgs {
    /// Send OpenLineage run events to this server (e.g. Marquez at `http://marquez:5000`).
    /// Default: none are sent.
    #[arg(long, env = "OPENLINEAGE_URL")]
    pub openlineage_url: Option<String>,
    /// The path of its endpoint under the URL.
    #[arg(long, env = "OPENLINEAGE_ENDPOINT", default_value = "api/v1/lineage")]
    pub openlineage_endpoint: String,
    /// Sent as `Authorization: Bearer KEY`.
    #[arg(long, env = "OPENLINEAGE_API_KEY", hide_env_values = true)]
    pub openlineage_api_key: Option<String>,
    /// The jobs' namespace, before `/TENANT`.
    #[arg(long, env = "OPENLINEAGE_NAMESPACE", default_value = "autoflow")]
    pub openlineage_namespace: String,
}

impl LineageArgs {
    /// The emitter these options ask for (`None`: no URL), its sender started; the error names
    /// a URL that is not `http(s)://`.
    pub fn emitter(&self) -> anyhow::Result<Option<Emitter>> {
        let Some(base) = self.openlineage_url.as_deref().filter(|u| !u.is_empty()) else {
            return Ok(None);
        };
        let parsed = url::Url::parse(base)
            .map_err(|e| anyhow::anyhow!("--openlineage-url {base:?}: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            anyhow::bail!("--openlineage-url {base:?}: expected http:// or https://");
        }
        let endpoint = format!(
            "{}/{}",
            base.trim_end_matches('/'),
            self.openlineage_endpoint.trim_start_matches('/')
        );
        Ok(Some(Emitter::start(
            endpoint,
            self.openlineage_api_key.clone().filter(|k| !k.is_empty()),
            &self.openlineage_namespace,
        )))
    }
}

/// The run an event is about.
#[derive(Debug, Clone, Copy)]
pub struct RunRef<'a> {
    /// Its tenant's id.
    pub tenant: &'a str,
    /// Its pipeline.
    pub pipeline: &'a str,
    /// The pipeline's version it runs.
    pub version: i64,
    /// Autoflow's id of the run.
    pub id: &'a str,
    /// The attempt.
    pub attempt: i64,
}

/// Sends the events of runs; cheap to clone.
#[derive(Debug, Clone)]
pub struct Emitter {
    tx: mpsc::Sender<Value>,
    namespace: Arc<str>,
}

impl Emitter {
    /// Starts the task that POSTs events to `endpoint` (with `api_key` as a bearer token), for
    /// jobs in `namespace/TENANT`.
    pub fn start(endpoint: String, api_key: Option<String>, namespace: &str) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(send_all(endpoint, api_key, rx));
        Self {
            tx,
            namespace: Arc::from(namespace),
        }
    }

    /// The run's first attempt started.
    pub fn started(&self, run: RunRef<'_>, datasets: &Datasets) {
        self.queue(event("START", &self.namespace, run, datasets, None, &[]));
    }

    /// The run ended with `status` (committed), failing with `error`; `steps` are its steps'
    /// counts, for the outputs' statistics.
    pub fn ended(
        &self,
        run: RunRef<'_>,
        datasets: &Datasets,
        status: RunStatus,
        error: Option<&str>,
        steps: &[StepNumbers],
    ) {
        let kind = match status {
            RunStatus::Succeeded => "COMPLETE",
            RunStatus::Cancelled => "ABORT",
            _ => "FAIL",
        };
        self.queue(event(kind, &self.namespace, run, datasets, error, steps));
    }

    fn queue(&self, event: Value) {
        if let Err(e) = self.tx.try_send(event) {
            tracing::warn!("OpenLineage: an event is dropped ({e}): the endpoint is slow or gone");
        }
    }
}

/// The event `kind` of `run`, its job in `namespace/TENANT`.
pub fn event(
    kind: &str,
    namespace: &str,
    run: RunRef<'_>,
    datasets: &Datasets,
    error: Option<&str>,
    steps: &[StepNumbers],
) -> Value {
    let facet = |extra: Value| {
        let mut f = json!({ "_producer": PRODUCER, "_schemaURL": SCHEMA_URL });
        if let (Some(f), Value::Object(extra)) = (f.as_object_mut(), extra) {
            f.extend(extra);
        }
        f
    };
    let mut run_facets = json!({
        "autoflow_run": facet(json!({
            "run_id": run.id, "tenant": run.tenant, "version": run.version, "attempt": run.attempt,
        })),
    });
    if let Some(message) = error {
        run_facets["errorMessage"] = facet(json!({
            "message": message, "programmingLanguage": "wasm",
        }));
    }
    let dataset = |d: &Dataset, output: bool| {
        let mut v = json!({ "namespace": d.namespace, "name": d.name });
        let written = steps.iter().find(|s| s.step == d.step);
        if let (true, Some(s)) = (output, written) {
            v["outputFacets"] = json!({
                "outputStatistics": facet(json!({
                    "rowCount": s.records_in.saturating_sub(s.rejected),
                    "size": s.bytes_in,
                })),
            });
        }
        v
    };
    let now = crate::pipeline::cron::rfc3339(crate::store::now_ms()).unwrap_or_default();
    json!({
        "eventType": kind,
        "eventTime": now,
        "producer": PRODUCER,
        "schemaURL": SCHEMA_URL,
        "run": { "runId": run_uuid(run.tenant, run.id), "facets": run_facets },
        "job": {
            "namespace": format!("{namespace}/{}", run.tenant),
            "name": run.pipeline,
            "facets": {
                "jobType": facet(json!({
                    "processingType": "BATCH", "integration": "AUTOFLOW", "jobType": "PIPELINE",
                })),
            },
        },
        "inputs": datasets.inputs.iter().map(|d| dataset(d, false)).collect::<Vec<_>>(),
        "outputs": datasets.outputs.iter().map(|d| dataset(d, true)).collect::<Vec<_>>(),
    })
}

/// The run's OpenLineage id: a UUID (version 8, RFC 9562) of the SHA-256 of its tenant and id,
/// so that every event of the run, from any worker, carries the same.
pub fn run_uuid(tenant: &str, id: &str) -> String {
    let digest = Sha256::digest(format!("{tenant}/{id}"));
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// POSTs each event in order until the emitters are gone.
async fn send_all(endpoint: String, api_key: Option<String>, mut rx: mpsc::Receiver<Value>) {
    let client = match reqwest::Client::builder().timeout(TIMEOUT).build() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("OpenLineage: no HTTP client: {e}");
            return;
        }
    };
    while let Some(event) = rx.recv().await {
        let mut wait = BACKOFF;
        for attempt in 1..=ATTEMPTS {
            let mut req = client.post(&endpoint).json(&event);
            if let Some(key) = &api_key {
                req = req.bearer_auth(key);
            }
            let why = match req.send().await {
                Ok(r) if r.status().is_success() => break,
                Ok(r) => format!("{} answered {}", endpoint, r.status()),
                Err(e) => format!("{endpoint}: {e}"),
            };
            if attempt == ATTEMPTS {
                tracing::warn!(
                    "OpenLineage: the {} event of run {} is dropped after {ATTEMPTS} tries: {why}",
                    event["eventType"].as_str().unwrap_or_default(),
                    event["run"]["facets"]["autoflow_run"]["run_id"]
                        .as_str()
                        .unwrap_or_default(),
                );
            } else {
                tokio::time::sleep(wait).await;
                wait *= 4;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn run_ids_are_stable_uuids() {
        let a = run_uuid("default", "0123456789abcdef01234567");
        assert_eq!(a, run_uuid("default", "0123456789abcdef01234567"));
        assert_ne!(a, run_uuid("other", "0123456789abcdef01234567"));
        let parts: Vec<&str> = a.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('8'), "version 8: {a}");
        assert!(matches!(&parts[3][..1], "8" | "9" | "a" | "b"), "{a}");
    }

    #[test]
    fn an_event_names_its_job_run_and_datasets() {
        let datasets = Datasets {
            inputs: vec![Dataset {
                step: "read".into(),
                namespace: "nats://bus:4222".into(),
                name: "ORDERS".into(),
            }],
            outputs: vec![Dataset {
                step: "write".into(),
                namespace: "file".into(),
                name: "/out/o.jsonl".into(),
            }],
        };
        let run = RunRef {
            tenant: "default",
            pipeline: "orders",
            version: 3,
            id: "r1",
            attempt: 2,
        };
        let steps = [StepNumbers {
            step: "write".into(),
            records_in: 10,
            rejected: 2,
            bytes_in: 300,
            ..StepNumbers::default()
        }];
        let e = event("FAIL", "autoflow", run, &datasets, Some("boom"), &steps);
        assert_eq!(e["eventType"], "FAIL");
        assert_eq!(e["schemaURL"], SCHEMA_URL);
        assert_eq!(e["job"]["namespace"], "autoflow/default");
        assert_eq!(e["job"]["name"], "orders");
        assert_eq!(e["run"]["runId"], run_uuid("default", "r1"));
        assert_eq!(e["run"]["facets"]["autoflow_run"]["attempt"], 2);
        assert_eq!(e["run"]["facets"]["errorMessage"]["message"], "boom");
        assert_eq!(
            e["inputs"][0],
            json!({"namespace": "nats://bus:4222", "name": "ORDERS"})
        );
        assert_eq!(
            e["outputs"][0]["outputFacets"]["outputStatistics"]["rowCount"],
            8
        );
        assert!(e["eventTime"].as_str().unwrap().ends_with('Z'));
    }
}
