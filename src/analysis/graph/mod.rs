//! The service graph: observations from each completed trace (`edges.rs`),
//! added up per minute into rows storage merges, a cardinality guard
//! (`guard.rs`), Prometheus span and service-graph metrics (`metrics.rs`),
//! and the petgraph model a range's rows build for the map API (`model.rs`).

pub mod edges;
pub mod guard;
pub mod metrics;
pub mod model;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Mutex;

use crate::assembly::Analysis;
use crate::model::{
    GraphBatch, GraphRow, GraphSubject, NodeType, Span, SpanKind, StatusCode, SubjectRef, Trace,
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
                SubjectRef::Node {
                    id,
                    node_type,
                    system,
                } => {
                    let guarded = guard.node(&id) == OVERFLOW;
                    SubjectRef::Node {
                        id: if guarded { Cow::Borrowed(OVERFLOW) } else { id },
                        node_type,
                        system,
                    }
                }
                SubjectRef::Edge {
                    source,
                    target,
                    edge_type,
                } => {
                    let (s, t) = guard.edge(&source, &target);
                    let (s_over, t_over) = (s == OVERFLOW, t == OVERFLOW);
                    SubjectRef::Edge {
                        source: if s_over {
                            Cow::Borrowed(OVERFLOW)
                        } else {
                            source
                        },
                        target: if t_over {
                            Cow::Borrowed(OVERFLOW)
                        } else {
                            target
                        },
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
        // Added up per label set first: one metric lookup per distinct set.
        type Key<'a> = (&'a str, &'a str, SpanKind, StatusCode);
        let mut durations: HashMap<Key, Vec<f64>> = HashMap::new();
        {
            let mut guard = self.guard.lock().expect("graph guard lock");
            guard.roll();
            for span in spans {
                let (service, operation) = guard.operation(span.service(), &span.name);
                durations
                    .entry((service, operation, span.kind, span.status.code))
                    .or_default()
                    .push(span.duration_ns() as f64 / 1e6);
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
