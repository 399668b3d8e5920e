//! The `TraceStore` contract as tests, run against every implementation.

use std::sync::Arc;

use super::keys::pair_term;
use super::memory::MemoryStore;
use super::rocks::{RocksOptions, RocksStore};
use super::{FindingQuery, IndexTag, JournalKey, OperationName, TraceStore};
use crate::model::{
    Aggregate, AttrValue, CallClass, EdgeType, GraphRow, GraphSubject, KeyValue, Resource, Span,
    SpanId, SummaryKeys, Trace, TraceChunk, TraceId, TraceSummary,
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

/// One call from `order` to the database `target` in `minute`, as a graph row.
pub(super) fn db_call_row(
    minute: u32,
    target: &str,
    class: CallClass,
    latency_us: u64,
) -> GraphRow {
    let mut aggregate = Aggregate::default();
    aggregate.observe(class, latency_us, false);
    GraphRow {
        minute,
        subject: GraphSubject::Edge {
            source: "order".into(),
            target: target.into(),
            edge_type: EdgeType::Database,
        },
        aggregate,
    }
}

#[test]
fn graph_rows_add_up_over_any_range_and_expire_by_bucket() {
    let edge = |target: &str| db_call_row(0, target, CallClass::Ok, 1).subject;
    let row = db_call_row;
    let minute_us = 60_000_000u64;
    for (name, store, _dir) in stores() {
        // Minutes 0..200 (crossing ten-minute and hour buckets), two batches.
        let rows: Vec<GraphRow> = (0..200u32)
            .map(|m| row(m, "db", CallClass::Ok, 1_000 + m as u64))
            .collect();
        let (first, second) = rows.split_at(77);
        store.complete(&[], &[], &[], first, &[]).unwrap();
        store.complete(&[], &[], &[], second, &[]).unwrap();
        // A fault in minute 61 and one taken back again in minute 62.
        store
            .complete(
                &[],
                &[],
                &[],
                &[row(61, "db", CallClass::Fault, 5_000)],
                &[],
            )
            .unwrap();
        let mut undo = row(62, "cache", CallClass::Ok, 9);
        store
            .complete(&[], &[], &[], std::slice::from_ref(&undo), &[])
            .unwrap();
        undo.aggregate = undo.aggregate.negated();
        store.complete(&[], &[], &[], &[undo], &[]).unwrap();
        let total = |from: u64, to: u64| -> (i64, i64) {
            let rows = store.graph(from * minute_us, to * minute_us).unwrap();
            assert!(
                rows.iter().all(|(s, _)| *s == edge("db")),
                "{name}: {rows:?}"
            );
            rows.first()
                .map(|(_, a)| (a.requests, a.faults))
                .unwrap_or((0, 0))
        };
        assert_eq!(total(0, 200), (201, 1), "{name}");
        for (from, to) in [(0, 1), (7, 133), (59, 62), (60, 120), (61, 62), (199, 500)] {
            let expected = (to.min(200) - from) as i64 + (from <= 61 && 61 < to) as i64;
            assert_eq!(total(from, to).0, expected, "{name}: {from}..{to}");
        }
        // Sub-ranges sum to the whole.
        let parts = total(0, 33).0 + total(33, 130).0 + total(130, 200).0;
        assert_eq!(parts, 201, "{name}");
        // Latency survives the rollups: the median of 1,000..1,199 µs.
        let (_, all) = &store.graph(0, 200 * minute_us).unwrap()[0];
        let p50 = all.latency.quantiles(&[0.5]).unwrap()[0];
        assert!(
            (p50 - 1_100.0).abs() <= 1_100.0 * 0.01 + 1.0,
            "{name}: {p50}"
        );
        // Buckets before minute 130 go; the ones holding it and after stay.
        store.expire_graph(130 * minute_us).unwrap();
        assert_eq!(total(0, 130).0, 0, "{name}");
        assert_eq!(total(130, 200).0, 70, "{name}");
    }
}

/// Ranges read again and again while rows land in minutes they cover, as late
/// spans and re-completed traces write them: every read counts exactly what
/// was written in its range, whatever RocksDB's store kept summed from an
/// earlier read.
#[test]
fn graph_reads_between_late_writes_count_every_write() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    let minute_us = 60_000_000u64;
    let ranges = [
        (0u32, 200u32),
        (7, 133),
        (60, 240),
        (0, 60),
        (13, 299),
        (120, 300),
        // An hour moving on, as the last hour does: RocksDB's store moves
        // its kept sum instead of summing afresh.
        (3, 63),
        (4, 64),
        (10, 70),
        (60, 120),
        (70, 130),
    ];
    // Some((minute, taken back)): a write; None: read range number `pick`.
    let write = proptest::option::of((0u32..300, proptest::bool::weighted(0.2)));
    let ops = proptest::collection::vec((write, 0..ranges.len()), 1..40);
    let mut runner = TestRunner::new(Config::with_cases(24));
    runner
        .run(&ops, |ops| {
            for (name, store, _dir) in stores() {
                let mut written = Vec::new();
                for &(write, pick) in &ops {
                    match write {
                        Some((minute, taken_back)) => {
                            let mut row = db_call_row(minute, "db", CallClass::Ok, 1_000);
                            if taken_back {
                                row.aggregate = row.aggregate.negated();
                            }
                            store.complete(&[], &[], &[], &[row], &[]).unwrap();
                            written.push((minute, if taken_back { -1 } else { 1 }));
                        }
                        None => {
                            let (from, to) = ranges[pick];
                            let expected: i64 = written
                                .iter()
                                .filter(|(m, _)| from <= *m && *m < to)
                                .map(|(_, n)| n)
                                .sum();
                            // A subject netting to nothing or less is absent.
                            let expected = expected.max(0);
                            let rows = store
                                .graph(u64::from(from) * minute_us, u64::from(to) * minute_us)
                                .unwrap();
                            let got = rows.first().map_or(0, |(_, a)| a.requests);
                            prop_assert_eq!(got, expected, "{}: {}..{}", name, from, to);
                        }
                    }
                }
            }
            Ok(())
        })
        .unwrap();
}

/// A subject whose rows net to nothing over a range is not on the map, even
/// when its parts fall on both sides of the current ten-minute bucket (the
/// part before it is summed and kept apart in RocksDB's store).
#[test]
fn a_subject_netting_to_nothing_across_the_open_bucket_is_absent() {
    let now_minute = (crate::ingest::now_us() / 60_000_000) as u32;
    let row = |minute: u32, negated: bool| {
        let mut row = db_call_row(minute, "db", CallClass::Ok, 1_000);
        if negated {
            row.aggregate = row.aggregate.negated();
        }
        row
    };
    for (name, store, _dir) in stores() {
        store
            .complete(&[], &[], &[], &[row(now_minute - 30, true)], &[])
            .unwrap();
        store
            .complete(&[], &[], &[], &[row(now_minute, false)], &[])
            .unwrap();
        let range = |from: u32| {
            store
                .graph(
                    u64::from(from) * 60_000_000,
                    u64::from(now_minute + 1) * 60_000_000,
                )
                .unwrap()
        };
        assert_eq!(range(now_minute - 60), vec![], "{name}");
        // Read again (RocksDB's from its kept sum): the same.
        assert_eq!(range(now_minute - 60), vec![], "{name}");
        assert_eq!(range(now_minute).len(), 1, "{name}");
    }
}

/// Reads racing completions: each read counts at least what was written
/// before it started and at most what was written by the time it ended, and
/// once the writes stop every range counts each write exactly once, whatever
/// sums the store kept or moved meanwhile.
#[test]
fn graph_reads_racing_writes_count_each_write_once() {
    use std::sync::atomic::{AtomicI64, Ordering};
    let minute_us = 60_000_000u64;
    let ranges = [(0u32, 60u32), (10, 70), (20, 80), (0, 120), (30, 90)];
    for (name, store, _dir) in stores() {
        let store: Arc<dyn TraceStore> = store.into();
        let written: Arc<Vec<AtomicI64>> = Arc::new((0..120).map(|_| AtomicI64::new(0)).collect());
        let count = |from: u32, to: u32| -> i64 {
            (from..to)
                .map(|m| written[m as usize].load(Ordering::SeqCst))
                .sum()
        };
        let writer = {
            let (store, written) = (store.clone(), written.clone());
            std::thread::spawn(move || {
                for n in 0..600u32 {
                    let minute = (n * 37) % 120;
                    let rows = [db_call_row(minute, "db", CallClass::Ok, 1_000)];
                    store.complete(&[], &[], &[], &rows, &[]).unwrap();
                    written[minute as usize].fetch_add(1, Ordering::SeqCst);
                }
            })
        };
        let read = |from: u32, to: u32| -> i64 {
            let rows = store
                .graph(u64::from(from) * minute_us, u64::from(to) * minute_us)
                .unwrap();
            rows.first().map_or(0, |(_, a)| a.requests)
        };
        let mut n = 0;
        while !writer.is_finished() {
            let (from, to) = ranges[n % ranges.len()];
            n += 1;
            let before = count(from, to);
            let got = read(from, to);
            // Writes are counted after their commit: a read may already see
            // a few more than `count` said just after.
            let after = count(from, to) + 1;
            assert!(
                before <= got && got <= after,
                "{name}: {from}..{to}: {got} not within {before}..={after}"
            );
        }
        writer.join().unwrap();
        for (from, to) in ranges {
            assert_eq!(read(from, to), count(from, to), "{name}: {from}..{to}");
        }
    }
}

/// Findings are stored with their trace's completion, read back by time,
/// kind, service and trace, indexed by kind for trace search, replaced (not
/// added to) when the trace completes again, and dropped by retention.
#[test]
fn findings_are_stored_replaced_and_expired_with_their_trace() {
    use super::findings::sample;
    use crate::model::{Finding, FindingKind};
    let minute_ns = 60_000_000_000u64;
    let completed = |trace: u8, start_minute: u64, findings: &[Finding]| {
        let mut summary = TraceSummary {
            trace_id: TraceId([trace; 16]),
            start_ns: start_minute * minute_ns,
            duration_ns: 1_000_000,
            span_count: 1,
            services: vec!["order".into()],
            complete: true,
            last_received_us: start_minute * 60_000_000,
            ..TraceSummary::default()
        };
        summary.finding_count = findings.len() as u32;
        summary.finding_kinds = findings.iter().map(|f| f.kind.as_str().into()).collect();
        summary.finding_kinds.sort();
        summary.finding_kinds.dedup();
        summary.finding_services = findings.iter().map(|f| f.service.clone()).collect();
        summary.finding_services.sort();
        summary.finding_services.dedup();
        summary
    };
    let all = FindingQuery {
        from_us: 0,
        to_us: u64::MAX,
        limit: 100,
        ..FindingQuery::default()
    };
    for (name, store, _dir) in stores() {
        let a = [
            sample(1, FindingKind::NPlusOne, "order"),
            sample(1, FindingKind::SlowDb, "order"),
        ];
        let b = [sample(2, FindingKind::SlowDb, "catalog")];
        store
            .complete(&[completed(1, 100, &a)], &[], &[], &[], &a)
            .unwrap();
        store
            .complete(&[completed(2, 200, &b)], &[], &[], &[], &b)
            .unwrap();
        let kinds = |query: &FindingQuery| -> Vec<(u8, FindingKind)> {
            let found = store.findings(query).unwrap();
            found.iter().map(|f| (f.trace_id.0[0], f.kind)).collect()
        };
        // Newest trace first, each trace's in order.
        assert_eq!(
            kinds(&all),
            [
                (2, FindingKind::SlowDb),
                (1, FindingKind::NPlusOne),
                (1, FindingKind::SlowDb)
            ],
            "{name}"
        );
        assert_eq!(store.findings(&all).unwrap()[1], a[0], "{name}: all fields");
        let slow = FindingQuery {
            kind: Some(FindingKind::SlowDb),
            ..all.clone()
        };
        assert_eq!(
            kinds(&slow),
            [(2, FindingKind::SlowDb), (1, FindingKind::SlowDb)],
            "{name}"
        );
        let order = FindingQuery {
            service: Some("order".into()),
            limit: 1,
            ..all.clone()
        };
        assert_eq!(kinds(&order), [(1, FindingKind::NPlusOne)], "{name}");
        let catalog_slow = FindingQuery {
            service: Some("catalog".into()),
            kind: Some(FindingKind::SlowDb),
            ..all.clone()
        };
        assert_eq!(kinds(&catalog_slow), [(2, FindingKind::SlowDb)], "{name}");
        let nowhere = FindingQuery {
            service: Some("catalog".into()),
            kind: Some(FindingKind::NPlusOne),
            ..all.clone()
        };
        assert!(kinds(&nowhere).is_empty(), "{name}");
        let early = FindingQuery {
            to_us: 150 * 60_000_000,
            ..all.clone()
        };
        assert_eq!(kinds(&early).len(), 2, "{name}: by time");
        let one = FindingQuery {
            trace_id: Some(TraceId([2; 16])),
            ..all.clone()
        };
        assert_eq!(kinds(&one), [(2, FindingKind::SlowDb)], "{name}");
        // Trace search by kind reads the index.
        let hits = store
            .scan_index(IndexTag::Finding, "n_plus_one", 0, u64::MAX, 10)
            .unwrap();
        assert_eq!(hits.len(), 1, "{name}");
        assert_eq!(hits[0].trace_id, TraceId([1; 16]), "{name}");
        // Completed again, one finding left: replaced, not added to.
        let again = [sample(1, FindingKind::SlowDb, "order")];
        store
            .complete(&[completed(1, 100, &again)], &[], &[], &[], &again)
            .unwrap();
        assert_eq!(
            kinds(&all),
            [(2, FindingKind::SlowDb), (1, FindingKind::SlowDb)],
            "{name}"
        );
        assert!(store
            .scan_index(IndexTag::Finding, "n_plus_one", 0, u64::MAX, 10)
            .unwrap()
            .is_empty());
        // Retention takes the older trace's.
        store.expire(150 * 60_000_000).unwrap();
        assert_eq!(kinds(&all), [(2, FindingKind::SlowDb)], "{name}");
    }
}

/// An edge storms over a range when some minute of it has at least ten
/// retries that are a tenth of its calls; RocksDB's store keeps the verdict
/// with the range's sum and reads again only the minutes written since, so
/// calls that dilute a storming minute end the storm and retries elsewhere
/// start one, on a range read again and on one that moved on.
#[test]
fn edges_storm_by_the_minute_as_rows_land() {
    use super::storm::StormRule;
    let minute_us = 60_000_000u64;
    let calls = |minute: u32, target: &str, calls: i64, retries: i64| {
        let mut row = db_call_row(minute, target, CallClass::Ok, 1_000);
        row.aggregate = Aggregate::default();
        for n in 0..calls {
            row.aggregate.observe(CallClass::Fault, 1_000, n < retries);
        }
        row
    };
    let rule = StormRule::default();
    for (name, store, _dir) in stores() {
        let storms = |from: u32, to: u32| -> Vec<String> {
            let mut targets: Vec<String> = store
                .graph_storms(u64::from(from) * minute_us, u64::from(to) * minute_us, rule)
                .unwrap()
                .into_iter()
                .map(|subject| match subject {
                    GraphSubject::Edge { target, .. } => target,
                    GraphSubject::Node { id, .. } => panic!("a node storms: {id}"),
                })
                .collect();
            targets.sort();
            targets
        };
        let write = |rows: &[GraphRow]| store.complete(&[], &[], &[], rows, &[]).unwrap();
        // Retries spread thin over the hour (9 a minute): no storm; one
        // minute with 12 of 100: a storm.
        let mut rows: Vec<GraphRow> = (600..660).map(|m| calls(m, "thin", 90, 9)).collect();
        rows.push(calls(615, "stripe", 100, 12));
        write(&rows);
        assert_eq!(storms(600, 660), ["stripe"], "{name}");
        assert_eq!(storms(600, 660), ["stripe"], "{name}: read again");
        // Calls land in that minute: 12 retries of 130 calls are under a tenth.
        write(&[calls(615, "stripe", 30, 0)]);
        assert!(storms(600, 660).is_empty(), "{name}: diluted");
        // Retries land in another minute: a storm again.
        write(&[calls(640, "stripe", 10, 10)]);
        assert_eq!(storms(600, 660), ["stripe"], "{name}");
        // The range moved on past that minute: none; back over it: there.
        assert!(storms(641, 701).is_empty(), "{name}");
        assert_eq!(storms(610, 670), ["stripe"], "{name}");
        assert!(storms(0, 600).is_empty(), "{name}");
    }
}
