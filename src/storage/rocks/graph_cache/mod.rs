//! Kept range sums for the service map: a range read once stays summed in
//! memory, every later graph write into it is added to it, and the map a
//! browser refreshes every few seconds is answered without reading a bucket.
//!
//! Exactness rests on one rule: a sum starts from a RocksDB snapshot taken
//! while no graph write sits between its commit and `written` (the `gate`),
//! so the snapshot holds exactly the writes `written` has reported, and the
//! sum collects every write reported after it. Nothing is counted twice or
//! missed, however reads and completions interleave.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use crate::model::{Aggregate, GraphRow, GraphSubject};
use crate::storage::graph::{moved, plan};

mod storms;

pub(super) use storms::StormWork;
use storms::{Storms, MAX_DIRTY};

/// Every subject's sum over a range, also those that net to nothing there.
pub(super) type Totals = BTreeMap<GraphSubject, Aggregate>;

/// A kept sum a new range can start from: it overlaps the new range and as
/// of the new sum's snapshot it is exact.
pub(super) struct Base {
    pub from: u32,
    pub to: u32,
    pub totals: Arc<Totals>,
}

/// A sum being computed: its ticket for `fill`, and what to start from.
pub(super) struct Start {
    pub ticket: u64,
    pub base: Option<Base>,
}

#[derive(Default)]
pub(super) struct GraphCache {
    state: Mutex<CacheState>,
    /// Held shared by each graph write from before its commit until
    /// `written` has seen it; held exclusively while a sum starts.
    gate: RwLock<()>,
}

#[derive(Default)]
struct CacheState {
    entries: Vec<CacheEntry>,
    next_ticket: u64,
}

struct CacheEntry {
    from: u32,
    to: u32,
    ticket: u64,
    /// `None` while being summed.
    totals: Option<Arc<Totals>>,
    /// While being summed: the writes since its snapshot, added up.
    early: Totals,
    /// Writes into the range not yet added (to `totals`, or to `early`).
    pending: Vec<Arc<[GraphRow]>>,
    pending_rows: usize,
    last_read: Instant,
    /// Cleared when retention dropped buckets while it was being summed.
    valid: bool,
    /// The range's storming minutes, once asked for.
    storms: Option<Storms>,
}

pub(super) struct AbandonOnDrop<'a> {
    cache: &'a GraphCache,
    ticket: Option<u64>,
}

impl AbandonOnDrop<'_> {
    /// The sum was filled (or abandoned) by its owner.
    pub(super) fn disarm(mut self) {
        self.ticket = None;
    }
}

impl Drop for AbandonOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket {
            self.cache.abandon(ticket);
        }
    }
}

/// Ranges kept summed, at most (the ranges people look at: the last 15
/// minutes, hour, day, week).
const CACHED_RANGES: usize = 4;

/// A kept range nobody read for this long stops costing writes anything.
const IDLE: Duration = Duration::from_secs(300);

/// Written rows held back before they are added in: a read adds what came
/// since the last one, and a busy writer adds them itself past this many.
const MAX_PENDING_ROWS: usize = 4_096;

fn overlaps(a: (u32, u32), b: (u32, u32)) -> bool {
    a.0 < b.1 && b.0 < a.1
}

/// The rows of `rows` within `[from, to)`, added to `totals`.
fn add_rows(totals: &mut Totals, (from, to): (u32, u32), rows: &[GraphRow]) {
    for row in rows.iter().filter(|r| from <= r.minute && r.minute < to) {
        match totals.get_mut(&row.subject) {
            Some(total) => total.merge(&row.aggregate),
            None => {
                totals.insert(row.subject.clone(), row.aggregate.clone());
            }
        }
    }
}

impl CacheEntry {
    fn add_pending(&mut self) {
        let range = (self.from, self.to);
        let target = match &mut self.totals {
            Some(totals) => Arc::make_mut(totals),
            None => &mut self.early,
        };
        for rows in self.pending.drain(..) {
            add_rows(target, range, &rows);
            if let Some(storms) = &mut self.storms {
                storms.note(range, &rows);
                if storms.dirty.len() > MAX_DIRTY {
                    self.storms = None;
                }
            }
        }
        self.pending_rows = 0;
    }
}

impl GraphCache {
    /// Held by a graph write from before its commit until `written`.
    pub(super) fn shared(&self) -> RwLockReadGuard<'_, ()> {
        self.gate.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Held while a sum's snapshot is taken: no graph write is half reported.
    pub(super) fn exclusive(&self) -> RwLockWriteGuard<'_, ()> {
        self.gate.write().unwrap_or_else(|e| e.into_inner())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The kept sum of `[from, to)`, up to date with every reported write.
    pub(super) fn get(&self, from: u32, to: u32) -> Option<Arc<Totals>> {
        let mut state = self.lock();
        let entry = state
            .entries
            .iter_mut()
            .find(|e| (e.from, e.to) == (from, to) && e.totals.is_some())?;
        entry.add_pending();
        entry.last_read = Instant::now();
        entry.totals.clone()
    }

    /// Announces a sum of `[from, to)` about to be computed from a snapshot
    /// taken now (under `exclusive`): its ticket, and the kept sum to start
    /// from when one overlaps and moving it costs fewer bucket reads than
    /// summing afresh.
    pub(super) fn begin(&self, from: u32, to: u32) -> Start {
        let mut state = self.lock();
        state.next_ticket += 1;
        let ticket = state.next_ticket;
        let cost = |ranges: &[(u32, u32)]| -> usize {
            ranges.iter().map(|&(a, b)| plan(a, b).len()).sum()
        };
        let afresh = plan(from, to).len();
        let base = state
            .entries
            .iter_mut()
            .filter(|e| e.totals.is_some() && overlaps((e.from, e.to), (from, to)))
            .map(|e| {
                let (left, reached) = moved((e.from, e.to), (from, to));
                (cost(&left) + cost(&reached), e)
            })
            .filter(|(cost, _)| *cost < afresh)
            .min_by_key(|(cost, _)| *cost)
            .map(|(_, e)| {
                e.add_pending();
                let storms = e
                    .storms
                    .as_ref()
                    .and_then(|s| s.moved_to((e.from, e.to), (from, to)));
                let base = Base {
                    from: e.from,
                    to: e.to,
                    totals: e.totals.clone().expect("filtered on a kept sum"),
                };
                (base, storms)
            });
        let (base, storms) = match base {
            Some((base, storms)) => (Some(base), storms),
            None => (None, None),
        };
        state.entries.push(CacheEntry {
            from,
            to,
            ticket,
            totals: None,
            early: Totals::new(),
            pending: Vec::new(),
            pending_rows: 0,
            last_read: Instant::now(),
            valid: true,
            storms,
        });
        Start { ticket, base }
    }

    /// The sum `ticket` announced, computed as of its snapshot, with the
    /// writes reported since added: kept (unless retention ran meanwhile),
    /// the least recently read ranges making room.
    pub(super) fn fill(&self, ticket: u64, mut totals: Totals) -> Arc<Totals> {
        let mut state = self.lock();
        let Some(at) = state.entries.iter().position(|e| e.ticket == ticket) else {
            return Arc::new(totals);
        };
        let mut entry = state.entries.remove(at);
        if !entry.valid {
            return Arc::new(totals);
        }
        entry.add_pending();
        for (subject, aggregate) in std::mem::take(&mut entry.early) {
            match totals.get_mut(&subject) {
                Some(total) => total.merge(&aggregate),
                None => {
                    totals.insert(subject, aggregate);
                }
            }
        }
        let totals = Arc::new(totals);
        // Another reader may have summed the same range meanwhile.
        let range = (entry.from, entry.to);
        state
            .entries
            .retain(|e| (e.from, e.to) != range || e.totals.is_none());
        entry.totals = Some(totals.clone());
        entry.last_read = Instant::now();
        state.entries.push(entry);
        while state.entries.iter().filter(|e| e.totals.is_some()).count() > CACHED_RANGES {
            let stalest = state
                .entries
                .iter()
                .enumerate()
                .filter(|(_, e)| e.totals.is_some())
                .min_by_key(|(_, e)| e.last_read)
                .map(|(at, _)| at)
                .expect("a kept sum");
            state.entries.remove(stalest);
        }
        totals
    }

    /// Abandons the sum `ticket` announced unless disarmed: one that panics
    /// while summing leaves nothing collecting writes behind.
    pub(super) fn abandon_on_drop(&self, ticket: u64) -> AbandonOnDrop<'_> {
        AbandonOnDrop {
            cache: self,
            ticket: Some(ticket),
        }
    }

    /// The sum `ticket` announced failed.
    pub(super) fn abandon(&self, ticket: u64) {
        self.lock().entries.retain(|e| e.ticket != ticket);
    }

    /// `rows` were written (and the writer still holds `shared`): held for
    /// the sums whose ranges they touch, added in by the next read or here
    /// once many wait.
    pub(super) fn written(&self, rows: &[GraphRow]) {
        let (Some(first), Some(last)) = (
            rows.iter().map(|r| r.minute).min(),
            rows.iter().map(|r| r.minute).max(),
        ) else {
            return;
        };
        let mut state = self.lock();
        if state.entries.is_empty() {
            return;
        }
        let now = Instant::now();
        state
            .entries
            .retain(|e| e.totals.is_none() || now.duration_since(e.last_read) < IDLE);
        let mut shared: Option<Arc<[GraphRow]>> = None;
        for entry in &mut state.entries {
            if !entry.valid || !overlaps((first, last + 1), (entry.from, entry.to)) {
                continue;
            }
            let rows = shared.get_or_insert_with(|| rows.into());
            entry.pending_rows += rows.len();
            entry.pending.push(rows.clone());
            if entry.pending_rows > MAX_PENDING_ROWS {
                entry.add_pending();
            }
        }
    }

    /// Retention dropped buckets before `minute`: sums of ranges that
    /// start before it go (those being summed are not kept).
    pub(super) fn clear_before(&self, minute: u32) {
        let mut state = self.lock();
        state.entries.retain_mut(|e| {
            if e.from >= minute {
                return true;
            }
            e.valid = false;
            e.pending.clear();
            e.totals.is_none()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::CallClass;
    use crate::storage::conformance::db_call_row;

    pub(super) fn row(minute: u32, target: &str) -> GraphRow {
        db_call_row(minute, target, CallClass::Ok, 1_000)
    }

    fn requests(totals: &Totals, target: &str) -> i64 {
        totals
            .get(&row(0, target).subject)
            .map_or(0, |a| a.requests)
    }

    pub(super) fn kept(cache: &GraphCache, from: u32, to: u32, totals: Totals) -> Arc<Totals> {
        let start = cache.begin(from, to);
        cache.fill(start.ticket, totals)
    }

    #[test]
    fn writes_into_a_kept_range_are_added_to_it_once() {
        let cache = GraphCache::default();
        let mut totals = Totals::new();
        add_rows(&mut totals, (10, 20), &[row(12, "db")]);
        kept(&cache, 10, 20, totals);
        // At or after its end, or before it: not its business.
        cache.written(&[row(20, "db"), row(9, "db")]);
        cache.written(&[row(19, "db"), row(25, "db"), row(15, "cache")]);
        let totals = cache.get(10, 20).unwrap();
        assert_eq!(requests(&totals, "db"), 2);
        assert_eq!(requests(&totals, "cache"), 1);
        // Read again: nothing added twice.
        assert_eq!(requests(&cache.get(10, 20).unwrap(), "db"), 2);
        // A busy writer adds them itself.
        for _ in 0..MAX_PENDING_ROWS + 1 {
            cache.written(&[row(15, "db")]);
        }
        assert!(cache.lock().entries[0].pending_rows < MAX_PENDING_ROWS);
        let total = requests(&cache.get(10, 20).unwrap(), "db");
        assert_eq!(total, 2 + MAX_PENDING_ROWS as i64 + 1);
    }

    #[test]
    fn writes_during_a_sum_are_added_to_it() {
        let cache = GraphCache::default();
        let start = cache.begin(10, 20);
        cache.written(&[row(15, "db")]);
        for _ in 0..MAX_PENDING_ROWS + 1 {
            cache.written(&[row(16, "cache")]);
        }
        let mut totals = Totals::new();
        add_rows(&mut totals, (10, 20), &[row(11, "db")]);
        let totals = cache.fill(start.ticket, totals);
        assert_eq!(requests(&totals, "db"), 2);
        assert_eq!(requests(&totals, "cache"), MAX_PENDING_ROWS as i64 + 1);
        assert_eq!(cache.get(10, 20), Some(totals));
    }

    #[test]
    fn a_sum_retention_overtook_or_that_failed_is_not_kept() {
        let cache = GraphCache::default();
        let start = cache.begin(10, 20);
        cache.clear_before(11);
        cache.fill(start.ticket, Totals::new());
        assert_eq!(cache.get(10, 20), None);
        let start = cache.begin(10, 20);
        cache.abandon(start.ticket);
        assert!(cache.lock().entries.is_empty());
        // Kept sums go too, but only those retention reached.
        kept(&cache, 10, 20, Totals::new());
        kept(&cache, 30, 40, Totals::new());
        cache.clear_before(11);
        assert_eq!(cache.get(10, 20), None);
        assert!(cache.get(30, 40).is_some());
    }

    #[test]
    fn a_range_that_moved_starts_from_the_kept_one_when_that_reads_less() {
        let cache = GraphCache::default();
        let mut totals = Totals::new();
        add_rows(&mut totals, (570, 640), &[row(600, "db")]);
        kept(&cache, 570, 640, totals);
        cache.written(&[row(601, "db")]);
        // Ten minutes on: one bucket left, one reached, instead of seven.
        let start = cache.begin(580, 650);
        let base = start.base.expect("a base");
        assert_eq!((base.from, base.to), (570, 640));
        assert_eq!(requests(&base.totals, "db"), 2, "with the writes so far");
        // A week is not moved from an hour.
        assert!(cache.begin(0, 7 * 1_440).base.is_none());
    }

    #[test]
    fn the_least_recently_read_ranges_make_room() {
        let cache = GraphCache::default();
        for n in 0..CACHED_RANGES as u32 + 2 {
            kept(&cache, 1_000 * n, 1_000 * n + 5, Totals::new());
            std::thread::sleep(Duration::from_millis(2));
        }
        assert!(cache.get(0, 5).is_none());
        assert!(cache.get(1_000, 1_005).is_none());
        assert!(cache.get(2_000, 2_005).is_some());
        // The same range summed twice is kept once.
        let (a, b) = (cache.begin(3_000, 3_005), cache.begin(3_000, 3_005));
        cache.fill(a.ticket, Totals::new());
        cache.fill(b.ticket, Totals::new());
        let state = cache.lock();
        assert_eq!(
            state
                .entries
                .iter()
                .filter(|e| (e.from, e.to) == (3_000, 3_005))
                .count(),
            1
        );
    }
}
