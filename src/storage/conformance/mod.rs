//! The `TraceStore` contract as tests, run against every implementation:
//! spans, journal, summaries and indexes here; the service map's aggregates
//! in `graph.rs`; findings in `findings.rs`.

mod findings;
mod graph;

pub(super) use graph::db_call_row;

use std::sync::Arc;

use super::keys::pair_term;
use super::memory::MemoryStore;
use super::rocks::{RocksOptions, RocksStore};
use super::{IndexTag, JournalKey, OperationName, TraceStore};
use crate::model::{
    AttrValue, KeyValue, Resource, Span, SpanId, SummaryKeys, Trace, TraceChunk, TraceId,
    TraceSummary,
};

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

/// (trace, newest arrival, journal entries) of every open trace, sorted.
fn open_of(store: &dyn TraceStore) -> Vec<(TraceId, u64, Vec<JournalKey>)> {
    let mut open: Vec<_> = store
        .open_traces()
        .unwrap()
        .into_iter()
        .map(|t| (t.trace_id, t.last_arrival_us, t.journal))
        .collect();
    open.sort();
    open
}

fn summary_of(trace: &Trace) -> TraceSummary {
    TraceSummary::of(trace, &SummaryKeys::correlation(&["n"]), true)
}

#[test]
fn appended_traces_are_open_until_completed() {
    for (name, store, _dir) in stores() {
        let first = store
            .append(5, &[chunk(vec![span(1, 1, 1_000, "a")])])
            .unwrap();
        let second = store
            .append(6, &[chunk(vec![span(2, 1, 2_000, "b")])])
            .unwrap();
        assert_eq!(first.received_at_us, 5, "{name}");
        assert_ne!(first, second, "{name}");
        assert_eq!(
            open_of(store.as_ref()),
            vec![
                (TraceId([1; 16]), 5, vec![first]),
                (TraceId([2; 16]), 6, vec![second])
            ],
            "{name}"
        );
        let trace = store.trace(TraceId([1; 16])).unwrap().unwrap();
        store
            .complete(&[summary_of(&trace)], &[], &[first], &[], &[])
            .unwrap();
        assert_eq!(
            open_of(store.as_ref()),
            vec![(TraceId([2; 16]), 6, vec![second])],
            "{name}"
        );
        assert!(!store.is_open(TraceId([1; 16])).unwrap(), "{name}");
        assert!(store.is_open(TraceId([2; 16])).unwrap(), "{name}");
        let summary = store.summary(TraceId([1; 16])).unwrap().unwrap();
        assert!(summary.complete, "{name}");
        assert_eq!(summary.root_operation, "a", "{name}");
        assert!(store.summary(TraceId([2; 16])).unwrap().is_none(), "{name}");
    }
}

#[test]
fn one_journal_entry_per_request_open_until_all_its_traces_complete() {
    for (name, store, _dir) in stores() {
        let both = store
            .append(
                5,
                &[
                    chunk(vec![span(1, 1, 1_000, "a")]),
                    chunk(vec![span(2, 1, 1_000, "b")]),
                ],
            )
            .unwrap();
        let trace = store.trace(TraceId([1; 16])).unwrap().unwrap();
        // Completed, but the entry still names trace 2: assembly settles nothing.
        store
            .complete(&[summary_of(&trace)], &[], &[], &[], &[])
            .unwrap();
        assert_eq!(
            open_of(store.as_ref()),
            vec![(TraceId([2; 16]), 5, vec![both])],
            "{name}"
        );
        let trace = store.trace(TraceId([2; 16])).unwrap().unwrap();
        store
            .complete(&[summary_of(&trace)], &[], &[], &[], &[])
            .unwrap();
        // Recovery finds both complete (and drops the entry itself).
        assert!(open_of(store.as_ref()).is_empty(), "{name}");
        let later = store
            .append(7, &[chunk(vec![span(3, 1, 1_000, "c")])])
            .unwrap();
        assert!(later > both, "{name}: keys grow with time");
        store.settle(&[later]).unwrap();
        assert!(open_of(store.as_ref()).is_empty(), "{name}");
    }
}

#[test]
fn a_completion_never_closes_spans_that_arrived_after_it_read() {
    for (name, store, _dir) in stores() {
        let first = store
            .append(5, &[chunk(vec![span(1, 1, 1_000, "a")])])
            .unwrap();
        let read_before_late_span = store.trace(TraceId([1; 16])).unwrap().unwrap();
        let late = store
            .append(9, &[chunk(vec![span(1, 2, 1_500, "late")])])
            .unwrap();
        store
            .complete(
                &[summary_of(&read_before_late_span)],
                &[],
                &[first],
                &[],
                &[],
            )
            .unwrap();
        assert_eq!(
            open_of(store.as_ref()),
            vec![(TraceId([1; 16]), 9, vec![late])],
            "{name}"
        );
        let summary = store.summary(TraceId([1; 16])).unwrap().unwrap();
        assert!(!summary.complete, "{name}");
        assert!(store.is_open(TraceId([1; 16])).unwrap(), "{name}");
    }
}

#[test]
fn recompletion_replaces_index_entries() {
    for (name, store, _dir) in stores() {
        store
            .append(5, &[chunk(vec![span(1, 1, 5_000_000, "a")])])
            .unwrap();
        let first = summary_of(&store.trace(TraceId([1; 16])).unwrap().unwrap());
        store
            .complete(std::slice::from_ref(&first), &[], &[], &[], &[])
            .unwrap();
        // A late span starting earlier moves the trace's start and adds an id.
        let mut late = span(1, 2, 2_000_000, "late");
        late.attributes
            .push(KeyValue::new("n", AttrValue::String("req_late".into())));
        store.append(9, &[chunk(vec![late])]).unwrap();
        let second = summary_of(&store.trace(TraceId([1; 16])).unwrap().unwrap());
        store
            .complete(std::slice::from_ref(&second), &[], &[], &[], &[])
            .unwrap();

        let all = store
            .scan_index(IndexTag::All, "", 0, u64::MAX, 10)
            .unwrap();
        assert_eq!(all.len(), 1, "{name}: no duplicate entries");
        assert_eq!(all[0].start_us, 2_000, "{name}");
        let by_service = store
            .scan_index(IndexTag::Service, "svc", 0, u64::MAX, 10)
            .unwrap();
        assert_eq!(by_service.len(), 1, "{name}");
        let by_id = store
            .scan_index(IndexTag::CorrelationId, "req_late", 0, u64::MAX, 10)
            .unwrap();
        assert_eq!(by_id.len(), 1, "{name}");
        assert_eq!(by_id[0].trace_id, TraceId([1; 16]), "{name}");
    }
}

#[test]
fn operations_and_indexed_attributes_are_indexed_and_reindexed() {
    let keys = SummaryKeys {
        correlation: vec![],
        indexed: vec!["http.route".into()],
    };
    let route = |value: &str| KeyValue::new("http.route", AttrValue::String(value.into()));
    for (name, store, _dir) in stores() {
        let mut first = span(1, 1, 5_000_000, "GET /books");
        first.attributes.push(route("/books"));
        store.append(5, &[chunk(vec![first])]).unwrap();
        let trace = store.trace(TraceId([1; 16])).unwrap().unwrap();
        store
            .complete(&[TraceSummary::of(&trace, &keys, true)], &[], &[], &[], &[])
            .unwrap();
        let scan = |tag, value: &str| {
            store
                .scan_index(tag, value, 0, u64::MAX, 10)
                .unwrap()
                .iter()
                .map(|h| h.trace_id)
                .collect::<Vec<_>>()
        };
        let op = |o: &str| pair_term("svc", o);
        assert_eq!(
            scan(IndexTag::Operation, &op("GET /books")),
            [TraceId([1; 16])],
            "{name}"
        );
        assert!(
            scan(IndexTag::Operation, &op("GET /authors")).is_empty(),
            "{name}"
        );
        assert!(
            scan(IndexTag::Operation, &pair_term("other", "GET /books")).is_empty(),
            "{name}"
        );
        let attr = |v: &str| pair_term("http.route", v);
        assert_eq!(
            scan(IndexTag::Attribute, &attr("/books")),
            [TraceId([1; 16])],
            "{name}"
        );

        // A late span starting earlier: every entry moves to the new start,
        // the new operation and value are added, nothing is duplicated.
        let mut late = span(1, 2, 2_000_000, "GET /authors");
        late.attributes.push(route("/authors"));
        store.append(9, &[chunk(vec![late])]).unwrap();
        let trace = store.trace(TraceId([1; 16])).unwrap().unwrap();
        store
            .complete(&[TraceSummary::of(&trace, &keys, true)], &[], &[], &[], &[])
            .unwrap();
        for (tag, value) in [
            (IndexTag::Operation, op("GET /books")),
            (IndexTag::Operation, op("GET /authors")),
            (IndexTag::Attribute, attr("/books")),
            (IndexTag::Attribute, attr("/authors")),
        ] {
            let hits = store.scan_index(tag, &value, 0, u64::MAX, 10).unwrap();
            assert_eq!(hits.len(), 1, "{name}: {value:?}");
            assert_eq!(hits[0].start_us, 2_000, "{name}: {value:?}");
        }
        let summary = store.summary(TraceId([1; 16])).unwrap().unwrap();
        assert_eq!(summary.attributes.len(), 2, "{name}");
        assert_eq!(summary.operations.len(), 2, "{name}");
    }
}

#[test]
fn index_scans_are_newest_first_within_the_range() {
    for (name, store, _dir) in stores() {
        for (n, start_ms) in [(1u8, 10u64), (2, 30), (3, 20), (4, 40)] {
            let mut s = span(n, 1, start_ms * 1_000_000, "op");
            if n == 3 {
                s.status.code = crate::model::StatusCode::Error;
            }
            store.append(u64::from(n), &[chunk(vec![s])]).unwrap();
            let trace = store.trace(TraceId([n; 16])).unwrap().unwrap();
            store
                .complete(&[summary_of(&trace)], &[], &[], &[], &[])
                .unwrap();
        }
        let hits = store
            .scan_index(IndexTag::Service, "svc", 15_000, 35_000, 10)
            .unwrap();
        let starts: Vec<u64> = hits.iter().map(|h| h.start_us).collect();
        assert_eq!(starts, vec![30_000, 20_000], "{name}");
        assert!(hits[1].error && !hits[0].error, "{name}");
        assert_eq!(hits[0].duration_us, 1, "{name}");
        let limited = store.scan_index(IndexTag::All, "", 0, u64::MAX, 2).unwrap();
        assert_eq!(limited.len(), 2, "{name}");
        assert_eq!(limited[0].start_us, 40_000, "{name}");
        assert!(store
            .scan_index(IndexTag::Service, "other", 0, u64::MAX, 10)
            .unwrap()
            .is_empty());
    }
}

#[test]
fn operation_names_are_listed_by_service() {
    for (name, store, _dir) in stores() {
        let op = |service: &str, operation: &str, kind: u8| OperationName {
            service: service.into(),
            operation: operation.into(),
            kind,
        };
        store.append(5, &[chunk(vec![span(1, 1, 1, "a")])]).unwrap();
        let trace = store.trace(TraceId([1; 16])).unwrap().unwrap();
        let names = [
            op("order", "GET /orders", 2),
            op("order", "SELECT", 3),
            op("order-v2", "x", 1),
        ];
        store
            .complete(&[summary_of(&trace)], &names, &[], &[], &[])
            .unwrap();
        store
            .complete(&[summary_of(&trace)], &names[..1], &[], &[], &[])
            .unwrap();
        assert_eq!(store.names(None).unwrap(), names.to_vec(), "{name}");
        assert_eq!(
            store.names(Some("order")).unwrap(),
            names[..2].to_vec(),
            "{name}"
        );
        assert!(store.names(Some("ord")).unwrap().is_empty(), "{name}");
    }
}

#[test]
fn expired_traces_vanish_from_every_read() {
    for (name, store, _dir) in stores() {
        // Received as they started, at 10, 20 and 30 ms.
        for (n, start_ms) in [(1u8, 10u64), (2, 20), (3, 30)] {
            store
                .append(
                    start_ms * 1_000,
                    &[chunk(vec![span(n, 1, start_ms * 1_000_000, "op")])],
                )
                .unwrap();
            let trace = store.trace(TraceId([n; 16])).unwrap().unwrap();
            store
                .complete(&[summary_of(&trace)], &[], &[], &[], &[])
                .unwrap();
        }
        // The clock is the caller's: "now" minus retention is 25 ms here.
        store.expire(25_000).unwrap();
        for gone in [1u8, 2] {
            assert!(
                store.trace(TraceId([gone; 16])).unwrap().is_none(),
                "{name}"
            );
            assert!(
                store.summary(TraceId([gone; 16])).unwrap().is_none(),
                "{name}"
            );
        }
        let left: Vec<_> = store
            .scan_index(IndexTag::All, "", 0, u64::MAX, 10)
            .unwrap()
            .iter()
            .map(|h| h.trace_id)
            .collect();
        assert_eq!(left, vec![TraceId([3; 16])], "{name}");
        assert!(
            store
                .scan_index(IndexTag::Service, "svc", 0, 25_000, 10)
                .unwrap()
                .is_empty(),
            "{name}"
        );
        assert!(store.open_traces().unwrap().is_empty(), "{name}");
        // A trace received after the cutoff stays readable by id, however old
        // its spans; its start is past the cutoff, so searches do not find it.
        store
            .append(
                40_000,
                &[chunk(vec![span(4, 1, 1_000_000, "late and old")])],
            )
            .unwrap();
        let trace = store.trace(TraceId([4; 16])).unwrap().unwrap();
        store
            .complete(&[summary_of(&trace)], &[], &[], &[], &[])
            .unwrap();
        store.expire(25_000).unwrap();
        assert!(store.trace(TraceId([4; 16])).unwrap().is_some(), "{name}");
        assert!(store.summary(TraceId([4; 16])).unwrap().is_some(), "{name}");
        assert_eq!(
            store
                .scan_index(IndexTag::All, "", 0, u64::MAX, 10)
                .unwrap()
                .len(),
            1,
            "{name}"
        );
    }
}

#[test]
fn a_trace_reads_as_it_was_at_an_earlier_arrival() {
    for (name, store, _dir) in stores() {
        store
            .append(10, &[chunk(vec![span(6, 1, 100, "a")])])
            .unwrap();
        store
            .append(20, &[chunk(vec![span(6, 2, 200, "b")])])
            .unwrap();
        let ids = |t: Option<Trace>| {
            t.map(|t| t.spans.iter().map(|s| s.name.clone()).collect::<Vec<_>>())
        };
        assert_eq!(
            ids(store.trace_received_by(TraceId([6; 16]), 5).unwrap()),
            None,
            "{name}"
        );
        assert_eq!(
            ids(store.trace_received_by(TraceId([6; 16]), 10).unwrap()),
            Some(vec!["a".to_string()]),
            "{name}"
        );
        assert_eq!(
            ids(store.trace_received_by(TraceId([6; 16]), 20).unwrap()),
            Some(vec!["a".to_string(), "b".to_string()]),
            "{name}"
        );
    }
}
