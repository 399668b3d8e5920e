//! The Rust OpenTelemetry SDK's OTLP/gRPC exporter, plain and gzip, against the
//! real server: every span comes back with its attributes, events, status,
//! kind, links and parent intact, in both the native and the Jaeger API.

mod common;

use std::time::Duration;

use common::{get_json, sdk_provider, TestServer};
use opentelemetry::trace::{
    Link, Span as _, SpanKind, Status, TraceContextExt, Tracer, TracerProvider,
};
use opentelemetry::Context;
use opentelemetry::{Array, KeyValue, StringValue, Value};
use opentelemetry_otlp::{Compression, WithExportConfig, WithTonicConfig};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use opentelemetry_sdk::Resource;
use serde_json::json;

/// Records a small checkout trace with the SDK and returns what it recorded.
fn record(service: &str) -> Vec<SpanData> {
    let (provider, memory) = sdk_provider(service);
    let tracer = provider.tracer("bookstore.checkout");
    let warmup = tracer.in_span("warmup", |cx| cx.span().span_context().clone());
    let root = tracer
        .span_builder("POST /checkout")
        .with_kind(SpanKind::Server)
        .with_attributes(vec![
            KeyValue::new("http.request.method", "POST"),
            KeyValue::new("http.response.status_code", 201),
            KeyValue::new("cart.total", 42.5),
            KeyValue::new("cart.gift", true),
            KeyValue::new(
                "cart.items",
                Value::Array(Array::String(vec![
                    StringValue::from("isbn-1"),
                    StringValue::from("isbn-2"),
                ])),
            ),
            KeyValue::new("correlation_id", "req_abc123"),
        ])
        .with_links(vec![Link::with_context(warmup)])
        .start(&tracer);
    let cx = Context::current_with_span(root);
    cx.span().add_event(
        "payment.authorized",
        vec![KeyValue::new("payment.provider", "stripe")],
    );
    tracer
        .span_builder("INSERT orders")
        .with_kind(SpanKind::Client)
        .with_attributes(vec![KeyValue::new("db.system.name", "postgresql")])
        .start_with_context(&tracer, &cx)
        .end();
    let mut failing = tracer
        .span_builder("POST stripe/charges")
        .with_kind(SpanKind::Client)
        .start_with_context(&tracer, &cx);
    failing.set_status(Status::error("card declined"));
    failing.end();
    cx.span().end();
    provider.force_flush().unwrap();
    memory.get_finished_spans().unwrap()
}

async fn export(
    server: &TestServer,
    service: &str,
    compression: Option<Compression>,
    spans: Vec<SpanData>,
) {
    let mut builder = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(server.grpc_url.clone())
        .with_timeout(Duration::from_secs(10));
    if let Some(compression) = compression {
        builder = builder.with_compression(compression);
    }
    let mut exporter = builder.build().unwrap();
    // A provider hands its resource to its exporters; here we export directly.
    exporter.set_resource(
        &Resource::builder()
            .with_service_name(service.to_string())
            .build(),
    );
    exporter
        .export(spans)
        .await
        .expect("tracemap acknowledged the export");
}

fn expected_attr(value: &Value) -> serde_json::Value {
    match value {
        Value::Bool(b) => json!(b),
        Value::I64(i) => json!(i),
        Value::F64(f) => json!(f),
        Value::String(s) => json!(s.as_str()),
        Value::Array(Array::String(items)) => {
            json!(items.iter().map(|s| s.as_str()).collect::<Vec<_>>())
        }
        other => panic!("test does not use {other:?}"),
    }
}

async fn check_round_trip(server: &TestServer, sent: &[SpanData], service: &str) {
    for span in sent {
        let trace_id = span.span_context.trace_id().to_string();
        let (status, body) =
            get_json(&format!("{}/api/v1/traces/{trace_id}", server.api_url)).await;
        assert_eq!(status, 200, "{body}");
        let got = body["spans"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["span_id"] == span.span_context.span_id().to_string())
            .unwrap_or_else(|| panic!("span {} missing from {body}", span.name));
        assert_eq!(got["name"], span.name.as_ref());
        assert_eq!(got["service"], service);
        let kind = match span.span_kind {
            SpanKind::Server => "server",
            SpanKind::Client => "client",
            SpanKind::Internal => "internal",
            SpanKind::Producer => "producer",
            SpanKind::Consumer => "consumer",
        };
        assert_eq!(got["kind"], kind);
        let parent = span.parent_span_id;
        if parent == opentelemetry::trace::SpanId::INVALID {
            assert!(got["parent_span_id"].is_null());
        } else {
            assert_eq!(got["parent_span_id"], parent.to_string());
        }
        let start_us = span
            .start_time
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros() as u64;
        assert_eq!(got["start_us"], start_us);
        for kv in &span.attributes {
            assert_eq!(
                got["attributes"][kv.key.as_str()],
                expected_attr(&kv.value),
                "attribute {} of {}",
                kv.key,
                span.name
            );
        }
        assert_eq!(
            got["attributes"].as_object().unwrap().len(),
            span.attributes.len()
        );
        let events: Vec<_> = span.events.iter().collect();
        assert_eq!(got["events"].as_array().unwrap().len(), events.len());
        for (event, got_event) in events.iter().zip(got["events"].as_array().unwrap()) {
            assert_eq!(got_event["name"], event.name.as_ref());
            for kv in &event.attributes {
                assert_eq!(
                    got_event["attributes"][kv.key.as_str()],
                    expected_attr(&kv.value)
                );
            }
        }
        let links: Vec<_> = span.links.iter().collect();
        assert_eq!(got["links"].as_array().unwrap().len(), links.len());
        for (link, got_link) in links.iter().zip(got["links"].as_array().unwrap()) {
            assert_eq!(got_link["span_id"], link.span_context.span_id().to_string());
            assert_eq!(
                got_link["trace_id"],
                link.span_context.trace_id().to_string()
            );
        }
        match &span.status {
            Status::Error { description } => {
                assert_eq!(got["status"], "error");
                assert_eq!(got["status_message"], description.as_ref());
            }
            Status::Ok => assert_eq!(got["status"], "ok"),
            Status::Unset => assert_eq!(got["status"], "unset"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_exporter_plain_and_gzip_round_trip() {
    let server = TestServer::start().await;
    let plain = record("checkout-plain");
    let gzip = record("checkout-gzip");
    assert_eq!(plain.len(), 4);
    export(&server, "checkout-plain", None, plain.clone()).await;
    export(
        &server,
        "checkout-gzip",
        Some(Compression::Gzip),
        gzip.clone(),
    )
    .await;
    check_round_trip(&server, &plain, "checkout-plain").await;
    check_round_trip(&server, &gzip, "checkout-gzip").await;

    // The Jaeger view of the same trace.
    let root = plain.iter().find(|s| s.name == "POST /checkout").unwrap();
    let trace_id = root.span_context.trace_id().to_string();
    let (status, body) = get_json(&format!("{}/api/traces/{trace_id}", server.api_url)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["errors"], serde_json::Value::Null);
    assert_eq!(body["total"], 1);
    let trace = &body["data"][0];
    assert_eq!(trace["traceID"], trace_id);
    let spans = trace["spans"].as_array().unwrap();
    assert_eq!(spans.len(), 3, "the warmup span is a trace of its own");
    let child = spans
        .iter()
        .find(|s| s["operationName"] == "INSERT orders")
        .unwrap();
    assert_eq!(child["references"][0]["refType"], "CHILD_OF");
    assert_eq!(
        child["references"][0]["spanID"],
        root.span_context.span_id().to_string()
    );
    let process = &trace["processes"][child["processID"].as_str().unwrap()];
    assert_eq!(process["serviceName"], "checkout-plain");

    // The summary knows the root, the error and the correlation id.
    let (_, native) = get_json(&format!("{}/api/v1/traces/{trace_id}", server.api_url)).await;
    let summary = &native["summary"];
    assert_eq!(summary["root_operation"], "POST /checkout");
    assert_eq!(summary["root_service"], "checkout-plain");
    assert_eq!(summary["span_count"], 3);
    assert_eq!(summary["error_count"], 1);
    assert_eq!(summary["correlation_ids"], json!(["req_abc123"]));
    assert_eq!(summary["complete"], false, "spans arrived just now");

    let (_, metrics) = common::get_text(&format!("{}/metrics", server.api_url)).await;
    assert_eq!(
        common::metric(
            &metrics,
            "tracemap_spans_received_total{receiver=\"otlp_grpc\"}"
        ),
        Some(8.0),
        "{metrics}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_invalid_trace_ids_answer_clearly() {
    let server = TestServer::start().await;
    let (status, body) = common::get_text(&format!("{}/healthz", server.api_url)).await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    let (status, body) = common::get_text(&format!("{}/readyz", server.api_url)).await;
    assert_eq!((status, body.as_str()), (200, "ready"));
    let (status, body) = get_json(&format!(
        "{}/api/traces/0af7651916cd43dd8448eb211c80319c",
        server.api_url
    ))
    .await;
    assert_eq!(status, 404);
    assert_eq!(body["errors"][0]["code"], 404);
    assert!(body["data"].is_null());
    let (status, body) = get_json(&format!("{}/api/v1/traces/not-hex", server.api_url)).await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("invalid trace id"));
    let (status, _) = get_json(&format!(
        "{}/api/v1/traces/1-5759e988-bd862e3fe1be46a994272793",
        server.api_url
    ))
    .await;
    assert_eq!(status, 404, "X-Ray ids are accepted, this one is unknown");
    server.stop().await;
}
