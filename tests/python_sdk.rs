//! The Python OpenTelemetry SDK's OTLP exporters (gRPC with gzip, HTTP protobuf
//! with and without gzip) against the real server. The script records spans with
//! the SDK, exports them, and prints what it recorded; every span must come
//! back with its attributes, events, status, kind, links and parent.

mod common;

use common::TestServer;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_exporters_round_trip() {
    let server = TestServer::start().await;
    let output = common::run_python(
        "send_spans.py",
        vec![
            "--grpc".into(),
            server.grpc_url.clone(),
            "--http".into(),
            server.otlp_http_url.clone(),
        ],
    )
    .await;
    let expected: Vec<Value> = serde_json::from_str(&output).unwrap();
    assert_eq!(expected.len(), 3 * 3, "three exporters, three spans each");

    for want in &expected {
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
            "attributes",
            "events",
            "links",
        ] {
            assert_eq!(got[field], want[field], "{field} of {}", want["name"]);
        }
        let duration = got["duration_us"].as_i64().unwrap();
        let want_duration = want["duration_us"].as_i64().unwrap();
        assert!(
            (duration - want_duration).abs() <= 1,
            "duration of {}",
            want["name"]
        );
    }

    let (_, metrics) = common::get_text(&format!("{}/metrics", server.api_url)).await;
    assert_eq!(
        common::metric(
            &metrics,
            "tracemap_spans_received_total{receiver=\"otlp_grpc\"}"
        ),
        Some(3.0)
    );
    assert_eq!(
        common::metric(
            &metrics,
            "tracemap_spans_received_total{receiver=\"otlp_http\"}"
        ),
        Some(6.0)
    );
    server.stop().await;
}
