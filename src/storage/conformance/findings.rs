//! Findings: stored with their trace, replaced on re-completion, indexed,
//! expired.

use super::stores;
use crate::model::{TraceId, TraceSummary};
use crate::storage::{FindingQuery, IndexTag};

/// Findings are stored with their trace's completion, read back by time,
/// kind, service and trace, indexed by kind for trace search, replaced (not
/// added to) when the trace completes again, and dropped by retention.
#[test]
fn findings_are_stored_replaced_and_expired_with_their_trace() {
    use crate::model::{Finding, FindingKind};
    use crate::storage::findings::sample;
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
