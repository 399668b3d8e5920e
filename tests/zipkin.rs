//! Zipkin v2: what zipkin-reporter sends (64-bit ids, a shared client/server
//! span, annotations, tags, gzip), the OpenTelemetry Python SDK's Zipkin
//! exporter, and bad input with its answers and counters.

mod common;

use std::io::Write;

use common::{get_json, get_text, metric, run_python, TestServer};
use serde_json::{json, Value};

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

async fn post(url: &str, content_type: Option<&str>, gzip: bool, body: Vec<u8>) -> u16 {
    let mut request = reqwest::Client::new().post(url).body(body);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    if gzip {
        request = request.header("content-encoding", "gzip");
    }
    request.send().await.unwrap().status().as_u16()
}

/// A client call and the server half sharing its span id, as Brave reports them.
fn reporter_payload() -> Value {
    json!([
      {"traceId": "5af7183fb1d4cf5f", "id": "352bff9a74ca9ad2", "kind": "CLIENT",
       "name": "get /api/books", "timestamp": 1764316800000000u64, "duration": 38000,
       "localEndpoint": {"serviceName": "frontend", "ipv4": "172.17.0.13"},
       "remoteEndpoint": {"serviceName": "catalog", "ipv4": "172.17.0.14", "port": 8080},
       "annotations": [{"timestamp": 1764316800001000u64, "value": "wire send"}],
       "tags": {"http.method": "GET", "http.path": "/api/books"}},
      {"traceId": "5af7183fb1d4cf5f", "id": "352bff9a74ca9ad2", "kind": "SERVER", "shared": true,
       "name": "get /api/books", "timestamp": 1764316800002000u64, "duration": 30000,
       "localEndpoint": {"serviceName": "catalog", "ipv4": "172.17.0.14", "port": 8080},
       "tags": {"http.status_code": "500", "error": "database unavailable"}}
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reporter_json_is_stored_with_shared_spans_apart() {
    let server = TestServer::start().await;
    let body = serde_json::to_vec(&reporter_payload()).unwrap();
    assert_eq!(
        post(
            &server.zipkin_url,
            Some("application/json"),
            true,
            gzip(&body)
        )
        .await,
        202
    );
    // A retried post does not duplicate anything.
    assert_eq!(
        post(&server.zipkin_url, Some("application/json"), false, body).await,
        202
    );

    let (status, trace) = get_json(&format!(
        "{}/api/v1/traces/00000000000000005af7183fb1d4cf5f",
        server.api_url
    ))
    .await;
    assert_eq!(status, 200, "{trace}");
    let spans = trace["spans"].as_array().unwrap();
    assert_eq!(spans.len(), 2, "{trace}");
    let client = spans.iter().find(|s| s["kind"] == "client").unwrap();
    let server_half = spans.iter().find(|s| s["kind"] == "server").unwrap();
    assert_eq!(client["span_id"], "352bff9a74ca9ad2");
    assert_eq!(client["service"], "frontend");
    assert_eq!(client["start_us"], 1_764_316_800_000_000u64);
    assert_eq!(client["duration_us"], 38_000);
    assert_eq!(client["attributes"]["peer.service"], "catalog");
    assert_eq!(client["attributes"]["network.peer.address"], "172.17.0.14");
    assert_eq!(client["attributes"]["network.peer.port"], 8080);
    assert_eq!(client["attributes"]["http.method"], "GET");
    assert_eq!(client["events"][0]["name"], "wire send");
    assert_eq!(client["events"][0]["time_us"], 1_764_316_800_001_000u64);
    assert_ne!(server_half["span_id"], "352bff9a74ca9ad2");
    assert_eq!(server_half["parent_span_id"], "352bff9a74ca9ad2");
    assert_eq!(server_half["service"], "catalog");
    assert_eq!(server_half["status"], "error");
    assert_eq!(server_half["status_message"], "database unavailable");
    assert_eq!(server_half["attributes"]["http.status_code"], "500");
    assert_eq!(trace["summary"]["root_service"], "frontend");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_zipkin_exporter_round_trip() {
    let server = TestServer::start().await;
    let report = run_python(
        "send_zipkin.py",
        vec![
            "--zipkin".into(),
            server.zipkin_url.clone(),
            "--api".into(),
            server.api_url.clone(),
        ],
    )
    .await;
    assert!(report.contains("\"spans\": 3"), "{report}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_zipkin_input_gets_its_answer_and_is_counted() {
    let server = TestServer::start_with(|c| c.limits.max_message_bytes = 1 << 20).await;
    let url = server.zipkin_url.clone();
    assert_eq!(
        post(
            &url,
            Some("application/json"),
            false,
            b"[{\"traceId\": ".to_vec()
        )
        .await,
        400
    );
    assert_eq!(
        post(
            &url,
            Some("application/x-protobuf"),
            false,
            b"\x0a\x00".to_vec()
        )
        .await,
        415
    );
    assert_eq!(
        post(&url, Some("application/json"), false, vec![b' '; 2 << 20]).await,
        413
    );
    assert_eq!(
        post(
            &url,
            Some("application/json"),
            true,
            gzip(&vec![b' '; 4 << 20])
        )
        .await,
        413
    );
    let partly_bad = json!([
        {"traceId": "zz", "id": "352bff9a74ca9ad2", "localEndpoint": {"serviceName": "a"}},
        {"traceId": "6af7183fb1d4cf5f", "id": "352bff9a74ca9ad3", "timestamp": 1, "localEndpoint": {"serviceName": "a"}}
    ]);
    // No content type at all is read as JSON, as curl users expect.
    assert_eq!(
        post(&url, None, false, serde_json::to_vec(&partly_bad).unwrap()).await,
        202
    );
    let (status, _) = get_json(&format!(
        "{}/api/v1/traces/00000000000000006af7183fb1d4cf5f",
        server.api_url
    ))
    .await;
    assert_eq!(status, 200);

    let (_, metrics) = get_text(&format!("{}/metrics", server.api_url)).await;
    let rejected = |reason: &str| {
        metric(
            &metrics,
            &format!("tracemap_requests_rejected_total{{receiver=\"zipkin\",reason=\"{reason}\"}}"),
        )
    };
    assert_eq!(rejected("malformed"), Some(1.0), "{metrics}");
    assert_eq!(rejected("unsupported_media_type"), Some(1.0), "{metrics}");
    assert_eq!(rejected("too_large"), Some(2.0), "{metrics}");
    assert_eq!(
        metric(
            &metrics,
            "tracemap_spans_rejected_total{receiver=\"zipkin\",reason=\"invalid_trace_id\"}"
        ),
        Some(1.0)
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
