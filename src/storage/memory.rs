//! An in-memory `TraceStore` for unit tests. Not durable; never used by `serve`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use super::keys::index_hash;
use super::{
    index_keys, merge_chunks, IndexHit, IndexTag, OperationName, StorageError, TraceStore,
};
use crate::model::{Span, Trace, TraceChunk, TraceId, TraceSummary};

/// The chunks of one trace with the time each was received.
type Chunks = Vec<(u64, Vec<Span>)>;

#[derive(Default)]
pub struct MemoryStore {
    chunks: Mutex<HashMap<TraceId, Chunks>>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Newest arrival and newest completion per trace.
    open: HashMap<TraceId, (u64, u64)>,
    summaries: HashMap<TraceId, TraceSummary>,
    /// (tag, hash, start_us, trace) → (duration_us, error)
    index: BTreeMap<(u8, u64, u64, TraceId), (u64, bool)>,
    names: std::collections::BTreeSet<OperationName>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }
}

impl TraceStore for MemoryStore {
    fn append(&self, received_at_us: u64, chunks: &[TraceChunk]) -> Result<(), StorageError> {
        let mut map = self.chunks.lock().expect("memory store lock");
        let mut state = self.state.lock().expect("memory store lock");
        for chunk in chunks {
            // As RocksDB's put: the arrival replaces the marker and re-opens.
            state.open.insert(chunk.trace_id, (received_at_us, 0));
            let list = map.entry(chunk.trace_id).or_default();
            list.push((received_at_us, chunk.spans.clone()));
            // Keep receive order, as the RocksDB key order does.
            list.sort_by_key(|(at, _)| *at);
        }
        Ok(())
    }

    fn trace(&self, trace_id: TraceId) -> Result<Option<Trace>, StorageError> {
        let map = self.chunks.lock().expect("memory store lock");
        Ok(map
            .get(&trace_id)
            .and_then(|chunks| merge_chunks(trace_id, chunks.iter().cloned())))
    }

    fn flush(&self) -> Result<(), StorageError> {
        Ok(())
    }

    fn open_traces(&self) -> Result<Vec<(TraceId, u64)>, StorageError> {
        let state = self.state.lock().expect("memory store lock");
        Ok(state
            .open
            .iter()
            .filter(|(_, (arrival, completed))| arrival > completed)
            .map(|(id, (arrival, _))| (*id, *arrival))
            .collect())
    }

    fn is_open(&self, trace_id: TraceId) -> Result<bool, StorageError> {
        let state = self.state.lock().expect("memory store lock");
        Ok(state.open.get(&trace_id).is_none_or(|(a, c)| a > c))
    }

    fn complete(
        &self,
        summary: &TraceSummary,
        new_names: &[OperationName],
    ) -> Result<(), StorageError> {
        let mut state = self.state.lock().expect("memory store lock");
        state.names.extend(new_names.iter().cloned());
        if let Some(old) = state.summaries.remove(&summary.trace_id) {
            for key in index_keys(&old) {
                state
                    .index
                    .remove(&(key.tag, key.hash, key.start_us, key.trace_id));
            }
        }
        let value = (summary.duration_ns / 1_000, summary.error_count > 0);
        for key in index_keys(summary) {
            state
                .index
                .insert((key.tag, key.hash, key.start_us, key.trace_id), value);
        }
        state.summaries.insert(summary.trace_id, summary.clone());
        let open = state.open.entry(summary.trace_id).or_default();
        open.1 = open.1.max(summary.last_received_us);
        Ok(())
    }

    fn expire(&self, before_us: u64, max_traces: usize) -> Result<usize, StorageError> {
        let mut state = self.state.lock().expect("memory store lock");
        let mut expired: Vec<TraceSummary> = state
            .summaries
            .values()
            .filter(|s| s.start_ns / 1_000 < before_us && s.last_received_us < before_us)
            .cloned()
            .collect();
        expired.sort_by_key(|s| s.start_ns);
        expired.truncate(max_traces);
        let mut chunks = self.chunks.lock().expect("memory store lock");
        for summary in &expired {
            for key in index_keys(summary) {
                state
                    .index
                    .remove(&(key.tag, key.hash, key.start_us, key.trace_id));
            }
            state.summaries.remove(&summary.trace_id);
            state.open.remove(&summary.trace_id);
            chunks.remove(&summary.trace_id);
        }
        Ok(expired.len())
    }

    fn compact(&self) -> Result<(), StorageError> {
        Ok(())
    }

    fn names(&self, service: Option<&str>) -> Result<Vec<OperationName>, StorageError> {
        let state = self.state.lock().expect("memory store lock");
        Ok(state
            .names
            .iter()
            .filter(|n| service.is_none_or(|s| n.service == s))
            .cloned()
            .collect())
    }

    fn summary(&self, trace_id: TraceId) -> Result<Option<TraceSummary>, StorageError> {
        let open = self.is_open(trace_id)?;
        let state = self.state.lock().expect("memory store lock");
        Ok(state.summaries.get(&trace_id).map(|s| TraceSummary {
            complete: !open,
            ..s.clone()
        }))
    }

    fn scan_index(
        &self,
        tag: IndexTag,
        value: &str,
        from_us: u64,
        to_us: u64,
        limit: usize,
    ) -> Result<Vec<IndexHit>, StorageError> {
        let state = self.state.lock().expect("memory store lock");
        let hash = index_hash(value);
        let low = (tag as u8, hash, from_us, TraceId([0; 16]));
        let high = (tag as u8, hash, to_us, TraceId([0xff; 16]));
        Ok(state
            .index
            .range(low..=high)
            .rev()
            .take(limit)
            .map(
                |((_, _, start_us, trace_id), (duration_us, error))| IndexHit {
                    trace_id: *trace_id,
                    start_us: *start_us,
                    duration_us: *duration_us,
                    error: *error,
                },
            )
            .collect())
    }
}
