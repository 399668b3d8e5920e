//! The service map's rows, written behind: a completion batch puts its rows
//! in the `graph_log` column family as one entry, in the same write batch as
//! its summaries (so they are durable exactly when the trace is completed),
//! and keeps them in memory. They are added to the `graph` aggregates later,
//! summed by subject and minute, in one write that also deletes the entries
//! they came from: before any read of the map, and otherwise once a second's
//! rows wait. A busy subject thus costs one merge per level per second, not
//! one per completion batch (a batch of 256 traces writes thousands of rows,
//! and the skip-list inserts of their merges were a tenth of the server's CPU).
//!
//! A crash between the two writes leaves the entries; the store applies them
//! when it opens. An entry is applied and deleted in one write batch, so no
//! row counts twice.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use rocksdb::{IteratorMode, WriteBatch, WriteOptions};

use super::RocksStore;
use crate::model::{GraphBatch, GraphRow};
use crate::storage::graph::{bucket_of, decode_aggregate, encode_aggregate};
use crate::storage::keys::{
    decode_graph_subject, encode_graph_key, encode_graph_subject, CF_GRAPH, CF_GRAPH_LOG,
    GRAPH_LEVELS,
};
use crate::storage::StorageError;

/// Rows wait at most this long for a read to apply them.
const APPLY_AFTER: Duration = Duration::from_secs(1);
/// Or until this many wait.
const APPLY_ROWS: usize = 50_000;

/// Rows logged and not yet in the aggregates, summed by subject and minute
/// as they come, with their log entries.
#[derive(Default)]
pub(super) struct Pending {
    sum: GraphBatch,
    /// Rows logged into `sum` (the trigger counts these, not its rows).
    rows: usize,
    entries: Vec<u64>,
    next_entry: u64,
    oldest: Option<Instant>,
}

pub(super) type PendingRows = Mutex<Pending>;

impl Pending {
    fn add<'a>(&mut self, rows: impl Iterator<Item = &'a GraphRow>) {
        for row in rows {
            self.sum
                .add(row.minute, row.subject.clone(), &row.aggregate);
            self.rows += 1;
        }
    }
}

/// An entry's value: per row, minute (4, BE) · varint subject length ·
/// subject · varint aggregate length · aggregate.
pub(super) fn encode_rows(rows: &[GraphRow]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rows.len() * 96);
    let mut subject = Vec::new();
    for row in rows {
        out.extend_from_slice(&row.minute.to_be_bytes());
        subject.clear();
        encode_graph_subject(&mut subject, &row.subject);
        prost::encoding::encode_varint(subject.len() as u64, &mut out);
        out.extend_from_slice(&subject);
        let aggregate = encode_aggregate(&row.aggregate);
        prost::encoding::encode_varint(aggregate.len() as u64, &mut out);
        out.extend_from_slice(&aggregate);
    }
    out
}

pub(super) fn decode_rows(mut bytes: &[u8]) -> Option<Vec<GraphRow>> {
    let mut rows = Vec::new();
    while !bytes.is_empty() {
        let minute = u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?);
        bytes = &bytes[4..];
        let len = usize::try_from(prost::encoding::decode_varint(&mut bytes).ok()?).ok()?;
        let subject = decode_graph_subject(bytes.get(..len)?).ok()?;
        bytes = &bytes[len..];
        let len = usize::try_from(prost::encoding::decode_varint(&mut bytes).ok()?).ok()?;
        let aggregate = decode_aggregate(bytes.get(..len)?).ok()?;
        bytes = &bytes[len..];
        rows.push(GraphRow {
            minute,
            subject,
            aggregate,
        });
    }
    Some(rows)
}

impl RocksStore {
    /// Adds `rows` to `batch` as one log entry and runs `write`; once it
    /// succeeded the rows wait in memory too. Readers applying rows wait for
    /// this, so rows are never durable and missing from a read that starts
    /// after `write` returned.
    pub(super) fn log_graph_rows(
        &self,
        batch: &mut WriteBatch,
        rows: &[GraphRow],
        write: impl FnOnce(WriteBatch) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        let mut pending = self.graph_pending.lock().unwrap_or_else(|e| e.into_inner());
        let entry = pending.next_entry;
        if !rows.is_empty() {
            batch.put_cf(
                self.cf(CF_GRAPH_LOG),
                entry.to_be_bytes(),
                encode_rows(rows),
            );
        }
        write(std::mem::take(batch))?;
        if !rows.is_empty() {
            pending.next_entry += 1;
            pending.entries.push(entry);
            pending.add(rows.iter());
            pending.oldest.get_or_insert_with(Instant::now);
        }
        let due = pending.rows >= APPLY_ROWS
            || pending.oldest.is_some_and(|t| t.elapsed() >= APPLY_AFTER);
        // The completion is durable whatever happens here: rows that cannot
        // be applied now stay logged and waiting, for the next try.
        if due {
            if let Err(error) = self.apply_pending(&mut pending) {
                tracing::warn!(%error, "adding logged map rows failed; they wait for the next try");
            }
        }
        Ok(())
    }

    /// Adds every logged row to the aggregates (before a read of the map).
    pub(super) fn apply_graph_log(&self) -> Result<(), StorageError> {
        let mut pending = self.graph_pending.lock().unwrap_or_else(|e| e.into_inner());
        self.apply_pending(&mut pending)
    }

    fn apply_pending(&self, pending: &mut Pending) -> Result<(), StorageError> {
        if pending.entries.is_empty() {
            return Ok(());
        }
        // Taken out first: rows are never applied twice, even if something
        // panics after the write; put back only if the write fails.
        let (sum, entries) = (
            std::mem::take(&mut pending.sum),
            std::mem::take(&mut pending.entries),
        );
        pending.rows = 0;
        let rows = sum.into_rows();
        let (graph, log) = (self.cf(CF_GRAPH), self.cf(CF_GRAPH_LOG));
        let mut batch = WriteBatch::default();
        for row in &rows {
            let value = encode_aggregate(&row.aggregate);
            for level in 0..GRAPH_LEVELS.len() {
                let key = encode_graph_key(level, bucket_of(level, row.minute), &row.subject);
                batch.merge_cf(graph, key, &value);
            }
        }
        for entry in &entries {
            batch.delete_cf(log, entry.to_be_bytes());
        }
        let mut write = WriteOptions::default();
        write.set_sync(self.sync_writes);
        // Kept range sums see the write once: in their snapshot or reported.
        let gate = self.graph_cache.shared();
        self.recorder.see(&batch);
        if let Err(error) = self.db.write_opt(batch, &write) {
            pending.add(rows.iter());
            pending.entries = entries;
            return Err(error.into());
        }
        pending.oldest = None;
        self.graph_cache.written(&rows);
        drop(gate);
        Ok(())
    }

    /// At open: the entries a stopped process left, applied.
    pub(super) fn recover_graph_log(&self) -> Result<(), StorageError> {
        let mut pending = self.graph_pending.lock().unwrap_or_else(|e| e.into_inner());
        for item in self
            .db
            .iterator_cf(self.cf(CF_GRAPH_LOG), IteratorMode::Start)
        {
            let (key, value) = item?;
            let entry = u64::from_be_bytes(
                key.as_ref()
                    .try_into()
                    .map_err(|_| StorageError::Corrupt("graph log key".into()))?,
            );
            let rows = decode_rows(&value)
                .ok_or_else(|| StorageError::Corrupt("graph log entry".into()))?;
            pending.add(rows.iter());
            pending.entries.push(entry);
            pending.next_entry = pending.next_entry.max(entry + 1);
        }
        self.apply_pending(&mut pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Aggregate, CallClass, EdgeType, GraphSubject, Latency};
    use crate::storage::rocks::RocksOptions;
    use crate::storage::TraceStore;

    fn row(minute: u32, target: &str, requests: u64) -> GraphRow {
        let mut aggregate = Aggregate::default();
        for n in 0..requests {
            aggregate.observe(CallClass::Ok, 1_000 + n, n == 0);
        }
        GraphRow {
            minute,
            subject: GraphSubject::Edge {
                source: "frontend".into(),
                target: target.into(),
                edge_type: EdgeType::from_u8(1).unwrap(),
            },
            aggregate,
        }
    }

    fn requests(store: &RocksStore, target: &str) -> i64 {
        let map = store.graph(0, 100 * 60_000_000).unwrap();
        map.iter()
            .filter(|(subject, _)| matches!(subject, GraphSubject::Edge { target: t, .. } if t == target))
            .map(|(_, aggregate)| aggregate.requests)
            .sum()
    }

    fn log_entries(store: &RocksStore) -> usize {
        let cf = store.cf(CF_GRAPH_LOG);
        store.db.iterator_cf(cf, IteratorMode::Start).count()
    }

    #[test]
    fn rows_survive_the_log_encoding() {
        let rows = vec![row(7, "catalog", 3), row(8, "postgresql", 1)];
        assert_eq!(decode_rows(&encode_rows(&rows)).unwrap(), rows);
        assert!(decode_rows(&encode_rows(&rows)[1..]).is_none());
        assert_eq!(decode_rows(&[]).unwrap(), []);
        assert!(rows[0].aggregate.latency != Latency::default());
    }

    #[test]
    fn logged_rows_are_read_summed_and_counted_once_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = RocksStore::open(dir.path(), &RocksOptions::default()).unwrap();
            for _ in 0..3 {
                let rows = [row(5, "catalog", 2), row(6, "orders", 1)];
                store.complete(&[], &[], &[], &rows, &[]).unwrap();
            }
            // Not applied yet: three entries wait, a read applies them.
            assert_eq!(log_entries(&store), 3);
            assert_eq!(requests(&store, "catalog"), 6);
            assert_eq!(log_entries(&store), 0);
            // Logged again, then the process stops before any read.
            store
                .complete(&[], &[], &[], &[row(5, "catalog", 4)], &[])
                .unwrap();
            assert_eq!(log_entries(&store), 1);
        }
        // The entry left is applied at open, once.
        let store = RocksStore::open(dir.path(), &RocksOptions::default()).unwrap();
        assert_eq!(log_entries(&store), 0);
        assert_eq!(requests(&store, "catalog"), 10);
        assert_eq!(requests(&store, "orders"), 3);
        drop(store);
        let store = RocksStore::open(dir.path(), &RocksOptions::default()).unwrap();
        assert_eq!(requests(&store, "catalog"), 10);
        assert_eq!(requests(&store, "orders"), 3);
    }

    #[test]
    fn rows_are_applied_without_a_read_once_a_second_has_passed() {
        let dir = tempfile::tempdir().unwrap();
        let store = RocksStore::open(dir.path(), &RocksOptions::default()).unwrap();
        store
            .complete(&[], &[], &[], &[row(5, "catalog", 2)], &[])
            .unwrap();
        std::thread::sleep(APPLY_AFTER);
        // The next completion, even one without rows, applies what waited.
        store.complete(&[], &[], &[], &[], &[]).unwrap();
        assert_eq!(log_entries(&store), 0);
        assert_eq!(requests(&store, "catalog"), 2);
    }
}
