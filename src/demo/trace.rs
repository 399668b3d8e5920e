//! Recording one request's spans as the bookstore's SDKs would: CLIENT and
//! SERVER span pairs linked parent to child across services, database and
//! outside calls, every span with the semantic-convention attributes its
//! instrumentation writes and the request's correlation id.
//!
//! A request is built forward in time from 0, each handler returning when
//! it answered; [`TraceBuilder::finish`] then moves the whole trace so that
//! it ends at the moment it is sent, as if the request had just completed.
//! Latencies are log-normal (most calls near their median, a long tail), the
//! shape real service latencies have.

use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::{Span, Status};
use rand::rngs::StdRng;
use rand::Rng;

use super::topology::Service;
use crate::loadgen::corpus::{attr, s};

const MS: u64 = 1_000_000;

/// A span recorded by one service.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub service: Service,
    pub span: Span,
}

/// A span of the trace being built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanRef(usize);

/// How a call ended: its HTTP status, and when the caller had the answer
/// (ns from the start of the trace).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub end: u64,
}

pub(super) fn int(v: i64) -> any_value::Value {
    any_value::Value::IntValue(v)
}

/// Builds one trace.
pub struct TraceBuilder<'r> {
    pub rng: &'r mut StdRng,
    trace_id: [u8; 16],
    correlation_id: String,
    spans: Vec<Recorded>,
}

impl<'r> TraceBuilder<'r> {
    /// A new trace starting about `now_unix_s`. Its id begins with that
    /// time, as the X-Ray id generator of OpenTelemetry makes them, so the
    /// X-Ray-traced service can carry it on.
    pub fn new(rng: &'r mut StdRng, now_unix_s: u32) -> Self {
        let mut trace_id: [u8; 16] = rng.random();
        trace_id[..4].copy_from_slice(&now_unix_s.to_be_bytes());
        let correlation_id = format!("req_{:016x}", rng.random::<u64>());
        Self {
            rng,
            trace_id,
            correlation_id,
            spans: Vec::new(),
        }
    }

    pub fn correlation_id(&self) -> &str {
        &self.correlation_id
    }

    /// A log-normal duration in ns with this median, spread (`sigma`, the
    /// standard deviation of its logarithm) and bounds in ms.
    pub fn latency(&mut self, median_ms: f64, sigma: f64, (min_ms, max_ms): (f64, f64)) -> u64 {
        // Box–Muller: one standard normal draw from two uniform ones.
        let u1: f64 = self.rng.random_range(f64::EPSILON..1.0);
        let u2: f64 = self.rng.random();
        let normal = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        let ms = (median_ms.ln() + sigma * normal)
            .exp()
            .clamp(min_ms, max_ms);
        (ms * MS as f64) as u64
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p.clamp(0.0, 1.0))
    }

    /// A network hop between two services: 0.2–2 ms.
    pub(super) fn hop(&mut self) -> u64 {
        self.latency(0.5, 0.5, (0.2, 2.0))
    }

    /// A bit of a service's own work between two steps.
    pub fn work(&mut self, median_ms: f64) -> u64 {
        self.latency(median_ms, 0.4, (median_ms / 4.0, median_ms * 4.0))
    }

    pub fn service_of(&self, span: SpanRef) -> Service {
        self.spans[span.0].service
    }

    /// Opens a span; it ends at its start until [`Self::close`].
    pub fn open(
        &mut self,
        service: Service,
        parent: Option<SpanRef>,
        name: String,
        kind: SpanKind,
        start: u64,
        mut attributes: Vec<KeyValue>,
    ) -> SpanRef {
        attributes.push(attr("correlation_id", s(self.correlation_id.clone())));
        let span = Span {
            trace_id: self.trace_id.to_vec(),
            span_id: self.rng.random::<[u8; 8]>().to_vec(),
            parent_span_id: parent
                .map(|p| self.spans[p.0].span.span_id.clone())
                .unwrap_or_default(),
            name,
            kind: kind as i32,
            start_time_unix_nano: start,
            end_time_unix_nano: start,
            attributes,
            status: Some(Status::default()),
            ..Span::default()
        };
        self.spans.push(Recorded { service, span });
        SpanRef(self.spans.len() - 1)
    }

    pub fn close(&mut self, span: SpanRef, end: u64) {
        let span = &mut self.spans[span.0].span;
        span.end_time_unix_nano = end.max(span.start_time_unix_nano);
    }

    pub fn add(&mut self, span: SpanRef, attribute: KeyValue) {
        self.spans[span.0].span.attributes.push(attribute);
    }

    /// Marks a span failed, as SDKs do: error status with a message.
    pub fn fail(&mut self, span: SpanRef, message: &str) {
        self.spans[span.0].span.status = Some(Status {
            message: message.into(),
            code: 2,
        });
    }

    /// Sets the HTTP answer of a span, failing it as the conventions say: a
    /// server span on 5xx, a client span on any 4xx or 5xx.
    pub(super) fn answer(&mut self, span: SpanRef, status: u16) {
        self.add(span, attr("http.response.status_code", int(status.into())));
        let kind = self.spans[span.0].span.kind;
        let failed = status >= 500 || (status >= 400 && kind == SpanKind::Client as i32);
        if failed {
            self.add(span, attr("error.type", s(status.to_string())));
            self.fail(span, "");
        }
    }

    /// The SERVER span of `service` handling `method route` for `path`,
    /// under `parent` (a client span, or none at the root).
    pub fn server(
        &mut self,
        service: Service,
        parent: Option<SpanRef>,
        (method, route, path): (&str, &str, &str),
        start: u64,
    ) -> SpanRef {
        let host = if service == Service::Gateway {
            "shop.bookstore.example"
        } else {
            service.name()
        };
        let (scheme, port) = if service == Service::Gateway {
            ("https", 443)
        } else {
            ("http", 8080)
        };
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        let client = format!(
            "10.42.{}.{}",
            self.rng.random_range(0..8),
            self.rng.random_range(2..250)
        );
        let mut attributes = vec![
            attr("http.request.method", s(method.into())),
            attr("http.route", s(route.into())),
            attr("url.scheme", s(scheme.into())),
            attr("url.path", s(path.into())),
            attr("server.address", s(host.into())),
            attr("server.port", int(port)),
            attr("client.address", s(client)),
            attr("network.protocol.version", s("1.1".into())),
        ];
        if !query.is_empty() {
            attributes.push(attr("url.query", s(query.into())));
        }
        if service == Service::Gateway {
            let agent =
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15";
            attributes.push(attr("user_agent.original", s(agent.into())));
        }
        let name = format!("{method} {route}");
        self.open(service, parent, name, SpanKind::Server, start, attributes)
    }

    /// Ends a server span with its answer.
    pub fn respond(&mut self, span: SpanRef, reply: Reply) -> Reply {
        self.answer(span, reply.status);
        self.close(span, reply.end);
        reply
    }

    /// An HTTP call at `at` from `parent`'s service to `callee`, whose SERVER
    /// span `handler` fills in (given it and its start) and answers.
    pub fn call(
        &mut self,
        parent: SpanRef,
        at: u64,
        callee: Service,
        (method, route, path): (&str, &str, &str),
        handler: impl FnOnce(&mut Self, SpanRef, u64) -> Reply,
    ) -> Reply {
        let caller = self.service_of(parent);
        let host = callee.name();
        let attributes = vec![
            attr("http.request.method", s(method.into())),
            attr("url.full", s(format!("http://{host}:8080{path}"))),
            attr("url.template", s(route.into())),
            attr("server.address", s(host.into())),
            attr("server.port", int(8080)),
            attr("network.protocol.version", s("1.1".into())),
        ];
        let name = format!("{method} {route}");
        let client = self.open(caller, Some(parent), name, SpanKind::Client, at, attributes);
        let start = at + self.hop();
        let server = self.server(callee, Some(client), (method, route, path), start);
        let reply = handler(self, server, start);
        let reply = self.respond(server, reply);
        let end = reply.end + self.hop();
        self.answer(client, reply.status);
        self.close(client, end);
        Reply {
            status: reply.status,
            end,
        }
    }

    /// The recorded spans, moved in time so that the trace ends at `end_unix_ns`.
    pub fn finish(self, end_unix_ns: u64) -> Vec<Recorded> {
        let last = self
            .spans
            .iter()
            .map(|r| r.span.end_time_unix_nano)
            .max()
            .unwrap_or(0);
        let shift = end_unix_ns.saturating_sub(last);
        let mut spans = self.spans;
        for recorded in &mut spans {
            recorded.span.start_time_unix_nano += shift;
            recorded.span.end_time_unix_nano += shift;
        }
        spans
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn latencies_are_bounded_and_centred_on_their_median() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut builder = TraceBuilder::new(&mut rng, 1_700_000_000);
        let mut samples: Vec<u64> = (0..2001)
            .map(|_| builder.latency(20.0, 0.5, (2.0, 200.0)))
            .collect();
        samples.sort_unstable();
        assert!(samples[0] >= 2 * MS && samples[2000] <= 200 * MS);
        let median = samples[1000] as f64 / MS as f64;
        assert!((17.0..23.0).contains(&median), "{median}");
        // A tail: the slowest 1 % well above the median.
        assert!(samples[1980] > 50 * MS, "{}", samples[1980]);
    }

    #[test]
    fn a_call_is_a_client_and_a_server_span_linked_across_services() {
        let mut rng = StdRng::seed_from_u64(2);
        let mut b = TraceBuilder::new(&mut rng, 1_700_000_000);
        let root = b.server(Service::Gateway, None, ("GET", "/api/x", "/api/x"), 0);
        let reply = b.call(
            root,
            1_000,
            Service::User,
            ("GET", "/users/{id}", "/users/7"),
            |_, _, start| Reply {
                status: 404,
                end: start + 5 * MS,
            },
        );
        b.respond(
            root,
            Reply {
                status: 404,
                end: reply.end + MS,
            },
        );
        let correlation = b.correlation_id().to_string();
        let spans = b.finish(1_700_000_010_000_000_000);
        assert_eq!(spans.len(), 3);
        let (root, client, server) = (&spans[0].span, &spans[1].span, &spans[2].span);
        assert_eq!(client.parent_span_id, root.span_id);
        assert_eq!(server.parent_span_id, client.span_id);
        assert_eq!(spans[2].service, Service::User);
        assert_eq!(root.end_time_unix_nano, 1_700_000_010_000_000_000);
        assert!(client.start_time_unix_nano < server.start_time_unix_nano);
        assert!(client.end_time_unix_nano > server.end_time_unix_nano);
        // 404: the client failed, the servers did not.
        assert_eq!(client.status.as_ref().unwrap().code, 2);
        assert_eq!(server.status.as_ref().unwrap().code, 0);
        for span in [root, client, server] {
            assert_eq!(span.trace_id[..4], 1_700_000_000u32.to_be_bytes());
            assert!(span.attributes.iter().any(|a| a.key == "correlation_id"
                && a.value
                    == Some(opentelemetry_proto::tonic::common::v1::AnyValue {
                        value: Some(s(correlation.clone()))
                    })));
        }
    }
}
