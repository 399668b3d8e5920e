//! The service map's three figures (issue 5), on this machine:
//!
//! - `map/last_hour`: `GET /api/v1/service-map?lookback=1h` through the real
//!   handler (in process, no socket) over a store holding an hour of
//!   aggregates for 200 services and 2,000 edges, every edge busy every minute,
//!   each minute written by six completion batches (merge operands, as
//!   assembly writes them), latencies log-normal around each edge's median:
//!   the first read; then p50/p99 of reads each after a completion's rows for
//!   the current minute land (a refreshed map under traffic), and of reads
//!   each after late rows half an hour back (added beside the summed closed
//!   buckets); before and after compaction; then criterion (reads only);
//! - ingest with the graph on ÷ off: decode, convert, write, assemble and
//!   complete the load generator's corpus in batches of 256 traces, with
//!   `GraphAnalysis` and with `NoAnalysis`, interleaved in blocks;
//! - edge visibility: the real server (in process, default `trace_idle` of
//!   10 s) receives one trace over OTLP/gRPC; the time until its edge is on
//!   the map.
//!
//! Run: `cargo bench --bench service_map` (under `cargo test --benches` it
//! runs small; `TRACEMAP_BENCH_ONLY=map|ratio|visibility` runs one part).

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use criterion::{criterion_group, criterion_main, Criterion};
use http::Request;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use prost::Message;
use tower::ServiceExt;
use tracemap::analysis::graph::{GraphAnalysis, GraphMetrics};
use tracemap::analysis::GraphLimits;
use tracemap::api::{router, ApiState};
use tracemap::assembly::{Analysis, NoAnalysis};
use tracemap::ingest::now_us;
use tracemap::model::{
    Aggregate, CallClass, EdgeType, GraphRow, GraphSubject, NodeType, SummaryKeys,
};
use tracemap::storage::rocks::{RocksOptions, RocksStore};
use tracemap::storage::TraceStore;
use tracemap::telemetry::Telemetry;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod corpus;

use corpus::pipeline::Pipeline;

fn quick() -> bool {
    // `cargo test --benches` passes no `--bench` flag.
    !std::env::args().any(|a| a == "--bench")
}

/// `TRACEMAP_BENCH_ONLY=map|ratio|visibility` runs one part.
fn wanted(part: &str) -> bool {
    std::env::var("TRACEMAP_BENCH_ONLY").map_or(true, |only| only == part)
}

/// An hour of aggregates: `services` services, each calling `fanout`
/// others or virtual nodes, every minute.
fn fill_hour(store: &RocksStore, services: usize, edges: usize) {
    let now_minute = (now_us() / 60_000_000) as u32;
    let fanout = edges / services;
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for minute in now_minute - 60..=now_minute {
        for _batch in 0..6 {
            let mut rows = Vec::new();
            for s in 0..services {
                let mut node = Aggregate::default();
                for e in 0..fanout {
                    let mut aggregate = Aggregate::default();
                    for _ in 0..4 {
                        let class = match next() % 50 {
                            0 => CallClass::Fault,
                            1 => CallClass::Error,
                            2 => CallClass::Throttle,
                            _ => CallClass::Ok,
                        };
                        // Log-normal around the edge's own median (1–100 ms),
                        // p99 about five times the median, as real calls spread.
                        let median_us = 1_000.0 * (1.0 + ((s * 31 + e * 17) % 100) as f64);
                        let uniform = |x: u64| (x % 1_000_000) as f64 / 1e6;
                        let z =
                            (uniform(next()) + uniform(next()) + uniform(next()) + uniform(next())
                                - 2.0)
                                * 3f64.sqrt();
                        let latency = (median_us * (0.7 * z).exp()) as u64;
                        aggregate.observe(class, latency, next() % 40 == 0);
                        node.observe(class, latency, false);
                    }
                    let target = (s + 1 + e * 7) % (services + 20);
                    let target = if target < services {
                        format!("service-{target:03}")
                    } else {
                        format!("db-{:02}", target - services)
                    };
                    rows.push(GraphRow {
                        minute,
                        subject: GraphSubject::Edge {
                            source: format!("service-{s:03}"),
                            target,
                            edge_type: EdgeType::Http,
                        },
                        aggregate,
                    });
                }
                rows.push(GraphRow {
                    minute,
                    subject: GraphSubject::Node {
                        id: format!("service-{s:03}"),
                        node_type: NodeType::Service,
                        system: String::new(),
                    },
                    aggregate: node,
                });
            }
            store
                .complete(&[], &[], &[], &rows, &[])
                .expect("graph rows");
        }
    }
}

fn map_latency(c: &mut Criterion) {
    if !wanted("map") {
        return;
    }
    let (services, edges, calls) = if quick() {
        (20, 200, 20)
    } else {
        (200, 2_000, 200)
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(RocksStore::open(dir.path(), &RocksOptions::default()).expect("open"));
    let started = Instant::now();
    fill_hour(&store, services, edges);
    eprintln!(
        "wrote an hour of aggregates for {services} services and {edges} edges in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let app = router(Arc::new(ApiState {
        store: store.clone(),
        telemetry: Arc::new(Telemetry::new()),
        summary_keys: SummaryKeys::default(),
        ready: Arc::new(AtomicBool::new(true)),
        storm: Default::default(),
        graph_retention: Duration::from_secs(30 * 86_400),
        limits: Default::default(),
        disk: None,
        storage_problem: Default::default(),
    }));
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let get = |uri: &str| -> usize {
        runtime.block_on(async {
            let response = app
                .clone()
                .oneshot(Request::get(uri).body(Body::empty()).expect("request"))
                .await
                .expect("infallible");
            assert_eq!(response.status(), 200);
            axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .expect("body")
                .len()
        })
    };
    let uri = "/api/v1/service-map?lookback=1h";
    // What keeps arriving while a map is refreshed: a completion's rows for
    // the current minute (which no summed closed bucket covers), or late ones
    // for half an hour ago (kept beside the closed sum and added on read).
    let write = |minute: u32| {
        let mut aggregate = Aggregate::default();
        aggregate.observe(CallClass::Ok, 2_000, false);
        let rows: Vec<GraphRow> = (0..50)
            .map(|e| GraphRow {
                minute,
                subject: GraphSubject::Edge {
                    source: format!("service-{:03}", e % services),
                    target: format!("db-{:02}", e % 20),
                    edge_type: EdgeType::Database,
                },
                aggregate: aggregate.clone(),
            })
            .collect();
        store.complete(&[], &[], &[], &rows, &[]).expect("write");
    };
    let now_minute = || (now_us() / 60_000_000) as u32;
    let timed = |late: bool| -> Vec<Duration> {
        let rounds = if late { calls / 10 } else { calls };
        (0..rounds)
            .map(|_| {
                write(if late {
                    now_minute() - 30
                } else {
                    now_minute()
                });
                let started = Instant::now();
                get(uri);
                started.elapsed()
            })
            .collect()
    };
    let started = Instant::now();
    let body = get(uri);
    eprintln!(
        "map, last hour, first read ({body} bytes): {:.1} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
    for (stage, compacted) in [
        ("merge operands not compacted", false),
        ("after compaction", true),
    ] {
        if compacted {
            // Compaction folds the merge operands into values.
            store.compact().expect("compact");
        }
        corpus::percentiles(
            &format!(
                "map, last hour, {services} services and {edges} edges, {stage}, refreshed while rows land"
            ),
            timed(false),
        );
        corpus::percentiles(
            &format!("map, last hour, {stage}, each read after a late row half an hour back"),
            timed(true),
        );
    }
    // The last hour ten minutes later: the kept sum moved (one bucket left,
    // one reached) instead of summed afresh, storms carried along.
    let now_ms = now_us() / 1_000;
    let hour_from_ms = (now_ms / 600_000) * 600_000 - 3_000_000;
    let moved = format!(
        "/api/v1/service-map?start={}&end={}",
        hour_from_ms + 600_000,
        hour_from_ms + 4_200_000
    );
    let started = Instant::now();
    get(&moved);
    eprintln!(
        "map, the last hour moved on ten minutes (first read of that range): {:.1} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
    let rows = store
        .graph(now_us() - 3_600_000_000, now_us())
        .expect("graph");
    let bins: usize = rows.iter().map(|(_, a)| a.latency.bins().len()).sum();
    eprintln!(
        "{} subjects, {:.0} latency bins each on average over the hour",
        rows.len(),
        bins as f64 / rows.len() as f64
    );
    c.bench_function("map/last_hour", |b| b.iter(|| get(uri)));
}

fn graph_ratio(_c: &mut Criterion) {
    if !wanted("ratio") {
        return;
    }
    let requests: usize = if quick() { 40 } else { 1_000 };
    // Traffic in time order, as it arrives: each request's traces start
    // within ten seconds, and the requests span the last ten minutes.
    let first_ns = now_us() * 1_000 - 600_000_000_000;
    let step_ns = 600_000_000_000 / (requests as u64 * 2);
    let payloads: Vec<Vec<u8>> = (0..requests as u64 * 2)
        .map(|seed| {
            let shape = corpus::Shape {
                start_ns: first_ns + seed * step_ns,
                window_ns: 10_000_000_000,
                ..corpus::Shape::default()
            };
            corpus::request(seed + 1, &shape).encode_to_vec()
        })
        .collect();
    let graph = GraphAnalysis::new(GraphLimits::default(), GraphMetrics::default());
    let mut ingest = Pipeline::new();
    let (off_rate, on_rate) =
        corpus::pipeline::interleaved_rates(&payloads, |block, with_graph| {
            let analysis: &dyn Analysis = if with_graph { &graph } else { &NoAnalysis };
            let spans = block.iter().map(|p| ingest.ingest(p, Some(analysis))).sum();
            ingest.complete(analysis);
            spans
        });
    eprintln!(
        "ingest with assembly: graph off {off_rate:.0} spans/s; graph on {on_rate:.0} spans/s; ratio {:.2}",
        on_rate / off_rate
    );
}

fn edge_visibility(_c: &mut Criterion) {
    if !wanted("visibility") {
        return;
    }
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = tracemap::config::Config {
            data_dir: dir.path().to_path_buf(),
            otlp_grpc_port: 0,
            otlp_http_port: 0,
            http_port: 0,
            xray_port: 0,
            zipkin_port: 0,
            ..tracemap::config::Config::default()
        };
        let idle = config.assembly.trace_idle;
        let token = tokio_util::sync::CancellationToken::new();
        let running = tracemap::app::start(config, token.clone()).await.expect("start");
        let grpc = format!("http://{}", running.otlp_grpc_addr);
        let api = format!("http://{}", running.http_addr);
        let mut request = corpus::request(
            7,
            &corpus::Shape {
                spans_per_request: 40,
                trace_len: (40, 40),
                start_ns: now_us() * 1_000,
                ..corpus::Shape::default()
            },
        );
        // A fresh pair no earlier request showed.
        request.resource_spans[0]
            .resource
            .as_mut()
            .expect("resource")
            .attributes[0] = corpus::attr("service.name", corpus::s("visibility-probe".into()));
        let mut client = TraceServiceClient::connect(grpc).await.expect("connect");
        let sent = Instant::now();
        client.export(request).await.expect("export");
        let http = reqwest::Client::new();
        loop {
            let map: serde_json::Value = http
                .get(format!("{api}/api/v1/service-map?lookback=15m"))
                .send()
                .await
                .expect("map")
                .json()
                .await
                .expect("json");
            let visible = map["edges"].as_array().expect("edges").iter().any(|e| {
                e["source"] == "visibility-probe" || e["target"] == "visibility-probe"
            });
            if visible {
                eprintln!(
                    "edge visible on the map {:.2}s after its spans were acknowledged (trace_idle {}s)",
                    sent.elapsed().as_secs_f64(),
                    idle.as_secs()
                );
                break;
            }
            assert!(sent.elapsed() < Duration::from_secs(60), "edge never showed");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        token.cancel();
        running.wait().await.expect("clean stop");
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(5));
    targets = map_latency, graph_ratio, edge_visibility
}
criterion_main!(benches);
