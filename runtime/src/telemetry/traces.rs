//! Traces over OTLP/HTTP (protobuf), off unless the standard variables configure an endpoint
//! (`OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`; `OTEL_SDK_DISABLED`
//! and `OTEL_TRACES_EXPORTER=none` turn them off; `OTEL_SERVICE_NAME`, default `autoflow`;
//! `OTEL_BSP_*` tune the batches). The process's `tracing` spans at `info` and above of the
//! `autoflow` target become OpenTelemetry spans, whatever `AUTOFLOW_LOG` lets through to the
//! log: an API request (`http request`, continuing the caller's W3C `traceparent`), a plugin's
//! compilation (`compile`), a run's attempt (`run`) and each of its steps (`step`); and the
//! claim that gave the attempt to its worker (`claim`, in the run's trace).
//!
//! One trace per run: a run queued inside a traced request keeps that request's context
//! ([`current_traceparent`], stored with the run), so the caller's trace continues into it;
//! every attempt, on whichever worker, is a child of it ([`run_parent`]). A run queued outside
//! any (by the clock, an event) gets a context made from its id, the same for each attempt.
use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use opentelemetry::KeyValue;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{
    Span as _, SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState, Tracer as _,
    TracerProvider as _,
};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use sha2::{Digest, Sha256};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::registry::LookupSpan;

/// The provider, once traces are on (flushed by [`shutdown`]).
static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();
/// Its tracer, for the spans made here rather than from `tracing`'s ([`claimed`]).
static TRACER: OnceLock<SdkTracer> = OnceLock::new();

/// Whether the environment asks for traces.
fn configured() -> bool {
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
    let off = std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true"))
        || std::env::var("OTEL_TRACES_EXPORTER").is_ok_and(|v| v.eq_ignore_ascii_case("none"));
    !off && (set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
}

/// The layer that makes spans OpenTelemetry spans, when the environment asks for traces (an
/// exporter that cannot be built is said on standard error, and traces stay off).
pub fn layer<S>() -> Option<Box<dyn Layer<S> + Send + Sync>>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
{
    if !configured() {
        return None;
    }
    let exporter = match opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
    {
        Ok(e) => e,
        Err(e) => {
            eprintln!("OTLP traces are off: {e}");
            return None;
        }
    };
    let mut resource = opentelemetry_sdk::Resource::builder();
    if std::env::var("OTEL_SERVICE_NAME").is_err() {
        resource = resource.with_service_name("autoflow");
    }
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build();
    let tracer = provider.tracer("autoflow");
    let _ = PROVIDER.set(provider);
    let _ = TRACER.set(tracer.clone());
    let only_ours = Targets::new().with_target("autoflow", LevelFilter::INFO);
    Some(
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_filter(only_ours)
            .boxed(),
    )
}

/// Sends the spans not sent yet; at the process's end.
pub fn shutdown() {
    if let Some(p) = PROVIDER.get()
        && let Err(e) = p.shutdown()
    {
        eprintln!("OTLP traces: {e}");
    }
}

/// Whether traces are on in this process.
pub fn enabled() -> bool {
    PROVIDER.get().is_some()
}

/// The W3C `traceparent` of the current span, when traces are on and it is in a trace.
pub fn current_traceparent() -> Option<String> {
    if !enabled() {
        return None;
    }
    let cx = tracing::Span::current().context();
    if !cx.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&cx, &mut carrier);
    carrier.remove("traceparent")
}

/// Makes `span` continue the W3C trace context of `headers` (`traceparent`, `tracestate`), if
/// they carry a valid one.
pub fn continue_from(span: &tracing::Span, headers: &http::HeaderMap) {
    if !enabled() {
        return;
    }
    let carrier: HashMap<String, String> = ["traceparent", "tracestate"]
        .iter()
        .filter_map(|k| Some((k.to_string(), headers.get(*k)?.to_str().ok()?.to_string())))
        .collect();
    let cx = TraceContextPropagator::new().extract(&carrier);
    if cx.span().span_context().is_valid() {
        let _ = span.set_parent(cx);
    }
}

/// Makes `span` (a run's attempt) a child of the run's context ([`run_context`]).
pub fn run_parent(span: &tracing::Span, traceparent: Option<&str>, tenant: &str, run: &str) {
    if enabled() {
        let _ = span.set_parent(run_context(traceparent, tenant, run));
    }
}

/// A span `claim` in the run's trace, from `started` for `took`: the claim that gave attempt
/// `attempt` of `run` to a worker (one claim may give several runs; each trace has it).
pub fn claimed(
    traceparent: Option<&str>,
    tenant: &str,
    run: &str,
    attempt: i64,
    started: SystemTime,
    took: Duration,
) {
    let Some(tracer) = TRACER.get() else {
        return;
    };
    let cx = run_context(traceparent, tenant, run);
    let mut span = tracer
        .span_builder("claim")
        .with_start_time(started)
        .with_attributes([
            KeyValue::new("run", run.to_string()),
            KeyValue::new("attempt", attempt),
        ])
        .start_with_context(tracer, &cx);
    span.end_with_timestamp(started + took);
}

/// The context a run's spans are children of: `traceparent` as stored with the run, else one
/// made from the tenant and run ids (the same at every attempt).
fn run_context(traceparent: Option<&str>, tenant: &str, run: &str) -> opentelemetry::Context {
    let stored = traceparent.and_then(|t| {
        let carrier = HashMap::from([("traceparent".to_string(), t.to_string())]);
        let cx = TraceContextPropagator::new().extract(&carrier);
        cx.span().span_context().is_valid().then_some(cx)
    });
    stored.unwrap_or_else(|| {
        let digest = Sha256::digest(format!("{tenant}/{run}"));
        let mut trace = [0u8; 16];
        trace.copy_from_slice(&digest[..16]);
        let mut id = [0u8; 8];
        id.copy_from_slice(&digest[16..24]);
        let parent = SpanContext::new(
            TraceId::from_bytes(trace),
            SpanId::from_bytes(id),
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        );
        opentelemetry::Context::new().with_remote_span_context(parent)
    })
}
