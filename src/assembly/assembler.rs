//! The assembly task: receives arrivals from ingest, completes traces when the
//! policy in `open.rs` says so, and writes their summaries and index entries.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::journal::JournalRefs;
use super::OpenTraces;
use crate::ingest::now_us;
use crate::model::{SummaryKeys, Trace, TraceId, TraceSummary};
use crate::storage::{JournalKey, OperationName, StorageError, TraceStore};
use crate::telemetry::Telemetry;

/// Spans of one trace made durable by ingest.
#[derive(Debug, Clone, Copy)]
pub struct Arrival {
    pub trace_id: TraceId,
    pub received_at_us: u64,
    /// The `open` journal entry the write added.
    pub journal: JournalKey,
    /// An estimate of the memory the spans stand for, for the open-trace bound.
    pub bytes: usize,
}

pub struct Assembler {
    pub store: Arc<dyn TraceStore>,
    pub telemetry: Arc<Telemetry>,
    pub trace_idle: Duration,
    pub trace_max_age: Duration,
    pub max_open_traces: usize,
    pub max_open_bytes: usize,
    /// The attribute keys summaries pick up (correlation ids, indexed attributes).
    pub summary_keys: SummaryKeys,
    /// Where completed traces go next (the analysis stage), when there is one.
    pub completed: Option<mpsc::Sender<Trace>>,
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
        for open in recovered {
            for key in open.journal {
                refs.hold(open.trace_id, key);
            }
            let early = table.observe(open.trace_id, open.last_arrival_us, 0);
            self.complete(early, true, &known, &mut refs).await;
        }
        let tick = (self.trace_idle / 4).clamp(Duration::from_millis(20), Duration::from_secs(1));
        let mut ticker = tokio::time::interval(tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                batch = arrivals.recv() => {
                    let Some(batch) = batch else { break };
                    for arrival in batch {
                        refs.hold(arrival.trace_id, arrival.journal);
                        let early = table.observe(arrival.trace_id, arrival.received_at_us, arrival.bytes);
                        self.complete(early, true, &known, &mut refs).await;
                    }
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

    /// Reads each trace, writes its summary and index entries, hands it on.
    /// A failure leaves the trace open in storage's journal, so it is completed
    /// again after a restart; it is logged and counted, never fatal.
    /// `known` holds the operation names already in storage, so each is written
    /// once, not once per trace.
    async fn complete(
        &self,
        trace_ids: Vec<TraceId>,
        early: bool,
        known: &Arc<Mutex<HashSet<OperationName>>>,
        refs: &mut JournalRefs,
    ) {
        for trace_id in trace_ids {
            let store = self.store.clone();
            let keys = self.summary_keys.clone();
            let known = known.clone();
            let held = refs.take(trace_id);
            let settled = held.settled.clone();
            let result = tokio::task::spawn_blocking(move || {
                complete_trace(store.as_ref(), trace_id, &keys, &known, &settled)
            })
            .await;
            if matches!(result, Ok(Ok(_))) {
                refs.release(held);
            }
            match result {
                Ok(Ok(Some(trace))) => {
                    self.telemetry.trace_completed(early);
                    if let Some(next) = &self.completed {
                        // Backpressure from analysis slows assembly, never drops.
                        let _ = next.send(trace).await;
                    }
                }
                Ok(Ok(None)) => {}
                Ok(Err(error)) => {
                    self.telemetry.store_error();
                    tracing::warn!(%error, %trace_id, "completing a trace failed; it stays open");
                }
                Err(error) => tracing::warn!(%error, %trace_id, "completion task failed"),
            }
        }
    }
}

/// Completes one trace in storage, as the assembly task does: reads it, writes
/// its summary, index entries and operation names not in `known` (adding them
/// there), and deletes the `settled` journal entries; `None` when the trace has
/// no spans. Blocking.
pub fn complete_trace(
    store: &dyn TraceStore,
    trace_id: TraceId,
    keys: &SummaryKeys,
    known: &Mutex<HashSet<OperationName>>,
    settled: &[JournalKey],
) -> Result<Option<Trace>, StorageError> {
    let Some(trace) = store.trace(trace_id)? else {
        store.settle(settled)?;
        return Ok(None);
    };
    let mut new_names: Vec<OperationName> = {
        let known = known.lock().expect("known names lock");
        trace
            .spans
            .iter()
            .map(|s| OperationName {
                service: s.service().to_string(),
                operation: s.name.clone(),
                kind: s.kind as u8,
            })
            .filter(|n| !known.contains(n))
            .collect()
    };
    new_names.sort();
    new_names.dedup();
    store.complete(&TraceSummary::of(&trace, keys, true), &new_names, settled)?;
    known.lock().expect("known names lock").extend(new_names);
    Ok(Some(trace))
}
