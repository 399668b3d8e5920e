//! `[limits]` over the real server: spans over the per-span limits are cut and
//! stored, visibly (`GET /api/v1/traces/{id}`: dropped counts, cut values, the
//! `tracemap.truncated` marker); spans over `max_spans_per_trace` are refused
//! with OTLP partial success on gRPC and HTTP (protobuf and JSON), before and
//! after the trace completes; Zipkin gets the same limits; every cut and
//! refusal is on `/metrics`.

mod common;

use std::time::Duration;

use common::{get_json, get_text, metric, otlp_request, otlp_span, poll_json, string_attr};
use common::{int_attr, TestServer};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest,
};
use opentelemetry_proto::tonic::trace::v1::span::{Event, Link};
use prost::Message;
use serde_json::{json, Value};

const MAX_SPANS: u32 = 5;

async fn start() -> TestServer {
    TestServer::start_with(|c| {
        c.limits.max_spans_per_trace = MAX_SPANS;
        c.limits.max_attributes_per_span = 4;
        c.limits.max_attribute_value_bytes = 16;
        c.limits.max_events_per_span = 2;
        c.limits.max_links_per_span = 2;
        c.assembly.trace_idle = Duration::from_millis(300);
    })
    .await
}

async fn grpc_export(
    server: &TestServer,
    request: ExportTraceServiceRequest,
) -> Option<ExportTracePartialSuccess> {
    let mut client = TraceServiceClient::connect(server.grpc_url.clone())
        .await
        .unwrap();
    client
        .export(request)
        .await
        .unwrap()
        .into_inner()
        .partial_success
}

async fn http_protobuf(
    server: &TestServer,
    request: ExportTraceServiceRequest,
) -> Option<ExportTracePartialSuccess> {
    let response = reqwest::Client::new()
        .post(&server.otlp_http_url)
        .header("content-type", "application/x-protobuf")
        .body(request.encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let body = response.bytes().await.unwrap();
    opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse::decode(body)
        .unwrap()
        .partial_success
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn spans(trace_id: [u8; 16], ids: std::ops::Range<u64>) -> ExportTraceServiceRequest {
    otlp_request(
        "gateway",
        ids.map(|n| otlp_span(trace_id, n, None, "GET /")).collect(),
    )
}

/// A span over every per-span limit.
fn wide_span(trace_id: [u8; 16]) -> opentelemetry_proto::tonic::trace::v1::Span {
    let mut span = otlp_span(trace_id, 1, None, "wide");
    // Thirteen bytes, then a 4-byte emoji straddling the 16-byte limit.
    span.attributes = vec![
        string_attr("db.statement", "ééééééa😀tail"),
        int_attr("a", 1),
        int_attr("b", 2),
    ];
    span.attributes
        .extend((0..7).map(|i| int_attr(&format!("extra.{i}"), i)));
    span.events = (0..5)
        .map(|i| Event {
            time_unix_nano: span.start_time_unix_nano + i,
            name: format!("retry {i}"),
            ..Event::default()
        })
        .collect();
    span.links = (1..=3u8)
        .map(|n| Link {
            trace_id: vec![n; 16],
            span_id: vec![n; 8],
            ..Link::default()
        })
        .collect();
    span
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_over_the_limits_are_cut_refused_and_counted() {
    let server = start().await;

    // Per-span limits over gRPC: stored, cut, and visible as such.
    let wide = [0xa1; 16];
    let partial = grpc_export(&server, otlp_request("gateway", vec![wide_span(wide)])).await;
    assert_eq!(partial, None, "a cut span is accepted, not refused");
    let url = format!("{}/api/v1/traces/{}", server.api_url, hex(&wide));
    let body = poll_json(&url, |b| {
        b["spans"].as_array().is_some_and(|s| !s.is_empty())
    })
    .await;
    let span = &body["spans"][0];
    let attributes = span["attributes"].as_object().unwrap();
    assert_eq!(attributes.len(), 4, "{span}");
    assert_eq!(span["attributes"]["db.statement"], "ééééééa");
    assert_eq!(
        span["attributes"]["tracemap.truncated"],
        json!(["db.statement"])
    );
    assert_eq!(
        (&span["attributes"]["a"], &span["attributes"]["b"]),
        (&json!(1), &json!(2))
    );
    // Seven over the limit, and the fourth one made room for the marker.
    assert_eq!(span["dropped_attributes_count"], 7, "{span}");
    assert_eq!(span["events"].as_array().unwrap().len(), 2);
    assert_eq!(span["events"][1]["name"], "retry 1");
    assert_eq!(span["dropped_events_count"], 3);
    assert_eq!(span["links"].as_array().unwrap().len(), 2);
    assert_eq!(span["dropped_links_count"], 1);

    // max_spans_per_trace over gRPC: the first five kept, the rest refused.
    let full = [0xb2; 16];
    let partial = grpc_export(&server, spans(full, 1..8)).await.unwrap();
    assert_eq!(partial.rejected_spans, 2);
    assert!(
        partial
            .error_message
            .contains("limits.max_spans_per_trace (5)")
            && partial.error_message.contains(&hex(&full)),
        "{}",
        partial.error_message
    );
    // ...and over HTTP, protobuf and JSON, for the same trace.
    let partial = http_protobuf(&server, spans(full, 8..10)).await.unwrap();
    assert_eq!(partial.rejected_spans, 2);
    let json_body = json!({"resourceSpans": [{"scopeSpans": [{"spans": [{
        "traceId": hex(&full), "spanId": "00000000000000aa", "name": "late",
        "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000000000000001"
    }]}]}]});
    let response = reqwest::Client::new()
        .post(&server.otlp_http_url)
        .header("content-type", "application/json")
        .body(json_body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["partialSuccess"]["rejectedSpans"], "1", "{answer}");

    // Completed, the trace still counts the five spans it holds.
    let url = format!("{}/api/v1/traces/{}", server.api_url, hex(&full));
    let body = poll_json(&url, |b| b["summary"]["complete"] == true).await;
    assert_eq!(body["spans"].as_array().unwrap().len(), MAX_SPANS as usize);
    let partial = grpc_export(&server, spans(full, 20..21)).await.unwrap();
    assert_eq!(partial.rejected_spans, 1);
    // Another trace is not affected.
    assert_eq!(grpc_export(&server, spans([0xc3; 16], 1..6)).await, None);

    // Zipkin goes through the same limits.
    let zipkin = json!([{
        "traceId": hex(&[0xd4; 16]), "id": "00000000000000d4", "name": "get",
        "timestamp": 1_700_000_000_000_000u64, "duration": 10,
        "localEndpoint": {"serviceName": "legacy"},
        "tags": {"sql.query": "x".repeat(40)}
    }]);
    let response = reqwest::Client::new()
        .post(&server.zipkin_url)
        .header("content-type", "application/json")
        .body(zipkin.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 202);
    let url = format!("{}/api/v1/traces/{}", server.api_url, hex(&[0xd4; 16]));
    let body = poll_json(&url, |b| {
        b["spans"].as_array().is_some_and(|s| !s.is_empty())
    })
    .await;
    assert_eq!(body["spans"][0]["attributes"]["sql.query"], "x".repeat(16));

    let (status, text) = get_text(&format!("{}/metrics", server.api_url)).await;
    assert_eq!(status, 200);
    for (series, want) in [
        (
            "tracemap_spans_truncated_total{receiver=\"otlp_grpc\",reason=\"attributes\"}",
            1.0,
        ),
        (
            "tracemap_spans_truncated_total{receiver=\"otlp_grpc\",reason=\"attribute_value\"}",
            1.0,
        ),
        (
            "tracemap_spans_truncated_total{receiver=\"otlp_grpc\",reason=\"events\"}",
            1.0,
        ),
        (
            "tracemap_spans_truncated_total{receiver=\"otlp_grpc\",reason=\"links\"}",
            1.0,
        ),
        (
            "tracemap_spans_truncated_total{receiver=\"zipkin\",reason=\"attribute_value\"}",
            1.0,
        ),
        (
            "tracemap_spans_rejected_total{receiver=\"otlp_grpc\",reason=\"spans_per_trace\"}",
            3.0,
        ),
        (
            "tracemap_spans_rejected_total{receiver=\"otlp_http\",reason=\"spans_per_trace\"}",
            3.0,
        ),
    ] {
        assert_eq!(metric(&text, series), Some(want), "{series} in\n{text}");
    }
    let (status, _) = get_json(&format!("{}/healthz", server.api_url)).await;
    assert_eq!(status, 200);
    server.stop().await;
}
