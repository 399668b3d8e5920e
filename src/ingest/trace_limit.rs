//! `max_spans_per_trace`: how many spans one trace may hold, counted before
//! the write so that spans over the limit are refused (OTLP partial success)
//! rather than stored.
//!
//! Where the count lives: a trace that is receiving spans is open, and its
//! count is kept here, in memory, from its first admitted span until assembly
//! completes it (`retire`). So the table holds the open traces and no more —
//! assembly bounds those by `max_open_traces`. A trace not in the table is new
//! or was completed before; its count then starts from the span count its
//! stored summary recorded (one point read, which for a new trace is a bloom
//! filter miss), so a trace re-opened by late spans counts what it already
//! holds.
//!
//! The count is of spans admitted, so a span sent twice (an exporter's retry)
//! counts twice until the trace's completion settles the count to what storage
//! holds. After a restart, a trace that was open counts from its last
//! completion (or from zero): the limit bounds runaway traces, it is not an
//! exact ledger.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::model::{TraceChunk, TraceId};

/// Shards of the table, so concurrent requests rarely wait on one lock.
const SHARDS: usize = 16;

#[derive(Debug, Clone, Copy)]
struct Count {
    spans: u32,
    /// `received_at_us` of the newest write admitted, so completion only
    /// retires a count it has seen all of.
    last_admitted_us: u64,
}

/// Span counts of the traces receiving spans now; shared by ingest, which
/// admits, and assembly, which retires.
pub struct TraceSpanCounts {
    max_spans: u32,
    shards: Box<[Mutex<HashMap<TraceId, Count>>]>,
}

/// What `admit` let through for one write, to report or to take back.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Admission {
    /// Spans admitted per trace.
    pub admitted: Vec<(TraceId, u32)>,
    /// Spans refused over the limit.
    pub refused: u64,
    /// The first trace that refused spans, for the client's message.
    pub first_full: Option<TraceId>,
}

impl TraceSpanCounts {
    pub fn new(max_spans_per_trace: u32) -> Self {
        Self {
            max_spans: max_spans_per_trace.max(1),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    pub fn max_spans(&self) -> u32 {
        self.max_spans
    }

    fn shard(&self, trace_id: TraceId) -> &Mutex<HashMap<TraceId, Count>> {
        // Trace ids are random: their last byte spreads them evenly.
        &self.shards[usize::from(trace_id.0[15]) % SHARDS]
    }

    /// Traces of `chunks` with no count here: their stored count is to be
    /// looked up before `admit`.
    pub fn unknown(&self, chunks: &[TraceChunk]) -> Vec<TraceId> {
        chunks
            .iter()
            .map(|c| c.trace_id)
            .filter(|id| {
                !self
                    .shard(*id)
                    .lock()
                    .expect("span counts")
                    .contains_key(id)
            })
            .collect()
    }

    /// Admits what each chunk's trace has room for, cutting the rest off the
    /// chunk's end; `stored` gives the starting count of traces not yet here
    /// (absent: zero). Chunks left empty are removed.
    pub fn admit(
        &self,
        received_at_us: u64,
        chunks: &mut Vec<TraceChunk>,
        stored: &HashMap<TraceId, u32>,
    ) -> Admission {
        let mut admission = Admission::default();
        for chunk in chunks.iter_mut() {
            let id = chunk.trace_id;
            let mut shard = self.shard(id).lock().expect("span counts");
            let count = shard.entry(id).or_insert_with(|| Count {
                spans: stored.get(&id).copied().unwrap_or(0),
                last_admitted_us: 0,
            });
            let room = self.max_spans.saturating_sub(count.spans) as usize;
            if chunk.spans.len() > room {
                admission.refused += (chunk.spans.len() - room) as u64;
                admission.first_full.get_or_insert(id);
                chunk.spans.truncate(room);
            }
            // At most `max_spans`, so it fits.
            let admitted = chunk.spans.len() as u32;
            count.spans += admitted;
            count.last_admitted_us = count.last_admitted_us.max(received_at_us);
            if admitted > 0 {
                admission.admitted.push((id, admitted));
            }
        }
        chunks.retain(|c| !c.spans.is_empty());
        admission
    }

    /// Takes back an admission whose write failed: the client sends the
    /// spans again, and they must not count twice.
    pub fn release(&self, admission: &Admission) {
        for &(id, spans) in &admission.admitted {
            if let Some(count) = self.shard(id).lock().expect("span counts").get_mut(&id) {
                count.spans = count.spans.saturating_sub(spans);
            }
        }
    }

    /// Forgets the count of a trace completed with everything received up to
    /// `completed_through_us`: its stored summary holds the count from now on.
    /// A count admitted after that stays, as its spans re-open the trace.
    pub fn retire(&self, trace_id: TraceId, completed_through_us: u64) {
        let mut shard = self.shard(trace_id).lock().expect("span counts");
        if shard
            .get(&trace_id)
            .is_some_and(|c| c.last_admitted_us <= completed_through_us)
        {
            shard.remove(&trace_id);
        }
    }

    /// Traces counted now (open ones, and ones written but not yet completed).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().expect("span counts").len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Span, SpanId};

    fn chunk(trace: u8, spans: usize) -> TraceChunk {
        TraceChunk {
            trace_id: TraceId([trace; 16]),
            spans: (0..spans)
                .map(|n| Span {
                    span_id: SpanId((n as u64 + 1).to_be_bytes()),
                    ..Span::default()
                })
                .collect(),
        }
    }

    #[test]
    fn spans_beyond_the_limit_are_cut_across_requests() {
        let counts = TraceSpanCounts::new(10);
        let mut first = vec![chunk(1, 6), chunk(2, 3)];
        let admission = counts.admit(1, &mut first, &HashMap::new());
        assert_eq!(admission.refused, 0);
        let mut second = vec![chunk(1, 6), chunk(2, 3)];
        let admission = counts.admit(2, &mut second, &HashMap::new());
        assert_eq!(admission.refused, 2);
        assert_eq!(admission.first_full, Some(TraceId([1; 16])));
        assert_eq!(second[0].spans.len(), 4, "the first four fit");
        assert_eq!(second[0].spans[3].span_id, SpanId(4u64.to_be_bytes()));
        let mut third = vec![chunk(1, 1), chunk(2, 1)];
        let admission = counts.admit(3, &mut third, &HashMap::new());
        assert_eq!(admission.refused, 1);
        assert_eq!(third.len(), 1, "a chunk with no room left is gone");
        assert_eq!(third[0].trace_id, TraceId([2; 16]));
    }

    #[test]
    fn a_completed_trace_counts_its_stored_spans() {
        let counts = TraceSpanCounts::new(10);
        let mut chunks = vec![chunk(1, 5)];
        assert_eq!(counts.unknown(&chunks), vec![TraceId([1; 16])]);
        let stored = HashMap::from([(TraceId([1; 16]), 8)]);
        let admission = counts.admit(1, &mut chunks, &stored);
        assert_eq!(admission.refused, 3);
        assert!(counts.unknown(&chunks).is_empty());
    }

    #[test]
    fn retire_forgets_only_what_completion_saw() {
        let counts = TraceSpanCounts::new(10);
        counts.admit(100, &mut vec![chunk(1, 2), chunk(2, 2)], &HashMap::new());
        counts.admit(200, &mut vec![chunk(2, 2)], &HashMap::new());
        counts.retire(TraceId([1; 16]), 100);
        counts.retire(TraceId([2; 16]), 100);
        assert_eq!(counts.len(), 1, "trace 2 received after its completion");
        counts.retire(TraceId([2; 16]), 200);
        assert!(counts.is_empty());
    }

    #[test]
    fn a_failed_write_is_taken_back() {
        let counts = TraceSpanCounts::new(4);
        let admission = counts.admit(1, &mut vec![chunk(1, 4)], &HashMap::new());
        counts.release(&admission);
        let again = counts.admit(2, &mut vec![chunk(1, 4)], &HashMap::new());
        assert_eq!(again.refused, 0);
    }
}
