//! The X-Ray path on fixed datagrams of about 1 KiB (a segment with HTTP data,
//! annotations and three subsegments, one of them SQL): parse → convert, and
//! parse → convert → write in batches of 256 datagrams as the UDP listener does.
//! Throughput is in segments (datagrams) per second.
//!
//! Run: `cargo bench --bench xray`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tracemap::ingest::group_by_trace;
use tracemap::receivers::xray::convert::convert_segment;
use tracemap::receivers::xray::segment::parse_datagram;
use tracemap::storage::rocks::{RocksOptions, RocksStore};
use tracemap::storage::TraceStore;

// As in the binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BATCH: usize = 256;

fn datagram(n: u64) -> Vec<u8> {
    let trace = format!(
        "1-6567{:04x}-{:024x}",
        n % 0xffff,
        n.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    );
    let id = |k: u64| {
        format!(
            "{:016x}",
            (n << 8 | k).wrapping_mul(0xBF58_476D_1CE4_E5B9) | 1
        )
    };
    let start = 1_764_316_800.0 + n as f64 * 0.001;
    format!(
        concat!(
            "{{\"format\": \"json\", \"version\": 1}}\n",
            "{{\"name\": \"search-service\", \"id\": \"{root}\", \"trace_id\": \"{trace}\", ",
            "\"start_time\": {s0:.6}, \"end_time\": {s1:.6}, ",
            "\"aws\": {{\"xray\": {{\"sdk\": \"X-Ray for Python\", \"sdk_version\": \"2.15.0\"}}}}, ",
            "\"http\": {{\"request\": {{\"method\": \"GET\", \"url\": \"https://books.example/search?q=dune&page={n}\", ",
            "\"client_ip\": \"10.0.3.17\"}}, ",
            "\"response\": {{\"status\": 200, \"content_length\": 5120}}}}, ",
            "\"annotations\": {{\"correlation_id\": \"req_{n:012x}\", \"results\": 12}}, ",
            "\"subsegments\": [",
            "{{\"name\": \"Elasticsearch\", \"id\": \"{a}\", \"namespace\": \"remote\", \"start_time\": {s2:.6}, \"end_time\": {s3:.6}, ",
            "\"http\": {{\"request\": {{\"method\": \"POST\", \"url\": \"http://es.internal:9200/books/_search\"}}, \"response\": {{\"status\": 200}}}}}}, ",
            "{{\"name\": \"bookstore@db.internal\", \"id\": \"{b}\", \"namespace\": \"remote\", \"start_time\": {s3:.6}, \"end_time\": {s4:.6}, ",
            "\"sql\": {{\"url\": \"postgresql://db.internal:5432/bookstore\", \"sanitized_query\": \"SELECT id, title, author FROM books WHERE id = ANY(?)\", ",
            "\"database_type\": \"PostgreSQL\"}}}}, ",
            "{{\"name\": \"render\", \"id\": \"{c}\", \"start_time\": {s4:.6}, \"end_time\": {s1:.6}}}",
            "]}}"
        ),
        root = id(0), a = id(1), b = id(2), c = id(3), trace = trace, n = n,
        s0 = start, s1 = start + 0.120, s2 = start + 0.005, s3 = start + 0.060, s4 = start + 0.090,
    )
    .into_bytes()
}

fn xray(c: &mut Criterion) {
    let datagrams: Vec<Vec<u8>> = (1..=4096).map(datagram).collect();
    let mean = datagrams.iter().map(Vec::len).sum::<usize>() / datagrams.len();
    eprintln!("X-Ray datagrams of {mean} bytes, {BATCH} per batch");

    let mut group = c.benchmark_group("xray");
    group.throughput(Throughput::Elements(BATCH as u64));
    let mut next = 0usize;
    let batch = |next: &mut usize| {
        let start = *next % (datagrams.len() - BATCH);
        *next += BATCH;
        &datagrams[start..start + BATCH]
    };
    group.bench_function("parse_convert", |b| {
        b.iter(|| {
            let mut spans = Vec::new();
            for d in batch(&mut next) {
                spans.extend(convert_segment(parse_datagram(d).unwrap(), 32).unwrap());
            }
            spans
        })
    });
    let dir = tempfile::tempdir().unwrap();
    let store = RocksStore::open(dir.path(), &RocksOptions::default()).unwrap();
    let mut received_at = 1u64;
    group.bench_function("end_to_end", |b| {
        b.iter(|| {
            let mut spans = Vec::new();
            for d in batch(&mut next) {
                spans.extend(convert_segment(parse_datagram(d).unwrap(), 32).unwrap());
            }
            received_at += 1;
            store.append(received_at, &group_by_trace(spans)).unwrap();
        })
    });
    group.finish();
}

criterion_group!(benches, xray);
criterion_main!(benches);
