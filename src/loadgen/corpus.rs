//! The generated OTLP corpus that the load generator sends and the benches
//! ingest: about 700 encoded bytes and 11–13 attributes per span, HTTP server
//! and PostgreSQL client spans, traces of 5–50 spans over 20 services,
//! deterministic from a seed. It sits beside the pipeline, not in it: nothing
//! in the server uses it.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};

/// An attribute `key` = `value`.
pub fn attr(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        key_strindex: 0,
        value: Some(AnyValue { value: Some(value) }),
    }
}

/// A string attribute value.
pub fn s(v: String) -> any_value::Value {
    any_value::Value::StringValue(v)
}

/// The shape of generated requests.
#[derive(Debug, Clone)]
pub struct Shape {
    pub spans_per_request: usize,
    /// Spans per trace, drawn uniformly from this range.
    pub trace_len: (usize, usize),
    /// Traces start uniformly within `window_ns` after `start_ns`.
    pub start_ns: u64,
    pub window_ns: u64,
}

impl Default for Shape {
    /// The load generator's corpus: 512 spans per request, traces of 5–50 spans.
    fn default() -> Self {
        Self {
            spans_per_request: 512,
            trace_len: (5, 50),
            start_ns: 1_700_000_000_000_000_000,
            window_ns: 1_000_000_000,
        }
    }
}

/// A deterministic request; `seed` makes the ids of each request distinct.
/// Every span of a trace carries the trace's correlation id,
/// `req_` and 16 hex digits of the trace id's first half.
pub fn request(seed: u64, shape: &Shape) -> ExportTraceServiceRequest {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut by_service: Vec<Vec<Span>> = vec![Vec::new(); 20];
    let mut produced = 0;
    let (shortest, longest) = shape.trace_len;
    while produced < shape.spans_per_request {
        let trace_len = shortest + (next() % (longest - shortest + 1) as u64) as usize;
        let mut trace_id = [0u8; 16];
        let high = next();
        trace_id[..8].copy_from_slice(&high.to_be_bytes());
        trace_id[8..].copy_from_slice(&next().to_be_bytes());
        let correlation_id = format!("req_{high:016x}");
        let trace_start = shape.start_ns + next() % shape.window_ns.max(1);
        let root_id = next();
        for i in 0..trace_len.min(shape.spans_per_request - produced) {
            let service = (next() % 20) as usize;
            let span_id = if i == 0 { root_id } else { next() };
            let start = trace_start + if i == 0 { 0 } else { next() % 100_000_000 };
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
                attr("correlation_id", s(correlation_id.clone())),
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
