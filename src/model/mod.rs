//! The data model at the bottom of the pipeline: ids, spans and traces.
//!
//! Every receiver converts its wire format to these types at the edge; nothing
//! after a receiver sees protobuf or X-Ray JSON.

mod finding;
mod graph;
mod ids;
pub mod semconv;
mod span;
mod trace;

pub use finding::{Finding, FindingKind, Severity};
pub use graph::{
    Aggregate, CallClass, EdgeType, GraphBatch, GraphRow, GraphSubject, Latency, LatencySum,
    NodeType, LATENCY_SIGNIFICANT_DIGITS, MAX_LATENCY_US,
};
pub use ids::{IdError, SpanId, TraceId};
pub use span::{
    find_attr, AttrValue, Event, KeyValue, Link, Resource, Scope, Span, SpanKind, Status,
    StatusCode,
};
pub use trace::{SummaryKeys, Trace, TraceChunk, TraceSummary, MAX_INDEXED_VALUE_BYTES};
