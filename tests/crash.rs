//! Durability: a client streams numbered spans while the server is killed with
//! SIGKILL at random moments; after every restart each acknowledged span is
//! readable. Also: SIGTERM shuts down cleanly and loses nothing.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::{get_json, otlp_request, otlp_span, ServerProcess};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use rand::{Rng, SeedableRng};

const ROUNDS: usize = 10;
const SPANS_PER_REQUEST: u64 = 40;
const TRACES_PER_ROUND: u64 = 4;

type Acked = BTreeMap<[u8; 16], BTreeSet<u64>>;

fn trace_id(round: usize, n: u64) -> [u8; 16] {
    let mut id = [0u8; 16];
    id[0] = 0x7e;
    id[1] = round as u8;
    id[8..].copy_from_slice(&n.to_be_bytes());
    id
}

/// Sends numbered spans until the server goes away; returns what was acknowledged.
async fn stream_spans(url: String, round: usize, mut next_span: u64) -> (Acked, u64) {
    let mut acked = Acked::new();
    let Ok(channel) = tonic::transport::Endpoint::from_shared(url)
        .unwrap()
        .timeout(Duration::from_secs(5))
        .connect()
        .await
    else {
        return (acked, next_span);
    };
    let mut client = TraceServiceClient::new(channel);
    let mut request_no = 0u64;
    loop {
        let trace = trace_id(round, request_no % TRACES_PER_ROUND);
        let spans = (0..SPANS_PER_REQUEST)
            .map(|i| otlp_span(trace, next_span + i, None, "numbered"))
            .collect();
        match client.export(otlp_request("crash-client", spans)).await {
            Ok(_) => {
                acked
                    .entry(trace)
                    .or_default()
                    .extend(next_span..next_span + SPANS_PER_REQUEST);
            }
            Err(_) => return (acked, next_span),
        }
        next_span += SPANS_PER_REQUEST;
        request_no += 1;
    }
}

async fn assert_all_readable(server: &ServerProcess, acked: &Acked) {
    for (trace, spans) in acked {
        let url = format!("{}/api/v1/traces/{}", server.api_url(), hex::encode(trace));
        let (status, body) = get_json(&url).await;
        assert_eq!(
            status,
            200,
            "acknowledged trace {} lost",
            hex::encode(trace)
        );
        let listed: Vec<u64> = body["spans"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| u64::from_str_radix(s["span_id"].as_str().unwrap(), 16).unwrap())
            .collect();
        let stored: BTreeSet<u64> = listed.iter().copied().collect();
        assert_eq!(stored.len(), listed.len(), "a span is listed twice");
        let missing: Vec<_> = spans.difference(&stored).collect();
        assert!(
            missing.is_empty(),
            "trace {}: {} acknowledged spans lost, e.g. {:?}",
            hex::encode(trace),
            missing.len(),
            &missing[..missing.len().min(5)]
        );
        // A request written just before the kill may be stored without its
        // acknowledgement reaching the client: more than acknowledged is fine.
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_spans_survive_sigkill() {
    let seed: u64 = rand::rng().random();
    eprintln!("crash test seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let ports = (
        common::free_port(),
        common::free_port(),
        common::free_port(),
    );
    let mut acked = Acked::new();
    let mut next_span = 1u64;
    let mut total_acked = 0usize;
    for round in 0..ROUNDS {
        let mut server = ServerProcess::spawn_on(dir.path(), ports.0, ports.1, ports.2);
        assert_all_readable(&server, &acked).await;
        let client = tokio::spawn(stream_spans(server.grpc_url(), round, next_span));
        tokio::time::sleep(Duration::from_millis(rng.random_range(150..700))).await;
        server.kill9();
        let (round_acked, next) = client.await.unwrap();
        next_span = next + 1_000;
        let count: usize = round_acked.values().map(BTreeSet::len).sum();
        assert!(
            count > 0,
            "round {round}: nothing was acknowledged before the kill"
        );
        total_acked += count;
        for (trace, spans) in round_acked {
            acked.entry(trace).or_default().extend(spans);
        }
    }
    let server = ServerProcess::spawn_on(dir.path(), ports.0, ports.1, ports.2);
    assert_all_readable(&server, &acked).await;
    eprintln!("{ROUNDS} SIGKILL rounds, {total_acked} acknowledged spans, all readable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_cleanly_and_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::spawn(dir.path());
    let channel = tonic::transport::Endpoint::from_shared(server.grpc_url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = TraceServiceClient::new(channel);
    let trace = trace_id(99, 0);
    let spans = (1..=100)
        .map(|i| otlp_span(trace, i, None, "before-term"))
        .collect();
    client
        .export(otlp_request("term-client", spans))
        .await
        .unwrap();
    let status = server.terminate();
    assert!(status.success(), "exit status {status}");

    let server = ServerProcess::spawn(dir.path());
    let mut expected = Acked::new();
    expected.insert(trace, (1..=100).collect());
    assert_all_readable(&server, &expected).await;
}
