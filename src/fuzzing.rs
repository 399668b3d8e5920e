//! What the fuzz targets run (`fuzz/`, driven by `scripts/fuzz.sh`): one
//! function per decoder, taking arbitrary bytes, feeding them to the decoder as
//! its receiver or endpoint does, and panicking when a promise is broken: a
//! panic of the decoder's own, or an invariant of what it accepted.
//!
//! They live in the library rather than in `fuzz/` so that the root build and
//! clippy keep them compiling against the decoders they call, and so that
//! `cargo test` replays the committed seed corpus through them (`tests`). None
//! needs RocksDB: the fuzz crate builds the library without the `rocks` feature.
//!
//! Invariants checked on what is accepted:
//!
//! - Converted spans (OTLP protobuf and JSON, X-Ray, Zipkin): trace, span,
//!   parent and link ids are valid (never all zeros), a span ends no earlier
//!   than it starts, ids read back from their hex (and X-Ray) text, and the
//!   storage codec gives back every span it is given, field for field: what a
//!   receiver acknowledges can be stored and read.
//! - OTLP: every span of the request is either converted or counted as
//!   rejected, and a rejection always comes with a message.
//! - X-Ray: one datagram is one trace; every span but the first hangs under
//!   another span of the datagram.
//! - Query parameters: every parser of the native and Jaeger APIs answers
//!   (a 400 at worst), never with a range that ends before it starts or a
//!   limit outside its bounds, and agrees with the shared `time_range`.
//! - Storage keys and values: a fixed-width key decodes exactly when it has
//!   its width, re-encodes to the same bytes, and two keys order as their
//!   bytes do; variable keys and values round-trip wherever their encoder can
//!   produce them.

use std::fmt::Debug;

use crate::api::{findings, jaeger, map, v1};
use crate::model::{Span, SpanId, TraceId};
use crate::receivers::otlp::{convert, http};
use crate::receivers::xray::{convert as xray, segment};
use crate::receivers::zipkin::convert as zipkin;
use crate::storage::{codec, graph, keys};

/// OTLP protobuf (gRPC and HTTP bodies): decode, convert.
pub fn otlp_protobuf(data: &[u8]) {
    otlp(http::Format::Protobuf, data);
}

/// OTLP/JSON (HTTP bodies): decode, convert.
pub fn otlp_json(data: &[u8]) {
    otlp(http::Format::Json, data);
}

fn otlp(format: http::Format, data: &[u8]) {
    let Ok(request) = http::decode_body(format, bytes::Bytes::copy_from_slice(data)) else {
        return;
    };
    let sent: usize = request
        .resource_spans
        .iter()
        .flat_map(|rs| &rs.scope_spans)
        .map(|ss| ss.spans.len())
        .sum();
    let converted = convert::convert_request(request);
    let rejected = converted.rejected_count();
    assert_eq!(converted.spans.len() as u64 + rejected, sent as u64);
    assert_eq!(rejected > 0, !converted.error_message.is_empty());
    check_spans(&converted.spans);
}

/// An X-Ray daemon datagram: header line, segment document, conversion.
pub fn xray_datagram(data: &[u8]) {
    let Ok(document) = segment::parse_datagram(data) else {
        return;
    };
    assert!(data.len() <= segment::MAX_DATAGRAM_BYTES);
    let trace_id = document.trace_id.as_deref().and_then(|t| t.parse().ok());
    let max_depth = crate::config::XrayConfig::default().max_segment_depth;
    let Ok(spans) = xray::convert_segment(document, max_depth) else {
        return;
    };
    assert!(!spans.is_empty());
    assert!(spans.iter().all(|s| Some(s.trace_id) == trace_id));
    for span in &spans[1..] {
        let parent = span.parent_span_id.expect("a subsegment has a parent");
        assert!(spans.iter().any(|s| s.span_id == parent), "{parent:?}");
    }
    check_spans(&spans);
}

/// A Zipkin v2 JSON body.
pub fn zipkin_json(data: &[u8]) {
    let Ok(converted) = zipkin::decode_json(data) else {
        return;
    };
    for span in &converted.spans {
        assert_ne!(span.parent_span_id, Some(span.span_id));
    }
    assert!(converted.rejected.iter().all(|(_, why)| !why.is_empty()));
    check_spans(&converted.spans);
}

/// What every converted span promises, and the storage round trip.
fn check_spans(spans: &[Span]) {
    for span in spans {
        assert_ne!(span.trace_id.0, [0; TraceId::LEN]);
        assert_ne!(span.span_id.0, [0; SpanId::LEN]);
        assert_ne!(span.parent_span_id, Some(SpanId::default()));
        assert!(span.end_ns >= span.start_ns);
        assert_eq!(span.trace_id.to_string().parse(), Ok(span.trace_id));
        assert_eq!(span.trace_id.to_xray().parse(), Ok(span.trace_id));
        assert_eq!(span.span_id.to_string().parse(), Ok(span.span_id));
        for link in &span.links {
            assert_ne!(link.trace_id.0, [0; TraceId::LEN]);
            assert_ne!(link.span_id.0, [0; SpanId::LEN]);
        }
    }
    // Ingest stores a request's spans as one chunk per trace.
    let mut trace_ids: Vec<TraceId> = spans.iter().map(|s| s.trace_id).collect();
    trace_ids.sort();
    trace_ids.dedup();
    for trace_id in trace_ids {
        let chunk: Vec<Span> = spans
            .iter()
            .filter(|s| s.trace_id == trace_id)
            .cloned()
            .collect();
        let stored = codec::encode_chunk(&chunk);
        let read = codec::decode_chunk(trace_id, &stored).expect("a stored chunk reads back");
        // Compared as text: NaN attribute values are not equal to themselves.
        assert_eq!(format!("{read:?}"), format!("{chunk:?}"));
    }
}

/// A query string (`k=v&k=v`, percent-encoded, as axum's `Query` reads it)
/// through every query parser of the native and Jaeger APIs.
pub fn query_params(data: &[u8]) {
    let Ok(params) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(data) else {
        return;
    };
    let get = |key: &str| params.iter().find(|(k, _)| k == key).map(|(_, v)| v);
    let range = v1::time_range(&params);
    if let Ok((start_us, end_us)) = range {
        assert!(start_us <= end_us);
        let (from, to) = graph::snapped_range_us(start_us, end_us);
        assert!(from <= start_us && from <= to);
        if end_us < u64::from(u32::MAX - 1) * keys::MINUTE_US {
            assert!(to >= end_us);
        }
        if let Some(ms) = get("start").and_then(|v| v.parse::<u64>().ok()) {
            assert_eq!(start_us, ms * 1_000);
        }
    }
    // `time_range` is read from the moment of the call: compare the ranges
    // only when they do not depend on it.
    let fixed = get("end").is_some();
    if let Ok(query) = v1::SearchQuery::parse(&params) {
        assert!((1..=1000).contains(&query.limit));
        assert!(query.start_us <= query.end_us);
        if fixed {
            assert_eq!(Ok((query.start_us, query.end_us)), range_ok(&range));
        }
        assert!(query.attrs.len() <= params.len());
    }
    if let Ok(query) = findings::query(&params, 100) {
        assert!((1..=10_000).contains(&query.limit));
        assert!(query.from_us <= query.to_us);
        if fixed {
            assert_eq!(Ok((query.from_us, query.to_us)), range_ok(&range));
        }
    }
    if let Ok((criteria, limit)) = jaeger::SpanCriteria::parse(&params) {
        assert!((1..=1500).contains(&limit));
        assert!(!criteria.service.is_empty());
        assert!(criteria.tags.len() >= params.iter().filter(|(k, _)| k == "tag").count());
    }
    if let Ok((start_us, end_us)) = map::dependencies_range(&params) {
        assert!(start_us <= end_us);
    }
    for (_, value) in &params {
        one_value(value);
    }
}

fn range_ok(range: &Result<(u64, u64), crate::api::ApiError>) -> Result<(u64, u64), ()> {
    range.as_ref().map(|r| *r).map_err(|_| ())
}

/// The value parsers on their own, with what each must agree with.
fn one_value(value: &str) {
    if let Some(duration) = v1::parse_duration(value) {
        if let Ok(ms) = value.trim().parse::<u32>() {
            let exact = std::time::Duration::from_millis(u64::from(ms));
            assert!(duration.abs_diff(exact) < std::time::Duration::from_micros(1));
        }
    }
    if let Some(us) = jaeger::parse_go_duration_us(value) {
        if let Some(n) = value.strip_suffix("us").and_then(|n| n.parse::<u32>().ok()) {
            assert_eq!(us, u64::from(n));
        }
    }
    if let Some(us) = v1::parse_time_us(value) {
        if let Ok(ms) = value.parse::<u64>() {
            assert_eq!(us, ms * 1_000);
        }
    }
    if let Ok(id) = jaeger::parse_jaeger_trace_id(value) {
        assert_ne!(id.0, [0; TraceId::LEN]);
        if value.len() <= 32 && value.bytes().all(|b| b.is_ascii_hexdigit()) {
            assert_eq!(
                id.to_string(),
                format!("{:0>32}", value.to_ascii_lowercase())
            );
        }
    }
    if let Ok(id) = value.parse::<TraceId>() {
        assert_eq!(id.to_string().parse(), Ok(id));
        assert_eq!(id.to_xray().parse(), Ok(id));
    }
}

/// Every key and value decoder of storage, on the same bytes.
pub fn storage_keys(data: &[u8]) {
    fixed_width(data, keys::decode_span_key, keys::encode_span_key);
    fixed_width(data, keys::decode_index_key, keys::encode_index_key);
    fixed_width(data, keys::decode_journal_key, keys::encode_journal_key);
    fixed_width(data, keys::decode_finding_key, keys::encode_finding_key);
    name_keys(data);
    graph_subject(data);
    // Varints may be written longer than needed, so a value read back is
    // compared by what it decodes to, not byte for byte.
    for hour in [0, 1_000, u32::MAX] {
        if let Some(hits) = keys::decode_index_table(hour, data) {
            let encoded = keys::encode_index_table(hour, &hits);
            assert_eq!(keys::decode_index_table(hour, &encoded), Some(hits));
        }
    }
    if let Some(positions) = keys::decode_index_block(data) {
        let encoded = keys::encode_index_block(&positions);
        assert!(encoded.len() <= data.len());
        assert_eq!(keys::decode_index_block(&encoded), Some(positions));
    }
    if let Some(ids) = keys::decode_journal_value(data) {
        assert_eq!(keys::encode_journal_value(ids.iter()), data);
    }
    let trace_id = TraceId([7; TraceId::LEN]);
    if let Ok(spans) = codec::decode_chunk(trace_id, data) {
        let again = codec::decode_chunk(trace_id, &codec::encode_chunk(&spans))
            .expect("a re-encoded chunk reads back");
        assert_eq!(format!("{again:?}"), format!("{spans:?}"));
    }
    if let Ok((summary, seq)) = codec::decode_summary(trace_id, data) {
        let again = codec::decode_summary(trace_id, &codec::encode_summary(&summary, seq))
            .expect("a re-encoded summary reads back");
        assert_eq!(format!("{again:?}"), format!("{:?}", (summary, seq)));
    }
}

/// A fixed-width key: decoded exactly at its width, back to the same bytes;
/// the first two widths of `data` order as the keys they decode to.
fn fixed_width<K: Ord + Debug, const N: usize>(
    data: &[u8],
    decode: fn(&[u8]) -> Result<K, keys::KeyError>,
    encode: fn(&K) -> [u8; N],
) {
    match decode(data) {
        Ok(key) => assert_eq!(encode(&key).as_slice(), data),
        Err(error) => assert!(data.len() != N && error.len == data.len()),
    }
    let mut widths = data.chunks_exact(N);
    if let (Some(a), Some(b)) = (widths.next(), widths.next()) {
        let (first, second) = (decode(a).expect("width"), decode(b).expect("width"));
        assert_eq!(first.cmp(&second), a.cmp(b), "{first:?} {second:?}");
    }
}

/// `names` keys: the decoder also takes an operation holding a NUL, which the
/// encoder never writes (it cuts names there); the rest round-trips and
/// orders as its bytes. Two keys are the parts of `data` around a 0xFF byte
/// (never part of UTF-8).
fn name_keys(data: &[u8]) {
    let writable = |name: &keys::OperationName| !name.operation.contains('\0');
    if let Ok(name) = keys::decode_name_key(data) {
        assert!(!name.service.contains('\0'));
        if writable(&name) {
            assert_eq!(keys::encode_name_key(&name), data);
            assert!(data.starts_with(&keys::name_prefix(&name.service)));
        }
    }
    if let Some(at) = data.iter().position(|&b| b == 0xFF) {
        let (a, b) = (&data[..at], &data[at + 1..]);
        if let (Ok(first), Ok(second)) = (keys::decode_name_key(a), keys::decode_name_key(b)) {
            if writable(&first) && writable(&second) {
                assert_eq!(first.cmp(&second), a.cmp(b), "{first:?} {second:?}");
            }
        }
    }
}

/// `graph` subjects round-trip when their names fit `MAX_GRAPH_NAME`, and
/// read back from a whole key.
fn graph_subject(data: &[u8]) {
    let Ok(subject) = keys::decode_graph_subject(data) else {
        return;
    };
    let names = match &subject {
        crate::model::GraphSubject::Node { id, system, .. } => [id, system],
        crate::model::GraphSubject::Edge { source, target, .. } => [source, target],
    };
    if names.iter().all(|n| n.len() <= keys::MAX_GRAPH_NAME) {
        let mut encoded = Vec::new();
        keys::encode_graph_subject(&mut encoded, &subject);
        assert_eq!(encoded, data);
        let key = keys::encode_graph_key(1, 29_000_000, &subject);
        assert_eq!(key[..5], keys::graph_bucket_prefix(1, 29_000_000));
        assert_eq!(keys::decode_graph_subject(&key[5..]), Ok(subject));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::path::{Path, PathBuf};

    type Target = fn(&[u8]);

    const TARGETS: [(&str, Target); 6] = [
        ("otlp_protobuf", otlp_protobuf),
        ("otlp_json", otlp_json),
        ("xray_datagram", xray_datagram),
        ("zipkin_json", zipkin_json),
        ("query_params", query_params),
        ("storage_keys", storage_keys),
    ];

    fn corpus_dir(target: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/corpus")
            .join(target)
    }

    /// The committed seed corpus (and the inputs of crashes found, kept
    /// there as regressions) passes every target's checks.
    #[test]
    fn seed_corpus_passes() {
        for (name, target) in TARGETS {
            let dir = corpus_dir(name);
            let mut seen = 0;
            for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir:?}: {e}")) {
                let path = entry.unwrap().path();
                target(&std::fs::read(&path).unwrap());
                seen += 1;
            }
            assert!(seen >= 3, "{name}: {seen} seeds");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// A few hundred random inputs per target on every `cargo test`; the
        /// real search is `scripts/fuzz.sh`.
        #[test]
        fn random_bytes_keep_every_promise(data in proptest::collection::vec(any::<u8>(), 0..256)) {
            for (_, target) in TARGETS {
                target(&data);
            }
        }
    }

    /// Writes the seed corpus under `fuzz/corpus/` from the load generator's
    /// requests and the receivers' test documents:
    /// `cargo test --lib fuzzing::tests::write_seed_corpus -- --ignored`.
    #[test]
    #[ignore = "writes fuzz/corpus; run by hand when the formats change"]
    fn write_seed_corpus() {
        use crate::loadgen::corpus::{request, Shape};
        use prost::Message;

        let write = |target: &str, name: &str, bytes: &[u8]| {
            let dir = corpus_dir(target);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(name), bytes).unwrap();
        };
        let mut all_spans = Vec::new();
        for (seed, spans) in [(1, 1), (2, 4), (3, 12)] {
            let shape = Shape {
                spans_per_request: spans,
                trace_len: (1, 6),
                ..Shape::default()
            };
            let request = request(seed, &shape);
            write(
                "otlp_protobuf",
                &format!("loadgen-{spans}"),
                &request.encode_to_vec(),
            );
            write(
                "otlp_json",
                &format!("loadgen-{spans}"),
                &serde_json::to_vec(&request).unwrap(),
            );
            let mut bytes = Vec::new();
            for (n, datagram) in crate::loadgen::xray::datagrams(&request)
                .iter()
                .take(3)
                .enumerate()
            {
                datagram.fresh(seed as u32, &mut bytes);
                write("xray_datagram", &format!("loadgen-{seed}-{n}"), &bytes);
            }
            all_spans.extend(convert::convert_request(request).spans);
        }
        for (name, body) in SEGMENTS {
            write(
                "xray_datagram",
                name,
                format!("{{\"format\": \"json\", \"version\": 1}}\n{body}").as_bytes(),
            );
        }
        for (name, body) in ZIPKIN {
            write("zipkin_json", name, body.as_bytes());
        }
        for (name, query) in QUERIES {
            write("query_params", name, query.as_bytes());
        }

        let trace_id = all_spans[0].trace_id;
        let span_key = keys::SpanKey {
            trace_id,
            received_at_us: 1_764_316_800_000_000,
            chunk_id: 0xA1A2_A3A4_A5A6_A7A8,
        };
        let index_key = keys::IndexBlockKey::of(2, keys::index_hash("frontend"), 1 << 50, 9);
        let journal_key = keys::JournalKey {
            received_at_us: 1 << 50,
            seq: 3,
        };
        let finding_key = keys::FindingKey {
            start_us: 1 << 50,
            trace_id,
            n: 2,
        };
        let name = keys::OperationName {
            service: "frontend".into(),
            operation: "GET /api/books".into(),
            kind: 2,
        };
        let subject = crate::model::GraphSubject::Edge {
            source: "frontend".into(),
            target: "postgresql".into(),
            edge_type: crate::model::EdgeType::from_u8(1).unwrap(),
        };
        let mut graph = Vec::new();
        keys::encode_graph_subject(&mut graph, &subject);
        let hit = |n: u8| crate::storage::IndexHit {
            trace_id: TraceId([n; 16]),
            start_us: 1 << 50,
            duration_us: 12_000,
            error: n > 1,
        };
        let chunk: Vec<Span> = all_spans
            .iter()
            .filter(|s| s.trace_id == trace_id)
            .cloned()
            .collect();
        let summary = crate::model::TraceSummary {
            trace_id,
            root_service: "frontend".into(),
            root_operation: "GET /".into(),
            span_count: 3,
            services: vec!["catalog".into(), "frontend".into()],
            operations: vec![("frontend".into(), "GET /".into())],
            finding_kinds: vec!["n_plus_one".into()],
            ..Default::default()
        };
        let mut two_span_keys = keys::encode_span_key(&span_key).to_vec();
        two_span_keys.extend_from_slice(&keys::encode_span_key(&keys::SpanKey {
            chunk_id: 1,
            ..span_key
        }));
        let seeds: [(&str, Vec<u8>); 11] = [
            ("span-keys", two_span_keys),
            ("index-key", keys::encode_index_key(&index_key).to_vec()),
            (
                "journal-key",
                keys::encode_journal_key(&journal_key).to_vec(),
            ),
            (
                "finding-key",
                keys::encode_finding_key(&finding_key).to_vec(),
            ),
            ("name-key", keys::encode_name_key(&name)),
            ("graph-subject", graph),
            (
                "index-table",
                keys::encode_index_table(0, &[hit(1), hit(2)]),
            ),
            ("index-block", keys::encode_index_block(&[0, 1, 300])),
            (
                "journal-value",
                keys::encode_journal_value([trace_id].iter()),
            ),
            ("chunk", codec::encode_chunk(&chunk)),
            ("summary", codec::encode_summary(&summary, 41)),
        ];
        for (name, bytes) in seeds {
            write("storage_keys", name, &bytes);
        }
    }

    /// Segment documents of the X-Ray receiver's tests: a segment with
    /// HTTP, SQL, AWS, annotations, a cause and nested subsegments; an
    /// independent subsegment; an in-progress segment.
    const SEGMENTS: [(&str, &str); 3] = [
        (
            "segment-nested",
            r#"{"name":"search","id":"70de5b6f19ff9a0a","trace_id":"1-581cf771-a006649127e371903a2de979","start_time":1478293361.271,"end_time":1478293361.449,"http":{"request":{"method":"GET","url":"http://x/"},"response":{"status":200}},"aws":{"xray":{"sdk":"X-Ray for Python","sdk_version":"2.4.0"},"retries":2},"annotations":{"user":"u1","n":3},"metadata":{"debug":{"a":[1,2,{"b":null}]}},"subsegments":[{"name":"es","id":"70de5b6f19ff9a0b","start_time":1478293361.3,"end_time":1478293361.4,"namespace":"remote","fault":true,"cause":{"working_directory":"/app","exceptions":[{"id":"e1","message":"boom","type":"ValueError","stack":[{"path":"a.py","line":3,"label":"f"}]}]},"subsegments":[{"name":"db","id":"70de5b6f19ff9a0c","start_time":1478293361.31,"end_time":1478293361.32,"namespace":"remote","sql":{"url":"jdbc:postgresql://db:5432/books","sanitized_query":"SELECT * FROM books WHERE id = ?","database_type":"PostgreSQL"}}]}]}"#,
        ),
        (
            "independent-subsegment",
            r#"{"type":"subsegment","name":"s3","id":"70de5b6f19ff9a0d","trace_id":"1-581cf771-a006649127e371903a2de979","parent_id":"70de5b6f19ff9a0a","start_time":1478293361.35,"end_time":1478293361.36,"namespace":"aws","throttle":true,"http":{"response":{"status":"429"}},"aws":{"operation":"GetObject","region":"us-east-1"}}"#,
        ),
        (
            "in-progress",
            r#"{"name":"worker","id":"70de5b6f19ff9a0e","trace_id":"1-581cf771-a006649127e371903a2de980","start_time":1478293362.0,"in_progress":true,"error":true,"cause":"70de5b6f19ff9a0b"}"#,
        ),
    ];

    /// Zipkin bodies of the Zipkin receiver's tests: a B3 reporter's three
    /// spans (a shared server half among them), an OpenTelemetry exporter's
    /// span with status and scope tags, and a batch with refused ids.
    const ZIPKIN: [(&str, &str); 3] = [
        (
            "reporter",
            r#"[{"traceId":"5af7183fb1d4cf5f","id":"6b221d5bc9e6496c","kind":"SERVER","name":"get /","timestamp":1764316799990000,"duration":60000,"localEndpoint":{"serviceName":"frontend","ipv4":"172.17.0.13","port":8081},"remoteEndpoint":{"ipv6":"2001:db8::1","port":52144},"tags":{"http.method":"GET","http.path":"/"}},{"traceId":"5af7183fb1d4cf5f","parentId":"6b221d5bc9e6496c","id":"352bff9a74ca9ad2","kind":"CLIENT","name":"get /api/books","timestamp":1764316800000000,"duration":38000,"localEndpoint":{"serviceName":"frontend","ipv4":"172.17.0.13"},"remoteEndpoint":{"serviceName":"catalog","ipv4":"172.17.0.14","port":8080},"annotations":[{"timestamp":1764316800001000,"value":"ws"},{"timestamp":1764316800037000,"value":"wr"}],"tags":{"http.method":"GET","http.path":"/api/books"}},{"traceId":"5af7183fb1d4cf5f","parentId":"6b221d5bc9e6496c","id":"352bff9a74ca9ad2","kind":"SERVER","shared":true,"name":"get /api/books","timestamp":1764316800002000,"duration":30000,"localEndpoint":{"serviceName":"catalog","ipv4":"172.17.0.14","port":8080},"remoteEndpoint":{"ipv4":"172.17.0.13"},"annotations":[{"timestamp":1764316800029000,"value":"db retry"}],"tags":{"http.method":"GET","http.path":"/api/books","http.status_code":"500","error":"database unavailable"}}]"#,
        ),
        (
            "otel-exporter",
            r#"[{"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","id":"00f067aa0ba902b7","name":"SELECT books","kind":"CLIENT","timestamp":1764316800000000.5,"duration":1500.25,"localEndpoint":{"serviceName":"catalog"},"remoteEndpoint":{"serviceName":"postgresql","port":5432},"tags":{"otel.status_code":"ERROR","otel.status_description":"timeout","otel.scope.name":"sqlalchemy","otel.scope.version":"0.1","db.system":"postgresql","db.statement":"SELECT * FROM books","rows":"12"},"annotations":[{"timestamp":1764316800000100,"value":"exception: {\"exception.type\":\"Timeout\"}"}],"debug":true}]"#,
        ),
        (
            "refused-ids",
            r#"[{"traceId":"00000000000000000000000000000000","id":"00f067aa0ba902b7","name":"zero"},{"traceId":"4bf92f3577b34da6","id":"xyz","name":"not hex"},{"traceId":"4bf92f3577b34da6","id":"00f067aa0ba902b8","parentId":"00f067aa0ba902b8","name":"own parent"},{"traceId":"4bf92f3577b34da6","id":"00f067aa0ba902b9","parentId":"0000000000000000","name":"zero parent","timestamp":null}]"#,
        ),
    ];

    /// Query strings of the API tests and docs, native and Jaeger.
    const QUERIES: [(&str, &str); 6] = [
        (
            "v1-search",
            "service=frontend&operation=GET%20%2F&attr=db.system:postgresql&min_duration=250ms&max_duration=1.5s&error=true&sort=duration&limit=20&finding=n_plus_one&start=1764316800000&end=1764320400000",
        ),
        (
            "v1-lookback",
            "correlation_id=req_5759e988bd862e3f&lookback=2h&limit=1000",
        ),
        (
            "jaeger-search",
            "service=catalog&operation=get+%2Fapi%2Fbooks&tag=http.status_code:500&tags=%7B%22error%22%3A%22true%22%7D&minDuration=1.5ms&maxDuration=1m30s&start=1764316800000000&end=1764320400000000&limit=1500",
        ),
        (
            "findings",
            "kind=slow_db&service=catalog&trace_id=1-5759e988-bd862e3fe1be46a994272793&start=2025-11-28T08:00:00Z&end=2025-11-28T09:00:00Z&limit=10000",
        ),
        ("dependencies", "endTs=1764316800000&lookback=3600000"),
        ("jaeger-trace-id", "trace_id=5af7183fb1d4cf5f&lookback=15m"),
    ];
}
