//! The RocksDB store's own tests (the shared ones are `storage::conformance`).

use super::*;
use crate::model::{Span, SpanId};
use crate::storage::keys::{decode_index_key, MINUTE_US};

/// Writes and completes `traces` traces of `spans` spans with
/// incompressible attributes, one a minute from `first_us`, each received
/// as it starts; trace n's id is n + 1.
pub(crate) fn minutely_traffic(store: &RocksStore, first_us: u64, traces: u64, spans: u64) {
    use crate::model::{AttrValue, KeyValue, TraceSummary};
    for n in 0..traces {
        let trace_id = TraceId((u128::from(n) + 1).to_be_bytes());
        let at_us = first_us + n * MINUTE_US;
        let spans = (0..spans)
            .map(|i| Span {
                trace_id,
                span_id: SpanId((n * 1000 + i + 1).to_be_bytes()),
                start_ns: at_us * 1_000,
                end_ns: at_us * 1_000 + 1_000,
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
            .append(at_us, &[TraceChunk { trace_id, spans }])
            .unwrap();
        let trace = store.trace(trace_id).unwrap().unwrap();
        let summary = TraceSummary::of(&trace, &Default::default(), true);
        store.complete(&[summary], &[], &[], &[], &[]).unwrap();
    }
}

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
fn expiry_drops_whole_partitions_and_gives_disk_space_back() {
    let dir = tempfile::tempdir().unwrap();
    let id = |n: u64| {
        let mut trace_id = [0u8; 16];
        trace_id[8..].copy_from_slice(&(n + 1).to_be_bytes());
        TraceId(trace_id)
    };
    let all = |store: &RocksStore| {
        store
            .scan_index(IndexTag::All, "", 0, u64::MAX, 1000)
            .unwrap()
            .len()
    };
    {
        let store = RocksStore::open(dir.path(), &RocksOptions::default()).unwrap();
        // 200 traces of 50 spans with incompressible attributes, one a
        // minute over three hours and more, each received as it starts.
        minutely_traffic(&store, 1, 200, 50);
        store.compact().unwrap();
        let before = store.disk_bytes().unwrap();
        assert_eq!(store.oldest_partition_us().unwrap(), Some(0));
        // Everything before minute 150 goes: hours 0 and 1 whole, hour 2
        // in part.
        store.expire(150 * MINUTE_US).unwrap();
        assert_eq!(store.oldest_partition_us().unwrap(), Some(2 * HOUR_US));
        assert_eq!(all(&store), 50);
        store.compact().unwrap();
        let after = store.disk_bytes().unwrap();
        assert!(after * 2 < before, "sst bytes {before} -> {after}");
        // The index partitions are gone from disk, not only hidden.
        let mut iter = store.db.raw_iterator_cf(store.cf(CF_INDEX));
        iter.seek_to_first();
        let first = decode_index_key(iter.key().unwrap()).unwrap();
        assert_eq!(first.hour, 2);
    }
    // The cutoff holds after a restart.
    let store = RocksStore::open(dir.path(), &RocksOptions::default()).unwrap();
    for gone in [0, 149] {
        assert!(store.trace(id(gone)).unwrap().is_none());
        assert!(store.summary(id(gone)).unwrap().is_none());
    }
    assert_eq!(store.trace(id(150)).unwrap().unwrap().spans.len(), 50);
    assert_eq!(store.trace(id(199)).unwrap().unwrap().spans.len(), 50);
    assert_eq!(all(&store), 50);
    // An earlier cutoff changes nothing.
    store.expire(MINUTE_US).unwrap();
    assert_eq!(all(&store), 50);
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
fn dictionary_buffers_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let _store = RocksStore::open(dir.path(), &RocksOptions::default()).unwrap();
    // RocksDB writes the options in force to OPTIONS-<n>; the newest
    // holds the bound for both families.
    let newest = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.starts_with("OPTIONS-"))
        .max_by_key(|name| name[8..].parse::<u64>().unwrap())
        .unwrap();
    let text = std::fs::read_to_string(dir.path().join(newest)).unwrap();
    let bound = format!("max_dict_buffer_bytes={}", super::tuning::DICT_BUFFER_BYTES);
    assert_eq!(text.matches(&bound).count(), 2, "{text}");
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
