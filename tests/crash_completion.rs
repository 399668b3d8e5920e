//! SIGKILL while traces are being completed: with `trace_idle` at 200 ms the
//! server completes traces all the time, so each kill lands among
//! completions — summaries, index entries, map rows and findings being
//! written. After the last restart every stored trace is completed and
//! analysed exactly once: the map counts each call once, each trace's N+1
//! loop is one finding.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{get_json, otlp_request, poll_json, string_attr, ServerProcess};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::trace::v1::Span;
use rand::{Rng, SeedableRng};

const ROUNDS: usize = 6;
/// Database calls in each trace's loop (an N+1: at least 5).
const LOOP: u64 = 6;

fn trace_id(round: usize, n: u64) -> [u8; 16] {
    let mut id = [0u8; 16];
    id[0] = 0x6c;
    id[1] = round as u8;
    id[8..].copy_from_slice(&n.to_be_bytes());
    id
}

/// One trace in one request: `GET /orders` (server) running `LOOP`
/// sequential identical queries against `orders-db`.
fn trace(id: [u8; 16], now_ns: u64) -> Vec<Span> {
    let root = {
        let mut span = common::otlp_span(id, 1, None, "GET /orders");
        span.start_time_unix_nano = now_ns;
        span.end_time_unix_nano = now_ns + (LOOP + 1) * 2_000_000;
        span
    };
    let mut spans = vec![root];
    for i in 0..LOOP {
        let mut call = common::otlp_span(id, i + 2, Some(1), "SELECT orders");
        call.kind = 3; // client
        call.start_time_unix_nano = now_ns + i * 2_000_000 + 100_000;
        call.end_time_unix_nano = call.start_time_unix_nano + 1_500_000;
        call.attributes = vec![
            string_attr("db.system", "postgresql"),
            string_attr("server.address", "orders-db"),
            string_attr(
                "db.statement",
                &format!("SELECT * FROM orders WHERE id = {i}"),
            ),
        ];
        spans.push(call);
    }
    spans
}

/// Sends one-request traces until the server goes away; the acknowledged ids.
async fn send_until_killed(url: String, round: usize) -> BTreeSet<[u8; 16]> {
    let mut acked = BTreeSet::new();
    let Ok(channel) = tonic::transport::Endpoint::from_shared(url)
        .unwrap()
        .timeout(Duration::from_secs(5))
        .connect()
        .await
    else {
        return acked;
    };
    let mut client = TraceServiceClient::new(channel);
    for n in 0.. {
        let id = trace_id(round, n);
        let now_ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        match client
            .export(otlp_request("order-service", trace(id, now_ns)))
            .await
        {
            Ok(_) => acked.insert(id),
            Err(_) => return acked,
        };
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    acked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_completion_leaves_every_trace_analysed_once() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tracemap.toml");
    std::fs::write(&config, "[assembly]\ntrace_idle = \"200ms\"\n").unwrap();
    let data = dir.path().join("data");
    let ports = (
        common::free_port(),
        common::free_port(),
        common::free_port(),
    );
    let args = ["--config", config.to_str().unwrap()];
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x6c);
    let mut acked = BTreeSet::new();
    for round in 0..ROUNDS {
        let mut server = ServerProcess::spawn_with(&data, ports, &args);
        let sender = tokio::spawn(send_until_killed(server.grpc_url(), round));
        // Past the first completions, so the kill lands among them.
        tokio::time::sleep(Duration::from_millis(rng.random_range(400..1200))).await;
        server.kill9();
        acked.extend(sender.await.unwrap());
    }
    let server = ServerProcess::spawn_with(&data, ports, &args);
    let api = server.api_url();
    assert!(acked.len() > 50, "only {} traces acknowledged", acked.len());

    // Every acknowledged trace completes (recovered ones included); traces
    // written but not acknowledged before a kill may be there too.
    let search = format!("{api}/api/v1/traces?service=order-service&limit=1000&lookback=1h");
    let found = poll_json(&search, |body| {
        let ids: BTreeSet<String> = body["traces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["trace_id"].as_str().unwrap().to_string())
            .collect();
        acked.iter().all(|id| ids.contains(&hex::encode(id)))
    })
    .await;
    let stored = found["traces"].as_array().unwrap().len() as i64;
    assert!(stored < 1000, "raise the search limit");
    // Let the last completions land, then count: each trace exactly once.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let (_, map) = get_json(&format!("{api}/api/v1/service-map?lookback=1h")).await;
    let requests = |source: &str, target: &str| {
        map["edges"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["source"] == source && e["target"] == target)
            .map_or(0, |e| e["requests"].as_i64().unwrap())
    };
    assert_eq!(requests("user", "order-service"), stored, "{map}");
    assert_eq!(
        requests("order-service", "orders-db"),
        stored * LOOP as i64,
        "{map}"
    );
    let (_, findings) = get_json(&format!(
        "{api}/api/v1/findings?kind=n_plus_one&lookback=1h&limit=10000"
    ))
    .await;
    let findings = findings["findings"].as_array().unwrap();
    let traces_with: BTreeSet<&str> = findings
        .iter()
        .map(|f| f["trace_id"].as_str().unwrap())
        .collect();
    assert_eq!(findings.len() as i64, stored, "one N+1 finding per trace");
    assert_eq!(traces_with.len() as i64, stored);
    eprintln!(
        "{} acknowledged, {stored} stored and analysed once over {ROUNDS} kills",
        acked.len()
    );
}
