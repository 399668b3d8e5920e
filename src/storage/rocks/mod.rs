//! The embedded RocksDB `TraceStore`.
//!
//! One write batch per request, committed to the write-ahead log before `append`
//! returns (and fsynced too when `sync_writes` is set). Spans of a trace share
//! a 16-byte key prefix; a prefix bloom filter keeps single-trace reads to a
//! seek or two.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamilyDescriptor, DBCompressionType, Direction, IteratorMode,
    Options, SliceTransform, WriteBatch, WriteOptions, DB,
};

use super::codec::{decode_chunk, decode_summary, encode_chunk, encode_summary};
use super::keys::{
    chunk_id, decode_index_key, decode_index_value, decode_journal_key, decode_journal_value,
    decode_span_key, encode_index_key, encode_index_value, encode_journal_key,
    encode_journal_value, encode_span_key, index_hash, index_range, span_key_prefix, JournalKey,
    SpanKey, CF_INDEX, CF_META, CF_OPEN, CF_SPANS, CF_TRACES, META_FORMAT_VERSION,
};
use super::keys::{decode_name_key, encode_name_key, name_prefix, CF_NAMES};
use super::{
    index_keys, merge_chunks, IndexHit, IndexTag, OpenTrace, OperationName, StorageError,
    TraceStore,
};
use crate::model::{Trace, TraceChunk, TraceId, TraceSummary};

/// The on-disk format this build writes and reads.
pub const FORMAT_VERSION: u32 = 2;

/// Engine settings, from `[storage]` in the config file.
#[derive(Debug, Clone)]
pub struct RocksOptions {
    /// fsync the write-ahead log before acknowledging (power-loss durability).
    pub sync_writes: bool,
    /// Shared block cache for reads, in bytes.
    pub block_cache_bytes: usize,
}

impl Default for RocksOptions {
    fn default() -> Self {
        Self {
            sync_writes: false,
            block_cache_bytes: 64 << 20,
        }
    }
}

pub struct RocksStore {
    db: DB,
    path: PathBuf,
    sync_writes: bool,
    /// The next journal sequence number.
    journal_seq: AtomicU64,
}

impl From<rocksdb::Error> for StorageError {
    fn from(error: rocksdb::Error) -> Self {
        StorageError::Engine(error.into_string())
    }
}

impl RocksStore {
    /// Opens (or creates) the store under `path`, recovering from the WAL.
    pub fn open(path: &Path, options: &RocksOptions) -> Result<Self, StorageError> {
        let mut db_options = Options::default();
        db_options.create_if_missing(true);
        db_options.create_missing_column_families(true);
        db_options.set_max_background_jobs(2);
        db_options.set_keep_log_file_num(5);

        let cache = Cache::new_lru_cache(options.block_cache_bytes);
        let mut table = BlockBasedOptions::default();
        table.set_block_cache(&cache);
        table.set_bloom_filter(10.0, false);
        table.set_whole_key_filtering(false);

        let mut spans = Options::default();
        spans.set_compression_type(DBCompressionType::Lz4);
        spans.set_bottommost_compression_type(DBCompressionType::Zstd);
        spans.set_prefix_extractor(SliceTransform::create_fixed_prefix(TraceId::LEN));
        spans.set_memtable_prefix_bloom_ratio(0.1);
        spans.set_block_based_table_factory(&table);

        let mut traces = Options::default();
        traces.set_compression_type(DBCompressionType::Lz4);
        let mut index = Options::default();
        index.set_compression_type(DBCompressionType::Lz4);
        // Scans stay within one tag·hash; a prefix bloom skips files without it.
        index.set_prefix_extractor(SliceTransform::create_fixed_prefix(9));
        let open = Options::default();

        let db = DB::open_cf_descriptors(
            &db_options,
            path,
            vec![
                ColumnFamilyDescriptor::new(CF_SPANS, spans),
                ColumnFamilyDescriptor::new(CF_TRACES, traces),
                ColumnFamilyDescriptor::new(CF_INDEX, index),
                ColumnFamilyDescriptor::new(CF_OPEN, open),
                ColumnFamilyDescriptor::new(CF_NAMES, Options::default()),
                ColumnFamilyDescriptor::new(CF_META, Options::default()),
            ],
        )?;
        let store = Self {
            db,
            path: path.to_path_buf(),
            sync_writes: options.sync_writes,
            journal_seq: AtomicU64::new(0),
        };
        store.check_format_version()?;
        // Sequence numbers carry on past every entry left (a few per open
        // trace), so no key is reused even if the clock steps back.
        let mut next_seq = 0;
        for item in store.db.iterator_cf(store.cf(CF_OPEN), IteratorMode::Start) {
            let (key, _) = item?;
            let key = decode_journal_key(&key).map_err(|e| StorageError::Corrupt(e.to_string()))?;
            next_seq = next_seq.max(key.seq + 1);
        }
        store.journal_seq.store(next_seq, Ordering::Relaxed);
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Entries in the `open` journal: requests with a trace not yet completed
    /// past them (and, until recovery or the next completion, a few settled).
    pub fn journal_entries(&self) -> Result<usize, StorageError> {
        let mut count = 0;
        for item in self.db.iterator_cf(self.cf(CF_OPEN), IteratorMode::Start) {
            item?;
            count += 1;
        }
        Ok(count)
    }

    fn cf(&self, name: &str) -> &rocksdb::ColumnFamily {
        // Every column family is created at open, so a miss is a programming error.
        self.db
            .cf_handle(name)
            .unwrap_or_else(|| panic!("column family {name} opened"))
    }

    fn check_format_version(&self) -> Result<(), StorageError> {
        let meta = self.cf(CF_META);
        match self.db.get_cf(meta, META_FORMAT_VERSION)? {
            None => {
                let mut write = WriteOptions::default();
                write.set_sync(true);
                self.db.put_cf_opt(
                    meta,
                    META_FORMAT_VERSION,
                    FORMAT_VERSION.to_be_bytes(),
                    &write,
                )?;
                Ok(())
            }
            Some(bytes) => {
                let found = <[u8; 4]>::try_from(bytes.as_slice())
                    .map(u32::from_be_bytes)
                    .map_err(|_| StorageError::Corrupt("format_version is not 4 bytes".into()))?;
                if found == FORMAT_VERSION {
                    Ok(())
                } else {
                    Err(StorageError::FormatVersion {
                        found,
                        supported: FORMAT_VERSION,
                    })
                }
            }
        }
    }
}

impl RocksStore {
    /// Whether a chunk of the trace was received at or after `from_us`.
    fn has_spans(&self, trace_id: TraceId, from_us: u64) -> Result<bool, StorageError> {
        let from = encode_span_key(&SpanKey {
            trace_id,
            received_at_us: from_us,
            chunk_id: 0,
        });
        let mut iter = self.db.raw_iterator_cf(self.cf(CF_SPANS));
        iter.seek(from);
        iter.status()?;
        Ok(iter
            .key()
            .is_some_and(|key| key.starts_with(&span_key_prefix(&trace_id))))
    }

    fn stored_summary(&self, trace_id: TraceId) -> Result<Option<TraceSummary>, StorageError> {
        self.db
            .get_pinned_cf(self.cf(CF_TRACES), trace_id.as_bytes())?
            .map(|bytes| {
                decode_summary(trace_id, &bytes).map_err(|e| StorageError::Corrupt(e.to_string()))
            })
            .transpose()
    }
}

impl TraceStore for RocksStore {
    fn append(
        &self,
        received_at_us: u64,
        chunks: &[TraceChunk],
    ) -> Result<JournalKey, StorageError> {
        let spans_cf = self.cf(CF_SPANS);
        let journal = JournalKey {
            received_at_us,
            seq: self.journal_seq.fetch_add(1, Ordering::Relaxed),
        };
        let encoded: Vec<Vec<u8>> = chunks.iter().map(|c| encode_chunk(&c.spans)).collect();
        // Sized up front: growing the batch would copy it again and again.
        let capacity = encoded.iter().map(|e| e.len() + 64).sum::<usize>() + 64 + 16 * chunks.len();
        let mut batch = WriteBatch::with_capacity_bytes(capacity);
        for (chunk, value) in chunks.iter().zip(&encoded) {
            let key = encode_span_key(&SpanKey {
                trace_id: chunk.trace_id,
                received_at_us,
                chunk_id: chunk_id(chunk.spans.iter().map(|s| &s.span_id)),
            });
            batch.put_cf(spans_cf, key, value);
        }
        batch.put_cf(
            self.cf(CF_OPEN),
            encode_journal_key(&journal),
            encode_journal_value(chunks.iter().map(|c| &c.trace_id)),
        );
        let mut write = WriteOptions::default();
        write.set_sync(self.sync_writes);
        self.db.write_opt(batch, &write)?;
        Ok(journal)
    }

    fn trace(&self, trace_id: TraceId) -> Result<Option<Trace>, StorageError> {
        let prefix = span_key_prefix(&trace_id);
        let iter = self.db.iterator_cf(
            self.cf(CF_SPANS),
            IteratorMode::From(&prefix, Direction::Forward),
        );
        let mut chunks = Vec::new();
        for item in iter {
            let (key, value) = item?;
            if !key.starts_with(&prefix) {
                break;
            }
            let key = decode_span_key(&key).map_err(|e| StorageError::Corrupt(e.to_string()))?;
            match decode_chunk(trace_id, &value) {
                Ok(spans) => chunks.push((key.received_at_us, spans)),
                // One unreadable chunk must not make the rest of the trace unreadable.
                Err(error) => {
                    tracing::warn!(%error, %trace_id, "skipping an undecodable span chunk")
                }
            }
        }
        Ok(merge_chunks(trace_id, chunks))
    }

    fn flush(&self) -> Result<(), StorageError> {
        self.db.flush_wal(true)?;
        for cf in [CF_SPANS, CF_TRACES, CF_INDEX, CF_OPEN, CF_NAMES, CF_META] {
            self.db.flush_cf(self.cf(cf))?;
        }
        Ok(())
    }

    fn open_traces(&self) -> Result<Vec<OpenTrace>, StorageError> {
        // The receive time each trace was completed up to, read once per trace.
        let mut completed_up_to: HashMap<TraceId, u64> = HashMap::new();
        let mut open: HashMap<TraceId, OpenTrace> = HashMap::new();
        let mut settled = WriteBatch::default();
        for item in self.db.iterator_cf(self.cf(CF_OPEN), IteratorMode::Start) {
            let (key, value) = item?;
            let journal =
                decode_journal_key(&key).map_err(|e| StorageError::Corrupt(e.to_string()))?;
            let trace_ids = decode_journal_value(&value)
                .ok_or_else(|| StorageError::Corrupt("open journal value".into()))?;
            let mut pending = false;
            for trace_id in trace_ids {
                let completed = match completed_up_to.get(&trace_id) {
                    Some(at) => *at,
                    None => {
                        let at = match self.stored_summary(trace_id)? {
                            Some(summary) => summary.last_received_us.saturating_add(1),
                            // Expired or never written: nothing left to complete.
                            None if !self.has_spans(trace_id, 0)? => u64::MAX,
                            None => 0,
                        };
                        completed_up_to.insert(trace_id, at);
                        at
                    }
                };
                if journal.received_at_us < completed {
                    continue;
                }
                pending = true;
                let entry = open.entry(trace_id).or_insert_with(|| OpenTrace {
                    trace_id,
                    last_arrival_us: 0,
                    journal: Vec::new(),
                });
                entry.last_arrival_us = entry.last_arrival_us.max(journal.received_at_us);
                entry.journal.push(journal);
            }
            if !pending {
                settled.delete_cf(self.cf(CF_OPEN), &key);
            }
        }
        self.db.write(settled)?;
        Ok(open.into_values().collect())
    }

    fn is_open(&self, trace_id: TraceId) -> Result<bool, StorageError> {
        let Some(summary) = self.stored_summary(trace_id)? else {
            return Ok(true);
        };
        // Open when a chunk was received after the spans the summary covers.
        self.has_spans(trace_id, summary.last_received_us.saturating_add(1))
    }

    fn was_completed(&self, trace_id: TraceId) -> Result<bool, StorageError> {
        Ok(self
            .db
            .get_pinned_cf(self.cf(CF_TRACES), trace_id.as_bytes())?
            .is_some())
    }

    fn complete(
        &self,
        summaries: &[TraceSummary],
        new_names: &[OperationName],
        settled: &[JournalKey],
    ) -> Result<(), StorageError> {
        let index_cf = self.cf(CF_INDEX);
        let mut batch = WriteBatch::default();
        for name in new_names {
            batch.put_cf(self.cf(CF_NAMES), encode_name_key(name), []);
        }
        for summary in summaries {
            if let Some(old) = self.stored_summary(summary.trace_id)? {
                for key in index_keys(&old) {
                    batch.delete_cf(index_cf, encode_index_key(&key));
                }
            }
            let value = encode_index_value(summary.duration_ns / 1_000, summary.error_count > 0);
            for key in index_keys(summary) {
                batch.put_cf(index_cf, encode_index_key(&key), value);
            }
            batch.put_cf(
                self.cf(CF_TRACES),
                summary.trace_id.as_bytes(),
                encode_summary(summary),
            );
        }
        for key in settled {
            batch.delete_cf(self.cf(CF_OPEN), encode_journal_key(key));
        }
        let mut write = WriteOptions::default();
        write.set_sync(self.sync_writes);
        self.db.write_opt(batch, &write)?;
        Ok(())
    }

    fn settle(&self, settled: &[JournalKey]) -> Result<(), StorageError> {
        let mut batch = WriteBatch::default();
        for key in settled {
            batch.delete_cf(self.cf(CF_OPEN), encode_journal_key(key));
        }
        self.db.write(batch)?;
        Ok(())
    }

    fn expire(&self, before_us: u64, max_traces: usize) -> Result<usize, StorageError> {
        if before_us == 0 {
            return Ok(0);
        }
        let hits = self.scan_index(IndexTag::All, "", 0, before_us - 1, usize::MAX)?;
        let mut batch = WriteBatch::default();
        let mut expired = 0;
        // Oldest first: the scan answers newest first.
        for hit in hits.into_iter().rev() {
            if expired >= max_traces {
                break;
            }
            let Some(summary) = self.stored_summary(hit.trace_id)? else {
                continue;
            };
            // Spans received within the retention stay, whatever their timestamps.
            if summary.last_received_us >= before_us {
                continue;
            }
            let prefix = span_key_prefix(&hit.trace_id);
            let mut end = prefix.to_vec();
            // Past every 32-byte key of this trace, before any of the next.
            end.extend_from_slice(&[0xff; 16]);
            end.push(0);
            batch.delete_range_cf(self.cf(CF_SPANS), &prefix[..], &end[..]);
            for key in index_keys(&summary) {
                batch.delete_cf(self.cf(CF_INDEX), encode_index_key(&key));
            }
            batch.delete_cf(self.cf(CF_TRACES), hit.trace_id.as_bytes());
            expired += 1;
        }
        self.db.write(batch)?;
        Ok(expired)
    }

    fn compact(&self) -> Result<(), StorageError> {
        for cf in [CF_SPANS, CF_TRACES, CF_INDEX, CF_OPEN] {
            self.db.flush_cf(self.cf(cf))?;
            self.db
                .compact_range_cf(self.cf(cf), None::<&[u8]>, None::<&[u8]>);
        }
        Ok(())
    }

    fn names(&self, service: Option<&str>) -> Result<Vec<OperationName>, StorageError> {
        let prefix = service.map(name_prefix).unwrap_or_default();
        let mut names = Vec::new();
        let iter = self.db.iterator_cf(
            self.cf(CF_NAMES),
            IteratorMode::From(&prefix, Direction::Forward),
        );
        for item in iter {
            let (key, _) = item?;
            if !key.starts_with(&prefix) {
                break;
            }
            names.push(decode_name_key(&key).map_err(|e| StorageError::Corrupt(e.to_string()))?);
        }
        Ok(names)
    }

    fn summary(&self, trace_id: TraceId) -> Result<Option<TraceSummary>, StorageError> {
        let Some(mut summary) = self.stored_summary(trace_id)? else {
            return Ok(None);
        };
        summary.complete = !self.is_open(trace_id)?;
        Ok(Some(summary))
    }

    fn scan_index(
        &self,
        tag: IndexTag,
        value: &str,
        from_us: u64,
        to_us: u64,
        limit: usize,
    ) -> Result<Vec<IndexHit>, StorageError> {
        let (low, high) = index_range(tag as u8, index_hash(value), from_us, to_us);
        let mut hits = Vec::new();
        let mut read = rocksdb::ReadOptions::default();
        // Every key of the scan shares the tag·hash prefix of `low` and `high`.
        read.set_prefix_same_as_start(true);
        let iter = self.db.iterator_cf_opt(
            self.cf(CF_INDEX),
            read,
            IteratorMode::From(&high, Direction::Reverse),
        );
        for item in iter {
            if hits.len() >= limit {
                break;
            }
            let (key, value) = item?;
            if key[..] < low[..] {
                break;
            }
            let key = decode_index_key(&key).map_err(|e| StorageError::Corrupt(e.to_string()))?;
            let (duration_us, error) = decode_index_value(&value)
                .ok_or_else(|| StorageError::Corrupt("index value".into()))?;
            hits.push(IndexHit {
                trace_id: key.trace_id,
                start_us: key.start_us,
                duration_us,
                error,
            });
        }
        Ok(hits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Span, SpanId};

    #[test]
    fn spans_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let trace_id = TraceId([3; 16]);
        let span = Span {
            trace_id,
            span_id: SpanId([4; 8]),
            name: "GET /books".into(),
            resource: std::sync::Arc::new(crate::model::Resource {
                service: "catalog".into(),
                attributes: vec![],
            }),
            ..Span::default()
        };
        {
            let store = RocksStore::open(dir.path(), &RocksOptions::default()).unwrap();
            store
                .append(
                    10,
                    &[TraceChunk {
                        trace_id,
                        spans: vec![span.clone()],
                    }],
                )
                .unwrap();
        }
        let store = RocksStore::open(dir.path(), &RocksOptions::default()).unwrap();
        let trace = store.trace(trace_id).unwrap().unwrap();
        assert_eq!(trace.spans, vec![span]);
        assert_eq!(trace.last_received_us, 10);
    }

    #[test]
    fn fsync_ack_mode_writes_and_reads() {
        let dir = tempfile::tempdir().unwrap();
        let options = RocksOptions {
            sync_writes: true,
            ..RocksOptions::default()
        };
        let store = RocksStore::open(dir.path(), &options).unwrap();
        let trace_id = TraceId([5; 16]);
        let span = Span {
            trace_id,
            span_id: SpanId([6; 8]),
            resource: std::sync::Arc::new(crate::model::Resource {
                service: "catalog".into(),
                attributes: vec![],
            }),
            ..Span::default()
        };
        store
            .append(
                1,
                &[TraceChunk {
                    trace_id,
                    spans: vec![span.clone()],
                }],
            )
            .unwrap();
        assert_eq!(store.trace(trace_id).unwrap().unwrap().spans, vec![span]);
    }

    #[test]
    fn expiry_gives_disk_space_back_after_compaction() {
        use crate::model::{AttrValue, KeyValue, TraceSummary};
        let dir = tempfile::tempdir().unwrap();
        let store = RocksStore::open(dir.path(), &RocksOptions::default()).unwrap();
        // 200 traces of 50 spans with incompressible attributes, one per ms.
        for n in 0..200u64 {
            let mut trace_id = [0u8; 16];
            trace_id[8..].copy_from_slice(&(n + 1).to_be_bytes());
            let trace_id = TraceId(trace_id);
            let spans = (0..50u64)
                .map(|i| Span {
                    trace_id,
                    span_id: SpanId((n * 1000 + i + 1).to_be_bytes()),
                    start_ns: (n + 1) * 1_000_000,
                    end_ns: (n + 1) * 1_000_000 + 10,
                    attributes: vec![KeyValue::new(
                        "noise",
                        AttrValue::String(format!(
                            "{:x}",
                            (n * 7919 + i).wrapping_mul(0x9E37_79B9_7F4A_7C15)
                        )),
                    )],
                    ..Span::default()
                })
                .collect();
            store
                .append(n + 1, &[TraceChunk { trace_id, spans }])
                .unwrap();
            let trace = store.trace(trace_id).unwrap().unwrap();
            store
                .complete(
                    &[TraceSummary::of(&trace, &Default::default(), true)],
                    &[],
                    &[],
                )
                .unwrap();
        }
        store.compact().unwrap();
        let size = |dir: &Path| -> u64 {
            std::fs::read_dir(dir)
                .unwrap()
                .filter_map(|e| e.ok())
                .filter(|e| e.path().extension().is_some_and(|x| x == "sst"))
                .map(|e| e.metadata().unwrap().len())
                .sum()
        };
        let before = size(dir.path());
        // Everything that started before 150 ms goes, in two rounds.
        assert_eq!(store.expire(150_000, 100).unwrap(), 100);
        assert_eq!(store.expire(150_000, 100).unwrap(), 49);
        assert_eq!(store.expire(150_000, 100).unwrap(), 0);
        store.compact().unwrap();
        let after = size(dir.path());
        assert!(after * 2 < before, "sst bytes {before} -> {after}");
        let mut first = [0u8; 16];
        first[15] = 1;
        assert!(store.trace(TraceId(first)).unwrap().is_none());
        assert!(store.summary(TraceId(first)).unwrap().is_none());
        let mut kept = [0u8; 16];
        kept[15] = 200;
        assert_eq!(store.trace(TraceId(kept)).unwrap().unwrap().spans.len(), 50);
        assert_eq!(
            store
                .scan_index(IndexTag::All, "", 0, u64::MAX, 1000)
                .unwrap()
                .len(),
            51
        );
    }

    #[test]
    fn a_second_process_cannot_open_the_same_dir() {
        let dir = tempfile::tempdir().unwrap();
        let _first = RocksStore::open(dir.path(), &RocksOptions::default()).unwrap();
        let second = RocksStore::open(dir.path(), &RocksOptions::default());
        let message = second.err().expect("lock held").to_string();
        assert!(message.contains("lock"), "{message}");
    }

    #[test]
    fn an_unknown_format_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = RocksStore::open(dir.path(), &RocksOptions::default()).unwrap();
            store
                .db
                .put_cf(store.cf(CF_META), META_FORMAT_VERSION, 99u32.to_be_bytes())
                .unwrap();
        }
        match RocksStore::open(dir.path(), &RocksOptions::default()) {
            Err(StorageError::FormatVersion { found: 99, .. }) => {}
            Err(other) => panic!("unexpected error {other}"),
            Ok(_) => panic!("opened a store with an unknown format"),
        }
    }
}
