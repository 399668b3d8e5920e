//! The service map's aggregates in RocksDB: one merge per row and level in
//! the completion batch, a few bucket scans per range read, whole buckets
//! range-deleted by retention. Layout and value encoding: `keys.rs`,
//! `storage/graph.rs`.

use std::sync::{Arc, Mutex};

use rocksdb::{MergeOperands, Options, WriteBatch};

use super::RocksStore;
use crate::ingest::now_us;
use crate::model::{Aggregate, GraphRow, GraphSubject};
use crate::storage::graph::{bucket_of, encode_aggregate, merge_values, plan, Summer};
use crate::storage::keys::{
    decode_graph_subject, encode_graph_key, encode_graph_subject, graph_bucket_prefix, CF_GRAPH,
    GRAPH_LEVELS,
};
use crate::storage::StorageError;

/// The `graph` column family's options: values merge by adding.
pub(super) fn options() -> Options {
    let mut options = Options::default();
    options.set_merge_operator_associative("graph_sum", merge);
    options.set_compression_type(rocksdb::DBCompressionType::Lz4);
    options
}

fn merge(_key: &[u8], existing: Option<&[u8]>, operands: &MergeOperands) -> Option<Vec<u8>> {
    Some(merge_values(existing.into_iter().chain(operands)))
}

type Cursor<'a> = (
    [u8; 5],
    rocksdb::DBRawIteratorWithThreadMode<'a, rocksdb::DB>,
);

fn corrupt(error: &dyn std::fmt::Display) -> StorageError {
    StorageError::Corrupt(format!("graph: {error}"))
}

/// Stored subjects decoded, in the model's order.
fn decode_rows(
    rows: Vec<(Vec<u8>, Aggregate)>,
) -> Result<Vec<(GraphSubject, Aggregate)>, StorageError> {
    let mut out = rows
        .into_iter()
        .map(|(subject, aggregate)| {
            decode_graph_subject(&subject)
                .map(|subject| (subject, aggregate))
                .map_err(|e| corrupt(&e))
        })
        .collect::<Result<Vec<_>, _>>()?;
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// The subject a bucket's cursor is at, if it is still in its bucket.
fn subject_at<'c>(cursor: &'c Cursor<'_>) -> Option<&'c [u8]> {
    let (prefix, iter) = cursor;
    iter.key()
        .filter(|key| key.starts_with(prefix))
        .map(|key| &key[prefix.len()..])
}

impl RocksStore {
    /// Adds the rows to `batch`: a merge into their minute's bucket at every level.
    pub(super) fn merge_graph_rows(&self, batch: &mut WriteBatch, rows: &[GraphRow]) {
        let cf = self.cf(CF_GRAPH);
        for row in rows {
            let value = encode_aggregate(&row.aggregate);
            for level in 0..GRAPH_LEVELS.len() {
                let key = encode_graph_key(level, bucket_of(level, row.minute), &row.subject);
                batch.merge_cf(cf, key, &value);
            }
        }
    }

    /// Every subject's aggregate summed over minutes `[from, to)`. The part
    /// before the ten-minute bucket of the last minute has closed: it is
    /// summed once and kept (`GraphCache`), and a refreshed map reads only the
    /// buckets still being written (never a whole open hour or day), plus
    /// that one sum per subject.
    pub(super) fn graph_minutes(
        &self,
        from: u32,
        to: u32,
    ) -> Result<Vec<(GraphSubject, Aggregate)>, StorageError> {
        let now_minute = (now_us() / 60_000_000).min(u64::from(u32::MAX)) as u32;
        // A minute late: completions write the minute that just ended for
        // a while (`trace_idle`) after it ends, and a kept sum covering it
        // would only be recomputed again and again meanwhile.
        let split = bucket_of(1, now_minute.saturating_sub(1)).clamp(from, to);
        if split == from {
            return self
                .sum_buckets(&plan(from, to), &[], false)
                .map(decode_rows)?;
        }
        let (closed, late) = match self.graph_cache.get(from, split) {
            Some(hit) => hit,
            None => {
                let ticket = self.graph_cache.reserve(from, split);
                // Every subject, even one whose part here nets to nothing:
                // what counts is its total over the whole range.
                let summed = self.sum_buckets(&plan(from, split), &[], true).map(|rows| {
                    Arc::new(
                        rows.into_iter()
                            .map(|(subject, aggregate)| (subject, encode_aggregate(&aggregate)))
                            .collect::<Vec<_>>(),
                    )
                });
                self.graph_cache.fill(ticket, summed.as_ref().ok().cloned());
                (summed?, Vec::new())
            }
        };
        self.sum_buckets(&plan(split, to), &[&closed, &late], false)
            .map(decode_rows)?
    }

    /// Every subject's aggregate summed over `buckets` and the `extra` values
    /// (lists sorted by subject, a subject possibly more than once): the
    /// sources are scanned side by side (keys within a bucket are ordered by
    /// subject), so each subject's values are summed as they meet, once.
    /// Subjects as stored (encoded), in order; only those that counted
    /// requests unless `every_subject`.
    fn sum_buckets(
        &self,
        buckets: &[(usize, u32)],
        extra: &[&[(Vec<u8>, Vec<u8>)]],
        every_subject: bool,
    ) -> Result<Vec<(Vec<u8>, Aggregate)>, StorageError> {
        let cf = self.cf(CF_GRAPH);
        let mut cursors = Vec::new();
        for &(level, bucket) in buckets {
            let prefix = graph_bucket_prefix(level, bucket);
            let mut iter = self.db.raw_iterator_cf(cf);
            iter.seek(prefix);
            cursors.push((prefix, iter));
        }
        let mut extra: Vec<_> = extra.iter().map(|list| list.iter().peekable()).collect();
        let mut sum = Summer::default();
        let mut out = Vec::new();
        // The smallest subject any source is at, each in turn.
        while let Some(subject) = cursors
            .iter()
            .filter_map(subject_at)
            .chain(
                extra
                    .iter_mut()
                    .filter_map(|list| list.peek().map(|(subject, _)| subject.as_slice())),
            )
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
            for list in &mut extra {
                while let Some((_, value)) = list.next_if(|(s, _)| *s == subject) {
                    sum.add(value).map_err(|e| corrupt(&e))?;
                }
            }
            let aggregate = sum.take();
            if every_subject || aggregate.requests > 0 {
                out.push((subject, aggregate));
            }
        }
        for (_, iter) in &cursors {
            iter.status()?;
        }
        Ok(out)
    }

    /// Drops every bucket that ends at or before `before_minute`, at every level.
    pub(super) fn expire_graph_before(&self, before_minute: u32) -> Result<(), StorageError> {
        self.graph_cache.clear();
        let cf = self.cf(CF_GRAPH);
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
        }
        Ok(())
    }
}

/// Summed closed buckets, by the minutes `[from, to)` they cover: what a map
/// refreshed every few seconds would otherwise sum again each time. Rows
/// written later into minutes a sum covers (late spans, re-completed traces)
/// are kept beside it and added on read, up to `MAX_LATE_ROWS`; a sum being
/// computed while such a write lands is not kept. A handful of ranges are kept
/// (the ranges people look at: the last hour, day, week).
#[derive(Default)]
pub(super) struct GraphCache {
    state: Mutex<CacheState>,
}

#[derive(Default)]
struct CacheState {
    entries: Vec<CacheEntry>,
    next_ticket: u64,
}

/// (encoded subject, encoded aggregate), sorted by subject.
type Rows = Vec<(Vec<u8>, Vec<u8>)>;
type CachedRows = Arc<Rows>;

struct CacheEntry {
    from: u32,
    to: u32,
    ticket: u64,
    /// `None` while being summed.
    rows: Option<CachedRows>,
    /// Rows written into `[from, to)` after the sum was kept.
    late: Rows,
    /// Cleared by a write into `[from, to)` while being summed.
    valid: bool,
}

/// Ranges kept summed, at most.
const CACHED_RANGES: usize = 4;

/// Late rows kept beside a sum, at most; past that the sum is dropped.
const MAX_LATE_ROWS: usize = 20_000;

impl GraphCache {
    /// The kept sum of `[from, to)` and the rows written into it since.
    fn get(&self, from: u32, to: u32) -> Option<(CachedRows, Rows)> {
        let state = self.state.lock().expect("graph cache lock");
        let entry = state
            .entries
            .iter()
            .find(|e| e.from == from && e.to == to)?;
        Some((entry.rows.clone()?, entry.late.clone()))
    }

    /// Announces a sum about to be computed; returns its ticket for `fill`.
    fn reserve(&self, from: u32, to: u32) -> u64 {
        let mut state = self.state.lock().expect("graph cache lock");
        state.next_ticket += 1;
        let ticket = state.next_ticket;
        state.entries.push(CacheEntry {
            from,
            to,
            ticket,
            rows: None,
            late: Vec::new(),
            valid: true,
        });
        ticket
    }

    /// Keeps the sum `ticket` announced, unless a write covered by it landed
    /// meanwhile (or it failed: `None`); the oldest range makes room.
    fn fill(&self, ticket: u64, rows: Option<CachedRows>) {
        let mut state = self.state.lock().expect("graph cache lock");
        let Some(at) = state.entries.iter().position(|e| e.ticket == ticket) else {
            return;
        };
        match rows {
            Some(rows) if state.entries[at].valid => {
                let range = (state.entries[at].from, state.entries[at].to);
                state.entries[at].rows = Some(rows);
                // Another reader may have summed the same range meanwhile.
                state
                    .entries
                    .retain(|e| e.ticket == ticket || (e.from, e.to) != range || e.rows.is_none());
                while state.entries.iter().filter(|e| e.rows.is_some()).count() > CACHED_RANGES {
                    let oldest = state
                        .entries
                        .iter()
                        .filter(|e| e.rows.is_some())
                        .map(|e| e.ticket)
                        .min()
                        .expect("a filled entry");
                    state.entries.retain(|e| e.ticket != oldest);
                }
            }
            _ => {
                state.entries.remove(at);
            }
        }
    }

    /// `rows` were written: kept beside the sums that cover their minutes, and
    /// sums being computed that may have missed them will not be kept.
    pub(super) fn written(&self, rows: &[GraphRow]) {
        let Some(first) = rows.iter().map(|row| row.minute).min() else {
            return;
        };
        let mut state = self.state.lock().expect("graph cache lock");
        // Most writes are for the current minute, which no sum covers.
        if state.entries.iter().all(|e| first >= e.to) {
            return;
        }
        state.entries.retain_mut(|e| {
            if first >= e.to {
                return true;
            }
            if e.rows.is_none() {
                e.valid = false;
                return true;
            }
            for row in rows
                .iter()
                .filter(|r| e.from <= r.minute && r.minute < e.to)
            {
                let mut subject = Vec::new();
                encode_graph_subject(&mut subject, &row.subject);
                let at = e.late.partition_point(|(s, _)| *s <= subject);
                e.late
                    .insert(at, (subject, encode_aggregate(&row.aggregate)));
            }
            e.late.len() <= MAX_LATE_ROWS
        });
    }

    /// Everything stored may have changed (retention dropped buckets).
    pub(super) fn clear(&self) {
        let mut state = self.state.lock().expect("graph cache lock");
        state.entries.retain_mut(|e| {
            e.valid = false;
            e.rows.is_none()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::CallClass;
    use crate::storage::conformance::db_call_row;
    use crate::storage::graph::decode_aggregate;

    fn rows(n: u8) -> CachedRows {
        Arc::new(vec![(vec![n], vec![n])])
    }

    fn row(minute: u32) -> GraphRow {
        db_call_row(minute, "db", CallClass::Ok, 1_000)
    }

    #[test]
    fn rows_written_into_a_summed_range_are_kept_beside_it() {
        let cache = GraphCache::default();
        let ticket = cache.reserve(10, 20);
        cache.fill(ticket, Some(rows(1)));
        assert_eq!(cache.get(10, 20), Some((rows(1), Vec::new())));
        // At or after its end: not its business.
        cache.written(&[row(20), row(25)]);
        assert_eq!(cache.get(10, 20), Some((rows(1), Vec::new())));
        cache.written(&[row(19), row(9), row(25)]);
        let (_, late) = cache.get(10, 20).unwrap();
        assert_eq!(late.len(), 1);
        assert_eq!(decode_aggregate(&late[0].1).unwrap(), row(19).aggregate);
        // Too many late rows and the sum is dropped.
        for _ in 0..MAX_LATE_ROWS {
            cache.written(&[row(15)]);
        }
        assert_eq!(cache.get(10, 20), None);
    }

    #[test]
    fn a_sum_overtaken_by_a_write_is_not_kept() {
        let cache = GraphCache::default();
        let ticket = cache.reserve(10, 20);
        cache.written(&[row(15)]);
        cache.fill(ticket, Some(rows(1)));
        assert_eq!(cache.get(10, 20), None);
        // A failed sum leaves nothing behind either.
        let ticket = cache.reserve(10, 20);
        cache.fill(ticket, None);
        assert_eq!(cache.get(10, 20), None);
        // Nor does one cleared by retention.
        let ticket = cache.reserve(10, 20);
        cache.clear();
        cache.fill(ticket, Some(rows(1)));
        assert_eq!(cache.get(10, 20), None);
        assert!(cache.state.lock().unwrap().entries.is_empty());
    }

    #[test]
    fn the_oldest_ranges_make_room() {
        let cache = GraphCache::default();
        for n in 0..CACHED_RANGES as u32 + 2 {
            let ticket = cache.reserve(n, 100);
            cache.fill(ticket, Some(rows(n as u8)));
        }
        assert_eq!(cache.get(0, 100), None);
        assert_eq!(cache.get(1, 100), None);
        assert_eq!(cache.get(2, 100), Some((rows(2), Vec::new())));
        // The same range summed twice is kept once.
        let (a, b) = (cache.reserve(3, 100), cache.reserve(3, 100));
        cache.fill(a, Some(rows(7)));
        cache.fill(b, Some(rows(8)));
        assert_eq!(cache.get(3, 100), Some((rows(8), Vec::new())));
        let state = cache.state.lock().unwrap();
        assert_eq!(
            state
                .entries
                .iter()
                .filter(|e| (e.from, e.to) == (3, 100))
                .count(),
            1
        );
    }
}
