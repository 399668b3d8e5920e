//! Completion's analysis: the service graph and the detectors over each
//! completed trace, and the findings counted on `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use super::detectors::{self, Detector, DetectorConfig};
use super::graph::GraphAnalysis;
use crate::assembly::Analysis;
use crate::model::{Finding, GraphBatch, GraphRow, Span, Trace};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FindingLabels {
    kind: &'static str,
    service: String,
}

/// `tracemap_findings_total{kind,service}`; services through the graph's
/// cardinality guard, so a flood of names cannot grow it without bound.
#[derive(Clone, Default)]
pub struct FindingMetrics {
    found: Family<FindingLabels, Counter>,
}

impl FindingMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "tracemap_findings",
            "Findings stored, by kind and service (a re-completed trace's count again)",
            self.found.clone(),
        );
    }
}

/// The graph and the detectors, as completion runs them.
pub struct Analyzer {
    graph: GraphAnalysis,
    detectors: Vec<Box<dyn Detector>>,
    metrics: FindingMetrics,
}

impl Analyzer {
    pub fn new(graph: GraphAnalysis, config: &DetectorConfig, metrics: FindingMetrics) -> Self {
        Self {
            graph,
            detectors: detectors::all(config),
            metrics,
        }
    }
}

impl Analysis for Analyzer {
    fn arrived(&self, spans: &[&Span]) {
        self.graph.arrived(spans);
    }

    fn contribute(&self, trace: &Trace, previous: Option<&Trace>, batch: &mut GraphBatch) {
        self.graph.contribute(trace, previous, batch);
    }

    fn inspect(&self, trace: &Trace, out: &mut Vec<Finding>) {
        out.extend(detectors::inspect(trace, &self.detectors));
    }

    fn committed(&self, rows: &[GraphRow], findings: &[Finding]) {
        self.graph.committed(rows, findings);
        for finding in findings {
            let labels = FindingLabels {
                kind: finding.kind.as_str(),
                service: self.graph.guarded_node(&finding.service),
            };
            self.metrics.found.get_or_create(&labels).inc();
        }
    }
}
