//! The ingest hot path on a fixed OTLP payload: 512 spans per request, about
//! 700 encoded bytes each, traces of 5–50 spans over 20 services.
//!
//! Stages, each reported in spans/s:
//! - `decode`: prost decode of the request only;
//! - `decode_convert`: decode and conversion to `model::Span`;
//! - `decode_convert_encode`: and grouping and our storage encoding (no write);
//! - `end_to_end`: decode, convert, group by trace, encode and write one
//!   RocksDB batch (WAL, no fsync) — what an acknowledged request costs.
//!
//! Run: `cargo bench --bench ingest`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use prost::Message;
use tracemap::ingest::group_by_trace;
use tracemap::receivers::otlp::convert::convert_request;
use tracemap::storage::codec::encode_chunk;
use tracemap::storage::rocks::{RocksOptions, RocksStore};
use tracemap::storage::TraceStore;

// As in the binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SPANS_PER_REQUEST: usize = 512;

fn attr(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        key_strindex: 0,
        value: Some(AnyValue { value: Some(value) }),
    }
}

fn s(v: String) -> any_value::Value {
    any_value::Value::StringValue(v)
}

/// A deterministic request; `seed` makes the ids of each request distinct.
fn request(seed: u64) -> ExportTraceServiceRequest {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut by_service: Vec<Vec<Span>> = vec![Vec::new(); 20];
    let mut produced = 0;
    while produced < SPANS_PER_REQUEST {
        let trace_len = (5 + next() % 46) as usize;
        let mut trace_id = [0u8; 16];
        trace_id[..8].copy_from_slice(&next().to_be_bytes());
        trace_id[8..].copy_from_slice(&next().to_be_bytes());
        let root_id = next();
        for i in 0..trace_len.min(SPANS_PER_REQUEST - produced) {
            let service = (next() % 20) as usize;
            let span_id = if i == 0 { root_id } else { next() };
            let start = 1_700_000_000_000_000_000 + next() % 1_000_000_000;
            let is_db = i % 3 == 1;
            let mut attributes = vec![
                attr("http.request.method", s("GET".into())),
                attr(
                    "url.path",
                    s(format!("/api/v1/books/{}/reviews", next() % 10_000)),
                ),
                attr("http.response.status_code", any_value::Value::IntValue(200)),
                attr(
                    "server.address",
                    s(format!("catalog-{}.bookstore.svc.cluster.local", service)),
                ),
                attr("network.peer.port", any_value::Value::IntValue(8080)),
                attr(
                    "user_agent.original",
                    s("Mozilla/5.0 (X11; Linux x86_64) bookstore-load/1.0".into()),
                ),
                attr("correlation_id", s(format!("req_{:016x}", next()))),
                attr("thread.name", s(format!("worker-{}", next() % 64))),
                attr("http.route", s("/api/v1/books/{book_id}/reviews".into())),
                attr("app.request.id", s(format!("{:016x}-{:016x}", next(), next()))),
                attr("url.full", s(format!("https://catalog.bookstore.example/api/v1/books/{}/reviews?page={}&sort=recent", next() % 10_000, next() % 9))),
            ];
            if is_db {
                attributes.push(attr("db.system.name", s("postgresql".into())));
                attributes.push(attr(
                    "db.query.text",
                    s(format!(
                        "SELECT id, title, author FROM books WHERE id = {}",
                        next() % 100_000
                    )),
                ));
            } else {
                attributes.push(attr("code.function.name", s("handle_request".into())));
                attributes.push(attr(
                    "app.cache.hit",
                    any_value::Value::BoolValue(next() % 2 == 0),
                ));
            }
            by_service[service].push(Span {
                trace_id: trace_id.to_vec(),
                span_id: span_id.to_be_bytes().to_vec(),
                parent_span_id: if i == 0 {
                    vec![]
                } else {
                    root_id.to_be_bytes().to_vec()
                },
                name: if is_db {
                    "SELECT books".into()
                } else {
                    "GET /api/v1/books/{id}".into()
                },
                kind: if is_db { 3 } else { 2 },
                start_time_unix_nano: start,
                end_time_unix_nano: start + next() % 50_000_000,
                attributes,
                status: Some(Status::default()),
                ..Span::default()
            });
            produced += 1;
        }
    }
    ExportTraceServiceRequest {
        resource_spans: by_service
            .into_iter()
            .enumerate()
            .filter(|(_, spans)| !spans.is_empty())
            .map(|(i, spans)| ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![
                        attr("service.name", s(format!("service-{i:02}"))),
                        attr("service.version", s("1.4.2".into())),
                        attr("host.name", s(format!("node-{i}"))),
                    ],
                    ..Resource::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..ScopeSpans::default()
                }],
                ..ResourceSpans::default()
            })
            .collect(),
    }
}

fn ingest(c: &mut Criterion) {
    let payloads: Vec<Vec<u8>> = (1..=64).map(|seed| request(seed).encode_to_vec()).collect();
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
}

criterion_group!(benches, ingest);
criterion_main!(benches);
