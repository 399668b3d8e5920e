//! The detectors' cost (issue 6), on this machine:
//!
//! - ingest with every detector on ÷ off: decode, convert, write, assemble
//!   and complete the load generator's corpus (traces of 5–50 spans, a third
//!   of them PostgreSQL client spans with a statement to fingerprint) in
//!   batches of 256 traces, with the graph and the detectors (`Analyzer`)
//!   and with the graph alone, interleaved in blocks; the findings the run
//!   stored are counted, so the detectors are known to have had work;
//! - `detectors/inspect`: the detectors alone over one 50-span trace, and
//!   `graph/contribute` the service graph's part of completion for it (criterion).
//!
//! Run: `cargo bench --bench detectors` (under `cargo test --benches` it runs
//! small).

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use prost::Message;
use tracemap::analysis::detectors::{self, DetectorConfig};
use tracemap::analysis::graph::{GraphAnalysis, GraphMetrics};
use tracemap::analysis::{Analyzer, FindingMetrics, GraphLimits};
use tracemap::assembly::Analysis;
use tracemap::ingest::group_by_trace;
use tracemap::model::{GraphBatch, Trace, TraceId};
use tracemap::receivers::otlp::convert::convert_request;
use tracemap::storage::{FindingQuery, TraceStore};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod corpus;

use corpus::pipeline::Pipeline;

fn quick() -> bool {
    // `cargo test --benches` passes no `--bench` flag.
    !std::env::args().any(|a| a == "--bench")
}

fn payloads(requests: u64) -> Vec<Vec<u8>> {
    corpus::in_time_order(requests)
        .map(|r| r.encode_to_vec())
        .collect()
}

fn detector_ratio(_c: &mut Criterion) {
    let requests = if quick() { 80 } else { 2_000 };
    let payloads = payloads(requests);
    let graph_only = GraphAnalysis::new(GraphLimits::default(), GraphMetrics::default());
    let with_detectors = Analyzer::new(
        GraphAnalysis::new(GraphLimits::default(), GraphMetrics::default()),
        &DetectorConfig::default(),
        FindingMetrics::default(),
    );
    let mut ingest = Pipeline::new();
    let (off_rate, on_rate) =
        corpus::pipeline::interleaved_rates(&payloads, |block, detectors_on| {
            let analysis: &dyn Analysis = if detectors_on {
                &with_detectors
            } else {
                &graph_only
            };
            let spans = block.iter().map(|p| ingest.ingest(p, Some(analysis))).sum();
            ingest.complete(analysis);
            spans
        });
    let found = ingest
        .store
        .findings(&FindingQuery {
            from_us: 0,
            to_us: u64::MAX,
            limit: usize::MAX,
            ..FindingQuery::default()
        })
        .expect("findings");
    let mut kinds: Vec<&str> = found.iter().map(|f| f.kind.as_str()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    eprintln!(
        "ingest with assembly and the graph: detectors off {off_rate:.0} spans/s; on {on_rate:.0} spans/s; ratio {:.2} ({} findings stored: {})",
        on_rate / off_rate,
        found.len(),
        kinds.join(", ")
    );
}

fn inspect(c: &mut Criterion) {
    // One trace of the corpus, as completion hands it to the detectors.
    let request = corpus::request(
        7,
        &corpus::Shape {
            spans_per_request: 50,
            trace_len: (50, 50),
            ..corpus::Shape::default()
        },
    );
    let chunk = group_by_trace(convert_request(request).spans)
        .into_iter()
        .next()
        .expect("a trace");
    let mut spans = chunk.spans;
    spans.sort_by_key(|s| s.start_ns);
    let trace = Trace {
        trace_id: TraceId(*chunk.trace_id.as_bytes()),
        spans,
        last_received_us: 0,
    };
    let all = detectors::all(&DetectorConfig::default());
    let mut group = c.benchmark_group("detectors");
    group.throughput(Throughput::Elements(trace.spans.len() as u64));
    group.bench_function("inspect_50_span_trace", |b| {
        b.iter(|| detectors::inspect(&trace, &all))
    });
    group.finish();
    // The service graph's part of completion for the same trace: its
    // observations, guarded and added to a batch's rows.
    let graph = GraphAnalysis::new(GraphLimits::default(), GraphMetrics::default());
    let mut group = c.benchmark_group("graph");
    group.throughput(Throughput::Elements(trace.spans.len() as u64));
    group.bench_function("contribute_50_span_trace", |b| {
        b.iter(|| {
            let mut batch = GraphBatch::default();
            graph.contribute(&trace, None, &mut batch);
            batch
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(5));
    targets = detector_ratio, inspect
}
criterion_main!(benches);
