//! The Zipkin v2 receiver against the real server: JSON the way zipkin-reporter
//! posts it (64-bit ids, a shared client/server span, annotations, tags, gzip)
//! read back whole; the OpenTelemetry Python SDK's Zipkin exporter round trip;
//! and bad input, each answer with its status and its counter.

mod common;

use std::io::Write;

use common::{get_json, get_text, metric, run_python, TestServer};
use serde_json::{json, Value};

const TRACE_ID: &str = "00000000000000005af7183fb1d4cf5f";

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

/// Posts a body; returns the status, the `Retry-After` header and the body text.
async fn post(
    url: &str,
    content_type: Option<&str>,
    encoding: Option<&str>,
    body: Vec<u8>,
) -> (u16, Option<String>, String) {
    let mut request = reqwest::Client::new().post(url).body(body);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    if let Some(encoding) = encoding {
        request = request.header("content-encoding", encoding);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    (status, retry_after, response.text().await.unwrap())
}

/// A request into `frontend` that calls `catalog`, as Brave reports it: the
/// frontend's server span, its client span, and catalog's server half sharing
/// the client's span id (B3 single-host spans), 64-bit trace id.
fn reporter_payload() -> Value {
    json!([
      {"traceId": "5af7183fb1d4cf5f", "id": "6b221d5bc9e6496c", "kind": "SERVER",
       "name": "get /", "timestamp": 1764316799990000u64, "duration": 60000,
       "localEndpoint": {"serviceName": "frontend", "ipv4": "172.17.0.13", "port": 8081},
       "remoteEndpoint": {"ipv6": "2001:db8::1", "port": 52144},
       "tags": {"http.method": "GET", "http.path": "/"}},
      {"traceId": "5af7183fb1d4cf5f", "parentId": "6b221d5bc9e6496c", "id": "352bff9a74ca9ad2",
       "kind": "CLIENT", "name": "get /api/books",
       "timestamp": 1764316800000000u64, "duration": 38000,
       "localEndpoint": {"serviceName": "frontend", "ipv4": "172.17.0.13"},
       "remoteEndpoint": {"serviceName": "catalog", "ipv4": "172.17.0.14", "port": 8080},
       "annotations": [{"timestamp": 1764316800001000u64, "value": "ws"},
                       {"timestamp": 1764316800037000u64, "value": "wr"}],
       "tags": {"http.method": "GET", "http.path": "/api/books"}},
      {"traceId": "5af7183fb1d4cf5f", "parentId": "6b221d5bc9e6496c", "id": "352bff9a74ca9ad2",
       "kind": "SERVER", "shared": true, "name": "get /api/books",
       "timestamp": 1764316800002000u64, "duration": 30000,
       "localEndpoint": {"serviceName": "catalog", "ipv4": "172.17.0.14", "port": 8080},
       "remoteEndpoint": {"ipv4": "172.17.0.13"},
       "annotations": [{"timestamp": 1764316800029000u64, "value": "db retry"}],
       "tags": {"http.method": "GET", "http.path": "/api/books", "http.status_code": "500",
                "error": "database unavailable"}}
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reporter_json_is_stored_whole_with_shared_spans_apart() {
    let server = TestServer::start().await;
    let body = serde_json::to_vec(&reporter_payload()).unwrap();
    let (status, _, answer) = post(
        &server.zipkin_url,
        Some("application/json"),
        Some("gzip"),
        gzip(&body),
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer, "");
    // A retried post (this time plain) duplicates nothing: the derived id is stable.
    let (status, _, _) = post(&server.zipkin_url, Some("application/json"), None, body).await;
    assert_eq!(status, 202);

    let (status, trace) = get_json(&format!("{}/api/v1/traces/{TRACE_ID}", server.api_url)).await;
    assert_eq!(status, 200, "{trace}");
    let spans = trace["spans"].as_array().unwrap();
    assert_eq!(spans.len(), 3, "{trace}");
    let by_service_and_kind = |service: &str, kind: &str| {
        spans
            .iter()
            .find(|s| s["service"] == service && s["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} span of {service} in {trace}"))
            .clone()
    };
    let root = by_service_and_kind("frontend", "server");
    let client = by_service_and_kind("frontend", "client");
    let mut server_half = by_service_and_kind("catalog", "server");

    let derived = server_half["span_id"].as_str().unwrap().to_string();
    assert_eq!(derived.len(), 16);
    assert!(derived.chars().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(derived, "352bff9a74ca9ad2");
    server_half["span_id"] = Value::Null;

    let no_scope = json!({"name": "", "version": ""});
    assert_eq!(
        root,
        json!({
            "span_id": "6b221d5bc9e6496c", "parent_span_id": null, "service": "frontend",
            "name": "get /", "kind": "server",
            "start_us": 1764316799990000u64, "duration_us": 60000,
            "status": "unset", "status_message": "",
            "dropped_attributes_count": 0, "dropped_events_count": 0, "dropped_links_count": 0,
            "attributes": {"http.method": "GET", "http.path": "/",
                           "network.local.address": "172.17.0.13", "network.local.port": 8081,
                           "network.peer.address": "2001:db8::1", "network.peer.port": 52144},
            "events": [], "links": [], "resource": {}, "scope": no_scope,
        })
    );
    assert_eq!(
        client,
        json!({
            "span_id": "352bff9a74ca9ad2", "parent_span_id": "6b221d5bc9e6496c",
            "service": "frontend", "name": "get /api/books", "kind": "client",
            "start_us": 1764316800000000u64, "duration_us": 38000,
            "status": "unset", "status_message": "",
            "dropped_attributes_count": 0, "dropped_events_count": 0, "dropped_links_count": 0,
            "attributes": {"http.method": "GET", "http.path": "/api/books",
                           "network.local.address": "172.17.0.13",
                           "peer.service": "catalog", "network.peer.address": "172.17.0.14",
                           "network.peer.port": 8080},
            "events": [
                {"name": "ws", "time_us": 1764316800001000u64, "attributes": {}},
                {"name": "wr", "time_us": 1764316800037000u64, "attributes": {}}],
            "links": [], "resource": {}, "scope": no_scope,
        })
    );
    assert_eq!(
        server_half,
        json!({
            "span_id": null, "parent_span_id": "352bff9a74ca9ad2",
            "service": "catalog", "name": "get /api/books", "kind": "server",
            "start_us": 1764316800002000u64, "duration_us": 30000,
            "status": "error", "status_message": "database unavailable",
            "dropped_attributes_count": 0, "dropped_events_count": 0, "dropped_links_count": 0,
            "attributes": {"http.method": "GET", "http.path": "/api/books",
                           "http.status_code": "500",
                           "network.local.address": "172.17.0.14", "network.local.port": 8080,
                           "network.peer.address": "172.17.0.13"},
            "events": [{"name": "db retry", "time_us": 1764316800029000u64, "attributes": {}}],
            "links": [], "resource": {}, "scope": no_scope,
        })
    );
    assert_eq!(trace["summary"]["root_service"], "frontend");
    assert_eq!(trace["summary"]["root_operation"], "get /");

    // Jaeger sees the server half as the client's child, as its own Zipkin intake does.
    let (status, jaeger) = get_json(&format!("{}/api/traces/{TRACE_ID}", server.api_url)).await;
    assert_eq!(status, 200);
    let jaeger_half = jaeger["data"][0]["spans"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["spanID"] == derived.as_str())
        .unwrap();
    assert_eq!(
        jaeger_half["references"],
        json!([{"refType": "CHILD_OF", "traceID": TRACE_ID, "spanID": "352bff9a74ca9ad2"}])
    );

    let (_, metrics) = get_text(&format!("{}/metrics", server.api_url)).await;
    assert_eq!(
        metric(
            &metrics,
            "tracemap_spans_received_total{receiver=\"zipkin\"}"
        ),
        Some(6.0),
        "{metrics}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_zipkin_exporter_round_trip() {
    let server = TestServer::start().await;
    let output = run_python("send_zipkin.py", vec![server.zipkin_url.clone()]).await;
    let recorded: Vec<Value> = serde_json::from_str(&output).unwrap();
    assert_eq!(recorded.len(), 4, "{output}");

    for want in &recorded {
        let got = common::stored_span(
            &server.api_url,
            want["trace_id"].as_str().unwrap(),
            want["span_id"].as_str().unwrap(),
        )
        .await;
        for field in [
            "service",
            "name",
            "kind",
            "parent_span_id",
            "status",
            "status_message",
            "start_us",
            "duration_us",
            "attributes",
            "events",
            "links",
            "resource",
            "scope",
        ] {
            assert_eq!(got[field], want[field], "{field} of {}", want["name"]);
        }
    }

    let (_, metrics) = get_text(&format!("{}/metrics", server.api_url)).await;
    assert_eq!(
        metric(
            &metrics,
            "tracemap_spans_received_total{receiver=\"zipkin\"}"
        ),
        Some(4.0)
    );
    server.stop().await;
}

/// Bytes that do not compress, from a fixed seed.
fn incompressible(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_zipkin_input_gets_its_answer_and_is_counted() {
    // The in-flight budget is one request's worth, so a large gzip post (its
    // compressed and inflated bytes both held) overruns it.
    let server = TestServer::start_with(|c| {
        c.limits.max_message_bytes = 1 << 20;
        c.limits.max_inflight_bytes = 1 << 20;
    })
    .await;
    let url = server.zipkin_url.clone();
    let json = Some("application/json");

    // Not JSON, and JSON that is not a list of spans.
    let (status, _, answer) = post(&url, json, None, b"[{\"traceId\": ".to_vec()).await;
    assert_eq!(status, 400);
    assert!(answer.contains("Zipkin v2 JSON"), "{answer}");
    let (status, _, _) = post(
        &url,
        json,
        None,
        b"{\"traceId\": \"5af7183fb1d4cf5f\"}".to_vec(),
    )
    .await;
    assert_eq!(status, 400);

    // Zipkin's proto3 encoding, and a content encoding we do not speak.
    let (status, _, answer) = post(
        &url,
        Some("application/x-protobuf"),
        None,
        b"\x0a\x00".to_vec(),
    )
    .await;
    assert_eq!(status, 415);
    assert!(answer.contains("JSON only"), "{answer}");
    let (status, _, _) = post(&url, json, Some("br"), b"[]".to_vec()).await;
    assert_eq!(status, 415);

    // Over the limit: plain, and a gzip bomb (a few KiB inflating to 4 MiB).
    let (status, _, _) = post(&url, json, None, vec![b' '; 2 << 20]).await;
    assert_eq!(status, 413);
    let bomb = gzip(&vec![b' '; 4 << 20]);
    assert!(bomb.len() < 64 << 10);
    let (status, _, answer) = post(&url, json, Some("gzip"), bomb).await;
    assert_eq!(status, 413, "{answer}");
    let (status, _, _) = post(&url, json, Some("gzip"), b"not gzip".to_vec()).await;
    assert_eq!(status, 400);

    // Over the in-flight budget: refused as retryable.
    let (status, retry_after, _) =
        post(&url, json, Some("gzip"), gzip(&incompressible(700 << 10))).await;
    assert_eq!(status, 503);
    assert_eq!(retry_after.as_deref(), Some("1"));

    // Invalid ids in part of a list: the good span is stored, the others counted.
    let partly_bad = json!([
        {"traceId": "zz", "id": "352bff9a74ca9ad2", "localEndpoint": {"serviceName": "a"}},
        {"traceId": "6af7183fb1d4cf5f", "id": "0000000000000000", "localEndpoint": {"serviceName": "a"}},
        {"traceId": "6af7183fb1d4cf5f", "id": "352bff9a74ca9ad4", "parentId": "xyz",
         "localEndpoint": {"serviceName": "a"}},
        {"traceId": "6af7183fb1d4cf5f", "id": "352bff9a74ca9ad3", "name": "kept", "timestamp": 1,
         "localEndpoint": {"serviceName": "a"}}
    ]);
    // No content type at all is read as JSON, as Zipkin reads it.
    let (status, _, answer) =
        post(&url, None, None, serde_json::to_vec(&partly_bad).unwrap()).await;
    assert_eq!(status, 202);
    assert!(answer.starts_with("3 of 4 span(s) refused"), "{answer}");
    let (status, trace) = get_json(&format!(
        "{}/api/v1/traces/00000000000000006af7183fb1d4cf5f",
        server.api_url
    ))
    .await;
    assert_eq!(status, 200);
    let spans = trace["spans"].as_array().unwrap();
    assert_eq!(spans.len(), 1, "{trace}");
    assert_eq!(spans[0]["name"], "kept");

    let (_, metrics) = get_text(&format!("{}/metrics", server.api_url)).await;
    let requests_rejected = |reason: &str| {
        metric(
            &metrics,
            &format!("tracemap_requests_rejected_total{{receiver=\"zipkin\",reason=\"{reason}\"}}"),
        )
    };
    assert_eq!(requests_rejected("malformed"), Some(3.0), "{metrics}");
    assert_eq!(
        requests_rejected("unsupported_media_type"),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        requests_rejected("unsupported_encoding"),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(requests_rejected("too_large"), Some(2.0), "{metrics}");
    assert_eq!(requests_rejected("overloaded"), Some(1.0), "{metrics}");
    let spans_rejected = |reason: &str| {
        metric(
            &metrics,
            &format!("tracemap_spans_rejected_total{{receiver=\"zipkin\",reason=\"{reason}\"}}"),
        )
    };
    assert_eq!(spans_rejected("invalid_trace_id"), Some(1.0), "{metrics}");
    assert_eq!(spans_rejected("invalid_span_id"), Some(1.0), "{metrics}");
    assert_eq!(
        spans_rejected("invalid_parent_span_id"),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        metric(
            &metrics,
            "tracemap_spans_received_total{receiver=\"zipkin\"}"
        ),
        Some(1.0)
    );
    server.stop().await;
}
