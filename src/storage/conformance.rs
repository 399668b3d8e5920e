//! The `TraceStore` contract as tests, run against every implementation.

use std::sync::Arc;

use super::memory::MemoryStore;
use super::rocks::{RocksOptions, RocksStore};
use super::TraceStore;
use crate::model::{AttrValue, KeyValue, Resource, Span, SpanId, TraceChunk, TraceId};

fn span(trace: u8, id: u8, start_ns: u64, name: &str) -> Span {
    Span {
        trace_id: TraceId([trace; 16]),
        span_id: SpanId([id; 8]),
        name: name.into(),
        start_ns,
        end_ns: start_ns + 1_000,
        attributes: vec![KeyValue::new("n", AttrValue::Int(id as i64))],
        resource: Arc::new(Resource {
            service: "svc".into(),
            attributes: vec![],
        }),
        ..Span::default()
    }
}

fn chunk(spans: Vec<Span>) -> TraceChunk {
    TraceChunk {
        trace_id: spans[0].trace_id,
        spans,
    }
}

fn stores() -> Vec<(&'static str, Box<dyn TraceStore>, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let rocks = RocksStore::open(dir.path(), &RocksOptions::default()).unwrap();
    vec![
        ("memory", Box::new(MemoryStore::new()), None),
        ("rocks", Box::new(rocks), Some(dir)),
    ]
}

#[test]
fn unknown_trace_is_none() {
    for (name, store, _dir) in stores() {
        assert!(store.trace(TraceId([9; 16])).unwrap().is_none(), "{name}");
    }
}

#[test]
fn appended_spans_read_back_in_start_order() {
    for (name, store, _dir) in stores() {
        let a = span(1, 1, 300, "a");
        let b = span(1, 2, 100, "b");
        let c = span(1, 3, 200, "c");
        store
            .append(5, &[chunk(vec![a.clone(), b.clone()])])
            .unwrap();
        store.append(6, &[chunk(vec![c.clone()])]).unwrap();
        let trace = store.trace(TraceId([1; 16])).unwrap().unwrap();
        assert_eq!(trace.spans, vec![b, c, a], "{name}");
        assert_eq!(trace.last_received_us, 6, "{name}");
    }
}

#[test]
fn a_retried_batch_is_not_read_twice() {
    for (name, store, _dir) in stores() {
        let batch = [chunk(vec![span(1, 1, 1, "a"), span(1, 2, 2, "b")])];
        store.append(5, &batch).unwrap();
        store.append(5, &batch).unwrap();
        store.append(9, &batch).unwrap();
        let trace = store.trace(TraceId([1; 16])).unwrap().unwrap();
        assert_eq!(trace.spans.len(), 2, "{name}");
    }
}

#[test]
fn the_copy_received_last_wins() {
    for (name, store, _dir) in stores() {
        store
            .append(5, &[chunk(vec![span(1, 1, 1, "in progress")])])
            .unwrap();
        store
            .append(7, &[chunk(vec![span(1, 1, 1, "complete")])])
            .unwrap();
        let trace = store.trace(TraceId([1; 16])).unwrap().unwrap();
        assert_eq!(trace.spans.len(), 1, "{name}");
        assert_eq!(trace.spans[0].name, "complete", "{name}");
    }
}

#[test]
fn traces_in_one_batch_stay_apart() {
    for (name, store, _dir) in stores() {
        let mut neighbour = TraceId([1; 16]);
        neighbour.0[15] = 2;
        let mut other = span(1, 7, 1, "other");
        other.trace_id = neighbour;
        store
            .append(
                5,
                &[
                    chunk(vec![span(1, 1, 1, "a")]),
                    TraceChunk {
                        trace_id: neighbour,
                        spans: vec![other.clone()],
                    },
                ],
            )
            .unwrap();
        let first = store.trace(TraceId([1; 16])).unwrap().unwrap();
        assert_eq!(first.spans.len(), 1, "{name}");
        assert_eq!(first.spans[0].name, "a", "{name}");
        assert_eq!(
            store.trace(neighbour).unwrap().unwrap().spans,
            vec![other],
            "{name}"
        );
        store.flush().unwrap();
    }
}

#[test]
fn a_complete_span_is_not_replaced_by_an_in_progress_copy() {
    for (name, store, _dir) in stores() {
        let complete = span(1, 1, 1, "complete");
        let mut in_progress = span(1, 1, 1, "in progress");
        in_progress.attributes.push(KeyValue::new(
            crate::model::semconv::XRAY_IN_PROGRESS,
            AttrValue::Bool(true),
        ));
        store.append(5, &[chunk(vec![complete])]).unwrap();
        store.append(7, &[chunk(vec![in_progress])]).unwrap();
        let trace = store.trace(TraceId([1; 16])).unwrap().unwrap();
        assert_eq!(trace.spans[0].name, "complete", "{name}");
    }
}
