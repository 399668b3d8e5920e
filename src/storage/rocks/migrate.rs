//! Stores written by an earlier build, brought to this build's format on
//! open.
//!
//! Format 3 kept every index entry in full (start µs · trace_id · duration µs
//! · flags, 33 bytes) in each block, once per value indexing the trace.
//! Format 4 keeps each trace once in its batch's table for the hour and
//! positions in the blocks. The rewrite goes hour by hour (keys sort by hour
//! first), each hour in one write batch with a note of how far it got, so a
//! crash part way through resumes after the last hour written.

use std::collections::HashMap;

use rocksdb::{WriteBatch, WriteOptions};

use super::RocksStore;
use crate::model::TraceId;
use crate::storage::keys::{
    decode_index_key, encode_index_block, encode_index_key, encode_index_table, IndexBlockKey,
    CF_INDEX, CF_META, META_FORMAT_VERSION,
};
use crate::storage::{IndexHit, StorageError};

/// The last hour whose blocks the migration from format 3 rewrote.
const META_MIGRATED_HOUR: &[u8] = b"index_v4_migrated_through_hour";
/// Present while the rewrite runs. The store says format 4 from the rewrite's
/// first write on, so a build of format 3 refuses a half-rewritten store;
/// this build resumes the rewrite when it finds the marker.
const META_MIGRATING: &[u8] = b"index_v4_migrating";
/// A format 3 entry: start_us (8) · trace_id (16) · duration_us (8) · flags (1).
const V3_ENTRY_LEN: usize = 8 + TraceId::LEN + 8 + 1;

/// One batch's traces in one hour, as the new table lists them.
#[derive(Default)]
struct Table {
    hits: Vec<IndexHit>,
    positions: HashMap<TraceId, u32>,
}

impl Table {
    fn position(&mut self, hit: IndexHit) -> u32 {
        *self.positions.entry(hit.trace_id).or_insert_with(|| {
            self.hits.push(hit);
            self.hits.len() as u32 - 1
        })
    }
}

fn decode_v3_entries(bytes: &[u8]) -> Option<Vec<IndexHit>> {
    if !bytes.len().is_multiple_of(V3_ENTRY_LEN) {
        return None;
    }
    let u64_at = |e: &[u8], at: usize| u64::from_be_bytes(e[at..at + 8].try_into().expect("8"));
    Some(
        bytes
            .chunks_exact(V3_ENTRY_LEN)
            .map(|e| IndexHit {
                start_us: u64_at(e, 0),
                trace_id: TraceId(e[8..24].try_into().expect("16 bytes")),
                duration_us: u64_at(e, 24),
                error: e[32] & 1 != 0,
            })
            .collect(),
    )
}

impl RocksStore {
    /// Marks the store format 4 and the rewrite under way, then rewrites.
    pub(super) fn start_index_migration(&self) -> Result<(), StorageError> {
        let meta = self.cf(CF_META);
        let mut batch = WriteBatch::default();
        batch.put_cf(meta, META_FORMAT_VERSION, 4u32.to_be_bytes());
        batch.put_cf(meta, META_MIGRATING, []);
        let mut write = WriteOptions::default();
        write.set_sync(true);
        self.db.write_opt(batch, &write)?;
        self.migrate_index_from_3()
    }

    /// Finishes a rewrite a stopped process left under way, if any.
    pub(super) fn resume_index_migration(&self) -> Result<(), StorageError> {
        match self.db.get_cf(self.cf(CF_META), META_MIGRATING)? {
            Some(_) => self.migrate_index_from_3(),
            None => Ok(()),
        }
    }

    /// Rewrites a format 3 index as format 4's, from after the last hour
    /// done, then clears the marks of the rewrite.
    fn migrate_index_from_3(&self) -> Result<(), StorageError> {
        let corrupt = |what: &str| StorageError::Corrupt(format!("format 3 index: {what}"));
        let (meta, index) = (self.cf(CF_META), self.cf(CF_INDEX));
        let done = match self.db.get_cf(meta, META_MIGRATED_HOUR)? {
            Some(bytes) => Some(u32::from_be_bytes(
                bytes
                    .as_slice()
                    .try_into()
                    .map_err(|_| corrupt("progress"))?,
            )),
            None => None,
        };
        let mut write = WriteOptions::default();
        write.set_sync(true);
        // Across prefixes: the index family has a prefix extractor.
        let mut read = rocksdb::ReadOptions::default();
        read.set_total_order_seek(true);
        let mut iter = self.db.raw_iterator_cf_opt(index, read);
        // Resume after the last hour rewritten (none is left after u32::MAX;
        // an iterator never positioned holds nothing).
        let start = done.map_or(Some(0), |hour: u32| hour.checked_add(1));
        if let Some(start) = start {
            iter.seek(start.to_be_bytes());
        }
        let mut hour = None;
        let mut tables: HashMap<u64, Table> = HashMap::new();
        let mut batch = WriteBatch::default();
        let finish_hour = |hour: u32, tables: &mut HashMap<u64, Table>, mut batch: WriteBatch| {
            for (seq, table) in tables.drain() {
                batch.put_cf(
                    index,
                    encode_index_key(&IndexBlockKey::table(hour, seq)),
                    encode_index_table(hour, &table.hits),
                );
            }
            batch.put_cf(meta, META_MIGRATED_HOUR, hour.to_be_bytes());
            self.db.write_opt(batch, &write)
        };
        while let (Some(key), Some(value)) = (iter.key(), iter.value()) {
            let block = decode_index_key(key).map_err(|e| corrupt(&e.to_string()))?;
            if hour != Some(block.hour) {
                if let Some(hour) = hour {
                    finish_hour(hour, &mut tables, std::mem::take(&mut batch))?;
                }
                hour = Some(block.hour);
            }
            let hits = decode_v3_entries(value).ok_or_else(|| corrupt("block"))?;
            let table = tables.entry(block.seq).or_default();
            let positions: Vec<u32> = hits.into_iter().map(|hit| table.position(hit)).collect();
            batch.put_cf(index, key, encode_index_block(&positions));
            iter.next();
        }
        iter.status()?;
        if let Some(hour) = hour {
            finish_hour(hour, &mut tables, batch)?;
        }
        let mut last = WriteBatch::default();
        last.delete_cf(meta, META_MIGRATED_HOUR);
        last.delete_cf(meta, META_MIGRATING);
        self.db.write_opt(last, &write)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::keys::{index_hash, MINUTE_US};
    use crate::storage::rocks::{RocksOptions, FORMAT_VERSION};
    use crate::storage::IndexTag;

    fn v3_entries(hits: &[IndexHit]) -> Vec<u8> {
        let mut out = Vec::new();
        for hit in hits {
            out.extend_from_slice(&hit.start_us.to_be_bytes());
            out.extend_from_slice(hit.trace_id.as_bytes());
            out.extend_from_slice(&hit.duration_us.to_be_bytes());
            out.push(u8::from(hit.error));
        }
        out
    }

    fn hit(n: u8, start_us: u64) -> IndexHit {
        IndexHit {
            trace_id: TraceId([n; 16]),
            start_us,
            duration_us: 1_000 * u64::from(n),
            error: n.is_multiple_of(2),
        }
    }

    type Block = (IndexTag, &'static str, u64, Vec<IndexHit>);

    /// An index as format 3 wrote it: blocks of full entries over two hours
    /// and two batches, a trace under two values.
    fn format_3_blocks() -> Vec<Block> {
        let hour = 3_600 * 1_000_000;
        vec![
            (
                IndexTag::Service,
                "catalog",
                7,
                vec![hit(1, 10), hit(2, 20)],
            ),
            (IndexTag::Service, "orders", 7, vec![hit(2, 20)]),
            (IndexTag::Service, "catalog", 8, vec![hit(3, hour + 5)]),
            (
                IndexTag::CorrelationId,
                "req_1",
                8,
                vec![hit(3, hour + 5), hit(4, hour + MINUTE_US)],
            ),
        ]
    }

    fn put_format_3(store: &RocksStore, blocks: &[Block]) {
        for (tag, value, seq, hits) in blocks {
            let key = IndexBlockKey::of(*tag as u8, index_hash(value), hits[0].start_us, *seq);
            let key = encode_index_key(&key);
            store
                .db
                .put_cf(store.cf(CF_INDEX), key, v3_entries(hits))
                .unwrap();
        }
        store
            .db
            .put_cf(store.cf(CF_META), META_FORMAT_VERSION, 3u32.to_be_bytes())
            .unwrap();
    }

    fn sorted(mut hits: Vec<IndexHit>) -> Vec<IndexHit> {
        hits.sort_by_key(|h| h.start_us);
        hits
    }

    #[test]
    fn a_format_3_index_reads_the_same_after_the_rewrite() {
        let dir = tempfile::tempdir().unwrap();
        let blocks = format_3_blocks();
        {
            let store = RocksStore::open(dir.path(), &RocksOptions::default()).unwrap();
            put_format_3(&store, &blocks);
        }
        let store = RocksStore::open(dir.path(), &RocksOptions::default()).unwrap();
        let version = store
            .db
            .get_cf(store.cf(CF_META), META_FORMAT_VERSION)
            .unwrap();
        assert_eq!(version.unwrap(), FORMAT_VERSION.to_be_bytes());
        let meta = store.cf(CF_META);
        assert!(store.db.get_cf(meta, META_MIGRATING).unwrap().is_none());
        assert!(store.db.get_cf(meta, META_MIGRATED_HOUR).unwrap().is_none());
        let read = |tag, value| sorted(store.read_index(tag, value, 0, u64::MAX, 100).unwrap());
        let catalog = read(IndexTag::Service, "catalog");
        assert_eq!(catalog, [hit(1, 10), hit(2, 20), blocks[2].3[0]]);
        assert_eq!(read(IndexTag::Service, "orders"), [hit(2, 20)]);
        assert_eq!(read(IndexTag::CorrelationId, "req_1"), blocks[3].3);
        // Trace 2 is in batch 7's table once, under both its values.
        let table = sorted(store.index_table(0, 7, None).unwrap());
        assert_eq!(table, [hit(1, 10), hit(2, 20)]);
        drop(store);
        // A later open finds format 4 and leaves it alone.
        let store = RocksStore::open(dir.path(), &RocksOptions::default()).unwrap();
        let orders = store.read_index(IndexTag::Service, "orders", 0, u64::MAX, 9);
        assert_eq!(orders.unwrap(), [hit(2, 20)]);
    }

    #[test]
    fn an_interrupted_rewrite_resumes_after_the_last_hour_written() {
        let dir = tempfile::tempdir().unwrap();
        let blocks = format_3_blocks();
        {
            let store = RocksStore::open(dir.path(), &RocksOptions::default()).unwrap();
            put_format_3(&store, &blocks);
            store.start_index_migration().unwrap();
            // As if the process died once hour 0 was rewritten: hour 1 back
            // in format 3 without its tables, the note at hour 0, the store
            // marked format 4 (a format 3 build refuses it) and under way.
            let hour_1: Vec<Block> = blocks.iter().filter(|b| b.2 == 8).cloned().collect();
            put_format_3(&store, &hour_1);
            let index = store.cf(CF_INDEX);
            let table = encode_index_key(&IndexBlockKey::table(1, 8));
            store.db.delete_cf(index, table).unwrap();
            let meta = store.cf(CF_META);
            store
                .db
                .put_cf(meta, META_MIGRATED_HOUR, 0u32.to_be_bytes())
                .unwrap();
            store.db.put_cf(meta, META_MIGRATING, []).unwrap();
            store
                .db
                .put_cf(meta, META_FORMAT_VERSION, 4u32.to_be_bytes())
                .unwrap();
        }
        // Hour 0 read again as format 3 would fail the open.
        let store = RocksStore::open(dir.path(), &RocksOptions::default()).unwrap();
        let read = |tag, value| sorted(store.read_index(tag, value, 0, u64::MAX, 100).unwrap());
        assert_eq!(read(IndexTag::Service, "orders"), [hit(2, 20)]);
        assert_eq!(read(IndexTag::CorrelationId, "req_1"), blocks[3].3);
        assert_eq!(read(IndexTag::Service, "catalog").len(), 3);
    }
}
