//! Analysis of completed traces: the service graph (`graph/`), and the
//! statement fingerprints (`fingerprint/`) the detectors group database,
//! Redis, MongoDB and HTTP calls by. The graph runs inside assembly's
//! completion through `assembly::Analysis`, so the rows it derives are written
//! in the same batch as the trace's summary.

mod analyzer;
pub mod detectors;
pub mod fingerprint;
pub mod graph;

pub use analyzer::{Analyzer, FindingMetrics};
pub use graph::{GraphAnalysis, GraphLimits};
