//! The service map's aggregates in RocksDB: one merge per row and level in
//! the completion batch, a few bucket scans per range read, whole buckets
//! range-deleted by retention. Layout and value encoding: `keys.rs`,
//! `storage/graph.rs`.

use rocksdb::{MergeOperands, Options, WriteBatch};

use super::RocksStore;
use crate::model::{Aggregate, GraphRow, GraphSubject};
use crate::storage::graph::{bucket_of, encode_aggregate, merge_values, plan, Summer};
use crate::storage::keys::{
    decode_graph_subject, encode_graph_key, graph_bucket_prefix, CF_GRAPH, GRAPH_LEVELS,
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

    /// Every subject's aggregate summed over minutes `[from, to)`: the plan's
    /// buckets are scanned side by side (keys within a bucket are ordered by
    /// subject), so each subject's values are summed as they meet, once.
    pub(super) fn graph_minutes(
        &self,
        from: u32,
        to: u32,
    ) -> Result<Vec<(GraphSubject, Aggregate)>, StorageError> {
        let cf = self.cf(CF_GRAPH);
        let mut cursors = Vec::new();
        for (level, bucket) in plan(from, to) {
            let prefix = graph_bucket_prefix(level, bucket);
            let mut iter = self.db.raw_iterator_cf(cf);
            iter.seek(prefix);
            cursors.push((prefix, iter));
        }
        let corrupt = |e: &dyn std::fmt::Display| StorageError::Corrupt(format!("graph: {e}"));
        let mut sum = Summer::default();
        let mut out = Vec::new();
        // The smallest subject any cursor is at, each in turn.
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
            let aggregate = sum.take();
            if aggregate.requests > 0 {
                out.push((
                    decode_graph_subject(&subject).map_err(|e| corrupt(&e))?,
                    aggregate,
                ));
            }
        }
        for (_, iter) in &cursors {
            iter.status()?;
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Drops every bucket that ends at or before `before_minute`, at every level.
    pub(super) fn expire_graph_before(&self, before_minute: u32) -> Result<(), StorageError> {
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
