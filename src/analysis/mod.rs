//! Analysis of completed traces: the service graph (`graph/`). It runs inside
//! assembly's completion through `assembly::Analysis`, so the rows it derives
//! are written in the same batch as the trace's summary.

pub mod graph;

pub use graph::{GraphAnalysis, GraphLimits};
