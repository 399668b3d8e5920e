//! Queries that would cost too much get bounded answers, quickly: a search
//! that must look at thousands of traces stops at `max_search_time` with what
//! it found and a warning; a Jaeger search stops before its answer passes
//! `max_response_spans`; out-of-range limits and malformed parameters are
//! refused with the parameter named.

mod common;

use std::time::{Duration, Instant};

use common::{get_json, otlp_request, poll_json, string_attr, TestServer};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::trace::v1::Span;

const TRACES: usize = 3_000;
const SPANS_PER_TRACE: u64 = 5;

/// `TRACES` traces of `SPANS_PER_TRACE` spans of `checkout`, each span
/// carrying an attribute no index holds.
fn spans(now_ns: u64) -> Vec<Span> {
    let mut spans = Vec::new();
    for t in 0..TRACES {
        let mut trace_id = [7u8; 16];
        trace_id[..8].copy_from_slice(&(t as u64 + 1).to_be_bytes());
        for s in 0..SPANS_PER_TRACE {
            let mut span = common::otlp_span(trace_id, s + 1, (s > 0).then_some(1), "GET /cart");
            span.start_time_unix_nano = now_ns - 60_000_000_000 + t as u64 * 1_000_000;
            span.end_time_unix_nano = span.start_time_unix_nano + (t as u64 % 97 + 1) * 1_000_000;
            span.attributes.push(string_attr("cart.kind", "big"));
            spans.push(span);
        }
    }
    spans
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn costly_searches_answer_within_their_bounds() {
    let server = TestServer::start_with(|config| {
        config.assembly.trace_idle = Duration::from_millis(200);
        config.query.max_search_time = Duration::from_millis(50);
        config.query.max_response_spans = 32;
    })
    .await;
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let mut client = TraceServiceClient::connect(server.grpc_url.clone())
        .await
        .unwrap();
    let all = spans(now_ns);
    for chunk in all.chunks(5_000) {
        client
            .export(otlp_request("checkout", chunk.to_vec()))
            .await
            .unwrap();
    }
    let api = &server.api_url;
    poll_json(
        &format!("{api}/api/v1/traces?service=checkout&limit=1000&lookback=1h"),
        |body| body["traces"].as_array().unwrap().len() == 1000,
    )
    .await;

    // Slowest first over an attribute no index holds: every trace must be
    // read, which takes longer than 50 ms; the answer comes at the bound.
    let started = Instant::now();
    let (status, body) = get_json(&format!(
        "{api}/api/v1/traces?attr=cart.kind:big&sort=duration&limit=1000&lookback=1h"
    ))
    .await;
    let took = started.elapsed();
    assert_eq!(status, 200, "{body}");
    let found = body["traces"].as_array().unwrap().len();
    assert!(found < TRACES, "all {found} traces read within 50 ms?");
    let warning = body["warnings"][0].as_str().unwrap();
    assert!(warning.contains("search stopped after"), "{warning}");
    assert!(took < Duration::from_secs(2), "{took:?}");

    // An easy search says nothing.
    let (_, easy) = get_json(&format!("{api}/api/v1/traces?service=checkout&limit=5")).await;
    assert_eq!(easy["traces"].as_array().unwrap().len(), 5);
    assert!(easy.get("warnings").is_none(), "{easy}");

    // Jaeger returns whole traces: the answer stops before 32 spans.
    let (status, jaeger) = get_json(&format!(
        "{api}/api/traces?service=checkout&limit=20&lookback=1h"
    ))
    .await;
    assert_eq!(status, 200, "{jaeger}");
    let traces = jaeger["data"].as_array().unwrap();
    let spans: usize = traces
        .iter()
        .map(|t| t["spans"].as_array().unwrap().len())
        .sum();
    assert_eq!(traces.len(), 32 / SPANS_PER_TRACE as usize, "{spans} spans");
    assert!(jaeger["warnings"][0]
        .as_str()
        .unwrap()
        .contains("answer stopped"));

    // Out-of-range and malformed parameters: 400 naming the parameter.
    for (query, named) in [
        ("/api/v1/traces?limit=100000", "limit"),
        ("/api/v1/traces?min_duration=forever", "min_duration"),
        ("/api/v1/traces?lookback=forever", "lookback"),
        ("/api/v1/traces?start=yesterday", "start"),
        ("/api/v1/service-map?depth=99", "depth"),
        ("/api/v1/findings?limit=10001", "limit"),
    ] {
        let (status, body) = get_json(&format!("{api}{query}")).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains(named),
            "{query}: {body}"
        );
    }
    // A range back to the epoch is no error: the scan is bounded all the same.
    let started = Instant::now();
    let (status, _) = get_json(&format!(
        "{api}/api/v1/traces?lookback=1000000000h&attr=cart.kind:small"
    ))
    .await;
    assert_eq!(status, 200);
    assert!(started.elapsed() < Duration::from_secs(2));
    server.stop().await;
}
