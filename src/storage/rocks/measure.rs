//! What the benchmark suite (`benches/suite.rs`) reads off a store: the
//! write batches it commits, recorded so the same key/value stream can be
//! replayed into a bare RocksDB; RocksDB's own byte counters, for write
//! amplification; and the bytes each column family holds on disk.
//!
//! None of it runs unless asked for: recording is off until
//! [`RocksStore::record_writes`], and the counters need
//! [`super::RocksOptions::statistics`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use rocksdb::statistics::Ticker;
use rocksdb::{WriteBatch, WriteOptions};

use super::{RocksStore, StorageError};
use crate::storage::keys::ALL_CFS;

/// Write batches as committed, when recording is on.
#[derive(Default)]
pub(super) struct Recorder {
    on: AtomicBool,
    batches: Mutex<Vec<Vec<u8>>>,
}

impl Recorder {
    /// Keeps a copy of `batch`'s serialized form if recording is on.
    pub(super) fn see(&self, batch: &WriteBatch) {
        if self.on.load(Ordering::Relaxed) {
            let mut batches = self.batches.lock().unwrap_or_else(|e| e.into_inner());
            batches.push(batch.data().to_vec());
        }
    }
}

/// RocksDB's cumulative byte counters since the store opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteCounters {
    /// Keys and values the store handed to RocksDB.
    pub user_bytes: u64,
    /// Written to the write-ahead log.
    pub wal_bytes: u64,
    /// Written by memtable flushes.
    pub flush_bytes: u64,
    /// Written by compactions.
    pub compaction_bytes: u64,
}

impl WriteCounters {
    /// Bytes that reached the disk for each byte the store wrote: WAL,
    /// flushes and compactions over the user bytes.
    pub fn amplification(&self) -> f64 {
        (self.wal_bytes + self.flush_bytes + self.compaction_bytes) as f64
            / self.user_bytes.max(1) as f64
    }
}

impl RocksStore {
    /// Starts keeping a copy of every write batch committed from now on.
    pub fn record_writes(&self) {
        self.recorder.on.store(true, Ordering::Relaxed);
    }

    /// The batches recorded since the last call, oldest first.
    pub fn take_recorded(&self) -> Vec<Vec<u8>> {
        let mut batches = self
            .recorder
            .batches
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        std::mem::take(&mut *batches)
    }

    /// Commits a batch recorded from a store of the same layout, as is: no
    /// encoding, indexing or analysis, only RocksDB's write.
    pub fn replay(&self, batch: &[u8]) -> Result<(), StorageError> {
        let mut write = WriteOptions::default();
        write.set_sync(self.sync_writes);
        self.db.write_opt(WriteBatch::from_data(batch), &write)?;
        Ok(())
    }

    /// RocksDB's byte counters, when the store was opened with statistics.
    pub fn write_counters(&self) -> Option<WriteCounters> {
        let options = self.statistics.as_ref()?;
        Some(WriteCounters {
            user_bytes: options.get_ticker_count(Ticker::BytesWritten),
            wal_bytes: options.get_ticker_count(Ticker::WalFileBytes),
            flush_bytes: options.get_ticker_count(Ticker::FlushWriteBytes),
            compaction_bytes: options.get_ticker_count(Ticker::CompactWriteBytes),
        })
    }

    /// Live SST bytes per column family.
    pub fn disk_bytes_by_family(&self) -> Result<Vec<(&'static str, u64)>, StorageError> {
        let mut sizes = Vec::new();
        for cf in ALL_CFS {
            let bytes = self
                .db
                .property_int_value_cf(self.cf(cf), "rocksdb.live-sst-files-size")?
                .unwrap_or(0);
            sizes.push((cf, bytes));
        }
        Ok(sizes)
    }
}
