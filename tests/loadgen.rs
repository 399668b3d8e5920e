//! `tracemap loadgen` against the real server in process: at a fixed rate and
//! as fast as acknowledged over OTLP/gRPC and OTLP/HTTP, and at a fixed rate
//! as X-Ray UDP segments; what it reports acknowledged is what the server
//! counted as received.

mod common;

use std::time::{Duration, Instant};

use common::{get_text, metric, TestServer};
use tracemap::loadgen::{self, Options, Report, Target};

/// Waits until the server's received-span counter for `receiver` reaches
/// `want` (X-Ray datagrams are processed after they are sent), and returns it.
async fn received(server: &TestServer, receiver: &str, want: u64) -> u64 {
    let series = format!("tracemap_spans_received_total{{receiver=\"{receiver}\"}}");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, metrics) = get_text(&format!("{}/metrics", server.api_url)).await;
        let got = metric(&metrics, &series).unwrap_or(0.0) as u64;
        if got >= want || Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn assert_acknowledged(report: &Report) {
    eprint!("{report}");
    assert!(report.spans_acknowledged > 0, "{report}");
    assert_eq!(report.refused, 0, "{report}");
    assert_eq!(report.errors, 0, "{report}");
    assert_eq!(report.spans_rejected, 0, "{report}");
    let latency = report.latency.expect("latency percentiles");
    assert!(latency.p50 > Duration::ZERO, "{report}");
    assert!(latency.p50 <= latency.p99, "{report}");
    assert!(latency.p99 <= latency.p999, "{report}");
    assert!(latency.p999 <= latency.max, "{report}");
}

async fn otlp_run(target: Target, receiver: &str) {
    let server = TestServer::start().await;
    let endpoint = match target {
        Target::Grpc => server.grpc_url.clone(),
        _ => server.otlp_http_url.clone(),
    };
    let paced = loadgen::run(Options {
        target,
        endpoint: Some(endpoint.clone()),
        rate: Some(5_000),
        connections: 1,
        duration: Duration::from_secs(2),
        server_pid: Some(std::process::id()),
        ..Options::default()
    })
    .await
    .unwrap();
    assert_acknowledged(&paced);
    // 5,000 spans/s in requests of 512 for 2 s: 20 requests, give or take the edges.
    assert!((15..=22).contains(&paced.requests_acknowledged), "{paced}");
    let usage = paced.server.expect("usage of the server's process");
    assert!(usage.peak_rss_bytes > 0);
    assert_eq!(
        received(&server, receiver, paced.spans_acknowledged).await,
        paced.spans_acknowledged
    );

    let flat_out = loadgen::run(Options {
        target,
        endpoint: Some(endpoint),
        rate: None,
        connections: 2,
        duration: Duration::from_secs(1),
        ..Options::default()
    })
    .await
    .unwrap();
    assert_acknowledged(&flat_out);
    assert_eq!(
        received(
            &server,
            receiver,
            paced.spans_acknowledged + flat_out.spans_acknowledged
        )
        .await,
        paced.spans_acknowledged + flat_out.spans_acknowledged
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_spans_acknowledged_are_the_spans_received() {
    otlp_run(Target::Grpc, "otlp_grpc").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_spans_acknowledged_are_the_spans_received() {
    otlp_run(Target::Http, "otlp_http").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xray_datagrams_sent_at_a_modest_rate_are_all_received() {
    let server = TestServer::start().await;
    let report = loadgen::run(Options {
        target: Target::Xray,
        endpoint: Some(server.xray_addr.to_string()),
        rate: Some(5_000),
        connections: 1,
        duration: Duration::from_secs(2),
        ..Options::default()
    })
    .await
    .unwrap();
    eprint!("{report}");
    assert_eq!(report.errors, 0, "{report}");
    assert!(report.latency.is_none());
    // 5,000 datagrams/s for 2 s, paced in 5 ms slices.
    assert!((8_000..=10_500).contains(&report.spans_sent), "{report}");
    assert_eq!(
        received(&server, "xray", report.spans_sent).await,
        report.spans_sent
    );
    server.stop().await;
}
