//! The `index` column family: completion batches' index blocks (one per
//! indexed value and start minute), edited when a trace completes again, and
//! read newest first within hour partitions. A block holds positions in its
//! batch's table for the hour, which holds each trace's id, start, duration
//! and error flag once, however many values index it. Layout: `keys.rs`.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use super::RocksStore;
use crate::model::TraceSummary;
use crate::storage::keys::{
    decode_index_block, decode_index_key, decode_index_table, encode_index_key, index_hash,
    index_hour, index_prefix, IndexBlockKey, CF_INDEX, INDEX_KEY_LEN, MINUTE_US,
};
use crate::storage::{index_keys, IndexHit, IndexTag, StorageError};

impl RocksStore {
    /// The oldest and newest index partitions, from the first and last keys.
    pub(super) fn find_index_hours(&self) -> Result<(), StorageError> {
        let mut iter = self.db.raw_iterator_cf(self.cf(CF_INDEX));
        iter.seek_to_first();
        iter.status()?;
        if let Some(key) = iter.key() {
            let first = decode_index_key(key).map_err(|e| StorageError::Corrupt(e.to_string()))?;
            iter.seek_to_last();
            iter.status()?;
            let last = iter.key().map(decode_index_key).transpose();
            let last = last.map_err(|e| StorageError::Corrupt(e.to_string()))?;
            self.note_index_hour(first.hour);
            self.note_index_hour(last.map_or(first.hour, |k| k.hour));
        }
        Ok(())
    }

    pub(super) fn note_index_hour(&self, hour: u32) {
        self.index_hours.0.fetch_min(hour, Ordering::Relaxed);
        self.index_hours.1.fetch_max(hour, Ordering::Relaxed);
    }

    /// A sequence number for a completion batch's index blocks, above every
    /// one given out before (also across restarts: the last is kept in meta).
    pub(super) fn next_index_seq(&self) -> u64 {
        let now = crate::ingest::now_us();
        let mut last = self.index_seq.load(Ordering::Relaxed);
        loop {
            let next = now.max(last + 1);
            match self
                .index_seq
                .compare_exchange(last, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return next,
                Err(seen) => last = seen,
            }
        }
    }

    /// Reads an index block's positions, for an edit.
    pub(super) fn index_block(&self, key: &[u8]) -> Result<Vec<u32>, StorageError> {
        match self.db.get_pinned_cf(self.cf(CF_INDEX), key)? {
            None => Ok(Vec::new()),
            Some(value) => decode_index_block(&value)
                .ok_or_else(|| StorageError::Corrupt("index block".into())),
        }
    }

    /// Reads batch `seq`'s table for `hour` (empty if there is none), as of
    /// `snapshot` when given.
    pub(super) fn index_table(
        &self,
        hour: u32,
        seq: u64,
        snapshot: Option<&rocksdb::SnapshotWithThreadMode<'_, rocksdb::DB>>,
    ) -> Result<Vec<IndexHit>, StorageError> {
        let key = encode_index_key(&IndexBlockKey::table(hour, seq));
        let mut read = rocksdb::ReadOptions::default();
        if let Some(snapshot) = snapshot {
            read.set_snapshot(snapshot);
        }
        match self.db.get_pinned_cf_opt(self.cf(CF_INDEX), key, &read)? {
            None => Ok(Vec::new()),
            Some(value) => decode_index_table(hour, &value)
                .ok_or_else(|| StorageError::Corrupt("index table".into())),
        }
    }

    /// Removes a summary's index entries from their blocks, edited in `edits`
    /// (read from storage on first touch). Its row in the batch's table stays,
    /// referred to by no block.
    pub(super) fn unindex(
        &self,
        old: &TraceSummary,
        seq: u64,
        edits: &mut HashMap<[u8; INDEX_KEY_LEN], Vec<u32>>,
    ) -> Result<(), StorageError> {
        let hour = index_hour(old.start_ns / 1_000);
        let table = self.index_table(hour, seq, None)?;
        let Some(position) = table.iter().position(|hit| hit.trace_id == old.trace_id) else {
            return Ok(());
        };
        for entry in index_keys(old) {
            let key = encode_index_key(&IndexBlockKey::of(
                entry.tag,
                entry.hash,
                entry.start_us,
                seq,
            ));
            let block = match edits.entry(key) {
                std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
                std::collections::hash_map::Entry::Vacant(entry) => {
                    entry.insert(self.index_block(&key)?)
                }
            };
            block.retain(|p| *p as usize != position);
        }
        Ok(())
    }

    /// `TraceStore::scan_index`: blocks newest first within each hour
    /// partition, entries sorted per minute.
    pub(super) fn read_index(
        &self,
        tag: IndexTag,
        value: &str,
        from_us: u64,
        to_us: u64,
        limit: usize,
    ) -> Result<Vec<IndexHit>, StorageError> {
        let from_us = from_us.max(self.cutoff_us.load(Ordering::Relaxed));
        let (oldest, newest) = (
            self.index_hours.0.load(Ordering::Relaxed),
            self.index_hours.1.load(Ordering::Relaxed),
        );
        let (first_hour, last_hour) = (
            index_hour(from_us).max(oldest),
            index_hour(to_us).min(newest),
        );
        let hash = index_hash(value);
        let mut hits = Vec::new();
        // One minute's entries, from all the batches that wrote some.
        let mut minute: Vec<IndexHit> = Vec::new();
        let flush = |minute: &mut Vec<IndexHit>, hits: &mut Vec<IndexHit>| {
            minute.sort_by_key(|hit| std::cmp::Reverse((hit.start_us, hit.trace_id)));
            hits.extend(
                minute
                    .drain(..)
                    .filter(|hit| (from_us..=to_us).contains(&hit.start_us)),
            );
        };
        let to_minute = (to_us / MINUTE_US).min(u32::MAX as u64) as u32;
        let from_minute = (from_us / MINUTE_US).min(u32::MAX as u64) as u32;
        for hour in (first_hour..=last_hour).rev() {
            if hits.len() >= limit {
                break;
            }
            let prefix = index_prefix(hour, tag as u8, hash);
            let high = encode_index_key(&IndexBlockKey {
                hour,
                tag: tag as u8,
                hash,
                minute: to_minute,
                seq: u64::MAX,
            });
            // Blocks and their tables read as of one moment: retention may
            // range-delete this hour meanwhile.
            let snapshot = self.db.snapshot();
            let mut read = rocksdb::ReadOptions::default();
            read.set_prefix_same_as_start(true);
            read.set_snapshot(&snapshot);
            let mut iter = self.db.raw_iterator_cf_opt(self.cf(CF_INDEX), read);
            iter.seek_for_prev(high);
            let mut current = None;
            // The hour's tables met so far, by batch.
            let mut tables: HashMap<u64, Vec<IndexHit>> = HashMap::new();
            while let (Some(key), Some(value)) = (iter.key(), iter.value()) {
                if !key.starts_with(&prefix) {
                    break;
                }
                let key =
                    decode_index_key(key).map_err(|e| StorageError::Corrupt(e.to_string()))?;
                if key.minute < from_minute {
                    break;
                }
                if current != Some(key.minute) {
                    flush(&mut minute, &mut hits);
                    // Every later minute is older than what is held.
                    if hits.len() >= limit {
                        break;
                    }
                    current = Some(key.minute);
                }
                let positions = decode_index_block(value)
                    .ok_or_else(|| StorageError::Corrupt("index block".into()))?;
                let table = match tables.entry(key.seq) {
                    std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
                    std::collections::hash_map::Entry::Vacant(entry) => {
                        entry.insert(self.index_table(hour, key.seq, Some(&snapshot))?)
                    }
                };
                for position in positions {
                    let hit = table.get(position as usize).ok_or_else(|| {
                        StorageError::Corrupt("index block refers past its table".into())
                    })?;
                    minute.push(*hit);
                }
                iter.prev();
            }
            iter.status()?;
            flush(&mut minute, &mut hits);
        }
        hits.truncate(limit);
        Ok(hits)
    }
}
