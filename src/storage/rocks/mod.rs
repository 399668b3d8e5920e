//! The embedded RocksDB `TraceStore`.
//!
//! One write batch per request, committed to the write-ahead log before `append`
//! returns (and fsynced too when `sync_writes` is set). Spans of a trace share
//! a 16-byte key prefix; a prefix bloom filter keeps single-trace reads to a
//! seek or two.

mod check;
mod findings;
mod graph;
mod graph_cache;
mod graph_log;
mod index;
mod measure;
mod migrate;
mod tuning;

pub use measure::WriteCounters;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use rocksdb::{Direction, IteratorMode, Options, WriteBatch, WriteOptions, DB};

use super::codec::{decode_chunk, decode_summary, encode_chunk, encode_summary};
use super::keys::{
    chunk_id, decode_journal_key, decode_journal_value, decode_span_key, encode_index_block,
    encode_index_key, encode_index_table, encode_journal_key, encode_journal_value,
    encode_span_key, index_hour, span_key_prefix, IndexBlockKey, JournalKey, SpanKey, ALL_CFS,
    CF_INDEX, CF_META, CF_OPEN, CF_SPANS, CF_TRACES, HOUR_US, INDEX_KEY_LEN, META_FORMAT_VERSION,
    META_INDEX_SEQ, META_RETENTION_CUTOFF,
};
use super::keys::{
    decode_name_key, encode_name_key, name_prefix, CF_FINDINGS, CF_GRAPH, CF_GRAPH_LOG, CF_NAMES,
};
use super::{
    index_keys, merge_chunks, FindingQuery, IndexHit, IndexTag, OpenTrace, OperationName,
    StorageError, TraceStore,
};
use crate::model::{
    Aggregate, Finding, GraphRow, GraphSubject, Trace, TraceChunk, TraceId, TraceSummary,
};

/// The on-disk format this build writes and reads.
pub const FORMAT_VERSION: u32 = 4;

/// Engine settings, from `[storage]` in the config file.
#[derive(Debug, Clone)]
pub struct RocksOptions {
    /// fsync the write-ahead log before acknowledging (power-loss durability).
    pub sync_writes: bool,
    /// Shared block cache for reads, in bytes.
    pub block_cache_bytes: usize,
    /// How long data is kept; sets how often compaction revisits old files so
    /// that retention's compaction filters reclaim them.
    pub retention: std::time::Duration,
    /// Keep RocksDB's statistics, for [`RocksStore::write_counters`] (the
    /// benchmark suite's write amplification; it costs a little on every
    /// write, so the server leaves it off).
    pub statistics: bool,
}

impl Default for RocksOptions {
    fn default() -> Self {
        Self {
            sync_writes: false,
            block_cache_bytes: 64 << 20,
            retention: std::time::Duration::from_secs(72 * 3600),
            statistics: false,
        }
    }
}

pub struct RocksStore {
    db: DB,
    path: PathBuf,
    sync_writes: bool,
    /// The next journal sequence number.
    journal_seq: AtomicU64,
    /// The last index block sequence number given out.
    index_seq: AtomicU64,
    /// Retention: data older than this (µs) is gone from reads, and the
    /// compaction filters drop it.
    cutoff_us: Arc<AtomicU64>,
    /// The oldest and newest index partitions (hours) that may hold entries.
    index_hours: (AtomicU32, AtomicU32),
    /// Range sums kept for the service map (see `graph_cache/`).
    graph_cache: graph_cache::GraphCache,
    /// Map rows logged by completions, not yet in the aggregates (`graph_log`).
    graph_pending: graph_log::PendingRows,
    /// Write batches copied for the benchmark suite, when asked.
    recorder: measure::Recorder,
    /// The options holding RocksDB's statistics, when kept.
    statistics: Option<Options>,
}

impl From<rocksdb::Error> for StorageError {
    fn from(error: rocksdb::Error) -> Self {
        StorageError::Engine(error.into_string())
    }
}

impl RocksStore {
    /// Opens (or creates) the store under `path`, recovering from the WAL.
    pub fn open(path: &Path, options: &RocksOptions) -> Result<Self, StorageError> {
        let cutoff_us = Arc::new(AtomicU64::new(0));
        let (db_options, families) = tuning::column_families(options, &cutoff_us);
        let db = DB::open_cf_descriptors(&db_options, path, families)?;
        let store = Self {
            db,
            path: path.to_path_buf(),
            sync_writes: options.sync_writes,
            journal_seq: AtomicU64::new(0),
            index_seq: AtomicU64::new(0),
            cutoff_us,
            index_hours: (AtomicU32::new(u32::MAX), AtomicU32::new(0)),
            graph_cache: graph_cache::GraphCache::default(),
            graph_pending: graph_log::PendingRows::default(),
            recorder: measure::Recorder::default(),
            statistics: options.statistics.then_some(db_options),
        };
        store.check_format_version()?;
        store.bound_dictionary_buffers()?;
        store
            .index_seq
            .store(store.meta_u64(META_INDEX_SEQ)?, Ordering::Relaxed);
        store
            .cutoff_us
            .store(store.meta_u64(META_RETENTION_CUTOFF)?, Ordering::Relaxed);
        store.find_index_hours()?;
        store.recover_graph_log()?;
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

    /// Flushes the memtables and waits until RocksDB has no compaction left
    /// to run (or `timeout` passed): a quiescent store, for measurements.
    pub fn wait_for_compactions(&self, timeout: std::time::Duration) -> Result<(), StorageError> {
        let mut options = rocksdb::WaitForCompactOptions::default();
        options.set_flush(true);
        options.set_timeout(timeout.as_micros() as u64);
        self.db.wait_for_compact(&options)?;
        Ok(())
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

    fn meta_u64(&self, name: &[u8]) -> Result<u64, StorageError> {
        match self.db.get_cf(self.cf(CF_META), name)? {
            None => Ok(0),
            Some(bytes) => <[u8; 8]>::try_from(bytes.as_slice())
                .map(u64::from_be_bytes)
                .map_err(|_| {
                    StorageError::Corrupt(format!(
                        "{} is not 8 bytes",
                        String::from_utf8_lossy(name)
                    ))
                }),
        }
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
                    self.resume_index_migration()
                } else if found == 3 {
                    self.start_index_migration()
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
    /// The trace as its chunks received up to `until_us` make it.
    fn trace_until(&self, trace_id: TraceId, until_us: u64) -> Result<Option<Trace>, StorageError> {
        let prefix = span_key_prefix(&trace_id);
        // A raw iterator lends keys and values: chunks decode in place, not
        // from a copy (a 1,000-span chunk is most of a megabyte).
        let mut iter = self.db.raw_iterator_cf(self.cf(CF_SPANS));
        iter.seek(prefix);
        let mut chunks = Vec::new();
        let cutoff = self.cutoff_us.load(Ordering::Relaxed);
        while let (Some(key), Some(value)) = (iter.key(), iter.value()) {
            if !key.starts_with(&prefix) {
                break;
            }
            let key = decode_span_key(key).map_err(|e| StorageError::Corrupt(e.to_string()))?;
            if key.received_at_us >= cutoff && key.received_at_us <= until_us {
                match decode_chunk(trace_id, value) {
                    Ok(spans) => chunks.push((key.received_at_us, spans)),
                    // One unreadable chunk must not make the rest of the trace unreadable.
                    Err(error) => {
                        tracing::warn!(%error, %trace_id, "skipping an undecodable span chunk")
                    }
                }
            }
            iter.next();
        }
        iter.status()?;
        Ok(merge_chunks(trace_id, chunks))
    }

    /// Whether a chunk of the trace was received at or after `from_us`.
    fn has_spans(&self, trace_id: TraceId, from_us: u64) -> Result<bool, StorageError> {
        let from = encode_span_key(&SpanKey {
            trace_id,
            received_at_us: from_us.max(self.cutoff_us.load(Ordering::Relaxed)),
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
        Ok(self
            .stored_summary_seq(trace_id)?
            .map(|(summary, _)| summary))
    }

    /// The summary and its index batch; `None` once retention has passed it.
    fn stored_summary_seq(
        &self,
        trace_id: TraceId,
    ) -> Result<Option<(TraceSummary, u64)>, StorageError> {
        let Some(bytes) = self
            .db
            .get_pinned_cf(self.cf(CF_TRACES), trace_id.as_bytes())?
        else {
            return Ok(None);
        };
        let (summary, seq) =
            decode_summary(trace_id, &bytes).map_err(|e| StorageError::Corrupt(e.to_string()))?;
        if summary.last_received_us < self.cutoff_us.load(Ordering::Relaxed) {
            return Ok(None);
        }
        Ok(Some((summary, seq)))
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
        self.recorder.see(&batch);
        self.db.write_opt(batch, &write)?;
        Ok(journal)
    }

    fn trace(&self, trace_id: TraceId) -> Result<Option<Trace>, StorageError> {
        self.trace_until(trace_id, u64::MAX)
    }

    fn trace_received_by(
        &self,
        trace_id: TraceId,
        until_us: u64,
    ) -> Result<Option<Trace>, StorageError> {
        self.trace_until(trace_id, until_us)
    }

    fn graph(
        &self,
        from_us: u64,
        to_us: u64,
    ) -> Result<Vec<(GraphSubject, Aggregate)>, StorageError> {
        self.apply_graph_log()?;
        let (from, to) = super::graph::minutes_of(from_us, to_us);
        self.graph_minutes(from, to)
    }

    fn findings(&self, query: &FindingQuery) -> Result<Vec<Finding>, StorageError> {
        self.read_findings(query)
    }

    fn graph_storms(
        &self,
        from_us: u64,
        to_us: u64,
        rule: super::storm::StormRule,
    ) -> Result<std::collections::HashSet<GraphSubject>, StorageError> {
        self.apply_graph_log()?;
        let (from, to) = super::graph::minutes_of(from_us, to_us);
        self.graph_storm_edges(from, to, rule)
    }

    fn expire_graph(&self, before_us: u64) -> Result<(), StorageError> {
        self.apply_graph_log()?;
        self.expire_graph_before((before_us / 60_000_000).min(u32::MAX as u64) as u32)
    }

    fn flush(&self) -> Result<(), StorageError> {
        self.apply_graph_log()?;
        self.db.flush_wal(true)?;
        for cf in ALL_CFS {
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
        Ok(self.stored_summary_seq(trace_id)?.is_some())
    }

    fn complete(
        &self,
        summaries: &[TraceSummary],
        new_names: &[OperationName],
        settled: &[JournalKey],
        graph: &[GraphRow],
        findings: &[Finding],
    ) -> Result<(), StorageError> {
        let index_cf = self.cf(CF_INDEX);
        let mut batch = WriteBatch::default();
        for name in new_names {
            batch.put_cf(self.cf(CF_NAMES), encode_name_key(name), []);
        }
        let seq = self.next_index_seq();
        // Blocks holding entries of earlier completions, edited; and this
        // batch's blocks: one per indexed value and start minute, holding
        // positions in this batch's table for the hour, one row per trace.
        let mut edits: HashMap<[u8; INDEX_KEY_LEN], Vec<u32>> = HashMap::new();
        let mut tables: Vec<(u32, Vec<IndexHit>)> = Vec::new();
        let mut entries: Vec<(IndexBlockKey, IndexHit, u32)> = Vec::new();
        for summary in summaries {
            if let Some((old, old_seq)) = self.stored_summary_seq(summary.trace_id)? {
                self.unindex(&old, old_seq, &mut edits)?;
                self.forget_findings(&mut batch, &old);
            }
            let hit = IndexHit {
                trace_id: summary.trace_id,
                start_us: summary.start_ns / 1_000,
                duration_us: summary.duration_ns / 1_000,
                error: summary.error_count > 0,
            };
            let hour = index_hour(hit.start_us);
            let table = match tables.iter().position(|(h, _)| *h == hour) {
                Some(at) => &mut tables[at].1,
                None => {
                    tables.push((hour, Vec::new()));
                    &mut tables.last_mut().expect("just pushed").1
                }
            };
            let position = table.len() as u32;
            table.push(hit);
            entries.extend(index_keys(summary).into_iter().map(|entry| {
                let key = IndexBlockKey::of(entry.tag, entry.hash, entry.start_us, seq);
                (key, hit, position)
            }));
            batch.put_cf(
                self.cf(CF_TRACES),
                summary.trace_id.as_bytes(),
                encode_summary(summary, seq),
            );
        }
        self.put_findings(&mut batch, summaries, findings);
        for (key, block) in edits {
            if block.is_empty() {
                batch.delete_cf(index_cf, key);
            } else {
                batch.put_cf(index_cf, key, encode_index_block(&block));
            }
        }
        for (hour, table) in &tables {
            self.note_index_hour(*hour);
            batch.put_cf(
                index_cf,
                encode_index_key(&IndexBlockKey::table(*hour, seq)),
                encode_index_table(*hour, table),
            );
        }
        // Grouped by block, each block's entries newest first.
        entries.sort_unstable_by_key(|(key, hit, _)| {
            (*key, std::cmp::Reverse((hit.start_us, hit.trace_id)))
        });
        let mut block: Vec<u32> = Vec::new();
        for (n, (key, _, position)) in entries.iter().enumerate() {
            block.push(*position);
            if entries.get(n + 1).is_none_or(|(next, _, _)| next != key) {
                batch.put_cf(index_cf, encode_index_key(key), encode_index_block(&block));
                block.clear();
            }
        }
        batch.put_cf(self.cf(CF_META), META_INDEX_SEQ, seq.to_be_bytes());
        for key in settled {
            batch.delete_cf(self.cf(CF_OPEN), encode_journal_key(key));
        }
        let mut write = WriteOptions::default();
        write.set_sync(self.sync_writes);
        // The map's rows go in as one log entry, added to the aggregates later.
        self.log_graph_rows(&mut batch, graph, |batch| {
            self.recorder.see(&batch);
            self.db.write_opt(batch, &write)?;
            Ok(())
        })
    }

    fn settle(&self, settled: &[JournalKey]) -> Result<(), StorageError> {
        let mut batch = WriteBatch::default();
        for key in settled {
            batch.delete_cf(self.cf(CF_OPEN), encode_journal_key(key));
        }
        self.recorder.see(&batch);
        self.db.write(batch)?;
        Ok(())
    }

    fn expire(&self, before_us: u64) -> Result<(), StorageError> {
        if before_us <= self.cutoff_us.load(Ordering::Relaxed) {
            return Ok(());
        }
        // The cutoff is durable before anything is deleted, so reads never
        // show a partly deleted past, across restarts too.
        let mut write = WriteOptions::default();
        write.set_sync(true);
        self.db.put_cf_opt(
            self.cf(CF_META),
            META_RETENTION_CUTOFF,
            before_us.to_be_bytes(),
            &write,
        )?;
        self.cutoff_us.store(before_us, Ordering::Relaxed);
        self.expire_findings(before_us)?;
        // Whole index partitions (hours) before the cutoff's go in one range
        // delete; entries of the cutoff's own hour are hidden until it goes.
        let hour = index_hour(before_us);
        let oldest = self.index_hours.0.load(Ordering::Relaxed);
        if oldest < hour {
            let index = self.cf(CF_INDEX);
            let (from, to) = (oldest.to_be_bytes(), hour.to_be_bytes());
            self.db.delete_range_cf(index, from, to)?;
            self.db.compact_range_cf(index, Some(from), Some(to));
            self.index_hours.0.store(hour, Ordering::Relaxed);
        }
        Ok(())
    }

    fn disk_bytes(&self) -> Result<u64, StorageError> {
        Ok(self
            .disk_bytes_by_family()?
            .iter()
            .map(|(_, bytes)| bytes)
            .sum())
    }

    fn oldest_partition_us(&self) -> Result<Option<u64>, StorageError> {
        let (oldest, newest) = (
            self.index_hours.0.load(Ordering::Relaxed),
            self.index_hours.1.load(Ordering::Relaxed),
        );
        Ok((oldest <= newest).then(|| u64::from(oldest) * HOUR_US))
    }

    fn compact(&self) -> Result<(), StorageError> {
        self.apply_graph_log()?;
        for cf in [
            CF_SPANS,
            CF_TRACES,
            CF_INDEX,
            CF_OPEN,
            CF_GRAPH,
            CF_FINDINGS,
            CF_GRAPH_LOG,
        ] {
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
        // Open again when a chunk was received after the spans it covers.
        summary.complete = !self.has_spans(trace_id, summary.last_received_us.saturating_add(1))?;
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
        self.read_index(tag, value, from_us, to_us, limit)
    }
}

#[cfg(test)]
pub(crate) mod tests;
