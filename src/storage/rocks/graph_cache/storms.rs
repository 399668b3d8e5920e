//! Retry storms kept with a range's sum: the storming (edge, minute) pairs
//! found once (`StormRule::storming_minutes`), the minutes later writes
//! touched read again on the next look, and a moved range carrying the
//! verdicts it keeps and looking only into the minutes it reached.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use super::{GraphCache, Totals};
use crate::model::{GraphRow, GraphSubject};
use crate::storage::graph::moved;
use crate::storage::storm::StormRule;

/// The (edge, minute) pairs of a kept range that storm by `rule`, and the
/// pairs written since they were found, to look at again.
pub(super) struct Storms {
    pub(super) rule: StormRule,
    pub(super) minutes: BTreeSet<(GraphSubject, u32)>,
    pub(super) dirty: Vec<(GraphSubject, u32)>,
    /// A look over the whole range has finished.
    found: bool,
    /// Looks (whole or rechecks) in flight: while any is, every edge row
    /// written is noted, since a look may have read its minute before it.
    looks: usize,
    /// Parts of the range not looked into yet: what a moved range reached.
    unlooked: Vec<(u32, u32)>,
}

/// Minutes noted to look at again, at most; past it the storms are looked
/// for afresh.
pub(super) const MAX_DIRTY: usize = 100_000;

impl Storms {
    /// Marks the minutes `rows` may have changed the verdict of: those that
    /// added retries, and storming ones that added calls.
    pub(super) fn note(&mut self, (from, to): (u32, u32), rows: &[GraphRow]) {
        for row in rows.iter().filter(|r| from <= r.minute && r.minute < to) {
            if !matches!(row.subject, GraphSubject::Edge { .. }) {
                continue;
            }
            let pair = (row.subject.clone(), row.minute);
            // Retries added, calls taken back (the share of retries rises),
            // or calls added to a storming minute (it falls).
            if self.looks > 0
                || row.aggregate.retries != 0
                || row.aggregate.requests < 0
                || self.minutes.contains(&pair)
            {
                self.dirty.push(pair);
            }
        }
    }

    fn edges(&self) -> HashSet<GraphSubject> {
        self.minutes.iter().map(|(s, _)| s.clone()).collect()
    }

    /// What a range moved from `self`'s to `[from, to)` knows: the verdicts
    /// within it, and the parts it reached still to look into. Nothing when
    /// a look is in flight (its verdicts are not all in yet).
    pub(super) fn moved_to(&self, old: (u32, u32), (from, to): (u32, u32)) -> Option<Storms> {
        if !self.found || self.looks > 0 {
            return None;
        }
        let within = |pair: &(GraphSubject, u32)| from <= pair.1 && pair.1 < to;
        Some(Storms {
            rule: self.rule,
            minutes: self.minutes.iter().filter(|p| within(p)).cloned().collect(),
            dirty: self.dirty.iter().filter(|p| within(p)).cloned().collect(),
            found: true,
            looks: 0,
            unlooked: moved(old, (from, to)).1,
        })
    }
}

/// What answering "which edges storm" takes (`GraphCache::storms`).
pub(in crate::storage::rocks) enum StormWork {
    Known(HashSet<GraphSubject>),
    /// These pairs' minutes are to be read again.
    Recheck(Vec<(GraphSubject, u32)>),
    /// Look into the edges of this sum over these parts of the range.
    Compute(Arc<Totals>, Vec<(u32, u32)>),
    /// The range is not kept summed.
    NotKept,
}

impl GraphCache {
    /// Which edges of the kept range `[from, to)` storm by `rule`, or what
    /// it takes to know.
    pub(in crate::storage::rocks) fn storms(
        &self,
        from: u32,
        to: u32,
        rule: StormRule,
    ) -> StormWork {
        let mut state = self.lock();
        let Some(entry) = state
            .entries
            .iter_mut()
            .find(|e| (e.from, e.to) == (from, to) && e.totals.is_some())
        else {
            return StormWork::NotKept;
        };
        entry.add_pending();
        let totals = entry.totals.clone().expect("found a kept sum");
        match &mut entry.storms {
            // Another reader's look has not finished: this one looks too.
            Some(storms) if storms.rule == rule && !storms.found => {
                storms.looks += 1;
                StormWork::Compute(totals, vec![(from, to)])
            }
            Some(storms) if storms.rule == rule && !storms.unlooked.is_empty() => {
                storms.looks += 1;
                StormWork::Compute(totals, std::mem::take(&mut storms.unlooked))
            }
            Some(storms) if storms.rule == rule => {
                if storms.dirty.is_empty() {
                    StormWork::Known(storms.edges())
                } else {
                    let mut dirty = std::mem::take(&mut storms.dirty);
                    dirty.sort();
                    dirty.dedup();
                    storms.looks += 1;
                    StormWork::Recheck(dirty)
                }
            }
            _ => {
                // Writes from now on are noted; the look covers those before.
                entry.storms = Some(Storms {
                    rule,
                    minutes: BTreeSet::new(),
                    dirty: Vec::new(),
                    found: false,
                    looks: 1,
                    unlooked: Vec::new(),
                });
                StormWork::Compute(totals, vec![(from, to)])
            }
        }
    }

    /// The verdicts of minutes read again; the range's storming edges, unless
    /// it is no longer kept.
    pub(in crate::storage::rocks) fn storms_rechecked(
        &self,
        from: u32,
        to: u32,
        rule: StormRule,
        verdicts: Vec<((GraphSubject, u32), bool)>,
    ) -> Option<HashSet<GraphSubject>> {
        let mut state = self.lock();
        let entry = state
            .entries
            .iter_mut()
            .find(|e| (e.from, e.to) == (from, to) && e.totals.is_some())?;
        let storms = entry.storms.as_mut().filter(|s| s.rule == rule)?;
        storms.looks = storms.looks.saturating_sub(1);
        for (pair, storming) in verdicts {
            if storming {
                storms.minutes.insert(pair);
            } else {
                storms.minutes.remove(&pair);
            }
        }
        Some(storms.edges())
    }

    /// The storming minutes a look over `looked` (parts of the range) found;
    /// the range's storming edges.
    pub(in crate::storage::rocks) fn storms_found(
        &self,
        from: u32,
        to: u32,
        rule: StormRule,
        looked: &[(u32, u32)],
        minutes: BTreeSet<(GraphSubject, u32)>,
    ) -> HashSet<GraphSubject> {
        let mut found: HashSet<GraphSubject> = minutes.iter().map(|(s, _)| s.clone()).collect();
        let mut state = self.lock();
        let storms = state
            .entries
            .iter_mut()
            .find(|e| (e.from, e.to) == (from, to) && e.totals.is_some())
            .and_then(|e| e.storms.as_mut())
            .filter(|s| s.rule == rule);
        if let Some(storms) = storms {
            if looked == [(from, to)] {
                storms.minutes = minutes;
            } else {
                // Parts no verdict covered before: added to what is known.
                storms.minutes.extend(minutes);
                found = storms.edges();
            }
            storms.found = true;
            storms.looks = storms.looks.saturating_sub(1);
        }
        found
    }

    /// A look failed: what was kept of the range's storms may be partial.
    pub(in crate::storage::rocks) fn storms_failed(&self, from: u32, to: u32) {
        let mut state = self.lock();
        if let Some(entry) = state
            .entries
            .iter_mut()
            .find(|e| (e.from, e.to) == (from, to))
        {
            entry.storms = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{kept, row};
    use super::*;

    #[test]
    fn writes_during_a_storm_look_are_looked_at_again() {
        let cache = GraphCache::default();
        kept(&cache, 10, 20, Totals::new());
        let rule = StormRule::default();
        assert!(matches!(
            cache.storms(10, 20, rule),
            StormWork::Compute(_, _)
        ));
        // A second reader while the first looks: it looks too, it is not
        // told "no storm".
        assert!(matches!(
            cache.storms(10, 20, rule),
            StormWork::Compute(_, _)
        ));
        // Calls (no retry) land in minute 15 while the looks run: noted.
        cache.written(&[row(15, "stripe")]);
        let mut found = BTreeSet::new();
        found.insert((row(15, "stripe").subject, 15));
        cache.storms_found(10, 20, rule, &[(10, 20)], found.clone());
        cache.storms_found(10, 20, rule, &[(10, 20)], found);
        match cache.storms(10, 20, rule) {
            StormWork::Recheck(pairs) => assert_eq!(pairs, [(row(15, "stripe").subject, 15)]),
            _ => panic!("minute 15 is to be read again"),
        }
        let edges = cache
            .storms_rechecked(10, 20, rule, vec![((row(15, "stripe").subject, 15), false)])
            .unwrap();
        assert!(edges.is_empty());
        // Settled: known, nothing to read; a failed look forgets.
        assert!(matches!(cache.storms(10, 20, rule), StormWork::Known(e) if e.is_empty()));
        cache.storms_failed(10, 20);
        assert!(matches!(
            cache.storms(10, 20, rule),
            StormWork::Compute(_, _)
        ));
    }

    #[test]
    fn a_moved_range_keeps_its_storms_and_looks_only_where_it_reached() {
        let cache = GraphCache::default();
        kept(&cache, 570, 640, Totals::new());
        let rule = StormRule::default();
        let stripe = row(0, "stripe").subject;
        assert!(matches!(
            cache.storms(570, 640, rule),
            StormWork::Compute(_, _)
        ));
        let found = BTreeSet::from([(stripe.clone(), 575), (stripe.clone(), 600)]);
        cache.storms_found(570, 640, rule, &[(570, 640)], found);
        // Ten minutes on: the verdict at 600 moves along, 575 is left
        // behind, and only the ten minutes reached are looked into.
        let start = cache.begin(580, 650);
        cache.fill(start.ticket, Totals::new());
        match cache.storms(580, 650, rule) {
            StormWork::Compute(_, parts) => assert_eq!(parts, [(640, 650)]),
            _ => panic!("the reached minutes are to be looked into"),
        }
        let edges = cache.storms_found(580, 650, rule, &[(640, 650)], BTreeSet::new());
        assert_eq!(edges, HashSet::from([stripe.clone()]));
        let state = cache.lock();
        let storms = state
            .entries
            .iter()
            .find(|e| (e.from, e.to) == (580, 650))
            .and_then(|e| e.storms.as_ref())
            .unwrap();
        assert_eq!(
            storms.minutes,
            BTreeSet::from([(stripe, 600)]),
            "575 left the range"
        );
    }
}
