//! The open-trace table and the completion policy, with time passed in, so the
//! policy is tested without a clock.

use std::collections::{BTreeSet, HashMap};

use crate::model::{Span, Trace, TraceId, TraceSummary};
use crate::storage::OperationName;

#[derive(Debug)]
struct OpenTrace {
    first_seen_us: u64,
    last_seen_us: u64,
    bytes: usize,
    pending: Pending,
}

/// A trace leaving the table for completion: the chunks it received while
/// open, in arrival order with their receive times.
#[derive(Debug, Default)]
pub struct Pending {
    pub trace_id: TraceId,
    pub chunks: Vec<(u64, Vec<Span>)>,
    /// Storage holds spans of the trace that `chunks` does not (it was
    /// recovered after a restart), so completion reads it from there.
    pub from_storage: bool,
    /// The trace assembled and summarised when its first chunk arrived, kept
    /// while that chunk is all it received (`chunks` is then empty).
    pub prepared: Option<Prepared>,
}

/// A one-chunk trace assembled on arrival, while its spans were fresh in the
/// CPU caches: at completion, ten seconds later, walking them again costs a
/// cache miss per attribute.
#[derive(Debug)]
pub struct Prepared {
    pub trace: Trace,
    pub summary: TraceSummary,
    /// Operation names of the trace not known when it arrived.
    pub new_names: Vec<OperationName>,
}

impl Pending {
    /// One chunk of `trace_id`, received at `received_at_us`, as received.
    pub fn received(trace_id: TraceId, received_at_us: u64, spans: Vec<Span>) -> Self {
        Self {
            trace_id,
            chunks: vec![(received_at_us, spans)],
            ..Self::default()
        }
    }

    /// Adds what `other` received, giving up the prepared trace: the spans
    /// are assembled again at completion.
    pub fn absorb(&mut self, other: Pending) {
        self.unprepare();
        let mut other = other;
        other.unprepare();
        self.chunks.extend(other.chunks);
        self.from_storage |= other.from_storage;
    }

    /// A prepared trace's spans, deduplicated and sorted, are its one chunk.
    fn unprepare(&mut self) {
        if let Some(prepared) = self.prepared.take() {
            let chunk = (prepared.trace.last_received_us, prepared.trace.spans);
            self.chunks.insert(0, chunk);
        }
    }
}

/// Open traces, ordered by last and first arrival for the completion scan.
pub struct OpenTraces {
    traces: HashMap<TraceId, OpenTrace>,
    by_last_seen: BTreeSet<(u64, TraceId)>,
    by_first_seen: BTreeSet<(u64, TraceId)>,
    bytes: usize,
    max_traces: usize,
    max_bytes: usize,
}

impl OpenTraces {
    pub fn new(max_traces: usize, max_bytes: usize) -> Self {
        Self {
            traces: HashMap::new(),
            by_last_seen: BTreeSet::new(),
            by_first_seen: BTreeSet::new(),
            bytes: 0,
            max_traces: max_traces.max(1),
            max_bytes,
        }
    }

    pub fn len(&self) -> usize {
        self.traces.len()
    }

    pub fn is_empty(&self) -> bool {
        self.traces.is_empty()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether the trace is open (a chunk for it would not be its first).
    pub fn contains(&self, trace_id: TraceId) -> bool {
        self.traces.contains_key(&trace_id)
    }

    /// Records what `trace_id` received at `at_us`: `received`, standing for
    /// `bytes` of memory, or `None` for spans that are only in storage (a
    /// trace recovered after a restart). Returns the traces that must be
    /// completed early because the table is over its bounds, oldest first
    /// (never the trace just observed).
    pub fn observe(
        &mut self,
        trace_id: TraceId,
        at_us: u64,
        received: Option<Pending>,
        bytes: usize,
    ) -> Vec<Pending> {
        let open = self.traces.entry(trace_id).or_insert_with(|| {
            self.by_last_seen.insert((at_us, trace_id));
            self.by_first_seen.insert((at_us, trace_id));
            OpenTrace {
                first_seen_us: at_us,
                last_seen_us: at_us,
                bytes: 0,
                pending: Pending {
                    trace_id,
                    ..Pending::default()
                },
            }
        });
        if at_us > open.last_seen_us {
            self.by_last_seen.remove(&(open.last_seen_us, trace_id));
            open.last_seen_us = at_us;
            self.by_last_seen.insert((at_us, trace_id));
        }
        open.bytes += bytes;
        let received = received.unwrap_or(Pending {
            trace_id,
            from_storage: true,
            ..Pending::default()
        });
        if open.pending.chunks.is_empty()
            && open.pending.prepared.is_none()
            && !open.pending.from_storage
        {
            open.pending = received;
            open.pending.trace_id = trace_id;
        } else {
            open.pending.absorb(received);
        }
        self.bytes += bytes;
        let mut evicted = Vec::new();
        while self.traces.len() > self.max_traces || self.bytes > self.max_bytes {
            let Some(&(_, oldest)) = self.by_first_seen.iter().find(|(_, id)| *id != trace_id)
            else {
                break;
            };
            evicted.extend(self.remove(oldest));
        }
        evicted
    }

    /// Removes and returns the traces complete at `now_us`: idle for `idle_us`,
    /// or first seen `max_age_us` ago.
    pub fn take_due(&mut self, now_us: u64, idle_us: u64, max_age_us: u64) -> Vec<Pending> {
        let idle_before = now_us.saturating_sub(idle_us);
        let born_before = now_us.saturating_sub(max_age_us);
        let mut due: Vec<TraceId> = self
            .by_last_seen
            .iter()
            .take_while(|(at, _)| *at <= idle_before)
            .map(|(_, id)| *id)
            .collect();
        let too_old: Vec<TraceId> = self
            .by_first_seen
            .iter()
            .take_while(|(at, _)| *at <= born_before)
            .map(|(_, id)| *id)
            .filter(|id| !due.contains(id))
            .collect();
        due.extend(too_old);
        due.into_iter().filter_map(|id| self.remove(id)).collect()
    }

    fn remove(&mut self, trace_id: TraceId) -> Option<Pending> {
        let open = self.traces.remove(&trace_id)?;
        self.by_last_seen.remove(&(open.last_seen_us, trace_id));
        self.by_first_seen.remove(&(open.first_seen_us, trace_id));
        self.bytes -= open.bytes;
        Some(open.pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> TraceId {
        TraceId([n; 16])
    }

    fn ids(pending: Vec<Pending>) -> Vec<TraceId> {
        pending.into_iter().map(|p| p.trace_id).collect()
    }

    fn spans(n: usize) -> Option<Pending> {
        Some(Pending::received(
            TraceId::default(),
            0,
            vec![Span::default(); n],
        ))
    }

    #[test]
    fn idle_traces_complete_and_active_ones_wait() {
        let mut table = OpenTraces::new(100, 1 << 20);
        table.observe(id(1), 1_000, spans(1), 10);
        table.observe(id(2), 2_000, spans(1), 10);
        table.observe(id(1), 5_000, spans(1), 10);
        assert_eq!(
            ids(table.take_due(11_999, 10_000, 1_000_000)),
            Vec::<TraceId>::new()
        );
        assert_eq!(ids(table.take_due(12_000, 10_000, 1_000_000)), vec![id(2)]);
        assert_eq!(
            ids(table.take_due(14_000, 10_000, 1_000_000)),
            Vec::<TraceId>::new()
        );
        assert_eq!(ids(table.take_due(15_000, 10_000, 1_000_000)), vec![id(1)]);
        assert!(table.is_empty());
        assert_eq!(table.bytes(), 0);
    }

    #[test]
    fn a_trace_that_never_stops_completes_at_max_age() {
        let mut table = OpenTraces::new(100, 1 << 20);
        for at in (0..100).map(|s| s * 1_000) {
            table.observe(id(7), at, spans(1), 1);
        }
        assert_eq!(ids(table.take_due(60_000, 10_000, 50_000)), vec![id(7)]);
    }

    #[test]
    fn overflow_completes_the_oldest_early() {
        let mut table = OpenTraces::new(2, 1 << 20);
        assert!(table.observe(id(1), 1, spans(1), 10).is_empty());
        assert!(table.observe(id(2), 2, spans(1), 10).is_empty());
        assert_eq!(ids(table.observe(id(3), 3, spans(1), 10)), vec![id(1)]);
        let mut by_bytes = OpenTraces::new(100, 25);
        by_bytes.observe(id(1), 1, spans(1), 10);
        by_bytes.observe(id(2), 2, spans(1), 10);
        assert_eq!(ids(by_bytes.observe(id(3), 3, spans(1), 10)), vec![id(1)]);
        assert_eq!(by_bytes.bytes(), 20);
    }

    #[test]
    fn completion_takes_the_chunks_received_while_open() {
        let mut table = OpenTraces::new(100, 1 << 20);
        let chunk = |at: u64, n: usize| {
            Some(Pending::received(
                TraceId::default(),
                at,
                vec![Span::default(); n],
            ))
        };
        table.observe(id(1), 1_000, chunk(1_000, 2), 10);
        table.observe(id(1), 2_000, chunk(2_000, 3), 10);
        table.observe(id(2), 1_500, None, 0);
        let mut due = table.take_due(20_000, 10_000, 1_000_000);
        due.sort_by_key(|p| p.trace_id);
        let received: Vec<(u64, usize)> =
            due[0].chunks.iter().map(|(at, s)| (*at, s.len())).collect();
        assert_eq!(received, vec![(1_000, 2), (2_000, 3)]);
        assert!(!due[0].from_storage);
        assert!(
            due[1].chunks.is_empty() && due[1].from_storage,
            "recovered: read from storage"
        );
    }
}
