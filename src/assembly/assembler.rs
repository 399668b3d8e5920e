//! The assembly task: receives arrivals from ingest, completes traces when the
//! policy in `open.rs` says so, and writes their summaries and index entries.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::journal::JournalRefs;
use super::open::{Pending, Prepared};
use super::{Analysis, OpenTraces};
use crate::ingest::{now_us, TraceSpanCounts};
use crate::model::{GraphBatch, Span, SummaryKeys, Trace, TraceId, TraceSummary};
use crate::storage::{merge_chunks, JournalKey, OperationName, StorageError, TraceStore};
use crate::telemetry::Telemetry;

/// Spans of one trace made durable by ingest.
#[derive(Debug, Clone)]
pub struct Arrival {
    pub trace_id: TraceId,
    pub received_at_us: u64,
    /// The `open` journal entry the write added.
    pub journal: JournalKey,
    /// The spans written, which completion assembles the trace from.
    pub spans: Vec<Span>,
}

/// Traces completed in one write batch, at most.
const MAX_BATCH: usize = 256;

pub struct Assembler {
    pub store: Arc<dyn TraceStore>,
    pub telemetry: Arc<Telemetry>,
    pub trace_idle: Duration,
    pub trace_max_age: Duration,
    pub max_open_traces: usize,
    pub max_open_bytes: usize,
    /// The attribute keys summaries pick up (correlation ids, indexed attributes).
    pub summary_keys: SummaryKeys,
    /// What completion adds to each batch (the service graph).
    pub analysis: Arc<dyn Analysis>,
    /// Where completed traces go next (the detectors), when there is one.
    pub completed: Option<mpsc::Sender<Trace>>,
    /// Ingest's per-trace span counts: a completed trace's count is retired,
    /// its stored summary holds it from then on.
    pub span_counts: Arc<TraceSpanCounts>,
}

impl Assembler {
    /// Recovers the traces left open in storage, then runs until `shutdown`.
    /// Traces still open at shutdown stay in storage's open journal and are
    /// completed after the next start.
    pub async fn run(
        self,
        mut arrivals: mpsc::Receiver<Vec<Arrival>>,
        shutdown: CancellationToken,
    ) -> Result<(), StorageError> {
        let mut table = OpenTraces::new(self.max_open_traces, self.max_open_bytes);
        let mut refs = JournalRefs::default();
        let store = self.store.clone();
        let (recovered, names) = tokio::task::spawn_blocking(move || {
            Ok::<_, StorageError>((store.open_traces()?, store.names(None)?))
        })
        .await
        .map_err(|e| StorageError::Engine(format!("recovery task: {e}")))??;
        let known = Arc::new(Mutex::new(names.into_iter().collect::<HashSet<_>>()));
        if !recovered.is_empty() {
            tracing::info!(traces = recovered.len(), "recovered open traces");
        }
        let mut early = Vec::new();
        for open in recovered {
            for key in open.journal {
                refs.hold(open.trace_id, key);
            }
            // Their spans are in storage only: completion reads them there.
            early.extend(table.observe(open.trace_id, open.last_arrival_us, None, 0));
        }
        self.complete(early, true, &known, &mut refs).await;
        let tick = (self.trace_idle / 4).clamp(Duration::from_millis(20), Duration::from_secs(1));
        let mut ticker = tokio::time::interval(tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                batch = arrivals.recv() => {
                    let Some(batch) = batch else { break };
                    let spans: Vec<&Span> = batch.iter().flat_map(|a| &a.spans).collect();
                    self.analysis.arrived(&spans);
                    drop(spans);
                    let mut early = Vec::new();
                    for arrival in batch {
                        refs.hold(arrival.trace_id, arrival.journal);
                        let bytes = arrival.spans.iter().map(Span::memory_size).sum();
                        let received = if table.contains(arrival.trace_id) {
                            Pending::received(arrival.trace_id, arrival.received_at_us, arrival.spans)
                        } else {
                            prepare(
                                arrival.trace_id,
                                arrival.received_at_us,
                                arrival.spans,
                                &self.summary_keys,
                                &known,
                            )
                        };
                        early.extend(table.observe(
                            arrival.trace_id,
                            arrival.received_at_us,
                            Some(received),
                            bytes,
                        ));
                    }
                    self.complete(early, true, &known, &mut refs).await;
                }
                _ = ticker.tick() => {
                    let due = table.take_due(
                        now_us(),
                        self.trace_idle.as_micros() as u64,
                        self.trace_max_age.as_micros() as u64,
                    );
                    self.complete(due, false, &known, &mut refs).await;
                }
            }
            self.telemetry.traces_open(table.len(), table.bytes());
        }
        Ok(())
    }

    /// Completes the traces in batches of one write each and hands them on.
    /// A failure leaves a batch's traces open in storage's journal, so they are
    /// completed again after a restart; it is logged and counted, never fatal.
    /// `known` holds the operation names already in storage, so each is written
    /// once, not once per trace.
    async fn complete(
        &self,
        mut pending: Vec<Pending>,
        early: bool,
        known: &Arc<Mutex<HashSet<OperationName>>>,
        refs: &mut JournalRefs,
    ) {
        while !pending.is_empty() {
            let rest = pending.split_off(pending.len().min(MAX_BATCH));
            let batch = std::mem::replace(&mut pending, rest);
            let count = batch.len();
            let store = self.store.clone();
            let keys = self.summary_keys.clone();
            let known = known.clone();
            let analysis = self.analysis.clone();
            let held = refs.take(batch.iter().map(|p| p.trace_id));
            let settled = held.settled.clone();
            let result = tokio::task::spawn_blocking(move || {
                complete_traces(
                    store.as_ref(),
                    batch,
                    &keys,
                    &known,
                    &settled,
                    analysis.as_ref(),
                )
            })
            .await;
            match result {
                Ok(Ok(traces)) => {
                    refs.release(held);
                    for trace in &traces {
                        self.span_counts
                            .retire(trace.trace_id, trace.last_received_us);
                    }
                    for trace in traces {
                        self.telemetry.trace_completed(early);
                        if let Some(next) = &self.completed {
                            // Backpressure from analysis slows assembly, never drops.
                            let _ = next.send(trace).await;
                        }
                    }
                }
                Ok(Err(error)) => {
                    self.telemetry.store_error();
                    tracing::warn!(%error, traces = count, "completing traces failed; they stay open");
                }
                Err(error) => tracing::warn!(%error, traces = count, "completion task failed"),
            }
        }
    }
}

/// The first chunk of a trace, assembled and summarised now, while its spans
/// are fresh in the CPU caches (see `Prepared`); spans without a service are
/// kept as received, since a later chunk may bring the ancestor they take
/// their service from.
pub fn prepare(
    trace_id: TraceId,
    received_at_us: u64,
    spans: Vec<Span>,
    keys: &SummaryKeys,
    known: &Mutex<HashSet<OperationName>>,
) -> Pending {
    if spans.is_empty() || spans.iter().any(|s| s.service().is_empty()) {
        return Pending::received(trace_id, received_at_us, spans);
    }
    let Some(trace) = merge_chunks(trace_id, [(received_at_us, spans)]) else {
        return Pending {
            trace_id,
            ..Pending::default()
        };
    };
    let summary = TraceSummary::of(&trace, keys, true);
    let new_names = unknown_names(std::slice::from_ref(&trace), known);
    Pending {
        trace_id,
        prepared: Some(Prepared {
            trace,
            summary,
            new_names,
        }),
        ..Pending::default()
    }
}

/// The operation names of `traces` not in `known`, sorted: distinct names
/// first, borrowed, so only those are copied and looked up.
fn unknown_names(traces: &[Trace], known: &Mutex<HashSet<OperationName>>) -> Vec<OperationName> {
    let mut names: Vec<(&str, &str, u8)> = traces
        .iter()
        .flat_map(|t| &t.spans)
        .map(|s| (s.service(), s.name.as_str(), s.kind as u8))
        .collect();
    names.sort_unstable();
    names.dedup();
    let known = known.lock().expect("known names lock");
    names
        .into_iter()
        .map(|(service, operation, kind)| OperationName {
            service: service.to_string(),
            operation: operation.to_string(),
            kind,
        })
        .filter(|n| !known.contains(n))
        .collect()
}

/// Completes traces in storage, as the assembly task does, in one write
/// batch: assembles each from the chunks it received while open (or takes
/// the trace prepared on arrival), reading storage instead when it was
/// recovered after a restart, or completed before and so holds earlier spans
/// there; writes the summaries, index entries, what `analysis` adds (taking
/// back what an earlier completion of the same trace added) and operation
/// names not in `known` (adding them there), and deletes the `settled`
/// journal entries. Returns the traces that have spans. Blocking.
pub fn complete_traces(
    store: &dyn TraceStore,
    pending: Vec<Pending>,
    keys: &SummaryKeys,
    known: &Mutex<HashSet<OperationName>>,
    settled: &[JournalKey],
    analysis: &dyn Analysis,
) -> Result<Vec<Trace>, StorageError> {
    // A trace completed early and re-opened may come twice: once, whole.
    let mut merged: Vec<Pending> = Vec::with_capacity(pending.len());
    let mut position: HashMap<TraceId, usize> = HashMap::with_capacity(pending.len());
    for p in pending {
        match position.get(&p.trace_id) {
            Some(&at) => merged[at].absorb(p),
            None => {
                position.insert(p.trace_id, merged.len());
                merged.push(p);
            }
        }
    }
    let mut traces = Vec::with_capacity(merged.len());
    let mut summaries: Vec<TraceSummary> = Vec::with_capacity(merged.len());
    let mut new_names: Vec<OperationName> = Vec::new();
    // Traces assembled here, whose summaries and names are still to compute.
    let mut assembled = Vec::new();
    // Traces completed before, as that completion saw them.
    let mut previous: HashMap<TraceId, Trace> = HashMap::new();
    for Pending {
        trace_id,
        mut chunks,
        from_storage,
        prepared,
    } in merged
    {
        if from_storage || store.was_completed(trace_id)? {
            if let Some(earlier) = store.summary(trace_id)? {
                let seen = store.trace_received_by(trace_id, earlier.last_received_us)?;
                previous.extend(seen.map(|trace| (trace_id, trace)));
            }
            assembled.extend(store.trace(trace_id)?);
        } else if let Some(prepared) = prepared {
            summaries.push(prepared.summary);
            new_names.extend(prepared.new_names);
            traces.push(prepared.trace);
        } else if chunks.is_empty() {
            assembled.extend(store.trace(trace_id)?);
        } else {
            // As storage orders them: concurrent writes may arrive out of order.
            chunks.sort_by_key(|(received_at_us, _)| *received_at_us);
            assembled.extend(merge_chunks(trace_id, chunks));
        }
    }
    new_names.extend(unknown_names(&assembled, known));
    summaries.extend(
        assembled
            .iter()
            .map(|trace| TraceSummary::of(trace, keys, true)),
    );
    traces.extend(assembled);
    if traces.is_empty() {
        store.settle(settled)?;
        return Ok(traces);
    }
    new_names.sort();
    new_names.dedup();
    {
        // Prepared names were unknown on arrival; another trace may have
        // written them since.
        let known = known.lock().expect("known names lock");
        new_names.retain(|n| !known.contains(n));
    }
    let mut graph = GraphBatch::default();
    let mut findings = Vec::new();
    // Summaries are in the traces' order.
    for (trace, summary) in traces.iter().zip(&mut summaries) {
        analysis.contribute(trace, previous.get(&trace.trace_id), &mut graph);
        let first = findings.len();
        analysis.inspect(trace, &mut findings);
        let found = &findings[first..];
        summary.finding_count = found.len().min(usize::from(u16::MAX)) as u32;
        summary.finding_kinds = found.iter().map(|f| f.kind.as_str().to_string()).collect();
        summary.finding_kinds.sort_unstable();
        summary.finding_kinds.dedup();
        summary.finding_services = found.iter().map(|f| f.service.clone()).collect();
        summary.finding_services.sort_unstable();
        summary.finding_services.dedup();
    }
    let rows = graph.into_rows();
    store.complete(&summaries, &new_names, settled, &rows, &findings)?;
    analysis.committed(&rows, &findings);
    known.lock().expect("known names lock").extend(new_names);
    Ok(traces)
}

#[cfg(all(test, feature = "rocks"))]
mod tests {
    use super::*;
    use crate::assembly::NoAnalysis;
    use crate::storage::codec::tests::arb_span;
    use crate::storage::rocks::{RocksOptions, RocksStore};
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    /// A trace assembled from the spans received equals the trace storage
    /// returns for them: completion from memory changes nothing readers see.
    #[test]
    fn assembling_from_memory_matches_reading_storage() {
        let dir = tempfile::tempdir().unwrap();
        let store = RocksStore::open(dir.path(), &RocksOptions::default()).unwrap();
        let known = Mutex::new(HashSet::new());
        let keys = SummaryKeys::default();
        let mut runner = TestRunner::new(Config::with_cases(64));
        let next_trace = std::sync::atomic::AtomicU64::new(0);
        let strategy = (
            proptest::collection::vec(arb_span(TraceId([7; 16])), 1..6),
            proptest::collection::vec(arb_span(TraceId([7; 16])), 0..6),
            0usize..3,
            proptest::sample::select(vec![(1_000u64, 2_000u64), (2_000, 1_000), (1_000, 1_000)]),
        );
        runner
            .run(&strategy, |(first, mut second, resent, (at_1, at_2))| {
                let n = next_trace.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                let trace_id = TraceId((n as u128).to_be_bytes());
                let with_id = |spans: Vec<Span>| -> Vec<Span> {
                    spans.into_iter().map(|s| Span { trace_id, ..s }).collect()
                };
                let first = with_id(first);
                // Some spans sent again, changed, as a retrying client might.
                second.extend(first.iter().take(resent).map(|s| Span {
                    name: format!("{}-again", s.name),
                    ..s.clone()
                }));
                let second = with_id(second);
                let mut chunks = Vec::new();
                for (at, spans) in [(at_1, first), (at_2, second)] {
                    if spans.is_empty() {
                        continue;
                    }
                    store
                        .append(
                            at,
                            &[crate::model::TraceChunk {
                                trace_id,
                                spans: spans.clone(),
                            }],
                        )
                        .unwrap();
                    chunks.push((at, spans));
                }
                // Received in this order; at equal times the storage order of
                // the two chunks is their ids', so only distinct times compare.
                if at_1 == at_2 && resent > 0 {
                    return Ok(());
                }
                // The first chunk prepared on arrival, as the assembly task
                // does; a second one makes it assemble them again.
                let mut chunks = chunks.into_iter();
                let (at, spans) = chunks.next().expect("a first chunk");
                let mut pending = prepare(trace_id, at, spans, &keys, &known);
                prop_assert!(pending.prepared.is_some());
                for (at, spans) in chunks {
                    pending.absorb(Pending::received(trace_id, at, spans));
                }
                let assembled =
                    complete_traces(&store, vec![pending], &keys, &known, &[], &NoAnalysis)
                        .unwrap();
                prop_assert_eq!(assembled.len(), 1);
                let stored = store.trace(trace_id).unwrap().unwrap();
                prop_assert_eq!(&assembled[0], &stored);
                prop_assert_eq!(
                    store.summary(trace_id).unwrap().unwrap(),
                    TraceSummary::of(&stored, &keys, true)
                );
                Ok(())
            })
            .unwrap();
    }

    /// A trace completed before is re-read from storage, so a late span's
    /// completion covers the spans of the earlier one too.
    #[test]
    fn a_reopened_trace_is_assembled_from_storage() {
        let dir = tempfile::tempdir().unwrap();
        let store = RocksStore::open(dir.path(), &RocksOptions::default()).unwrap();
        let known = Mutex::new(HashSet::new());
        let keys = SummaryKeys::default();
        let trace_id = TraceId([9; 16]);
        let span = |n: u8| Span {
            trace_id,
            span_id: crate::model::SpanId([n; 8]),
            start_ns: n as u64,
            ..Span::default()
        };
        for (at, n) in [(1_000, 1), (2_000, 2)] {
            store
                .append(
                    at,
                    &[crate::model::TraceChunk {
                        trace_id,
                        spans: vec![span(n)],
                    }],
                )
                .unwrap();
            let pending = vec![Pending::received(trace_id, at, vec![span(n)])];
            complete_traces(&store, pending, &keys, &known, &[], &NoAnalysis).unwrap();
        }
        let summary = store.summary(trace_id).unwrap().unwrap();
        assert_eq!(summary.span_count, 2);
        assert_eq!(summary.last_received_us, 2_000);
    }

    #[test]
    fn a_trace_twice_in_one_batch_is_completed_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = RocksStore::open(dir.path(), &RocksOptions::default()).unwrap();
        let trace_id = TraceId([5; 16]);
        let span = |n: u8| Span {
            trace_id,
            span_id: crate::model::SpanId([n; 8]),
            start_ns: 1_000_000 * n as u64,
            ..Span::default()
        };
        let pending = |n: u8| {
            store
                .append(
                    n as u64,
                    &[crate::model::TraceChunk {
                        trace_id,
                        spans: vec![span(n)],
                    }],
                )
                .unwrap();
            Pending::received(trace_id, n as u64, vec![span(n)])
        };
        let batch = vec![pending(1), pending(2)];
        let known = Mutex::new(HashSet::new());
        let done = complete_traces(
            &store,
            batch,
            &SummaryKeys::default(),
            &known,
            &[],
            &NoAnalysis,
        )
        .unwrap();
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].spans.len(), 2);
        let hits = store
            .scan_index(crate::storage::IndexTag::All, "", 0, u64::MAX, 10)
            .unwrap();
        assert_eq!(hits.len(), 1, "{hits:?}");
    }
}
