//! The service graph: observations from each completed trace (`edges.rs`),
//! added up per minute into rows storage merges, a cardinality guard
//! (`guard.rs`), Prometheus span and service-graph metrics (`metrics.rs`),
//! and the petgraph model a range's rows build for the map API (`model.rs`).

pub mod edges;
pub mod guard;
pub mod metrics;
pub mod model;

use std::collections::HashMap;
use std::sync::Mutex;

use crate::assembly::Analysis;
use crate::model::{
    GraphBatch, GraphRow, GraphSubject, NodeType, Span, SpanKind, StatusCode, Trace,
};

pub use guard::{GraphLimits, OVERFLOW};
pub use metrics::GraphMetrics;

/// Minutes since the epoch of a time in ns.
fn minute_of(ns: u64) -> u32 {
    (ns / 60_000_000_000).min(u32::MAX as u64) as u32
}

/// The service graph as completion's analysis.
pub struct GraphAnalysis {
    guard: Mutex<guard::Guard>,
    metrics: GraphMetrics,
}

impl GraphAnalysis {
    pub fn new(limits: GraphLimits, metrics: GraphMetrics) -> Self {
        Self {
            guard: Mutex::new(guard::Guard::new(limits)),
            metrics,
        }
    }

    /// Adds the observations of `trace` to `batch`, names guarded.
    fn add(&self, trace: &Trace, batch: &mut GraphBatch) {
        let observations = edges::observations(trace);
        let mut guard = self.guard.lock().expect("graph guard lock");
        guard.roll();
        // A name the guard lets through keeps its string; only overflowed
        // ones are replaced.
        for o in observations {
            let subject = match o.subject {
                GraphSubject::Node {
                    id,
                    node_type,
                    system,
                } => {
                    let guarded = guard.node(&id) == OVERFLOW;
                    GraphSubject::Node {
                        id: if guarded { OVERFLOW.to_string() } else { id },
                        node_type,
                        system,
                    }
                }
                GraphSubject::Edge {
                    source,
                    target,
                    edge_type,
                } => {
                    let (s, t) = guard.edge(&source, &target);
                    let (s_over, t_over) = (s == OVERFLOW, t == OVERFLOW);
                    GraphSubject::Edge {
                        source: if s_over { OVERFLOW.to_string() } else { source },
                        target: if t_over { OVERFLOW.to_string() } else { target },
                        edge_type,
                    }
                }
            };
            batch.observe(
                minute_of(o.start_ns),
                subject,
                o.class,
                o.latency_us,
                o.retry,
                o.server_latency_us,
            );
        }
        self.report_overflow(&mut guard);
    }

    /// A node's name as the guard keeps it (`OVERFLOW` past the cap).
    pub fn guarded_node(&self, id: &str) -> String {
        let mut guard = self.guard.lock().expect("graph guard lock");
        guard.roll();
        let kept = guard.node(id).to_string();
        self.report_overflow(&mut guard);
        kept
    }

    fn report_overflow(&self, guard: &mut guard::Guard) {
        let overflowed = std::mem::take(&mut guard.overflowed);
        self.metrics.overflowed("nodes", overflowed.nodes);
        self.metrics.overflowed("edges", overflowed.edges);
        self.metrics.overflowed("operations", overflowed.operations);
    }
}

impl Analysis for GraphAnalysis {
    fn arrived(&self, spans: &[&Span]) {
        // Grouped by label set under the spans' own names first, so the
        // guard is asked once per set, in the order each set's first span
        // arrived (names are admitted under a cap as if each span asked),
        // and each metric is looked up once per guarded set.
        type Key<'a> = (&'a str, &'a str, SpanKind, StatusCode);
        type ByKey<'a> = HashMap<Key<'a>, Vec<f64>, foldhash::fast::RandomState>;
        let mut position: HashMap<Key, usize, foldhash::fast::RandomState> = HashMap::default();
        let mut received: Vec<(Key, Vec<f64>)> = Vec::new();
        for span in spans {
            let key = (
                span.service(),
                span.name.as_str(),
                span.kind,
                span.status.code,
            );
            let at = *position.entry(key).or_insert_with(|| {
                received.push((key, Vec::new()));
                received.len() - 1
            });
            received[at].1.push(span.duration_ns() as f64 / 1e6);
        }
        let mut durations = ByKey::default();
        {
            let mut guard = self.guard.lock().expect("graph guard lock");
            guard.roll();
            for ((service, operation, kind, status), spans) in received {
                let before = guard.overflowed;
                let (service, operation) = guard.operation(service, operation);
                // Counted per span, as if each had asked.
                let more = spans.len() as u64 - 1;
                let overflowed = &mut guard.overflowed;
                overflowed.nodes += (overflowed.nodes - before.nodes) * more;
                overflowed.operations += (overflowed.operations - before.operations) * more;
                durations
                    .entry((service, operation, kind, status))
                    .or_default()
                    .extend(spans);
            }
            self.report_overflow(&mut guard);
        }
        for ((service, operation, kind, status), durations) in durations {
            let labels = metrics::SpanLabels {
                service_name: service.to_string(),
                span_name: operation.to_string(),
                span_kind: metrics::span_kind_label(kind),
                status_code: metrics::status_label(status),
            };
            self.metrics.spans(&labels, &durations);
        }
    }

    fn contribute(&self, trace: &Trace, previous: Option<&Trace>, batch: &mut GraphBatch) {
        self.add(trace, batch);
        if let Some(previous) = previous {
            let mut earlier = GraphBatch::default();
            self.add(previous, &mut earlier);
            batch.subtract(earlier);
        }
    }

    fn committed(&self, rows: &[GraphRow], _findings: &[crate::model::Finding]) {
        let virtual_nodes: HashMap<&str, NodeType> = rows
            .iter()
            .filter_map(|row| match &row.subject {
                GraphSubject::Node { id, node_type, .. } if *node_type != NodeType::Service => {
                    Some((id.as_str(), *node_type))
                }
                _ => None,
            })
            .collect();
        self.metrics
            .rows(rows, &|target| virtual_nodes.get(target).copied());
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use prometheus_client::registry::Registry;

    use super::*;
    use crate::model::Resource;

    /// Spans of one name are asked about together, yet an overflow counts
    /// each span, as `tracemap_graph_overflow_total` always did.
    #[test]
    fn span_metrics_count_every_overflowed_span() {
        let metrics = GraphMetrics::default();
        let graph = GraphAnalysis::new(
            GraphLimits {
                max_nodes: 10,
                max_operations: 1,
                max_edges: 10,
                window: Duration::from_secs(3_600),
            },
            metrics.clone(),
        );
        let resource = Arc::new(Resource {
            service: "checkout".into(),
            attributes: vec![],
        });
        let span = |name: &str| Span {
            name: name.into(),
            resource: resource.clone(),
            end_ns: 1_000_000,
            ..Span::default()
        };
        let spans = [span("admitted"), span("late"), span("late"), span("late")];
        graph.arrived(&spans.iter().collect::<Vec<_>>());
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains("tracemap_graph_overflow_total{what=\"operations\"} 3\n"),
            "{text}"
        );
        let calls = |name: &str| {
            text.lines()
                .find(|l| {
                    l.starts_with("traces_span_metrics_calls_total{")
                        && l.contains(&format!("span_name=\"{name}\""))
                })
                .map(|l| l.rsplit(' ').next().unwrap().to_string())
        };
        assert_eq!(calls("admitted").as_deref(), Some("1"), "{text}");
        assert_eq!(calls(OVERFLOW).as_deref(), Some("3"), "{text}");
    }
}
