//! The service map's aggregates: ranges add up, late and racing writes count
//! once, storms by the minute.

use std::sync::Arc;

use super::stores;
use crate::model::{Aggregate, CallClass, EdgeType, GraphRow, GraphSubject};
use crate::storage::TraceStore;

/// One call from `order` to the database `target` in `minute`, as a graph row.
pub(crate) fn db_call_row(
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

/// An edge storms over a range when some minute of it has at least ten
/// retries that are a tenth of its calls; RocksDB's store keeps the verdict
/// with the range's sum and reads again only the minutes written since, so
/// calls that dilute a storming minute end the storm and retries elsewhere
/// start one, on a range read again and on one that moved on.
#[test]
fn edges_storm_by_the_minute_as_rows_land() {
    use crate::storage::storm::StormRule;
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
