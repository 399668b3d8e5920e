//! Span metrics and service-graph metrics on `/metrics`, named as the
//! OpenTelemetry spanmetrics connector and Tempo's servicegraph processor name
//! them, so dashboards (and Jaeger's Monitor tab) built on those names work.
//! Label values pass the cardinality guard first.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::model::{GraphRow, GraphSubject, NodeType, SpanKind, StatusCode};

/// The spanmetrics connector's default buckets (ms).
const SPAN_BUCKETS_MS: [f64; 16] = [
    2.0, 4.0, 6.0, 8.0, 10.0, 50.0, 100.0, 200.0, 400.0, 800.0, 1_000.0, 1_400.0, 2_000.0, 5_000.0,
    10_000.0, 15_000.0,
];

/// Tempo's service-graph default buckets (s).
const GRAPH_BUCKETS_S: [f64; 8] = [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SpanLabels {
    pub service_name: String,
    pub span_name: String,
    pub span_kind: &'static str,
    pub status_code: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EdgeLabels {
    pub client: String,
    pub server: String,
    pub connection_type: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn span_histogram() -> Histogram {
    Histogram::new(SPAN_BUCKETS_MS)
}

fn graph_histogram() -> Histogram {
    Histogram::new(GRAPH_BUCKETS_S)
}

#[derive(Clone)]
pub struct GraphMetrics {
    span_calls: Family<SpanLabels, Counter>,
    span_duration: HistogramFamily<SpanLabels>,
    requests: Family<EdgeLabels, Counter>,
    failed: Family<EdgeLabels, Counter>,
    server_seconds: HistogramFamily<EdgeLabels>,
    client_seconds: HistogramFamily<EdgeLabels>,
    overflow: Family<OverflowLabels, Counter>,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OverflowLabels {
    what: &'static str,
}

impl Default for GraphMetrics {
    fn default() -> Self {
        Self {
            span_calls: Family::default(),
            span_duration: Family::new_with_constructor(span_histogram),
            requests: Family::default(),
            failed: Family::default(),
            server_seconds: Family::new_with_constructor(graph_histogram),
            client_seconds: Family::new_with_constructor(graph_histogram),
            overflow: Family::default(),
        }
    }
}

pub fn span_kind_label(kind: SpanKind) -> &'static str {
    match kind {
        SpanKind::Unspecified => "SPAN_KIND_UNSPECIFIED",
        SpanKind::Internal => "SPAN_KIND_INTERNAL",
        SpanKind::Server => "SPAN_KIND_SERVER",
        SpanKind::Client => "SPAN_KIND_CLIENT",
        SpanKind::Producer => "SPAN_KIND_PRODUCER",
        SpanKind::Consumer => "SPAN_KIND_CONSUMER",
    }
}

pub fn status_label(code: StatusCode) -> &'static str {
    match code {
        StatusCode::Unset => "STATUS_CODE_UNSET",
        StatusCode::Ok => "STATUS_CODE_OK",
        StatusCode::Error => "STATUS_CODE_ERROR",
    }
}

impl GraphMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "traces_span_metrics_calls",
            "Spans received, by service, span name, kind and status",
            self.span_calls.clone(),
        );
        registry.register(
            "traces_span_metrics_duration_milliseconds",
            "Span durations (ms), by service, span name, kind and status",
            self.span_duration.clone(),
        );
        registry.register(
            "traces_service_graph_request",
            "Calls between two nodes of the service map",
            self.requests.clone(),
        );
        registry.register(
            "traces_service_graph_request_failed",
            "Calls between two nodes that failed (4xx, 5xx, throttled or error status)",
            self.failed.clone(),
        );
        registry.register(
            "traces_service_graph_request_server_seconds",
            "Server-side duration of calls between two services (s)",
            self.server_seconds.clone(),
        );
        registry.register(
            "traces_service_graph_request_client_seconds",
            "Client-side duration of calls between two nodes (s)",
            self.client_seconds.clone(),
        );
        registry.register(
            "tracemap_graph_overflow",
            "Names counted under __overflow__ because a cardinality cap was reached, by what was capped",
            self.overflow.clone(),
        );
    }

    /// Spans of one label set and their durations (ms).
    pub fn spans(&self, labels: &SpanLabels, durations_ms: &[f64]) {
        self.span_calls
            .get_or_create(labels)
            .inc_by(durations_ms.len() as u64);
        let histogram = self.span_duration.get_or_create(labels);
        for &ms in durations_ms {
            histogram.observe(ms);
        }
    }

    pub fn overflowed(&self, what: &'static str, count: u64) {
        if count > 0 {
            self.overflow
                .get_or_create(&OverflowLabels { what })
                .inc_by(count);
        }
    }

    /// Adds committed edge rows: what they add (a re-completion's rows may
    /// also take back, which counters cannot; those parts are left out).
    pub fn rows(&self, rows: &[GraphRow], virtual_targets: &dyn Fn(&str) -> Option<NodeType>) {
        for row in rows {
            let GraphSubject::Edge {
                source,
                target,
                edge_type,
            } = &row.subject
            else {
                continue;
            };
            let connection_type = match virtual_targets(target) {
                Some(NodeType::Database) => "database",
                Some(NodeType::Messaging) => "messaging_system",
                Some(_) => "virtual_node",
                None if *edge_type == crate::model::EdgeType::Messaging => "messaging_system",
                None => "",
            };
            let labels = EdgeLabels {
                client: source.clone(),
                server: target.clone(),
                connection_type,
            };
            let a = &row.aggregate;
            if a.requests > 0 {
                self.requests
                    .get_or_create(&labels)
                    .inc_by(a.requests as u64);
            }
            let failed = a.errors + a.faults + a.throttles;
            if failed > 0 {
                self.failed.get_or_create(&labels).inc_by(failed as u64);
            }
            for (family, latency) in [
                (&self.client_seconds, &a.latency),
                (&self.server_seconds, &a.server_latency),
            ] {
                let positive: Vec<_> = latency.bins().iter().filter(|(_, n)| *n > 0).collect();
                if positive.is_empty() {
                    continue;
                }
                let histogram = family.get_or_create(&labels);
                for &&(bin_us, n) in &positive {
                    for _ in 0..n {
                        histogram.observe(bin_us as f64 / 1e6);
                    }
                }
            }
        }
    }
}
