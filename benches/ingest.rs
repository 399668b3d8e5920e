//! The ingest hot path on a fixed OTLP payload: 512 spans per request, about
//! 700 encoded bytes each, traces of 5–50 spans over 20 services.
//!
//! Stages, each reported in spans/s:
//! - `decode`: prost decode of the request only;
//! - `decode_convert`: decode and conversion to `model::Span`;
//! - `decode_convert_limits`: and the per-span limits ingest enforces (spans
//!   within them, the common case);
//! - `span_limits_check`: those checks alone on already converted spans;
//! - `decode_convert_encode`: and grouping and our storage encoding (no write);
//! - `end_to_end`: decode, convert, group by trace, encode and write one
//!   RocksDB batch (WAL, no fsync) — what an acknowledged request costs;
//! - `decode_stored_chunk`: our storage decoding of a 1,000-span chunk back to
//!   `model::Span`s, the bulk of reading a large trace.
//!
//! Run: `cargo bench --bench ingest`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use tracemap::ingest::{group_by_trace, SpanLimits};
use tracemap::receivers::otlp::convert::convert_request;
use tracemap::storage::codec::{decode_chunk, encode_chunk};
use tracemap::storage::rocks::{RocksOptions, RocksStore};
use tracemap::storage::TraceStore;

// As in the binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod corpus;

const SPANS_PER_REQUEST: usize = 512;

fn ingest(c: &mut Criterion) {
    let payloads: Vec<Vec<u8>> = (1..=64)
        .map(|seed| corpus::request(seed, &corpus::Shape::default()).encode_to_vec())
        .collect();
    let mean = payloads.iter().map(Vec::len).sum::<usize>() / (payloads.len() * SPANS_PER_REQUEST);
    eprintln!("payload: {SPANS_PER_REQUEST} spans/request, {mean} encoded bytes/span");

    let mut group = c.benchmark_group("ingest");
    group.throughput(Throughput::Elements(SPANS_PER_REQUEST as u64));
    let mut i = 0;
    group.bench_function("decode", |b| {
        b.iter(|| {
            i += 1;
            ExportTraceServiceRequest::decode(&payloads[i % payloads.len()][..]).unwrap()
        })
    });
    group.bench_function("decode_convert", |b| {
        b.iter(|| {
            i += 1;
            let request =
                ExportTraceServiceRequest::decode(&payloads[i % payloads.len()][..]).unwrap();
            convert_request(request)
        })
    });
    let limits = SpanLimits::default();
    group.bench_function("decode_convert_limits", |b| {
        b.iter(|| {
            i += 1;
            let request =
                ExportTraceServiceRequest::decode(&payloads[i % payloads.len()][..]).unwrap();
            let mut converted = convert_request(request);
            for span in &mut converted.spans {
                limits.enforce(span);
            }
            converted
        })
    });
    // The checks alone, on converted spans within the limits (read-only, so
    // the same spans serve every iteration).
    let mut converted =
        convert_request(ExportTraceServiceRequest::decode(&payloads[0][..]).unwrap()).spans;
    group.bench_function("span_limits_check", |b| {
        b.iter(|| {
            converted
                .iter_mut()
                .map(|span| limits.enforce(span) != Default::default())
                .filter(|cut| *cut)
                .count()
        })
    });
    group.bench_function("decode_convert_encode", |b| {
        b.iter(|| {
            i += 1;
            let request =
                ExportTraceServiceRequest::decode(&payloads[i % payloads.len()][..]).unwrap();
            let chunks = group_by_trace(convert_request(request).spans);
            chunks
                .iter()
                .map(|c| encode_chunk(&c.spans).len())
                .sum::<usize>()
        })
    });
    let dir = tempfile::tempdir().unwrap();
    let store = RocksStore::open(dir.path(), &RocksOptions::default()).unwrap();
    let mut received_at = 1u64;
    group.bench_function("end_to_end", |b| {
        b.iter(|| {
            i += 1;
            received_at += 1;
            let request =
                ExportTraceServiceRequest::decode(&payloads[i % payloads.len()][..]).unwrap();
            let converted = convert_request(request);
            let chunks = group_by_trace(converted.spans);
            store.append(received_at, &chunks).unwrap();
        })
    });
    group.finish();

    let mut group = c.benchmark_group("stored");
    let shape = corpus::Shape {
        spans_per_request: 1000,
        trace_len: (1000, 1000),
        ..corpus::Shape::default()
    };
    let chunk = group_by_trace(convert_request(corpus::request(1, &shape)).spans).remove(0);
    let encoded = encode_chunk(&chunk.spans);
    eprintln!(
        "stored chunk: {} spans, {} bytes",
        chunk.spans.len(),
        encoded.len()
    );
    group.throughput(Throughput::Elements(chunk.spans.len() as u64));
    group.bench_function("decode_stored_chunk", |b| {
        b.iter(|| decode_chunk(chunk.trace_id, &encoded).unwrap())
    });
    group.finish();
}

criterion_group!(benches, ingest);
criterion_main!(benches);
