//! How each column family is set up: compression, block sizes, bloom
//! filters, the one shared block cache, and retention's compaction filters.
//! The figures behind the choices are in `docs/performance.md` ("Benchmark
//! suite").

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rocksdb::compaction_filter::Decision;
use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamilyDescriptor, DBCompressionType, Options, SliceTransform,
};

use super::{graph, RocksOptions, RocksStore};
use crate::model::TraceId;
use crate::storage::codec::decode_summary;
use crate::storage::keys::{
    decode_span_key, CF_FINDINGS, CF_GRAPH, CF_GRAPH_LOG, CF_INDEX, CF_META, CF_NAMES, CF_OPEN,
    CF_SPANS, CF_TRACES, INDEX_PREFIX_LEN,
};
use crate::storage::StorageError;

/// Data blocks of the spans column family (RocksDB's default is 4 KiB).
const SPAN_BLOCK_BYTES: usize = 32 << 10;
/// The zstd dictionary trained for each bottom-level span file.
const SPAN_DICT_BYTES: i32 = 64 << 10;
/// The same for summaries.
const SUMMARY_DICT_BYTES: i32 = 32 << 10;
/// Data blocks buffered per file being written, to sample for its dictionary.
pub(super) const DICT_BUFFER_BYTES: usize = 4 << 20;
/// zstd's level at the bottom. Young stores compact straight into the bottom
/// level, so its level is paid on nearly every byte. `benches/suite.rs`, one
/// session (span bytes on disk; CPU per span with flushes and compactions):
/// level 1 74.6 B, 11.8 µs; level 3 76.2 B, 12.7 µs; level 6 72.0 B, 16.0 µs;
/// level 3 without the dictionary 86.0 B, 11.2 µs; 4 KiB blocks without it
/// (the settings before) 99.0 B, 12.1 µs.
const ZSTD_LEVEL: i32 = 1;

/// The database's options and every column family's, reading `cutoff_us`
/// for retention.
pub(super) fn column_families(
    options: &RocksOptions,
    cutoff_us: &Arc<AtomicU64>,
) -> (Options, Vec<ColumnFamilyDescriptor>) {
    let mut db_options = Options::default();
    db_options.create_if_missing(true);
    db_options.create_missing_column_families(true);
    db_options.set_max_background_jobs(2);
    db_options.set_keep_log_file_num(5);
    if options.statistics {
        db_options.enable_statistics();
    }

    let cache = Cache::new_lru_cache(options.block_cache_bytes);
    let mut table = BlockBasedOptions::default();
    table.set_block_cache(&cache);
    table.set_bloom_filter(10.0, false);
    table.set_whole_key_filtering(false);

    // Retention's compaction filters: spans received before the cutoff,
    // and summaries of traces that received nothing since, are dropped
    // whenever compaction rewrites them. Periodic compaction makes sure
    // that happens to old files too.
    let periodic = options.retention.as_secs().div_ceil(4).max(3_600);
    let mut spans = Options::default();
    let cutoff = cutoff_us.clone();
    spans.set_compaction_filter(
        "retention",
        move |_, key: &[u8], _: &[u8]| match decode_span_key(key) {
            Ok(key) if key.received_at_us < cutoff.load(Ordering::Relaxed) => Decision::Remove,
            _ => Decision::Keep,
        },
    );
    spans.set_periodic_compaction_seconds(periodic);
    spans.set_compression_type(DBCompressionType::Lz4);
    spans.set_bottommost_compression_type(DBCompressionType::Zstd);
    spans.set_prefix_extractor(SliceTransform::create_fixed_prefix(TraceId::LEN));
    // Memtable blooms are allocated whole with each memtable, sized as a
    // share of its 64 MiB: a 64 MiB memtable holds a few thousand chunks
    // (128 KiB of bloom: hundreds of bits per trace).
    spans.set_memtable_prefix_bloom_ratio(0.002);
    // Spans compress best in large blocks with a dictionary trained per
    // file: a trace's chunk repeats the attribute keys and constant values
    // of every other chunk (benches/suite.rs measures bytes per span).
    let mut span_table = BlockBasedOptions::default();
    span_table.set_block_cache(&cache);
    span_table.set_bloom_filter(10.0, false);
    span_table.set_whole_key_filtering(false);
    span_table.set_block_size(SPAN_BLOCK_BYTES);
    spans.set_bottommost_compression_options(-14, ZSTD_LEVEL, 0, SPAN_DICT_BYTES, true);
    // Samples of 16 dictionaries' worth (1 MiB buffered per compaction)
    // trained as good a dictionary as 100 (same bytes and CPU per span).
    spans.set_bottommost_zstd_max_train_bytes(16 * SPAN_DICT_BYTES, true);
    spans.set_block_based_table_factory(&span_table);

    let mut traces = Options::default();
    let cutoff = cutoff_us.clone();
    traces.set_compaction_filter("retention", move |_, key: &[u8], value: &[u8]| {
        let Ok(trace_id) = TraceId::from_bytes(key) else {
            return Decision::Keep;
        };
        match decode_summary(trace_id, value) {
            Ok((summary, _)) if summary.last_received_us < cutoff.load(Ordering::Relaxed) => {
                Decision::Remove
            }
            _ => Decision::Keep,
        }
    });
    traces.set_periodic_compaction_seconds(periodic);
    traces.set_compression_type(DBCompressionType::Lz4);
    traces.set_bottommost_compression_type(DBCompressionType::Zstd);
    let mut summary_table = BlockBasedOptions::default();
    summary_table.set_block_cache(&cache);
    // Most point reads (was this trace completed before?) miss.
    summary_table.set_bloom_filter(10.0, false);
    // Summaries repeat service and operation names: a dictionary too.
    traces.set_bottommost_compression_options(-14, ZSTD_LEVEL, 0, SUMMARY_DICT_BYTES, true);
    traces.set_bottommost_zstd_max_train_bytes(16 * SUMMARY_DICT_BYTES, true);
    traces.set_block_based_table_factory(&summary_table);
    // The same for the memtable, which a point read otherwise searches.
    traces.set_memtable_whole_key_filtering(true);
    // Some 250,000 summaries per memtable: 640 KiB, about 20 bits each.
    traces.set_memtable_prefix_bloom_ratio(0.01);
    let mut index = Options::default();
    index.set_compression_type(DBCompressionType::Lz4);
    index.set_bottommost_compression_type(DBCompressionType::Zstd);
    // Scans stay within one hour·tag·hash; a prefix bloom skips files without it.
    index.set_prefix_extractor(SliceTransform::create_fixed_prefix(INDEX_PREFIX_LEN));
    index.set_memtable_prefix_bloom_ratio(0.01);
    index.set_block_based_table_factory(&table);
    // Every column family reads through the one block cache: one left
    // with RocksDB's default table options gets a 32 MiB cache of its
    // own (and about 6 MiB of its table up front).
    let small = || {
        let mut table = BlockBasedOptions::default();
        table.set_block_cache(&cache);
        let mut options = Options::default();
        options.set_block_based_table_factory(&table);
        options
    };
    db_options.set_block_based_table_factory(&{
        let mut table = BlockBasedOptions::default();
        table.set_block_cache(&cache);
        table
    });

    let families = vec![
        ColumnFamilyDescriptor::new(CF_SPANS, spans),
        ColumnFamilyDescriptor::new(CF_TRACES, traces),
        ColumnFamilyDescriptor::new(CF_INDEX, index),
        ColumnFamilyDescriptor::new(CF_OPEN, small()),
        ColumnFamilyDescriptor::new(CF_NAMES, small()),
        ColumnFamilyDescriptor::new(CF_META, small()),
        ColumnFamilyDescriptor::new(CF_GRAPH, graph::options(small())),
        ColumnFamilyDescriptor::new(CF_FINDINGS, small()),
        ColumnFamilyDescriptor::new(CF_GRAPH_LOG, small()),
    ];
    (db_options, families)
}

impl RocksStore {
    /// While a bottom-level file is written, RocksDB keeps its data blocks to
    /// sample for the dictionary, up to the whole file (64 MiB) unless told
    /// otherwise, and charges them to the block cache; the Rust binding has no
    /// setter for the bound, so it is set as RocksDB's option string.
    pub(super) fn bound_dictionary_buffers(&self) -> Result<(), StorageError> {
        let bound = format!("{{max_dict_buffer_bytes={DICT_BUFFER_BYTES}}}");
        for cf in [CF_SPANS, CF_TRACES] {
            self.db
                .set_options_cf(self.cf(cf), &[("bottommost_compression_opts", &bound)])?;
        }
        Ok(())
    }
}
