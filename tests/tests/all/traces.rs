//! OpenTelemetry traces: a server started with `OTEL_EXPORTER_OTLP_ENDPOINT` pointing at an
//! OTLP/HTTP receiver on loopback exports its spans, which the test decodes from protobuf as a
//! collector would. A run triggered with a caller's W3C `traceparent` is one trace under the
//! caller's: the API request's span is the child of the caller's span, the run's attempt the
//! child of the request, as is the claim that gave it to the worker, and each step a child of
//! the attempt; plugin compilations have spans of their own, and the resource names the
//! service.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use std::collections::HashMap;
use std::time::Duration;

use autoflow_tests::http_server::{Reply, TestServer};
use autoflow_tests::server::{Backend, Server, wait_for};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use prost::Message;

/// A span as the receiver decoded it.
#[derive(Debug, Clone)]
struct Span {
    trace: String,
    id: String,
    parent: String,
    name: String,
    attributes: HashMap<String, String>,
    service: String,
}

fn text(v: &Option<opentelemetry_proto::tonic::common::v1::AnyValue>) -> String {
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        Some(Any::StringValue(s)) => s.clone(),
        Some(Any::IntValue(i)) => i.to_string(),
        Some(Any::BoolValue(b)) => b.to_string(),
        Some(Any::DoubleValue(d)) => d.to_string(),
        other => format!("{other:?}"),
    }
}

/// Every span the receiver got so far, decoded from the requests' protobuf bodies.
fn spans(receiver: &TestServer) -> Vec<Span> {
    let mut out = Vec::new();
    for r in receiver.requests() {
        assert_eq!(r.path, "/v1/traces");
        assert_eq!(r.header("content-type"), Some("application/x-protobuf"));
        let request = ExportTraceServiceRequest::decode(&r.body[..]).unwrap();
        for resource in request.resource_spans {
            let service = resource
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|a| a.key == "service.name")
                .map(|a| text(&a.value))
                .unwrap_or_default();
            for scope in resource.scope_spans {
                for s in scope.spans {
                    out.push(Span {
                        trace: hex::encode(&s.trace_id),
                        id: hex::encode(&s.span_id),
                        parent: hex::encode(&s.parent_span_id),
                        name: s.name.clone(),
                        attributes: s
                            .attributes
                            .iter()
                            .map(|a| (a.key.clone(), text(&a.value)))
                            .collect(),
                        service: service.clone(),
                    });
                }
            }
        }
    }
    out
}

const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

#[test]
fn a_run_is_one_trace_that_continues_its_callers() {
    let receiver = TestServer::start(|_, _| Reply::status(200));
    let endpoint = receiver.url("");
    let Some(s) = Server::start_with_env(
        Backend::Sqlite,
        tempfile::tempdir().unwrap(),
        &[],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
    ) else {
        return;
    };
    let yaml = "name: traced\nsteps:\n  - id: gen\n    plugin: generator@latest\n    \
                config: { count: 5 }\n  - id: keep\n    plugin: json-filter@latest\n    input: gen\n    \
                config: { field: id, op: exists }\n  - id: sink\n    plugin: log-sink@latest\n    input: keep\n";
    let r = s.apply(&s.admin, "traced", yaml);
    assert!(r.status == 201 || r.status == 200, "{}", r.text());
    let answer = reqwest::blocking::Client::new()
        .post(format!("{}/v1/pipelines/traced/runs", s.url))
        .bearer_auth(&s.admin)
        .header("traceparent", format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01"))
        .json(&serde_json::json!({}))
        .send()
        .unwrap();
    assert!(answer.status().is_success(), "{:?}", answer.status());
    let id = answer.json::<serde_json::Value>().unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let run = s.wait_run(&s.admin, &id);
    assert_eq!(run["status"], "succeeded", "{run}");
    let ours = |all: &[Span]| -> Vec<Span> {
        all.iter()
            .filter(|s| s.trace == CALLER_TRACE)
            .cloned()
            .collect()
    };
    let mut got = Vec::new();
    wait_for(
        Duration::from_secs(30),
        "the run's spans at the receiver",
        || {
            got = ours(&spans(&receiver));
            got.iter().filter(|s| s.name == "step").count() >= 3
                && got.iter().any(|s| s.name == "run")
                && got.iter().any(|s| s.name == "claim")
        },
    );
    let request = got
        .iter()
        .find(|s| {
            s.name == "http request"
                && s.attributes.get("http.route").map(String::as_str)
                    == Some("/v1/pipelines/{name}/runs")
        })
        .unwrap_or_else(|| panic!("no request span in {got:#?}"));
    assert_eq!(
        request.parent, CALLER_SPAN,
        "the caller's span is its parent"
    );
    assert_eq!(request.attributes["http.request.method"], "POST");
    assert_eq!(request.service, "autoflow");
    let attempt = got.iter().find(|s| s.name == "run").unwrap();
    assert_eq!(
        attempt.parent, request.id,
        "the attempt continues the request"
    );
    assert_eq!(attempt.attributes["run"], id);
    assert_eq!(attempt.attributes["pipeline"], "traced");
    let mut steps: Vec<&str> = got
        .iter()
        .filter(|s| s.name == "step")
        .inspect(|s| assert_eq!(s.parent, attempt.id, "{s:?}"))
        .map(|s| s.attributes["step"].as_str())
        .collect();
    steps.sort();
    assert_eq!(steps, ["gen", "keep", "sink"]);
    // The claim that gave the run to the worker is in its trace; compilations have their own.
    let claim = got.iter().find(|s| s.name == "claim").unwrap();
    assert_eq!(claim.parent, request.id);
    assert_eq!(claim.attributes["run"], id);
    let all = spans(&receiver);
    assert!(
        all.iter()
            .any(|s| s.name == "compile" && s.attributes.contains_key("digest")),
        "no compile span"
    );
}
