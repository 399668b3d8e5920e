//! Trace → observations: the calls between services and into databases,
//! caches and uninstrumented peers that one assembled trace shows, each
//! classified and timed. A pure function; the counting rules are API.md's.
//!
//! - A CLIENT (or PRODUCER) span and the SERVER (or CONSUMER) span it caused
//!   are one call on the edge caller → callee, timed on the client side.
//! - A CLIENT span with no server side calls a virtual node, named by the
//!   peer attributes (`semconv::peer_name`).
//! - A span that enters a service — a SERVER or CONSUMER span, a root, or a
//!   span whose parent is in another service — is a request the service node
//!   handled; when no client span caused it, it is also a call from its
//!   parent's service (or from `user` at a root).
//! - A call is a retry when it says so (resend count, X-Ray retries, gRPC
//!   previous attempts) or follows a failed or throttled call from the same
//!   parent to the same callee and operation.

use std::borrow::Cow;
// Built for every completed trace: a fast hasher, seeded per map.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

use crate::model::{
    semconv, CallClass, EdgeType, GraphSubject, NodeType, Span, SpanId, SpanKind, StatusCode, Trace,
};

/// The caller of root spans.
pub const USER: &str = "user";

/// One call on an edge, or one request handled by a node.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// Start of the span observed (ns): the time bucket it counts in.
    pub start_ns: u64,
    pub subject: GraphSubject,
    pub class: CallClass,
    pub latency_us: u64,
    pub retry: bool,
    /// For an edge whose both sides are traced, the server side's latency.
    pub server_latency_us: Option<u64>,
}

fn is_caller(kind: SpanKind) -> bool {
    matches!(kind, SpanKind::Client | SpanKind::Producer)
}

fn is_callee(kind: SpanKind) -> bool {
    matches!(kind, SpanKind::Server | SpanKind::Consumer)
}

fn micros(span: &Span) -> u64 {
    span.duration_ns() / 1_000
}

/// How a call ended, from the client span and the server span when both exist:
/// an HTTP status decides first (429 throttle, 4xx error, 5xx fault), then
/// X-Ray's flags, then gRPC's `RESOURCE_EXHAUSTED`, then an error status.
pub fn classify(client: &Span, server: Option<&Span>) -> CallClass {
    let sides = || std::iter::once(client).chain(server);
    if let Some(code) = sides().find_map(semconv::http_status) {
        match code {
            429 => return CallClass::Throttle,
            400..=499 => return CallClass::Error,
            500..=599 => return CallClass::Fault,
            _ => {}
        }
    }
    if sides().any(semconv::xray_throttle) {
        return CallClass::Throttle;
    }
    if sides().any(semconv::xray_fault) {
        return CallClass::Fault;
    }
    if sides().any(semconv::xray_error) {
        return CallClass::Error;
    }
    if sides().any(|s| semconv::grpc_status(s) == Some(8)) {
        return CallClass::Throttle;
    }
    if sides().any(|s| s.status.code == StatusCode::Error) {
        return CallClass::Fault;
    }
    CallClass::Ok
}

/// The virtual node a client span with no server side calls, if it names one.
fn virtual_node(span: &Span) -> Option<GraphSubject> {
    let id = semconv::peer_name(span)?.into_owned();
    let (node_type, system) = if let Some(system) = semconv::db_system(span) {
        (NodeType::Database, system.into_owned())
    } else if let Some(system) = semconv::messaging_system(span) {
        (NodeType::Messaging, system.into_owned())
    } else if span.kind == SpanKind::Producer {
        (NodeType::Messaging, String::new())
    } else {
        (NodeType::External, String::new())
    };
    Some(GraphSubject::Node {
        id,
        node_type,
        system,
    })
}

fn edge_type(caller: &Span, callee: Option<&Span>, target: Option<NodeType>) -> EdgeType {
    let sides = || std::iter::once(caller).chain(callee);
    match target {
        Some(NodeType::Database) => return EdgeType::Database,
        Some(NodeType::Messaging) => return EdgeType::Messaging,
        _ => {}
    }
    if sides().any(|s| matches!(s.kind, SpanKind::Producer | SpanKind::Consumer))
        || sides().any(|s| semconv::messaging_system(s).is_some())
    {
        EdgeType::Messaging
    } else if sides().any(|s| semconv::db_system(s).is_some()) {
        EdgeType::Database
    } else if sides().any(|s| semconv::rpc_system(s).is_some()) {
        EdgeType::Rpc
    } else if sides().any(semconv::is_http) {
        EdgeType::Http
    } else {
        EdgeType::Other
    }
}

fn service_node(id: &str) -> GraphSubject {
    GraphSubject::Node {
        id: id.to_string(),
        node_type: NodeType::Service,
        system: String::new(),
    }
}

/// Every call and request the trace shows.
pub fn observations(trace: &Trace) -> Vec<Observation> {
    let spans = &trace.spans;
    let index: HashMap<SpanId, usize> = spans
        .iter()
        .enumerate()
        .map(|(i, s)| (s.span_id, i))
        .collect();
    let parent_of = |span: &Span| span.parent_span_id.and_then(|p| index.get(&p).copied());
    // The server side each client span caused (the first, when several), and
    // which server spans a client span already counts.
    let mut server_of: HashMap<usize, usize> = HashMap::default();
    let mut caused = vec![false; spans.len()];
    for (i, span) in spans.iter().enumerate() {
        if !is_callee(span.kind) {
            continue;
        }
        if let Some(p) = parent_of(span).filter(|&p| is_caller(spans[p].kind)) {
            server_of.entry(p).or_insert(i);
            caused[i] = true;
        }
    }
    let retries = retried_calls(spans, &parent_of, &server_of);
    let mut out = Vec::new();
    for (i, span) in spans.iter().enumerate() {
        let service = span.service();
        if is_caller(span.kind) {
            let retry = retries[i];
            if let Some(&s) = server_of.get(&i) {
                let server = &spans[s];
                out.push(Observation {
                    start_ns: span.start_ns,
                    subject: GraphSubject::Edge {
                        source: service.to_string(),
                        target: server.service().to_string(),
                        edge_type: edge_type(span, Some(server), None),
                    },
                    class: classify(span, Some(server)),
                    latency_us: micros(span),
                    retry,
                    server_latency_us: Some(micros(server)),
                });
            } else if let Some(node) = virtual_node(span) {
                let GraphSubject::Node { id, node_type, .. } = &node else {
                    unreachable!("virtual_node returns a node")
                };
                let class = classify(span, None);
                out.push(Observation {
                    start_ns: span.start_ns,
                    subject: GraphSubject::Edge {
                        source: service.to_string(),
                        target: id.clone(),
                        edge_type: edge_type(span, None, Some(*node_type)),
                    },
                    class,
                    latency_us: micros(span),
                    retry,
                    server_latency_us: None,
                });
                out.push(Observation {
                    start_ns: span.start_ns,
                    subject: node,
                    class,
                    latency_us: micros(span),
                    retry,
                    server_latency_us: None,
                });
            }
        }
        // Does this span enter its service?
        let parent = parent_of(span);
        let from_other_service = parent.is_some_and(|p| spans[p].service() != service);
        let entry = span.parent_span_id.is_none()
            || from_other_service
            || (is_callee(span.kind) && parent.is_none_or(|p| is_caller(spans[p].kind)));
        if !entry {
            continue;
        }
        let class = classify(span, None);
        out.push(Observation {
            start_ns: span.start_ns,
            subject: service_node(service),
            class,
            latency_us: micros(span),
            retry: false,
            server_latency_us: None,
        });
        if caused[i] {
            continue;
        }
        let caller = match (span.parent_span_id, parent) {
            (None, _) => USER,
            (Some(_), Some(p)) if from_other_service => spans[p].service(),
            // The caller is not in the trace (yet): no edge to draw.
            _ => continue,
        };
        let subject = GraphSubject::Edge {
            source: caller.to_string(),
            target: service.to_string(),
            edge_type: edge_type(span, None, None),
        };
        if caller == USER {
            out.push(Observation {
                start_ns: span.start_ns,
                subject: GraphSubject::Node {
                    id: USER.to_string(),
                    node_type: NodeType::Client,
                    system: String::new(),
                },
                class,
                latency_us: micros(span),
                retry: false,
                server_latency_us: None,
            });
        }
        out.push(Observation {
            start_ns: span.start_ns,
            subject,
            class,
            latency_us: micros(span),
            retry: false,
            server_latency_us: Some(micros(span)),
        });
    }
    out
}

/// Which client spans are retry attempts: marked as such, or following a
/// failed or throttled sibling call to the same callee and operation.
fn retried_calls(
    spans: &[Span],
    parent_of: &impl Fn(&Span) -> Option<usize>,
    server_of: &HashMap<usize, usize>,
) -> Vec<bool> {
    let mut retry: Vec<bool> = spans
        .iter()
        .map(|s| is_caller(s.kind) && semconv::retry_marker(s))
        .collect();
    // Client calls grouped by (parent, callee, operation), in start order
    // (spans are sorted by start).
    type Group<'a> = (Option<usize>, Cow<'a, str>, &'a str);
    let mut groups: HashMap<Group, Vec<usize>> = HashMap::default();
    for (i, span) in spans.iter().enumerate() {
        if !is_caller(span.kind) {
            continue;
        }
        let callee = match server_of.get(&i) {
            Some(&s) => Cow::Borrowed(spans[s].service()),
            None => match semconv::peer_name(span) {
                Some(name) => name,
                None => continue,
            },
        };
        groups
            .entry((parent_of(span), callee, span.name.as_str()))
            .or_default()
            .push(i);
    }
    for calls in groups.values() {
        for pair in calls.windows(2) {
            let (before, after) = (&spans[pair[0]], &spans[pair[1]]);
            let server = server_of.get(&pair[0]).map(|&s| &spans[s]);
            let failed = matches!(
                classify(before, server),
                CallClass::Fault | CallClass::Throttle
            );
            if failed && before.end_ns <= after.start_ns {
                retry[pair[1]] = true;
            }
        }
    }
    retry
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::model::{AttrValue, KeyValue, Resource, Status, TraceId};

    struct Builder {
        spans: Vec<Span>,
    }

    impl Builder {
        #[allow(clippy::too_many_arguments)]
        fn span(
            &mut self,
            id: u8,
            parent: Option<u8>,
            service: &str,
            kind: SpanKind,
            start_ms: u64,
            end_ms: u64,
            attrs: &[(&str, AttrValue)],
        ) -> &mut Self {
            self.spans.push(Span {
                trace_id: TraceId([1; 16]),
                span_id: SpanId([id; 8]),
                parent_span_id: parent.map(|p| SpanId([p; 8])),
                name: format!("op-{service}"),
                kind,
                start_ns: start_ms * 1_000_000,
                end_ns: end_ms * 1_000_000,
                attributes: attrs
                    .iter()
                    .map(|(k, v)| KeyValue::new(*k, v.clone()))
                    .collect(),
                resource: Arc::new(Resource {
                    service: service.into(),
                    attributes: vec![],
                }),
                ..Span::default()
            });
            self
        }

        fn trace(&mut self) -> Trace {
            let mut spans = std::mem::take(&mut self.spans);
            spans.sort_by_key(|s| (s.start_ns, s.span_id));
            Trace {
                trace_id: TraceId([1; 16]),
                spans,
                last_received_us: 0,
            }
        }
    }

    fn edges(observations: &[Observation]) -> Vec<(String, String, EdgeType, CallClass, u64)> {
        let mut out: Vec<_> = observations
            .iter()
            .filter_map(|o| match &o.subject {
                GraphSubject::Edge {
                    source,
                    target,
                    edge_type,
                } => Some((
                    source.clone(),
                    target.clone(),
                    *edge_type,
                    o.class,
                    o.latency_us,
                )),
                _ => None,
            })
            .collect();
        out.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        out
    }

    fn nodes(observations: &[Observation]) -> Vec<(String, NodeType, String)> {
        let mut out: Vec<_> = observations
            .iter()
            .filter_map(|o| match &o.subject {
                GraphSubject::Node {
                    id,
                    node_type,
                    system,
                } => Some((id.clone(), *node_type, system.clone())),
                _ => None,
            })
            .collect();
        out.sort();
        out
    }

    fn s(v: &str) -> AttrValue {
        AttrValue::String(v.into())
    }

    #[test]
    fn client_server_pairs_are_one_call_and_databases_are_virtual_nodes() {
        use SpanKind::*;
        let trace = Builder { spans: vec![] }
            .span(
                1,
                None,
                "gateway",
                Server,
                0,
                100,
                &[("http.request.method", s("GET"))],
            )
            .span(
                2,
                Some(1),
                "gateway",
                Client,
                5,
                60,
                &[
                    ("http.request.method", s("GET")),
                    ("http.response.status_code", AttrValue::Int(503)),
                ],
            )
            .span(
                3,
                Some(2),
                "order",
                Server,
                10,
                55,
                &[("http.response.status_code", AttrValue::Int(503))],
            )
            .span(
                4,
                Some(3),
                "order",
                Client,
                12,
                20,
                &[
                    ("db.system.name", s("postgresql")),
                    ("db.namespace", s("orders")),
                ],
            )
            .span(
                5,
                Some(3),
                "order",
                Client,
                21,
                22,
                &[("db.system", s("redis")), ("server.address", s("cache"))],
            )
            .span(
                6,
                Some(3),
                "order",
                Client,
                23,
                50,
                &[
                    ("http.request.method", s("POST")),
                    ("server.address", s("api.stripe.com")),
                    ("http.response.status_code", AttrValue::Int(429)),
                ],
            )
            .trace();
        let observed = observations(&trace);
        assert_eq!(
            edges(&observed),
            vec![
                (
                    "gateway".into(),
                    "order".into(),
                    EdgeType::Http,
                    CallClass::Fault,
                    55_000
                ),
                (
                    "order".into(),
                    "api.stripe.com".into(),
                    EdgeType::Http,
                    CallClass::Throttle,
                    27_000
                ),
                (
                    "order".into(),
                    "cache".into(),
                    EdgeType::Database,
                    CallClass::Ok,
                    1_000
                ),
                (
                    "order".into(),
                    "orders".into(),
                    EdgeType::Database,
                    CallClass::Ok,
                    8_000
                ),
                (
                    "user".into(),
                    "gateway".into(),
                    EdgeType::Http,
                    CallClass::Ok,
                    100_000
                ),
            ]
        );
        assert_eq!(
            nodes(&observed),
            vec![
                ("api.stripe.com".into(), NodeType::External, String::new()),
                ("cache".into(), NodeType::Database, "redis".into()),
                ("gateway".into(), NodeType::Service, String::new()),
                ("order".into(), NodeType::Service, String::new()),
                ("orders".into(), NodeType::Database, "postgresql".into()),
                ("user".into(), NodeType::Client, String::new()),
            ]
        );
    }

    #[test]
    fn a_server_span_without_its_client_is_a_call_from_its_parents_service() {
        use SpanKind::*;
        let trace = Builder { spans: vec![] }
            .span(1, None, "gateway", Server, 0, 100, &[])
            .span(2, Some(1), "gateway", Internal, 1, 90, &[])
            .span(
                3,
                Some(2),
                "search",
                Server,
                2,
                80,
                &[("rpc.system", s("grpc"))],
            )
            // A parent that never arrived: the request counts, no edge.
            .span(4, Some(99), "auth", Server, 3, 4, &[])
            .trace();
        let observed = observations(&trace);
        assert_eq!(
            edges(&observed),
            vec![
                (
                    "gateway".into(),
                    "search".into(),
                    EdgeType::Rpc,
                    CallClass::Ok,
                    78_000
                ),
                (
                    "user".into(),
                    "gateway".into(),
                    EdgeType::Other,
                    CallClass::Ok,
                    100_000
                ),
            ]
        );
        let services: Vec<_> = nodes(&observed).into_iter().map(|n| n.0).collect();
        assert_eq!(services, ["auth", "gateway", "search", "user"]);
    }

    #[test]
    fn retries_are_marked_or_follow_a_failed_attempt() {
        use SpanKind::*;
        let stripe = |code: i64| {
            vec![
                ("server.address", s("api.stripe.com")),
                ("http.response.status_code", AttrValue::Int(code)),
            ]
        };
        let mut b = Builder { spans: vec![] };
        b.span(1, None, "payment", Server, 0, 1000, &[]);
        b.span(2, Some(1), "payment", Client, 10, 20, &stripe(503));
        b.span(3, Some(1), "payment", Client, 30, 40, &stripe(429));
        b.span(4, Some(1), "payment", Client, 50, 60, &stripe(200));
        // After a success: not a retry, unless marked.
        b.span(5, Some(1), "payment", Client, 70, 80, &stripe(200));
        let mut marked = stripe(200);
        marked.push(("http.request.resend_count", AttrValue::Int(1)));
        b.span(6, Some(1), "payment", Client, 90, 95, &marked);
        let trace = b.trace();
        let retried: Vec<bool> = observations(&trace)
            .iter()
            .filter(|o| matches!(&o.subject, GraphSubject::Edge { target, .. } if target == "api.stripe.com"))
            .map(|o| o.retry)
            .collect();
        assert_eq!(retried, [false, true, true, false, true]);
    }

    #[test]
    fn classes_follow_xray_flags_and_status() {
        use SpanKind::*;
        let mut b = Builder { spans: vec![] };
        b.span(
            1,
            None,
            "a",
            Client,
            0,
            1,
            &[
                ("peer.service", s("x")),
                ("aws.xray.throttle", AttrValue::Bool(true)),
            ],
        );
        let trace = b.trace();
        assert_eq!(classify(&trace.spans[0], None), CallClass::Throttle);
        let mut span = trace.spans[0].clone();
        span.attributes.clear();
        span.status = Status {
            code: StatusCode::Error,
            message: "timeout".into(),
        };
        assert_eq!(classify(&span, None), CallClass::Fault);
        span.attributes = vec![KeyValue::new("http.status_code", s("404"))];
        assert_eq!(classify(&span, None), CallClass::Error);
    }
}
