//! Which `open` journal entries each open trace holds.
//!
//! Every durable write adds one journal entry naming the traces it touched
//! (see `storage::keys`). An entry may be deleted once every trace it names
//! has been completed past it; this table counts, per entry, the open traces
//! still holding it, so the completion of the last one deletes it in the same
//! batch.

use std::collections::HashMap;

use crate::model::TraceId;
use crate::storage::JournalKey;

#[derive(Debug, Default)]
pub struct JournalRefs {
    by_trace: HashMap<TraceId, Vec<JournalKey>>,
    holders: HashMap<JournalKey, usize>,
}

impl JournalRefs {
    /// The trace holds the entry until it is completed.
    pub fn hold(&mut self, trace_id: TraceId, key: JournalKey) {
        self.by_trace.entry(trace_id).or_default().push(key);
        *self.holders.entry(key).or_default() += 1;
    }

    /// Takes the entries the traces of one completion batch hold; `settled`
    /// lists those no trace outside the batch holds, which the completion
    /// deletes. Call `release` once the completion is durable. If it fails,
    /// drop `held`: the entries then outlive the process and recovery settles
    /// them.
    pub fn take(&mut self, trace_ids: impl IntoIterator<Item = TraceId>) -> Held {
        let mut keys = Vec::new();
        for trace_id in trace_ids {
            keys.extend(self.by_trace.remove(&trace_id).unwrap_or_default());
        }
        let mut in_batch: HashMap<JournalKey, usize> = HashMap::new();
        for key in &keys {
            *in_batch.entry(*key).or_default() += 1;
        }
        let mut settled: Vec<JournalKey> = in_batch
            .into_iter()
            .filter(|(key, count)| self.holders.get(key) == Some(count))
            .map(|(key, _)| key)
            .collect();
        settled.sort();
        Held { keys, settled }
    }

    /// Counts a durable completion: its traces hold their entries no longer.
    pub fn release(&mut self, held: Held) {
        for key in held.keys {
            if let Some(count) = self.holders.get_mut(&key) {
                *count -= 1;
                if *count == 0 {
                    self.holders.remove(&key);
                }
            }
        }
    }

    /// Entries still held by some trace.
    #[cfg(test)]
    pub fn entries(&self) -> usize {
        self.holders.len()
    }
}

/// The entries the traces being completed held.
#[derive(Debug)]
pub struct Held {
    keys: Vec<JournalKey>,
    pub settled: Vec<JournalKey>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(at: u64) -> JournalKey {
        JournalKey {
            received_at_us: at,
            seq: at,
        }
    }

    #[test]
    fn an_entry_settles_with_its_last_trace() {
        let (a, b) = (TraceId([1; 16]), TraceId([2; 16]));
        let mut refs = JournalRefs::default();
        refs.hold(a, key(1));
        refs.hold(b, key(1));
        refs.hold(a, key(2));
        let held = refs.take([a]);
        assert_eq!(held.settled, vec![key(2)], "b still holds entry 1");
        refs.release(held);
        assert_eq!(refs.entries(), 1);
        let held = refs.take([b]);
        assert_eq!(held.settled, vec![key(1)]);
        refs.release(held);
        assert_eq!(refs.entries(), 0);
    }

    #[test]
    fn a_failed_completion_settles_nothing_later() {
        let (a, b) = (TraceId([1; 16]), TraceId([2; 16]));
        let mut refs = JournalRefs::default();
        refs.hold(a, key(1));
        refs.hold(b, key(1));
        drop(refs.take([a])); // the completion of a failed
        let held = refs.take([b]);
        assert!(held.settled.is_empty(), "a never completed past entry 1");
        refs.release(held);
        assert_eq!(refs.entries(), 1);
    }

    #[test]
    fn traces_completed_together_settle_the_entries_they_share() {
        let (a, b, c) = (TraceId([1; 16]), TraceId([2; 16]), TraceId([3; 16]));
        let mut refs = JournalRefs::default();
        refs.hold(a, key(1));
        refs.hold(b, key(1));
        refs.hold(b, key(2));
        refs.hold(c, key(2));
        let held = refs.take([a, b]);
        assert_eq!(held.settled, vec![key(1)], "c still holds entry 2");
        refs.release(held);
        assert_eq!(refs.entries(), 1);
    }

    #[test]
    fn an_unknown_trace_holds_nothing() {
        let mut refs = JournalRefs::default();
        let held = refs.take([TraceId([7; 16])]);
        assert!(held.settled.is_empty());
        refs.release(held);
    }
}
