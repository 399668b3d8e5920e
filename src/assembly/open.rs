//! The open-trace table and the completion policy, with time passed in, so the
//! policy is tested without a clock.

use std::collections::{BTreeSet, HashMap};

use crate::model::TraceId;

#[derive(Debug, Clone, Copy)]
struct OpenTrace {
    first_seen_us: u64,
    last_seen_us: u64,
    bytes: usize,
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

    /// Records spans of `trace_id` arriving at `at_us`. Returns the traces that
    /// must be completed early because the table is over its bounds, oldest
    /// first (never the trace just observed).
    pub fn observe(&mut self, trace_id: TraceId, at_us: u64, bytes: usize) -> Vec<TraceId> {
        match self.traces.get_mut(&trace_id) {
            Some(open) => {
                if at_us > open.last_seen_us {
                    self.by_last_seen.remove(&(open.last_seen_us, trace_id));
                    open.last_seen_us = at_us;
                    self.by_last_seen.insert((at_us, trace_id));
                }
                open.bytes += bytes;
            }
            None => {
                self.traces.insert(
                    trace_id,
                    OpenTrace {
                        first_seen_us: at_us,
                        last_seen_us: at_us,
                        bytes,
                    },
                );
                self.by_last_seen.insert((at_us, trace_id));
                self.by_first_seen.insert((at_us, trace_id));
            }
        }
        self.bytes += bytes;
        let mut evicted = Vec::new();
        while self.traces.len() > self.max_traces || self.bytes > self.max_bytes {
            let Some(&(_, oldest)) = self.by_first_seen.iter().find(|(_, id)| *id != trace_id)
            else {
                break;
            };
            self.remove(oldest);
            evicted.push(oldest);
        }
        evicted
    }

    /// Removes and returns the traces complete at `now_us`: idle for `idle_us`,
    /// or first seen `max_age_us` ago.
    pub fn take_due(&mut self, now_us: u64, idle_us: u64, max_age_us: u64) -> Vec<TraceId> {
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
        for id in &due {
            self.remove(*id);
        }
        due
    }

    fn remove(&mut self, trace_id: TraceId) {
        if let Some(open) = self.traces.remove(&trace_id) {
            self.by_last_seen.remove(&(open.last_seen_us, trace_id));
            self.by_first_seen.remove(&(open.first_seen_us, trace_id));
            self.bytes -= open.bytes;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> TraceId {
        TraceId([n; 16])
    }

    #[test]
    fn idle_traces_complete_and_active_ones_wait() {
        let mut table = OpenTraces::new(100, 1 << 20);
        table.observe(id(1), 1_000, 10);
        table.observe(id(2), 2_000, 10);
        table.observe(id(1), 5_000, 10);
        assert_eq!(
            table.take_due(11_999, 10_000, 1_000_000),
            Vec::<TraceId>::new()
        );
        assert_eq!(table.take_due(12_000, 10_000, 1_000_000), vec![id(2)]);
        assert_eq!(
            table.take_due(14_000, 10_000, 1_000_000),
            Vec::<TraceId>::new()
        );
        assert_eq!(table.take_due(15_000, 10_000, 1_000_000), vec![id(1)]);
        assert!(table.is_empty());
        assert_eq!(table.bytes(), 0);
    }

    #[test]
    fn a_trace_that_never_stops_completes_at_max_age() {
        let mut table = OpenTraces::new(100, 1 << 20);
        for at in (0..100).map(|s| s * 1_000) {
            table.observe(id(7), at, 1);
        }
        assert_eq!(table.take_due(60_000, 10_000, 50_000), vec![id(7)]);
    }

    #[test]
    fn overflow_completes_the_oldest_early() {
        let mut table = OpenTraces::new(2, 1 << 20);
        assert!(table.observe(id(1), 1, 10).is_empty());
        assert!(table.observe(id(2), 2, 10).is_empty());
        assert_eq!(table.observe(id(3), 3, 10), vec![id(1)]);
        let mut by_bytes = OpenTraces::new(100, 25);
        by_bytes.observe(id(1), 1, 10);
        by_bytes.observe(id(2), 2, 10);
        assert_eq!(by_bytes.observe(id(3), 3, 10), vec![id(1)]);
        assert_eq!(by_bytes.bytes(), 20);
    }
}
