//! OTLP/HTTP: JSON and protobuf give the same trace back; every kind of bad
//! input gets its specified answer and the next good request still succeeds.

mod common;

use std::io::Write;

use common::{get_json, get_text, metric, otlp_request, otlp_span, TestServer};
use flate2::write::GzEncoder;
use prost::Message;
use serde_json::{json, Value};

const JSON_TRACE_ID: &str = "5b8efff798038103d269b633813fc60c";
const PROTO_TRACE_ID: &str = "6b8efff798038103d269b633813fc60c";

/// A request in the OTLP/JSON shape of the specification's example: ids in hex,
/// 64-bit integers as strings, enums as numbers, lowerCamelCase keys.
fn json_payload(trace_id: &str) -> Value {
    json!({
      "resourceSpans": [{
        "resource": {"attributes": [
          {"key": "service.name", "value": {"stringValue": "catalog-service"}},
          {"key": "host.name", "value": {"stringValue": "catalog-1"}}
        ]},
        "scopeSpans": [{
          "scope": {"name": "catalog.lib", "version": "2.0.1"},
          "spans": [{
            "traceId": trace_id.to_uppercase(),
            "spanId": "EEE19B7EC3C1B174",
            "parentSpanId": "EEE19B7EC3C1B173",
            "name": "GET /books/{id}",
            "startTimeUnixNano": "1544712660000000000",
            "endTimeUnixNano": "1544712661000000000",
            "kind": 2,
            "attributes": [
              {"key": "http.response.status_code", "value": {"intValue": "503"}},
              {"key": "retry.ratio", "value": {"doubleValue": 0.5}},
              {"key": "cache.hit", "value": {"boolValue": true}},
              {"key": "book.tags", "value": {"arrayValue": {"values": [
                {"stringValue": "fiction"}, {"intValue": 7}
              ]}}},
              {"key": "book.meta", "value": {"kvlistValue": {"values": [
                {"key": "isbn", "value": {"stringValue": "978-3"}}
              ]}}}
            ],
            "events": [{
              "timeUnixNano": "1544712660500000000",
              "name": "cache.miss",
              "attributes": [{"key": "cache.key", "value": {"stringValue": "book:42"}}]
            }],
            "links": [{"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331"}],
            "status": {"code": 2, "message": "upstream unavailable"}
          }]
        }]
      }]
    })
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

async fn post(
    url: &str,
    content_type: &str,
    encoding: Option<&str>,
    body: Vec<u8>,
) -> (u16, String, Vec<u8>) {
    let client = reqwest::Client::new();
    let mut request = client
        .post(url)
        .header("content-type", content_type)
        .body(body);
    if let Some(encoding) = encoding {
        request = request.header("content-encoding", encoding);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (
        status,
        content_type,
        response.bytes().await.unwrap().to_vec(),
    )
}

/// The native view of a trace without the parts that differ between the two
/// posts (the trace id itself).
async fn trace_view(server: &TestServer, trace_id: &str) -> Value {
    let (status, mut body) =
        get_json(&format!("{}/api/v1/traces/{trace_id}", server.api_url)).await;
    assert_eq!(status, 200, "{body}");
    body["summary"]["trace_id"] = Value::Null;
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_and_protobuf_give_the_same_trace() {
    let server = TestServer::start().await;
    let json_body = serde_json::to_vec(&json_payload(JSON_TRACE_ID)).unwrap();
    let (status, content_type, body) =
        post(&server.otlp_http_url, "application/json", None, json_body).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(content_type, "application/json");
    assert_eq!(serde_json::from_slice::<Value>(&body).unwrap(), json!({}));

    // The same request through the protobuf path, gzip-compressed.
    let request: opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest =
        serde_json::from_value(json_payload(PROTO_TRACE_ID)).unwrap();
    let (status, content_type, body) = post(
        &server.otlp_http_url,
        "application/x-protobuf",
        Some("gzip"),
        gzip(&request.encode_to_vec()),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(content_type, "application/x-protobuf");
    let response =
        opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse::decode(
            &body[..],
        )
        .unwrap();
    assert!(response.partial_success.is_none());

    let from_json = trace_view(&server, JSON_TRACE_ID).await;
    let from_proto = trace_view(&server, PROTO_TRACE_ID).await;
    assert_eq!(from_json, from_proto);
    let span = &from_json["spans"][0];
    assert_eq!(span["span_id"], "eee19b7ec3c1b174");
    assert_eq!(span["parent_span_id"], "eee19b7ec3c1b173");
    assert_eq!(span["service"], "catalog-service");
    assert_eq!(span["kind"], "server");
    assert_eq!(span["start_us"], 1_544_712_660_000_000u64);
    assert_eq!(span["duration_us"], 1_000_000);
    assert_eq!(span["status"], "error");
    assert_eq!(span["status_message"], "upstream unavailable");
    assert_eq!(span["attributes"]["http.response.status_code"], 503);
    assert_eq!(span["attributes"]["retry.ratio"], 0.5);
    assert_eq!(span["attributes"]["cache.hit"], true);
    assert_eq!(span["attributes"]["book.tags"], json!(["fiction", 7]));
    assert_eq!(span["attributes"]["book.meta"], json!({"isbn": "978-3"}));
    assert_eq!(span["events"][0]["name"], "cache.miss");
    assert_eq!(span["events"][0]["time_us"], 1_544_712_660_500_000u64);
    assert_eq!(span["links"][0]["span_id"], "b7ad6b7169203331");
    assert_eq!(span["resource"]["host.name"], "catalog-1");
    assert_eq!(span["scope"]["name"], "catalog.lib");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_its_specified_answer() {
    let server = TestServer::start_with(|c| c.limits.max_message_bytes = 4 << 20).await;
    let url = server.otlp_http_url.clone();
    let good = otlp_request("gateway", vec![otlp_span([1; 16], 1, None, "GET /")]).encode_to_vec();

    // Truncated protobuf.
    let (status, content_type, body) = post(
        &url,
        "application/x-protobuf",
        None,
        good[..good.len() - 3].to_vec(),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(content_type, "application/x-protobuf");
    let rpc_status = tonic_types::Status::decode(&body[..]).unwrap();
    assert_eq!(rpc_status.code, 3, "INVALID_ARGUMENT");
    assert!(
        rpc_status.message.contains("protobuf"),
        "{}",
        rpc_status.message
    );

    // Garbage JSON.
    let (status, _, body) = post(
        &url,
        "application/json",
        None,
        b"{\"resourceSpans\": [".to_vec(),
    )
    .await;
    assert_eq!(status, 400);
    let message: Value = serde_json::from_slice(&body).unwrap();
    assert!(
        message["message"].as_str().unwrap().contains("JSON"),
        "{message}"
    );

    // Wrong media type, and an encoding we do not speak.
    let (status, _, _) = post(&url, "text/plain", None, b"hello".to_vec()).await;
    assert_eq!(status, 415);
    let (status, _, _) = post(&url, "application/x-protobuf", Some("br"), good.clone()).await;
    assert_eq!(status, 415);

    // Over the limit, plain and as a gzip bomb (about 4 KiB inflating to 5 MiB).
    let (status, _, _) = post(&url, "application/x-protobuf", None, vec![0x0a; 5 << 20]).await;
    assert_eq!(status, 413);
    let bomb = gzip(&vec![0u8; 5 << 20]);
    assert!(bomb.len() < 64 << 10);
    let (status, _, _) = post(&url, "application/x-protobuf", Some("gzip"), bomb).await;
    assert_eq!(status, 413);
    let (status, _, _) = post(
        &url,
        "application/x-protobuf",
        Some("gzip"),
        b"not gzip".to_vec(),
    )
    .await;
    assert_eq!(status, 400);

    // Invalid ids in part of a batch: the good spans are stored, the rest reported.
    let mut bad_trace = otlp_span([0; 16], 2, None, "zero trace id");
    bad_trace.trace_id = vec![0; 16];
    let mut short_span = otlp_span([2; 16], 3, None, "short span id");
    short_span.span_id = vec![1, 2, 3];
    let batch = otlp_request(
        "gateway",
        vec![otlp_span([2; 16], 4, None, "kept"), bad_trace, short_span],
    );
    let (status, _, body) = post(
        &url,
        "application/json",
        None,
        serde_json::to_vec(&batch).unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let answer: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(answer["partialSuccess"]["rejectedSpans"], "2", "{answer}");
    assert!(answer["partialSuccess"]["errorMessage"]
        .as_str()
        .unwrap()
        .contains("invalid trace id"));
    let (status, trace) = get_json(&format!(
        "{}/api/v1/traces/{}",
        server.api_url,
        hex::encode([2u8; 16])
    ))
    .await;
    assert_eq!(status, 200);
    assert_eq!(trace["spans"].as_array().unwrap().len(), 1);
    assert_eq!(trace["spans"][0]["name"], "kept");

    // And the next good request still succeeds.
    let (status, _, _) = post(&url, "application/x-protobuf", None, good).await;
    assert_eq!(status, 200);

    let (_, metrics) = get_text(&format!("{}/metrics", server.api_url)).await;
    let rejected = |reason: &str| {
        metric(
            &metrics,
            &format!(
                "tracemap_requests_rejected_total{{receiver=\"otlp_http\",reason=\"{reason}\"}}"
            ),
        )
    };
    assert_eq!(rejected("malformed"), Some(3.0), "{metrics}");
    assert_eq!(rejected("too_large"), Some(2.0), "{metrics}");
    assert_eq!(rejected("unsupported_media_type"), Some(1.0), "{metrics}");
    assert_eq!(rejected("unsupported_encoding"), Some(1.0), "{metrics}");
    assert_eq!(
        metric(
            &metrics,
            "tracemap_spans_rejected_total{receiver=\"otlp_http\",reason=\"invalid_trace_id\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(
            &metrics,
            "tracemap_spans_received_total{receiver=\"otlp_http\"}"
        ),
        Some(2.0)
    );
    server.stop().await;
}

/// The Jaeger view of a known trace, compared whole with the JSON built by hand
/// from Jaeger's documented format: envelope, `processes`, `references`, tag
/// `type`s, microseconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jaeger_json_matches_the_documented_shape_exactly() {
    let server = TestServer::start().await;
    let payload = json!({"resourceSpans": [
      {"resource": {"attributes": [
          {"key": "service.name", "value": {"stringValue": "frontend"}},
          {"key": "host.name", "value": {"stringValue": "fe-1"}}]},
       "scopeSpans": [{"spans": [{
          "traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331",
          "name": "GET /books", "kind": 2,
          "startTimeUnixNano": "1764316800000000000", "endTimeUnixNano": "1764316800250000000",
          "attributes": [{"key": "http.response.status_code", "value": {"intValue": "200"}}]}]}]},
      {"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "catalog"}}]},
       "scopeSpans": [{"scope": {"name": "catalog.db", "version": "1.0"}, "spans": [{
          "traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "00f067aa0ba902b7",
          "parentSpanId": "b7ad6b7169203331", "name": "SELECT books", "kind": 3,
          "startTimeUnixNano": "1764316800010000000", "endTimeUnixNano": "1764316800130000000",
          "attributes": [
            {"key": "db.system.name", "value": {"stringValue": "postgresql"}},
            {"key": "db.rows", "value": {"intValue": "12"}},
            {"key": "db.cached", "value": {"boolValue": false}},
            {"key": "db.load", "value": {"doubleValue": 0.25}}],
          "events": [{"timeUnixNano": "1764316800020000000", "name": "retry",
                      "attributes": [{"key": "attempt", "value": {"intValue": "2"}}]}],
          "status": {"code": 2, "message": "timeout"}}]}]}
    ]});
    let (status, _, _) = post(
        &server.otlp_http_url,
        "application/json",
        None,
        serde_json::to_vec(&payload).unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let (status, got) = get_json(&format!(
        "{}/api/traces/0af7651916cd43dd8448eb211c80319c",
        server.api_url
    ))
    .await;
    assert_eq!(status, 200);
    let trace_id = "0af7651916cd43dd8448eb211c80319c";
    let expected = json!({
      "data": [{
        "traceID": trace_id,
        "spans": [
          {"traceID": trace_id, "spanID": "b7ad6b7169203331", "operationName": "GET /books",
           "references": [], "startTime": 1764316800000000u64, "duration": 250000,
           "tags": [
             {"key": "http.response.status_code", "type": "int64", "value": 200},
             {"key": "span.kind", "type": "string", "value": "server"}],
           "logs": [], "processID": "p1", "warnings": null},
          {"traceID": trace_id, "spanID": "00f067aa0ba902b7", "operationName": "SELECT books",
           "references": [{"refType": "CHILD_OF", "traceID": trace_id, "spanID": "b7ad6b7169203331"}],
           "startTime": 1764316800010000u64, "duration": 120000,
           "tags": [
             {"key": "db.system.name", "type": "string", "value": "postgresql"},
             {"key": "db.rows", "type": "int64", "value": 12},
             {"key": "db.cached", "type": "bool", "value": false},
             {"key": "db.load", "type": "float64", "value": 0.25},
             {"key": "span.kind", "type": "string", "value": "client"},
             {"key": "otel.status_code", "type": "string", "value": "ERROR"},
             {"key": "error", "type": "bool", "value": true},
             {"key": "otel.status_description", "type": "string", "value": "timeout"},
             {"key": "otel.scope.name", "type": "string", "value": "catalog.db"},
             {"key": "otel.scope.version", "type": "string", "value": "1.0"}],
           "logs": [{"timestamp": 1764316800020000u64, "fields": [
             {"key": "event", "type": "string", "value": "retry"},
             {"key": "attempt", "type": "int64", "value": 2}]}],
           "processID": "p2", "warnings": null}
        ],
        "processes": {
          "p1": {"serviceName": "frontend", "tags": [{"key": "host.name", "type": "string", "value": "fe-1"}]},
          "p2": {"serviceName": "catalog", "tags": []}
        },
        "warnings": null
      }],
      "total": 1, "limit": 0, "offset": 0, "errors": null
    });
    assert_eq!(got, expected);
    server.stop().await;
}
