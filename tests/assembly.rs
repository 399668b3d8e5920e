//! Assembly and search: traces from several services arriving in several
//! batches, out of order and late, are completed once idle, found through the
//! indexes by service, correlation id, duration and error, re-completed
//! without duplicates when a late span arrives, and recovered after SIGKILL.

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{get_json, otlp_request, otlp_span, ServerProcess, TestServer};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::trace::v1::Span;
use serde_json::Value;
use tracemap::storage::rocks::{RocksOptions, RocksStore};

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// A span of `trace` starting `ago_ms` before `base_ns` and lasting `ms`.
#[allow(clippy::too_many_arguments)]
fn span(
    base_ns: u64,
    trace: u8,
    id: u64,
    parent: Option<u64>,
    name: &str,
    ago_ms: u64,
    ms: u64,
    correlation: &str,
) -> Span {
    let mut span = otlp_span([trace; 16], id, parent, name);
    span.start_time_unix_nano = base_ns - ago_ms * 1_000_000;
    span.end_time_unix_nano = span.start_time_unix_nano + ms * 1_000_000;
    span.attributes = vec![common::string_attr("correlation_id", correlation)];
    span
}

async fn send(url: &str, service: &str, spans: Vec<Span>) {
    let mut client = TraceServiceClient::connect(url.to_string()).await.unwrap();
    client.export(otlp_request(service, spans)).await.unwrap();
}

async fn wait_complete(api: &str, trace: u8, spans: usize) -> Value {
    let url = format!("{api}/api/v1/traces/{}", hex::encode([trace; 16]));
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, body) = get_json(&url).await;
        if status == 200
            && body["summary"]["complete"] == true
            && body["spans"].as_array().unwrap().len() == spans
        {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "trace {trace} never completed: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn search(api: &str, query: &str) -> Vec<String> {
    let (status, body) = get_json(&format!("{api}/api/v1/traces?{query}")).await;
    assert_eq!(status, 200, "{query}: {body}");
    body["traces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["trace_id"].as_str().unwrap()[..2].to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traces_complete_and_are_found_by_every_indexed_filter() {
    let server = TestServer::start_with(|c| c.assembly.trace_idle = Duration::from_secs(1)).await;
    let url = server.grpc_url.clone();
    let base = now_ns();
    // Trace 0xaa: gateway → order, 120 ms, req_A; the child arrives first.
    send(
        &url,
        "order",
        vec![span(
            base,
            0xaa,
            2,
            Some(1),
            "SELECT orders",
            900,
            80,
            "req_A",
        )],
    )
    .await;
    let mut root = span(base, 0xaa, 1, None, "GET /orders", 920, 120, "req_A");
    root.attributes
        .push(common::string_attr("http.route", "/orders"));
    send(&url, "gateway", vec![root]).await;
    // Trace 0xbb: gateway → search, 40 ms, failed, req_B.
    let mut failed = span(base, 0xbb, 4, Some(3), "GET /search", 600, 30, "req_B");
    failed.status = Some(opentelemetry_proto::tonic::trace::v1::Status {
        code: 2,
        message: "boom".into(),
    });
    send(&url, "search", vec![failed]).await;
    send(
        &url,
        "gateway",
        vec![span(base, 0xbb, 3, None, "GET /search", 610, 40, "req_B")],
    )
    .await;
    // Trace 0xcc: gateway only, 500 ms, carries req_A too.
    let mut slow = span(base, 0xcc, 5, None, "GET /orders/slow", 1000, 500, "req_A");
    slow.attributes
        .push(common::string_attr("http.route", "/orders/slow"));
    send(&url, "gateway", vec![slow]).await;

    let a = wait_complete(&server.api_url, 0xaa, 2).await;
    assert_eq!(a["summary"]["root_service"], "gateway");
    assert_eq!(
        a["summary"]["services"],
        serde_json::json!(["gateway", "order"])
    );
    wait_complete(&server.api_url, 0xbb, 2).await;
    wait_complete(&server.api_url, 0xcc, 1).await;

    let api = &server.api_url;
    assert_eq!(
        search(api, "correlation_id=req_A").await,
        ["aa", "cc"],
        "newest first"
    );
    assert_eq!(
        search(api, "correlation_id=req_A&sort=duration").await,
        ["cc", "aa"]
    );
    assert_eq!(search(api, "service=search").await, ["bb"]);
    assert_eq!(
        search(api, "service=gateway&min_duration=100ms").await,
        ["aa", "cc"]
    );
    assert_eq!(search(api, "max_duration=0.1s").await, ["bb"]);
    assert_eq!(search(api, "error=true").await, ["bb"]);
    assert_eq!(search(api, "limit=1").await, ["bb"]);
    assert!(search(api, "lookback=1ms&end=1000").await.is_empty());
    assert_eq!(search(api, "operation=SELECT%20orders").await, ["aa"]);
    assert_eq!(search(api, "attr=correlation_id:req_B").await, ["bb"]);
    // Through the service + operation index: the operation is the service's.
    assert_eq!(
        search(api, "service=gateway&operation=GET%20%2Forders").await,
        ["aa"]
    );
    assert!(search(api, "service=order&operation=GET%20%2Forders")
        .await
        .is_empty());
    // Through the indexed-attribute index (`http.route` is indexed by default).
    assert_eq!(search(api, "attr=http.route:/orders").await, ["aa"]);
    assert_eq!(
        search(api, "attr=http.route:/orders/slow&min_duration=200ms").await,
        ["cc"]
    );
    assert!(search(api, "attr=http.route:/orders&service=search")
        .await
        .is_empty());
    assert_eq!(
        search(
            api,
            "service=gateway&attr=correlation_id:req_A&attr=correlation_id:req_A"
        )
        .await,
        ["aa", "cc"]
    );
    // `finding=` itself is tested with planted problems in tests/findings.rs.
    let (status, body) = get_json(&format!("{api}/api/v1/traces?finding=slowness")).await;
    assert_eq!(status, 400);
    assert!(
        body["error"].as_str().unwrap().contains("n_plus_one"),
        "{body}"
    );
    let (status, body) = get_json(&format!("{api}/api/v1/traces?min_duration=soon")).await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("min_duration"));

    // The Jaeger pickers list what the completed traces hold.
    let (_, services) = get_json(&format!("{api}/api/services")).await;
    assert_eq!(
        services["data"],
        serde_json::json!(["gateway", "order", "search"])
    );
    assert_eq!(services["total"], 3);
    let (_, operations) = get_json(&format!("{api}/api/services/gateway/operations")).await;
    assert_eq!(
        operations["data"],
        serde_json::json!(["GET /orders", "GET /orders/slow", "GET /search"])
    );
    let (_, typed) = get_json(&format!(
        "{api}/api/operations?service=order&spanKind=server"
    ))
    .await;
    assert_eq!(
        typed["data"],
        serde_json::json!([{"name": "SELECT orders", "spanKind": "server"}])
    );
    let (status, missing) = get_json(&format!("{api}/api/operations")).await;
    assert_eq!(status, 400);
    assert_eq!(missing["errors"][0]["code"], 400);

    // Jaeger's search: a trace matches when one span matches everything.
    let jaeger = |query: &'static str| {
        let url = format!("{api}/api/traces?{query}");
        async move {
            let (status, body) = get_json(&url).await;
            assert_eq!(status, 200, "{query}: {body}");
            let mut ids: Vec<String> = body["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["traceID"].as_str().unwrap()[..2].to_string())
                .collect();
            ids.sort();
            ids
        }
    };
    assert_eq!(jaeger("service=gateway").await, ["aa", "bb", "cc"]);
    assert_eq!(
        jaeger("service=gateway&operation=GET%20%2Forders").await,
        ["aa"]
    );
    assert_eq!(jaeger("service=gateway&minDuration=200ms").await, ["cc"]);
    assert_eq!(
        jaeger("service=gateway&tag=http.route:/orders").await,
        ["aa"]
    );
    assert!(jaeger("service=order&operation=GET%20%2Forders")
        .await
        .is_empty());
    assert_eq!(jaeger("service=search&tag=error:true").await, ["bb"]);
    assert_eq!(
        jaeger("service=order&tags=%7B%22correlation_id%22%3A%22req_A%22%7D").await,
        ["aa"]
    );
    assert_eq!(
        jaeger("service=gateway&tag=correlation_id:req_A&maxDuration=150ms").await,
        ["aa"]
    );
    assert!(jaeger("service=order&minDuration=1s").await.is_empty());
    let (status, body) = get_json(&format!(
        "{api}/api/traces?service=gateway&minDuration=fast"
    ))
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["errors"][0]["code"], 400);

    // A late span re-opens 0xaa; after re-completion it is found by its new
    // service and still once by its correlation id.
    send(
        &url,
        "payment",
        vec![span(
            base,
            0xaa,
            6,
            Some(1),
            "POST /charge",
            850,
            20,
            "req_A",
        )],
    )
    .await;
    let (_, reopened) = get_json(&format!(
        "{api}/api/v1/traces/{}",
        hex::encode([0xaa_u8; 16])
    ))
    .await;
    assert_eq!(reopened["summary"]["complete"], false);
    wait_complete(api, 0xaa, 3).await;
    assert_eq!(search(api, "service=payment").await, ["aa"]);
    let (_, services) = get_json(&format!("{api}/api/services")).await;
    assert_eq!(
        services["data"],
        serde_json::json!(["gateway", "order", "payment", "search"])
    );
    assert_eq!(search(api, "correlation_id=req_A").await, ["aa", "cc"]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_traces_survive_sigkill_and_complete_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tracemap.toml");
    std::fs::write(&config, "[assembly]\ntrace_idle = \"1s\"\n").unwrap();
    let data = dir.path().join("data");
    let ports = (
        common::free_port(),
        common::free_port(),
        common::free_port(),
    );
    let config_arg = config.to_str().unwrap();
    let base = now_ns();
    let mut server = ServerProcess::spawn_with(&data, ports, &["--config", config_arg]);
    send(
        &server.grpc_url(),
        "gateway",
        vec![span(base, 0xdd, 1, None, "GET /", 100, 10, "req_D")],
    )
    .await;
    server.kill9();
    let mut server = ServerProcess::spawn_with(&data, ports, &["--config", config_arg]);
    let body = wait_complete(&server.api_url(), 0xdd, 1).await;
    assert_eq!(
        body["summary"]["correlation_ids"],
        serde_json::json!(["req_D"])
    );
    assert_eq!(
        search(&server.api_url(), "correlation_id=req_D").await,
        ["dd"]
    );
    // Each completion, of the recovered trace and of one sent now, deleted
    // its request's journal entry: nothing is left for the next recovery.
    send(
        &server.grpc_url(),
        "gateway",
        vec![span(now_ns(), 0xde, 1, None, "GET /", 100, 10, "req_E")],
    )
    .await;
    wait_complete(&server.api_url(), 0xde, 1).await;
    assert!(server.terminate().success());
    let store = RocksStore::open(&data, &RocksOptions::default()).unwrap();
    assert_eq!(store.journal_entries().unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traces_past_retention_disappear_from_every_query() {
    let server = TestServer::start_with(|c| {
        c.assembly.trace_idle = Duration::from_millis(200);
        c.storage.retention = Duration::from_secs(5);
        c.storage.retention_check_interval = Duration::from_millis(100);
    })
    .await;
    // A trace from two hours ago: past retention by its timestamps, but kept
    // until its spans have also been stored for the retention.
    let two_hours_ms = 2 * 3600 * 1000;
    let old_span = span(
        now_ns(),
        0xe1,
        1,
        None,
        "GET /old",
        two_hours_ms,
        5,
        "req_old",
    );
    send(&server.grpc_url, "gateway", vec![old_span]).await;
    wait_complete(&server.api_url, 0xe1, 1).await;
    tokio::time::sleep(Duration::from_millis(5_500)).await;
    let new_span = span(now_ns(), 0xe2, 1, None, "GET /new", 100, 5, "req_new");
    send(&server.grpc_url, "gateway", vec![new_span]).await;
    let old = format!(
        "{}/api/v1/traces/{}",
        server.api_url,
        hex::encode([0xe1_u8; 16])
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    while get_json(&old).await.0 != 404 {
        if Instant::now() >= deadline {
            let (_, metrics) = common::get_text(&format!("{}/metrics", server.api_url)).await;
            panic!("the expired trace is still there\n{metrics}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wait_complete(&server.api_url, 0xe2, 1).await;
    assert!(
        search(&server.api_url, "correlation_id=req_old&lookback=24h")
            .await
            .is_empty()
    );
    assert_eq!(search(&server.api_url, "lookback=24h").await, ["e2"]);
    let (_, metrics) = common::get_text(&format!("{}/metrics", server.api_url)).await;
    let cutoff = common::metric(&metrics, "tracemap_retention_cutoff_timestamp_seconds");
    let expected = (now_ns() / 1_000_000_000) as f64 - 5.0;
    assert!(
        cutoff.is_some_and(|c| (expected - 2.0..=expected).contains(&c)),
        "{metrics}"
    );
    server.stop().await;
}
