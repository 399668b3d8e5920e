//! The service map's aggregates in RocksDB: one merge per row and level in
//! the completion batch, a few bucket scans per range read, whole buckets
//! range-deleted by retention. Layout and value encoding: `keys.rs`,
//! `storage/graph.rs`.

use rocksdb::{MergeOperands, Options};

use std::collections::{BTreeSet, HashSet};

use super::graph_cache::{Base, StormWork, Totals};
use super::RocksStore;
use crate::model::{Aggregate, GraphSubject};
use crate::storage::graph::{bucket_of, decode_aggregate, merge_values, moved, plan, Summer};
use crate::storage::keys::{
    decode_graph_subject, encode_graph_key, graph_bucket_prefix, CF_GRAPH, GRAPH_LEVELS,
};
use crate::storage::storm::StormRule;
use crate::storage::StorageError;

/// The `graph` column family's options: values merge by adding.
pub(super) fn options(mut options: Options) -> Options {
    options.set_merge_operator_associative("graph_sum", merge);
    options.set_compression_type(rocksdb::DBCompressionType::Lz4);
    options
}

fn merge(_key: &[u8], existing: Option<&[u8]>, operands: &MergeOperands) -> Option<Vec<u8>> {
    Some(merge_values(existing.into_iter().chain(operands)))
}

type Snapshot<'a> = rocksdb::SnapshotWithThreadMode<'a, rocksdb::DB>;

type Cursor<'a> = (
    [u8; 5],
    rocksdb::DBRawIteratorWithThreadMode<'a, rocksdb::DB>,
);

fn corrupt(error: &dyn std::fmt::Display) -> StorageError {
    StorageError::Corrupt(format!("graph: {error}"))
}

/// The subject a bucket's cursor is at, if it is still in its bucket.
fn subject_at<'c>(cursor: &'c Cursor<'_>) -> Option<&'c [u8]> {
    let (prefix, iter) = cursor;
    iter.key()
        .filter(|key| key.starts_with(prefix))
        .map(|key| &key[prefix.len()..])
}

impl RocksStore {
    /// Every subject's aggregate summed over minutes `[from, to)`, the
    /// subjects that counted requests, in order. A range read once is kept
    /// summed (`GraphCache`) and later writes are added to it, so a map
    /// refreshed every few seconds reads no bucket again; a range that moved
    /// on (the last hour, ten minutes later) is the kept one minus the
    /// buckets it left plus the ones it reached.
    pub(super) fn graph_minutes(
        &self,
        from: u32,
        to: u32,
    ) -> Result<Vec<(GraphSubject, Aggregate)>, StorageError> {
        if from >= to {
            return Ok(Vec::new());
        }
        let totals = match self.graph_cache.get(from, to) {
            Some(totals) => totals,
            None => {
                // With no graph write between its commit and `written`, the
                // snapshot holds exactly the writes the kept sums have seen.
                let (start, snapshot) = {
                    let _gate = self.graph_cache.exclusive();
                    (self.graph_cache.begin(from, to), self.db.snapshot())
                };
                let abandon = self.graph_cache.abandon_on_drop(start.ticket);
                let summed = self.sum_range(&snapshot, (from, to), start.base.as_ref());
                drop(snapshot);
                let totals = self.graph_cache.fill(start.ticket, summed?);
                abandon.disarm();
                totals
            }
        };
        Ok(totals
            .iter()
            .filter(|(_, aggregate)| aggregate.requests > 0)
            .map(|(subject, aggregate)| (subject.clone(), aggregate.clone()))
            .collect())
    }

    /// Every subject's sum over `range` as of `snapshot`: from `base` (a
    /// kept sum of an overlapping range as of the same snapshot) when given.
    fn sum_range(
        &self,
        snapshot: &Snapshot<'_>,
        (from, to): (u32, u32),
        base: Option<&Base>,
    ) -> Result<Totals, StorageError> {
        let Some(base) = base else {
            let mut totals = Totals::new();
            for (subject, aggregate) in self.sum_buckets(snapshot, &plan(from, to))? {
                totals.insert(subject, aggregate);
            }
            return Ok(totals);
        };
        let mut totals = (*base.totals).clone();
        let (left, reached) = moved((base.from, base.to), (from, to));
        let buckets_left = !left.is_empty();
        for (ranges, sign) in [(left, -1), (reached, 1)] {
            let buckets: Vec<_> = ranges.iter().flat_map(|&(a, b)| plan(a, b)).collect();
            for (subject, aggregate) in self.sum_buckets(snapshot, &buckets)? {
                let aggregate = if sign < 0 {
                    aggregate.negated()
                } else {
                    aggregate
                };
                match totals.get_mut(&subject) {
                    Some(total) => total.merge(&aggregate),
                    None => {
                        totals.insert(subject, aggregate);
                    }
                }
            }
        }
        // A range moving on forgets the subjects it left behind (absent and
        // zero are the same), so its sum does not grow with every name seen.
        if buckets_left {
            totals.retain(|_, aggregate| !aggregate.is_zero());
        }
        Ok(totals)
    }

    /// Every subject's aggregate summed over `buckets` as of `snapshot`, each
    /// subject once, also those whose values net to nothing. The buckets are
    /// scanned side by side (keys within a bucket are ordered by subject), so
    /// each subject's values are summed as they meet.
    fn sum_buckets(
        &self,
        snapshot: &Snapshot<'_>,
        buckets: &[(usize, u32)],
    ) -> Result<Vec<(GraphSubject, Aggregate)>, StorageError> {
        let cf = self.cf(CF_GRAPH);
        let mut cursors = Vec::new();
        for &(level, bucket) in buckets {
            let prefix = graph_bucket_prefix(level, bucket);
            let mut iter = snapshot.raw_iterator_cf(cf);
            iter.seek(prefix);
            cursors.push((prefix, iter));
        }
        let mut sum = Summer::default();
        let mut out = Vec::new();
        // The smallest subject any bucket is at, each in turn.
        while let Some(subject) = cursors
            .iter()
            .filter_map(subject_at)
            .min()
            .map(<[u8]>::to_vec)
        {
            for cursor in &mut cursors {
                if subject_at(cursor) == Some(subject.as_slice()) {
                    sum.add(cursor.1.value().unwrap_or_default())
                        .map_err(|e| corrupt(&e))?;
                    cursor.1.next();
                }
            }
            let subject = decode_graph_subject(&subject).map_err(|e| corrupt(&e))?;
            out.push((subject, sum.take()));
        }
        for (_, iter) in &cursors {
            iter.status()?;
        }
        Ok(out)
    }

    /// The edges that storm by `rule` in some minute of `[from, to)`: known
    /// with the range's kept sum once looked for, the minutes written since
    /// read again (a few point reads per refresh).
    pub(super) fn graph_storm_edges(
        &self,
        from: u32,
        to: u32,
        rule: StormRule,
    ) -> Result<HashSet<GraphSubject>, StorageError> {
        if from >= to {
            return Ok(HashSet::new());
        }
        for _ in 0..2 {
            match self.graph_cache.storms(from, to, rule) {
                StormWork::Known(edges) => return Ok(edges),
                StormWork::Recheck(pairs) => {
                    let mut verdicts = Vec::with_capacity(pairs.len());
                    for (subject, minute) in pairs {
                        let minute_sum = self
                            .read_graph_buckets(&subject, &[(0, minute)])
                            .inspect_err(|_| self.graph_cache.storms_failed(from, to))?;
                        verdicts.push(((subject, minute), rule.storms(&minute_sum[0])));
                    }
                    if let Some(edges) = self.graph_cache.storms_rechecked(from, to, rule, verdicts)
                    {
                        return Ok(edges);
                    }
                }
                StormWork::Compute(totals, parts) => {
                    let buckets: Vec<_> = parts.iter().flat_map(|&(a, b)| plan(a, b)).collect();
                    let minutes = self
                        .storming_minutes(totals.iter(), &buckets, rule)
                        .inspect_err(|_| self.graph_cache.storms_failed(from, to))?;
                    return Ok(self
                        .graph_cache
                        .storms_found(from, to, rule, &parts, minutes));
                }
                StormWork::NotKept => {
                    self.graph_minutes(from, to)?;
                }
            }
        }
        // Not kept (evicted or cleared meanwhile): looked for afresh.
        let rows = self.graph_minutes(from, to)?;
        let minutes =
            self.storming_minutes(rows.iter().map(|(s, a)| (s, a)), &plan(from, to), rule)?;
        Ok(minutes.into_iter().map(|(subject, _)| subject).collect())
    }

    /// The storming (edge, minute) pairs in `buckets` among `totals`' edges:
    /// only edges with enough retries over the range are looked into.
    fn storming_minutes<'a>(
        &self,
        totals: impl Iterator<Item = (&'a GraphSubject, &'a Aggregate)>,
        buckets: &[(usize, u32)],
        rule: StormRule,
    ) -> Result<BTreeSet<(GraphSubject, u32)>, StorageError> {
        let mut out = BTreeSet::new();
        for (subject, aggregate) in totals {
            if !matches!(subject, GraphSubject::Edge { .. }) || !rule.may_storm(aggregate) {
                continue;
            }
            let mut read = |buckets: &[(usize, u32)]| self.read_graph_buckets(subject, buckets);
            for minute in rule.storming_minutes(buckets, &mut read)? {
                out.insert((subject.clone(), minute));
            }
        }
        Ok(out)
    }

    /// One subject's aggregate in each of `buckets`, zero where absent.
    pub(super) fn read_graph_buckets(
        &self,
        subject: &GraphSubject,
        buckets: &[(usize, u32)],
    ) -> Result<Vec<Aggregate>, StorageError> {
        let cf = self.cf(CF_GRAPH);
        let keys: Vec<_> = buckets
            .iter()
            .map(|&(level, bucket)| encode_graph_key(level, bucket, subject))
            .collect();
        self.db
            .batched_multi_get_cf(cf, &keys, false)
            .into_iter()
            .map(|value| match value? {
                Some(bytes) => decode_aggregate(&bytes).map_err(|e| corrupt(&e)),
                None => Ok(Aggregate::default()),
            })
            .collect()
    }

    /// Drops every bucket that ends at or before `before_minute`, at every level.
    pub(super) fn expire_graph_before(&self, before_minute: u32) -> Result<(), StorageError> {
        let cf = self.cf(CF_GRAPH);
        let mut dropped = false;
        for level in 0..GRAPH_LEVELS.len() {
            // Buckets before the one holding the cutoff end at or before it.
            let keep = bucket_of(level, before_minute);
            let (from, to) = (
                graph_bucket_prefix(level, 0),
                graph_bucket_prefix(level, keep),
            );
            // Most rounds find nothing to drop: no tombstone for them.
            let mut iter = self.db.raw_iterator_cf(cf);
            iter.seek(from);
            if iter.key().is_none_or(|key| key >= to.as_slice()) {
                iter.status()?;
                continue;
            }
            self.db.delete_range_cf(cf, from, to)?;
            self.db.compact_range_cf(cf, Some(from), Some(to));
            dropped = true;
        }
        // After the deletes: a sum started before them, from a snapshot that
        // still held the buckets, is not kept either.
        if dropped {
            self.graph_cache.clear_before(before_minute);
        }
        Ok(())
    }
}
