//! Queries against a store of 10 million spans, built by the bench itself from
//! the load generator's corpus (`corpus/`): traces of 5–50 spans over 20
//! services, a correlation id per trace, arriving in time order over the last
//! two hours (as traffic does), plus ten traces of 1,000 spans. Every trace is
//! completed as the assembly task completes it: from the spans received, in
//! batches of 256 traces per write (summaries, index blocks, names;
//! `corpus::pipeline`).
//!
//! Reported:
//! - the build: spans/s stored with assembly and indexing on;
//! - `ingest/only` and `ingest/with_assembly`: decode, convert and write one
//!   512-span request, without and with completing its traces, on the full
//!   store (their ratio is issue 4's assembly-and-indexing overhead);
//! - p50/p99/max of, through the real HTTP handlers (in process, no socket):
//!   `GET /api/v1/traces/{id}` of a 1,000-span trace, a correlation-id lookup
//!   (`GET /api/v1/traces?correlation_id=…&lookback=24h`), and a search over the
//!   last hour by service and minimum duration with limit 20; then the same
//!   three under criterion.
//!
//! Run: `cargo bench --bench query` (TRACEMAP_BENCH_SPANS=n for another size;
//! under `cargo test --benches` it runs on 20,000 spans).

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use http::Request;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use tower::ServiceExt;
use tracemap::api::{router, ApiState};
use tracemap::assembly::{Analysis, NoAnalysis};
use tracemap::ingest::now_us;
use tracemap::model::TraceId;
use tracemap::storage::TraceStore;
use tracemap::telemetry::Telemetry;

// As in the binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod corpus;

use corpus::pipeline::Pipeline;

const BIG_TRACES: u64 = 10;
const SAMPLES: usize = 1000;

/// The store and what the queries look for.
struct Fixture {
    pipeline: Pipeline,
    big_traces: Vec<TraceId>,
    correlation_ids: Vec<String>,
    shape: corpus::Shape,
    /// Requests arrive in time order: request n's traces start near
    /// `first_start_ns + n * request_interval_ns`.
    first_start_ns: u64,
    request_interval_ns: u64,
    next_seed: u64,
}

impl Fixture {
    /// Decodes, converts and writes one request as ingest does; with
    /// `assemble`, hands its traces to completion, which runs as the assembly
    /// task runs it (assembly and indexing only: the graph has its own bench).
    fn ingest(&mut self, payload: &[u8], assemble: bool) -> usize {
        self.pipeline
            .ingest(payload, assemble.then_some(&NoAnalysis as &dyn Analysis))
    }

    fn complete_pending(&mut self) {
        self.pipeline.complete(&NoAnalysis);
    }

    fn request(&mut self) -> ExportTraceServiceRequest {
        self.next_seed += 1;
        let shape = corpus::Shape {
            start_ns: self.first_start_ns + self.next_seed * self.request_interval_ns,
            window_ns: 10_000_000_000,
            ..self.shape.clone()
        };
        corpus::request(self.next_seed, &shape)
    }

    fn payload(&mut self) -> Vec<u8> {
        self.request().encode_to_vec()
    }
}

fn build(target_spans: usize) -> Fixture {
    let now_ns = now_us() * 1_000;
    let two_hours_ns = 2 * 3_600 * 1_000_000_000;
    let mut fixture = Fixture {
        pipeline: Pipeline::new(),
        big_traces: Vec::new(),
        correlation_ids: Vec::new(),
        shape: corpus::Shape {
            start_ns: now_ns - two_hours_ns,
            window_ns: two_hours_ns - 60_000_000_000,
            ..corpus::Shape::default()
        },
        // Two hours of traffic ending a minute ago.
        first_start_ns: now_ns - two_hours_ns,
        request_interval_ns: (two_hours_ns - 60_000_000_000) / (target_spans as u64 / 512).max(1),
        next_seed: 0,
    };
    let started = Instant::now();
    let mut spans = 0;
    let big_shape = corpus::Shape {
        spans_per_request: 1000,
        trace_len: (1000, 1000),
        ..fixture.shape.clone()
    };
    for seed in 0..BIG_TRACES {
        let request = corpus::request(u64::MAX - seed, &big_shape);
        let trace_id =
            TraceId::from_bytes(&request.resource_spans[0].scope_spans[0].spans[0].trace_id)
                .expect("16-byte id");
        fixture.big_traces.push(trace_id);
        spans += fixture.ingest(&request.encode_to_vec(), true);
    }
    // About a thousand correlation ids to look up, spread over the build.
    let stride = (target_spans as u64 / 512 / 1000).max(1);
    while spans < target_spans {
        let request = fixture.request();
        if fixture.next_seed.is_multiple_of(stride) {
            let span = &request.resource_spans[0].scope_spans[0].spans[0];
            fixture
                .correlation_ids
                .push(format!("req_{}", hex::encode(&span.trace_id[..8])));
        }
        spans += fixture.ingest(&request.encode_to_vec(), true);
        if fixture.next_seed % 2000 == 1 {
            eprintln!(
                "  {spans} spans stored, {:.0} spans/s",
                spans as f64 / started.elapsed().as_secs_f64()
            );
        }
    }
    fixture.complete_pending();
    let elapsed = started.elapsed();
    eprintln!(
        "built {spans} spans ({} requests) in {:.1}s: {:.0} spans/s with assembly and indexing",
        fixture.next_seed + BIG_TRACES,
        elapsed.as_secs_f64(),
        spans as f64 / elapsed.as_secs_f64()
    );
    fixture
}

/// Ingest without and with assembly, interleaved in blocks so the machine's
/// noise falls on both alike.
fn ingest_ratio(fixture: &mut Fixture, requests: usize) {
    let payloads: Vec<Vec<u8>> = (0..requests * 2).map(|_| fixture.payload()).collect();
    let (only_rate, with_rate) =
        corpus::pipeline::interleaved_rates(&payloads, |block, assemble| {
            let spans = block.iter().map(|p| fixture.ingest(p, assemble)).sum();
            if assemble {
                fixture.complete_pending();
            }
            spans
        });
    eprintln!(
        "ingest only {only_rate:.0} spans/s; with assembly and indexing {with_rate:.0} spans/s; ratio {:.2}",
        with_rate / only_rate
    );
}

fn get(runtime: &tokio::runtime::Runtime, app: &axum::Router, uri: &str) -> Vec<u8> {
    runtime.block_on(async {
        let response = app
            .clone()
            .oneshot(Request::get(uri).body(Body::empty()).expect("request"))
            .await
            .expect("infallible");
        assert_eq!(response.status(), 200, "{uri}");
        axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body")
            .to_vec()
    })
}

fn query(c: &mut Criterion) {
    let full = std::env::args().any(|a| a == "--bench");
    let target = std::env::var("TRACEMAP_BENCH_SPANS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if full { 10_000_000 } else { 20_000 });
    let mut fixture = build(target);
    ingest_ratio(&mut fixture, if full { 1000 } else { 4 });
    // Queries are timed on a settled store: with two cores, the compactions
    // the build leaves behind would otherwise be what the tail measures.
    let settling = Instant::now();
    fixture
        .pipeline
        .store
        .wait_for_compactions(Duration::from_secs(600))
        .expect("compactions settle");
    eprintln!(
        "compactions settled in {:.1}s; {} MiB on disk",
        settling.elapsed().as_secs_f64(),
        fixture.pipeline.store.disk_bytes().expect("disk bytes") >> 20
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let app = router(Arc::new(ApiState {
        store: fixture.pipeline.store.clone(),
        telemetry: Arc::new(Telemetry::new()),
        summary_keys: fixture.pipeline.keys.clone(),
        ready: Arc::new(AtomicBool::new(true)),
        storm: Default::default(),
        graph_retention: Duration::from_secs(30 * 86_400),
        limits: Default::default(),
        disk: None,
        storage_problem: Default::default(),
    }));
    let big = |n: usize| {
        format!(
            "/api/v1/traces/{}",
            fixture.big_traces[n % fixture.big_traces.len()]
        )
    };
    let by_correlation = |n: usize| {
        format!(
            "/api/v1/traces?correlation_id={}&lookback=24h",
            fixture.correlation_ids[n % fixture.correlation_ids.len()]
        )
    };
    let by_service = |n: usize| {
        format!(
            "/api/v1/traces?service=service-{:02}&min_duration=140ms&lookback=1h&limit=20",
            n % 20
        )
    };
    // The answers are what they should be before anything is timed.
    let body: serde_json::Value = serde_json::from_slice(&get(&runtime, &app, &big(0))).unwrap();
    assert_eq!(body["spans"].as_array().unwrap().len(), 1000);
    let body: serde_json::Value =
        serde_json::from_slice(&get(&runtime, &app, &by_correlation(0))).unwrap();
    assert_eq!(body["traces"].as_array().unwrap().len(), 1, "{body}");
    let body: serde_json::Value =
        serde_json::from_slice(&get(&runtime, &app, &by_service(0))).unwrap();
    let found = body["traces"].as_array().unwrap();
    assert!(!found.is_empty() && found.len() <= 20, "{body}");
    assert!(found
        .iter()
        .all(|t| t["duration_ms"].as_f64().unwrap() >= 140.0));

    let samples = if full { SAMPLES } else { 20 };
    for (name, uri) in [
        (
            "trace by id (1,000 spans)",
            &big as &dyn Fn(usize) -> String,
        ),
        ("correlation-id lookup", &by_correlation),
        (
            "last hour by service and min duration, limit 20",
            &by_service,
        ),
    ] {
        let times = (0..samples)
            .map(|n| {
                let uri = uri(n);
                let started = Instant::now();
                get(&runtime, &app, &uri);
                started.elapsed()
            })
            .collect();
        corpus::percentiles(name, times);
    }

    let mut group = c.benchmark_group("query");
    group.sample_size(if full { 50 } else { 10 });
    let mut n = 0;
    group.bench_function("trace_by_id_1000_spans", |b| {
        b.iter(|| {
            n += 1;
            get(&runtime, &app, &big(n))
        })
    });
    group.bench_function("correlation_id", |b| {
        b.iter(|| {
            n += 1;
            get(&runtime, &app, &by_correlation(n))
        })
    });
    group.bench_function("service_min_duration_last_hour", |b| {
        b.iter(|| {
            n += 1;
            get(&runtime, &app, &by_service(n))
        })
    });
    group.finish();

    let mut group = c.benchmark_group("ingest");
    group.sample_size(if full { 30 } else { 10 });
    group.throughput(Throughput::Elements(512));
    // A fresh request every time, made outside the timing: a payload sent
    // again would re-open and re-complete its traces, a rarer, slower path.
    let fixture = std::cell::RefCell::new(fixture);
    for (name, assemble) in [("only", false), ("with_assembly", true)] {
        group.bench_function(name, |b| {
            b.iter_batched(
                || fixture.borrow_mut().payload(),
                |payload| fixture.borrow_mut().ingest(&payload, assemble),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, query);
criterion_main!(benches);
