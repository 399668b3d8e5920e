//! Durable span storage behind traits that never name the engine.
//!
//! `TraceStore` is the contract ingest and the query API rely on. `rocks` is the
//! production implementation (embedded RocksDB); `memory` exists for unit tests.
//! Both pass the same conformance suite (`conformance`).

pub mod codec;
pub mod disk;
pub mod findings;
pub mod graph;
pub mod keys;
pub mod memory;
pub mod retention;
#[cfg(feature = "rocks")]
pub mod rocks;
pub mod storm;

#[cfg(all(test, feature = "rocks"))]
mod conformance;

use std::collections::HashMap;

use crate::model::{
    Aggregate, Finding, GraphRow, GraphSubject, Span, Trace, TraceChunk, TraceId, TraceSummary,
};

pub use findings::FindingQuery;
pub use keys::{IndexTag, JournalKey, OperationName};

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("storage engine: {0}")]
    Engine(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("storage format version {found} is not supported (this build reads {supported})")]
    FormatVersion { found: u32, supported: u32 },
}

/// Where spans are kept.
pub trait TraceStore: Send + Sync + 'static {
    /// Writes the chunks of one request in one atomic batch, with one `open`
    /// journal entry naming its traces; returns that entry's key, which
    /// assembly hands back to `complete` once the traces are completed.
    ///
    /// Durable when `Ok`: the batch is in the write-ahead log and survives a
    /// process kill (and a power loss when the store syncs on write).
    /// Idempotent for readers: writing the same spans again does not make
    /// `trace` return them twice.
    fn append(
        &self,
        received_at_us: u64,
        chunks: &[TraceChunk],
    ) -> Result<JournalKey, StorageError>;

    /// Every span stored for the trace so far, each span id once (the copy
    /// received last wins, except that an in-progress copy never replaces a
    /// complete one), sorted by start time, spans without a service given
    /// their parent's; `None` when nothing is stored.
    fn trace(&self, trace_id: TraceId) -> Result<Option<Trace>, StorageError>;

    /// The trace as the chunks received up to `until_us` (inclusive) make it:
    /// what a completion that covered arrivals up to then assembled.
    fn trace_received_by(
        &self,
        trace_id: TraceId,
        until_us: u64,
    ) -> Result<Option<Trace>, StorageError>;

    /// Makes everything acknowledged so far durable against power loss and
    /// persists in-memory state; called at shutdown.
    fn flush(&self) -> Result<(), StorageError>;

    /// Traces that received spans since they were last completed (recovery
    /// after a restart), each with its newest arrival and the journal entries
    /// that name it. Journal entries whose every trace is complete are deleted.
    fn open_traces(&self) -> Result<Vec<OpenTrace>, StorageError>;

    /// Whether the trace received spans after its last completion (or was
    /// never completed).
    fn is_open(&self, trace_id: TraceId) -> Result<bool, StorageError>;

    /// Whether the trace was completed before: a summary is stored for it.
    fn was_completed(&self, trace_id: TraceId) -> Result<bool, StorageError>;

    /// Stores completed traces' summaries and their index entries, replacing
    /// those of an earlier completion of the same trace (never duplicating
    /// them), and deletes the `settled` journal entries: those whose every
    /// trace is now completed. `new_names` are operation names first seen in
    /// these traces; `graph` rows are added to the service map's aggregates
    /// (a re-completion's rows take back what the earlier one added).
    /// `findings` are the traces' findings, each trace's replacing those its
    /// earlier completion stored; a summary's `finding_count` must be how many
    /// of `findings` are its trace's. One atomic batch; durable when `Ok`.
    fn complete(
        &self,
        summaries: &[TraceSummary],
        new_names: &[OperationName],
        settled: &[JournalKey],
        graph: &[GraphRow],
        findings: &[Finding],
    ) -> Result<(), StorageError>;

    /// Stored findings as `query` asks (see `FindingQuery`).
    fn findings(&self, query: &FindingQuery) -> Result<Vec<Finding>, StorageError>;

    /// Every node's and edge's aggregate summed over the whole minutes that
    /// `[from_us, to_us)` touches; subjects that counted nothing left out.
    fn graph(
        &self,
        from_us: u64,
        to_us: u64,
    ) -> Result<Vec<(GraphSubject, Aggregate)>, StorageError>;

    /// The edges that storm (`rule`) in some whole minute that
    /// `[from_us, to_us)` touches.
    fn graph_storms(
        &self,
        from_us: u64,
        to_us: u64,
        rule: storm::StormRule,
    ) -> Result<std::collections::HashSet<GraphSubject>, StorageError>;

    /// Graph retention: buckets that end before `before_us` are deleted.
    fn expire_graph(&self, before_us: u64) -> Result<(), StorageError>;

    /// Deletes settled journal entries outside a completion (their traces left
    /// nothing to complete).
    fn settle(&self, settled: &[JournalKey]) -> Result<(), StorageError>;

    /// Retention: everything older than `before_us` leaves every read — spans
    /// received before it, summaries of traces that received nothing since,
    /// index entries of traces that started before it — and its space is
    /// reclaimed by whole partitions (index hours dropped by one range delete)
    /// and by compaction (spans and summaries). The cutoff never moves back.
    /// A trace sent late with old timestamps stays readable by id until its
    /// spans, too, are older than the cutoff.
    fn expire(&self, before_us: u64) -> Result<(), StorageError>;

    /// Bytes the store takes on disk (its live table files).
    fn disk_bytes(&self) -> Result<u64, StorageError>;

    /// Where the oldest index partition still held begins (µs), if any.
    fn oldest_partition_us(&self) -> Result<Option<u64>, StorageError>;

    /// Compacts storage so deleted data gives its space back now rather than
    /// at the engine's next compaction.
    fn compact(&self) -> Result<(), StorageError>;

    /// Every (service, operation, kind) recorded by completions, sorted; only
    /// those of `service` when given.
    fn names(&self, service: Option<&str>) -> Result<Vec<OperationName>, StorageError>;

    /// The summary written by the last completion, `complete` set from the
    /// trace's open state.
    fn summary(&self, trace_id: TraceId) -> Result<Option<TraceSummary>, StorageError>;

    /// Completed traces indexed under `tag` and `value` whose start lies in
    /// `[from_us, to_us]`, newest first, at most `limit`.
    fn scan_index(
        &self,
        tag: IndexTag,
        value: &str,
        from_us: u64,
        to_us: u64,
        limit: usize,
    ) -> Result<Vec<IndexHit>, StorageError>;
}

/// A trace found open by recovery.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct OpenTrace {
    pub trace_id: TraceId,
    /// The newest arrival (µs).
    pub last_arrival_us: u64,
    /// The journal entries naming the trace after its last completion.
    pub journal: Vec<JournalKey>,
}

/// One `index` entry read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexHit {
    pub trace_id: TraceId,
    pub start_us: u64,
    pub duration_us: u64,
    pub error: bool,
}

/// The `index` keys of a completed trace: one for every trace, one per
/// service, per (service, operation), per correlation id and per indexed
/// attribute value.
pub(crate) fn index_keys(summary: &TraceSummary) -> Vec<keys::IndexKey> {
    let start_us = summary.start_ns / 1_000;
    let key = |tag: IndexTag, value: &str| keys::IndexKey {
        tag: tag as u8,
        hash: keys::index_hash(value),
        start_us,
        trace_id: summary.trace_id,
    };
    let mut out = vec![key(IndexTag::All, "")];
    out.extend(summary.services.iter().map(|s| key(IndexTag::Service, s)));
    out.extend(
        summary
            .correlation_ids
            .iter()
            .map(|c| key(IndexTag::CorrelationId, c)),
    );
    out.extend(
        summary
            .operations
            .iter()
            .map(|(service, op)| key(IndexTag::Operation, &keys::pair_term(service, op))),
    );
    out.extend(
        summary
            .attributes
            .iter()
            .map(|(k, v)| key(IndexTag::Attribute, &keys::pair_term(k, v))),
    );
    out.extend(
        summary
            .finding_kinds
            .iter()
            .map(|kind| key(IndexTag::Finding, kind)),
    );
    out.extend(
        summary
            .finding_services
            .iter()
            .map(|service| key(IndexTag::FindingService, service)),
    );
    out
}

/// Builds a trace from its chunks given in the order they were received.
pub(crate) fn merge_chunks(
    trace_id: TraceId,
    chunks: impl IntoIterator<Item = (u64, Vec<Span>)>,
) -> Option<Trace> {
    let mut spans: Vec<Span> = Vec::new();
    let mut position: HashMap<crate::model::SpanId, usize> = HashMap::new();
    let mut last_received_us = 0;
    let mut any = false;
    for (received_at_us, chunk) in chunks {
        any = true;
        last_received_us = last_received_us.max(received_at_us);
        for span in chunk {
            match position.get(&span.span_id) {
                // A complete copy is never replaced by an in-progress one,
                // whichever arrived last.
                Some(&at) if span.is_in_progress() && !spans[at].is_in_progress() => {}
                Some(&at) => spans[at] = span,
                None => {
                    position.insert(span.span_id, spans.len());
                    spans.push(span);
                }
            }
        }
    }
    if !any {
        return None;
    }
    spans.sort_by_key(|s| (s.start_ns, s.span_id));
    let mut trace = Trace {
        trace_id,
        spans,
        last_received_us,
    };
    trace.inherit_services();
    Some(trace)
}
