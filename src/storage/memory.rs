//! An in-memory `TraceStore` for unit tests. Not durable; never used by `serve`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use super::keys::{index_hash, FindingKey};
use super::{
    findings, index_keys, merge_chunks, FindingQuery, IndexHit, IndexTag, JournalKey, OpenTrace,
    OperationName, StorageError, TraceStore,
};
use crate::model::{
    Aggregate, Finding, GraphRow, GraphSubject, Span, Trace, TraceChunk, TraceId, TraceSummary,
};

/// The chunks of one trace with the time each was received.
type Chunks = Vec<(u64, Vec<Span>)>;

#[derive(Default)]
pub struct MemoryStore {
    chunks: Mutex<HashMap<TraceId, Chunks>>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The `open` journal, as RocksDB keeps it.
    journal: BTreeMap<JournalKey, Vec<TraceId>>,
    journal_seq: u64,
    summaries: HashMap<TraceId, TraceSummary>,
    /// (tag, hash, start_us, trace) → (duration_us, error)
    index: BTreeMap<(u8, u64, u64, TraceId), (u64, bool)>,
    names: std::collections::BTreeSet<OperationName>,
    /// (minute, subject) → aggregate: the finest level only.
    graph: BTreeMap<(u32, GraphSubject), Aggregate>,
    findings: BTreeMap<FindingKey, Finding>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }
}

impl TraceStore for MemoryStore {
    fn append(
        &self,
        received_at_us: u64,
        chunks: &[TraceChunk],
    ) -> Result<JournalKey, StorageError> {
        let mut map = self.chunks.lock().expect("memory store lock");
        let mut state = self.state.lock().expect("memory store lock");
        let journal = JournalKey {
            received_at_us,
            seq: state.journal_seq,
        };
        state.journal_seq += 1;
        state
            .journal
            .insert(journal, chunks.iter().map(|c| c.trace_id).collect());
        for chunk in chunks {
            let list = map.entry(chunk.trace_id).or_default();
            list.push((received_at_us, chunk.spans.clone()));
            // Keep receive order, as the RocksDB key order does.
            list.sort_by_key(|(at, _)| *at);
        }
        Ok(journal)
    }

    fn trace(&self, trace_id: TraceId) -> Result<Option<Trace>, StorageError> {
        let map = self.chunks.lock().expect("memory store lock");
        Ok(map
            .get(&trace_id)
            .and_then(|chunks| merge_chunks(trace_id, chunks.iter().cloned())))
    }

    fn trace_received_by(
        &self,
        trace_id: TraceId,
        until_us: u64,
    ) -> Result<Option<Trace>, StorageError> {
        let map = self.chunks.lock().expect("memory store lock");
        Ok(map.get(&trace_id).and_then(|chunks| {
            merge_chunks(
                trace_id,
                chunks.iter().filter(|(at, _)| *at <= until_us).cloned(),
            )
        }))
    }

    fn graph(
        &self,
        from_us: u64,
        to_us: u64,
    ) -> Result<Vec<(GraphSubject, Aggregate)>, StorageError> {
        let (from, to) = super::graph::minutes_of(from_us, to_us);
        let state = self.state.lock().expect("memory store lock");
        let mut sum = super::graph::RangeSum::default();
        for ((minute, subject), aggregate) in &state.graph {
            if (from..to).contains(minute) {
                sum.add(subject.clone(), aggregate);
            }
        }
        Ok(sum.into_rows())
    }

    fn findings(&self, query: &FindingQuery) -> Result<Vec<Finding>, StorageError> {
        let state = self.state.lock().expect("memory store lock");
        // Newest trace first, each trace's findings in order.
        let mut out: Vec<(&FindingKey, &Finding)> = state
            .findings
            .iter()
            .filter(|(key, f)| query.wants(key.start_us, f))
            .collect();
        out.sort_by_key(|(key, _)| (std::cmp::Reverse((key.start_us, key.trace_id)), key.n));
        Ok(out
            .into_iter()
            .take(query.limit)
            .map(|(_, f)| f.clone())
            .collect())
    }

    fn graph_storms(
        &self,
        from_us: u64,
        to_us: u64,
        rule: super::storm::StormRule,
    ) -> Result<std::collections::HashSet<GraphSubject>, StorageError> {
        let (from, to) = super::graph::minutes_of(from_us, to_us);
        let state = self.state.lock().expect("memory store lock");
        Ok(state
            .graph
            .iter()
            .filter(|((minute, subject), aggregate)| {
                (from..to).contains(minute)
                    && matches!(subject, GraphSubject::Edge { .. })
                    && rule.storms(aggregate)
            })
            .map(|((_, subject), _)| subject.clone())
            .collect())
    }

    fn expire_graph(&self, before_us: u64) -> Result<(), StorageError> {
        let before = (before_us / 60_000_000) as u32;
        let mut state = self.state.lock().expect("memory store lock");
        state.graph.retain(|(minute, _), _| *minute >= before);
        Ok(())
    }

    fn flush(&self) -> Result<(), StorageError> {
        Ok(())
    }

    fn open_traces(&self) -> Result<Vec<OpenTrace>, StorageError> {
        let chunks = self.chunks.lock().expect("memory store lock");
        let mut state = self.state.lock().expect("memory store lock");
        let mut open: HashMap<TraceId, OpenTrace> = HashMap::new();
        let mut settled = Vec::new();
        for (key, trace_ids) in &state.journal {
            let mut pending = false;
            for trace_id in trace_ids {
                let completed = match state.summaries.get(trace_id) {
                    Some(summary) => summary.last_received_us >= key.received_at_us,
                    // Expired or never written: nothing left to complete.
                    None => !chunks.contains_key(trace_id),
                };
                if completed {
                    continue;
                }
                pending = true;
                let entry = open.entry(*trace_id).or_insert_with(|| OpenTrace {
                    trace_id: *trace_id,
                    last_arrival_us: 0,
                    journal: Vec::new(),
                });
                entry.last_arrival_us = entry.last_arrival_us.max(key.received_at_us);
                entry.journal.push(*key);
            }
            if !pending {
                settled.push(*key);
            }
        }
        for key in settled {
            state.journal.remove(&key);
        }
        Ok(open.into_values().collect())
    }

    fn is_open(&self, trace_id: TraceId) -> Result<bool, StorageError> {
        let completed_up_to = {
            let state = self.state.lock().expect("memory store lock");
            match state.summaries.get(&trace_id) {
                Some(summary) => summary.last_received_us,
                None => return Ok(true),
            }
        };
        let chunks = self.chunks.lock().expect("memory store lock");
        Ok(chunks
            .get(&trace_id)
            .is_some_and(|list| list.iter().any(|(at, _)| *at > completed_up_to)))
    }

    fn was_completed(&self, trace_id: TraceId) -> Result<bool, StorageError> {
        let state = self.state.lock().expect("memory store lock");
        Ok(state.summaries.contains_key(&trace_id))
    }

    fn complete(
        &self,
        summaries: &[TraceSummary],
        new_names: &[OperationName],
        settled: &[JournalKey],
        graph: &[GraphRow],
        findings: &[Finding],
    ) -> Result<(), StorageError> {
        let mut state = self.state.lock().expect("memory store lock");
        for summary in summaries {
            if let Some(old) = state.summaries.get(&summary.trace_id) {
                for key in findings::keys_of(old).collect::<Vec<_>>() {
                    state.findings.remove(&key);
                }
            }
        }
        for (key, finding) in findings::keyed(summaries, findings) {
            state.findings.insert(key, finding.clone());
        }
        state.names.extend(new_names.iter().cloned());
        for row in graph {
            state
                .graph
                .entry((row.minute, row.subject.clone()))
                .or_default()
                .merge(&row.aggregate);
        }
        for summary in summaries {
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
        }
        for key in settled {
            state.journal.remove(key);
        }
        Ok(())
    }

    fn settle(&self, settled: &[JournalKey]) -> Result<(), StorageError> {
        let mut state = self.state.lock().expect("memory store lock");
        for key in settled {
            state.journal.remove(key);
        }
        Ok(())
    }

    fn expire(&self, before_us: u64) -> Result<(), StorageError> {
        let mut state = self.state.lock().expect("memory store lock");
        let mut chunks = self.chunks.lock().expect("memory store lock");
        for list in chunks.values_mut() {
            list.retain(|(at, _)| *at >= before_us);
        }
        chunks.retain(|_, list| !list.is_empty());
        let expired: Vec<TraceSummary> = state
            .summaries
            .values()
            .filter(|s| s.last_received_us < before_us)
            .cloned()
            .collect();
        for summary in &expired {
            for key in index_keys(summary) {
                state
                    .index
                    .remove(&(key.tag, key.hash, key.start_us, key.trace_id));
            }
            state.summaries.remove(&summary.trace_id);
        }
        state
            .index
            .retain(|(_, _, start_us, _), _| *start_us >= before_us);
        state.findings.retain(|key, _| key.start_us >= before_us);
        Ok(())
    }

    fn disk_bytes(&self) -> Result<u64, StorageError> {
        Ok(0)
    }

    fn oldest_partition_us(&self) -> Result<Option<u64>, StorageError> {
        let state = self.state.lock().expect("memory store lock");
        Ok(state
            .index
            .keys()
            .map(|(_, _, start_us, _)| start_us / super::keys::HOUR_US * super::keys::HOUR_US)
            .min())
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
