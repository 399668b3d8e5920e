//! Assembly: which traces are still receiving spans, and when each is complete.
//!
//! Ingest reports every durable write as `Arrival`s; `open.rs` keeps the open
//! traces in memory (bounded by count and bytes) and decides when one is
//! complete (`trace_idle` without new spans, or `trace_max_age` after its first);
//! `assembler.rs` then assembles the trace from the spans it received while
//! open (reading storage only for traces recovered after a restart or re-opened
//! by a late span), writes the summaries and index entries of a batch of traces
//! in one write and hands the assembled traces on. Every write also adds
//! an entry to the `open` journal in storage, so after a restart open traces
//! are recovered and completed; `journal.rs` tracks which entries the open
//! traces hold, so that completions delete the entries they settle. A span
//! arriving after completion re-opens its trace.

mod assembler;
mod journal;
mod open;

pub use assembler::{complete_traces, prepare, Arrival, Assembler};
pub use open::{OpenTraces, Pending, Prepared};

use crate::model::{Finding, GraphBatch, GraphRow, Span, Trace};

/// What analysis adds to completion: the service-map rows each completed
/// trace contributes, written in the same batch as its summary. A trait, so
/// that assembly calls analysis without depending on it (`analysis`
/// implements it; `app.rs` wires it in).
pub trait Analysis: Send + Sync {
    /// Spans as they arrive, each once as received (span metrics count them).
    fn arrived(&self, _spans: &[&Span]) {}

    /// Adds what `trace` contributes to `batch`, taking back what `previous`
    /// contributed: the trace as its last completion saw it, when it was
    /// completed before. So a late span changes the counts, never doubles them.
    fn contribute(&self, trace: &Trace, previous: Option<&Trace>, batch: &mut GraphBatch);

    /// Adds what the detectors find in `trace` to `out`; stored with the
    /// batch, replacing what an earlier completion found.
    fn inspect(&self, _trace: &Trace, _out: &mut Vec<Finding>) {}

    /// A batch's rows and findings once they are durable.
    fn committed(&self, _rows: &[GraphRow], _findings: &[Finding]) {}
}

/// No analysis: completion writes summaries and indexes only.
pub struct NoAnalysis;

impl Analysis for NoAnalysis {
    fn contribute(&self, _: &Trace, _: Option<&Trace>, _: &mut GraphBatch) {}
}
