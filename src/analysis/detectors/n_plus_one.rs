//! `n_plus_one`: a loop that makes one call per item where one call could
//! fetch them all — under one parent span, at least `n_plus_one_min` database
//! calls, or HTTP/RPC client calls, with the same normalized template and
//! target, run one after another.
//!
//! "One after another" is the API's rule: taken in start order, none overlaps
//! the next by more than 1 ms (`OVERLAP_TOLERANCE_NS`, for clock jitter);
//! calls with other templates may sit between them. Calls that overlap more
//! ran in parallel: the request waited for them once, not once each, so they
//! are no N+1 however many there are. A call nested inside another of its
//! template ran beside it too, however short (`longest_sequence`).
//!
//! When a template's calls mix both — a loop that awaits a few at a time, a
//! parallel burst before a sequential loop — the detector takes the longest
//! chain of them that ran one after another, the calls that overlapped it
//! sitting between like any other call. Its length is the number of round
//! trips the request made in turn, which is what batching would save: five
//! rounds of two parallel calls is a chain of five, ten calls fired at once a
//! chain of one. The finding describes that chain only (`count`, `span_ids`,
//! durations), so it may understate the calls made but never overstates the
//! time waited. A stricter reading, where any overlapping pair breaks the run,
//! would let a loop escape detection by running two at a time.
//!
//! `share_of_trace` is the wall-clock time the chain covers (its calls'
//! union, which is nearly their sum, as they hardly overlap) over the trace's
//! duration: it stays within 0..1 and is the share of the request a batch
//! could give back. The message quotes the same figure.
//!
//! One finding per parent and template (and target: the same SQL against two
//! databases is two loops); critical from four times the minimum count, or
//! when the loop takes half the request.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::{message, Call, CallKind, Detector, DetectorConfig, FastMap, TraceView};
use crate::model::{Finding, FindingKind, Severity};

/// Overlap between consecutive calls that still counts as one after another.
const OVERLAP_TOLERANCE_NS: u64 = 1_000_000;
/// A loop this many times the minimum count is critical...
const CRITICAL_FACTOR: usize = 4;
/// ...as is one that takes this share of the request.
const CRITICAL_SHARE: f64 = 0.5;

pub struct NPlusOne {
    min: usize,
}

impl NPlusOne {
    pub fn new(config: &DetectorConfig) -> Self {
        Self {
            // Two is the least that can repeat; a smaller setting would make
            // every single call a loop.
            min: config.n_plus_one_min.max(2),
        }
    }
}

impl Detector for NPlusOne {
    fn inspect(&self, view: &TraceView<'_>, out: &mut Vec<Finding>) {
        for parent in 0..view.spans.len() {
            for calls in repeated(view, parent, self.min) {
                let intervals: Vec<(u64, u64)> = calls
                    .iter()
                    .map(|c| {
                        let span = &view.spans[c.span];
                        (span.start_ns, span.end_ns.max(span.start_ns))
                    })
                    .collect();
                let chain = longest_sequence(&intervals);
                if chain.len() >= self.min {
                    let chain: Vec<&Call> = chain.into_iter().map(|i| calls[i]).collect();
                    out.push(self.finding(view, parent, &chain));
                }
            }
        }
    }
}

impl NPlusOne {
    fn finding(&self, view: &TraceView<'_>, parent: usize, chain: &[&Call]) -> Finding {
        let parent = &view.spans[parent];
        let first = chain[0];
        let spans: Vec<_> = chain.iter().map(|c| &view.spans[c.span]).collect();
        let total = spans
            .iter()
            .map(|s| s.duration_ns())
            .fold(0u64, u64::saturating_add);
        let longest = spans.iter().map(|s| s.duration_ns()).max().unwrap_or(0);
        // The chain is in start order, so its union is one sweep.
        let (mut covered, mut reach) = (0u64, 0u64);
        for span in &spans {
            let start = span.start_ns.max(reach);
            covered += span.end_ns.saturating_sub(start);
            reach = reach.max(span.end_ns);
        }
        let share = match view.duration_ns() {
            0 => 0.0,
            trace => (covered as f64 / trace as f64).min(1.0),
        };
        let count = chain.len();
        let severity =
            if count >= self.min.saturating_mul(CRITICAL_FACTOR) || share >= CRITICAL_SHARE {
                Severity::Critical
            } else {
                Severity::Warning
            };
        let template = first.template.as_deref().unwrap_or_default();
        let (verb, advice) = match first.kind {
            CallKind::Database => ("runs", "batch it"),
            _ => ("calls", "batch it or fetch them together"),
        };
        let text = format!(
            "{} {verb} {} {count} times under `{}`: {}, {} of the request; {advice}",
            parent.service(),
            message::quote(template),
            parent.name,
            message::duration(covered),
            message::percent(share),
        );
        Finding {
            kind: FindingKind::NPlusOne,
            severity,
            trace_id: view.trace.trace_id,
            service: parent.service().to_string(),
            operation: parent.name.clone(),
            target: first.target.clone(),
            statement: first.template.clone(),
            span_ids: spans.iter().map(|s| s.span_id).collect(),
            count: u32::try_from(count).unwrap_or(u32::MAX),
            total_duration_ns: total,
            max_duration_ns: longest,
            start_ns: spans[0].start_ns,
            message: text,
            details: vec![("share_of_trace".to_string(), share)],
        }
    }
}

/// The calls under `parent` that could make a loop — database, HTTP and RPC
/// calls with a template — grouped by kind, target and template, each group
/// in start order, groups in the order they began; groups smaller than `min`
/// are left out.
fn repeated<'v>(view: &'v TraceView<'_>, parent: usize, min: usize) -> Vec<Vec<&'v Call>> {
    let mut at: FastMap<(CallKind, &str, &str), usize> = FastMap::default();
    let mut groups: Vec<Vec<&Call>> = Vec::new();
    for call in view.calls_under(parent) {
        if !matches!(
            call.kind,
            CallKind::Database | CallKind::Http | CallKind::Rpc
        ) {
            continue;
        }
        let Some(template) = call.template.as_deref() else {
            continue;
        };
        let group = *at
            .entry((call.kind, call.target.as_str(), template))
            .or_insert_with(|| {
                groups.push(Vec::new());
                groups.len() - 1
            });
        groups[group].push(call);
    }
    groups.retain(|g| g.len() >= min);
    groups
}

/// The longest chain of `intervals` (`(start, end)` in start order) that ran
/// one after another: positions in start order where each ended no later
/// than `OVERLAP_TOLERANCE_NS` after the next began.
///
/// That is the API's "overlaps the next by at most 1 ms", read strictly for
/// a call nested inside another: a 0.5 ms call within a 100 ms one overlaps
/// it by only 0.5 ms, yet ran in parallel with it, and counting it would let
/// the chain go on through the longer call. Read this way, every call in a
/// chain ended (within the tolerance) before any later one began, so each
/// interval extends the longest chain among those ended in time, found with
/// the intervals kept in a heap by end and released as the starts pass them
/// — O(n log n), as an N+1 loop can run to thousands of calls.
fn longest_sequence(intervals: &[(u64, u64)]) -> Vec<usize> {
    let n = intervals.len();
    let mut length = vec![0usize; n];
    let mut before: Vec<Option<usize>> = vec![None; n];
    let mut pending: BinaryHeap<Reverse<(u64, usize)>> = BinaryHeap::new();
    // The longest chain ending in a call that ended in time, and in any.
    let mut ended: Option<usize> = None;
    let mut seen: Option<usize> = None;
    let better = |best: Option<usize>, i: usize, length: &[usize]| match best {
        Some(b) if length[b] >= length[i] => Some(b),
        _ => Some(i),
    };
    for (j, &(start, end)) in intervals.iter().enumerate() {
        let deadline = start.saturating_add(OVERLAP_TOLERANCE_NS);
        while let Some(&Reverse((e, i))) = pending.peek() {
            if e > deadline {
                break;
            }
            pending.pop();
            ended = better(ended, i, &length);
        }
        before[j] = ended;
        length[j] = before[j].map_or(0, |b| length[b]) + 1;
        pending.push(Reverse((end, j)));
        seen = better(seen, j, &length);
    }
    let mut chain = Vec::new();
    let mut at = seen;
    while let Some(i) = at {
        chain.push(i);
        at = before[i];
    }
    chain.reverse();
    chain
}

#[cfg(test)]
mod tests {
    use super::super::testing::{span_id, TraceBuilder};
    use super::*;
    use crate::model::{AttrValue, SpanId, SpanKind};

    const ITEMS: &str = "SELECT * FROM order_items WHERE order_id = ";
    const SVC: &str = "order-service";

    fn find(t: &mut TraceBuilder) -> Vec<Finding> {
        let trace = t.build();
        let mut out = Vec::new();
        NPlusOne::new(&DetectorConfig::default()).inspect(&TraceView::new(&trace), &mut out);
        out
    }

    fn ids(spans: &[u32]) -> Vec<SpanId> {
        spans.iter().map(|&s| span_id(s)).collect()
    }

    /// A span of order-service's own work: the request (no parent) or a step.
    fn step(t: &mut TraceBuilder, parent: Option<u32>, name: &str, start: f64, end: f64) -> u32 {
        let kind = if parent.is_none() {
            SpanKind::Server
        } else {
            SpanKind::Internal
        };
        t.span(parent, SVC, kind, name, start, end, &[])
    }

    fn request(t: &mut TraceBuilder, end: f64) -> u32 {
        step(t, None, "GET /orders/{id}", 0.0, end)
    }

    /// `n` queries for order items under `parent`, the first at `start`, each
    /// lasting `each` ms and starting `every` ms after the one before.
    fn items(t: &mut TraceBuilder, parent: u32, n: u32, at: (f64, f64, f64)) -> Vec<u32> {
        let (start, each, every) = at;
        (0..n)
            .map(|i| {
                let at = start + every * f64::from(i);
                t.query(parent, SVC, &format!("{ITEMS}{}", 100 + i), at, at + each)
            })
            .collect()
    }

    /// An HTTP client call from order-service to the catalog, or to no one
    /// known when it names no URL.
    fn book(t: &mut TraceBuilder, parent: u32, id: Option<u32>, start: f64, end: f64) -> u32 {
        let mut attrs = vec![("http.request.method", AttrValue::String("GET".into()))];
        if let Some(id) = id {
            let url = format!("http://catalog/books/{id}");
            attrs.push(("url.full", AttrValue::String(url)));
        }
        let call = t.span(
            Some(parent),
            SVC,
            SpanKind::Client,
            "GET",
            start,
            end,
            &attrs,
        );
        t.span(
            Some(call),
            "catalog",
            SpanKind::Server,
            "GET /books/{id}",
            start,
            end,
            &[],
        );
        call
    }

    #[test]
    fn five_sequential_queries_are_an_n_plus_one() {
        let mut t = TraceBuilder::default();
        let root = request(&mut t, 100.0);
        let calls = items(&mut t, root, 5, (10.0, 8.0, 10.0));
        let found = find(&mut t);
        assert_eq!(found.len(), 1, "{found:?}");
        let f = &found[0];
        assert_eq!(f.kind, FindingKind::NPlusOne);
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(
            (f.service.as_str(), f.operation.as_str()),
            (SVC, "GET /orders/{id}")
        );
        assert_eq!(f.target, "bookstore");
        assert_eq!(
            f.statement.as_deref(),
            Some("SELECT * FROM order_items WHERE order_id = ?"),
            "five different literals are one template"
        );
        assert_eq!(f.span_ids, ids(&calls));
        assert_eq!(f.count, 5);
        assert_eq!(f.total_duration_ns, 40_000_000);
        assert_eq!(f.max_duration_ns, 8_000_000);
        assert_eq!(f.start_ns, 1_700_000_000_010_000_000);
        assert_eq!(f.details, vec![("share_of_trace".to_string(), 0.4)]);
    }

    #[test]
    fn four_repeats_are_not_an_n_plus_one() {
        let mut t = TraceBuilder::default();
        let root = request(&mut t, 100.0);
        items(&mut t, root, 4, (10.0, 8.0, 10.0));
        assert!(find(&mut t).is_empty());
    }

    #[test]
    fn five_parallel_queries_are_not_an_n_plus_one() {
        let mut t = TraceBuilder::default();
        let root = request(&mut t, 100.0);
        // Staggered by 0.5 ms, each 20 ms: they all overlap.
        items(&mut t, root, 5, (10.0, 20.0, 0.5));
        assert!(find(&mut t).is_empty());
    }

    #[test]
    fn literals_of_any_kind_fall_into_one_template() {
        let mut t = TraceBuilder::default();
        let root = request(&mut t, 100.0);
        for (i, value) in ["42", "'abc'", "7", "'x''y'", "3.5"].iter().enumerate() {
            let (at, sql) = (
                10.0 * i as f64,
                format!("select name from users where sku = {value}"),
            );
            t.query(root, SVC, &sql, at, at + 5.0);
        }
        let found = find(&mut t);
        assert_eq!(found.len(), 1, "{found:?}");
        let statement = found[0].statement.as_deref();
        assert_eq!(statement, Some("SELECT name FROM users WHERE sku = ?"));
    }

    #[test]
    fn an_overlap_of_one_millisecond_is_still_one_after_another() {
        let mut t = TraceBuilder::default();
        let root = request(&mut t, 100.0);
        // Each starts 1 ms before the previous one ends.
        items(&mut t, root, 5, (10.0, 10.0, 9.0));
        assert_eq!(find(&mut t).len(), 1);

        let mut t = TraceBuilder::default();
        let root = request(&mut t, 100.0);
        // 1.5 ms is more than clock jitter: they ran in parallel.
        items(&mut t, root, 5, (10.0, 10.0, 8.5));
        assert!(find(&mut t).is_empty());
    }

    #[test]
    fn other_calls_may_sit_between_the_repeats() {
        let mut t = TraceBuilder::default();
        let root = request(&mut t, 200.0);
        for i in 0..5 {
            let at = 20.0 * f64::from(i);
            t.query(root, SVC, &format!("{ITEMS}{i}"), at, at + 5.0);
            t.query(
                root,
                SVC,
                "SELECT price FROM books WHERE id = 1",
                at + 6.0,
                at + 9.0,
            );
            book(&mut t, root, Some(i), at + 10.0, at + 15.0);
        }
        let found = find(&mut t);
        let statements: Vec<_> = found.iter().map(|f| f.statement.as_deref()).collect();
        assert_eq!(
            statements,
            vec![
                Some("SELECT * FROM order_items WHERE order_id = ?"),
                Some("SELECT price FROM books WHERE id = ?"),
                Some("GET catalog /books/{id}"),
            ],
            "one finding per template"
        );
        assert!(found.iter().all(|f| f.count == 5));
    }

    #[test]
    fn calls_under_different_parents_do_not_combine() {
        let mut t = TraceBuilder::default();
        let root = request(&mut t, 200.0);
        let a = step(&mut t, Some(root), "load items", 0.0, 40.0);
        let b = step(&mut t, Some(root), "load more", 50.0, 90.0);
        items(&mut t, a, 3, (1.0, 5.0, 10.0));
        items(&mut t, b, 3, (51.0, 5.0, 10.0));
        // Five under one step are reported there, and only those.
        let c = step(&mut t, Some(root), "load all", 100.0, 190.0);
        items(&mut t, c, 5, (101.0, 5.0, 10.0));
        let found = find(&mut t);
        assert_eq!(found.len(), 1);
        assert_eq!(
            (found[0].operation.as_str(), found[0].count),
            ("load all", 5)
        );
    }

    #[test]
    fn repeated_http_calls_are_an_n_plus_one() {
        let mut t = TraceBuilder::default();
        let root = request(&mut t, 100.0);
        let calls: Vec<u32> = (0..6)
            .map(|i| {
                let at = 10.0 * f64::from(i);
                book(&mut t, root, Some(1000 + i), at, at + 9.0)
            })
            .collect();
        let found = find(&mut t);
        assert_eq!(found.len(), 1, "{found:?}");
        let f = &found[0];
        assert_eq!(f.target, "catalog");
        assert_eq!(f.statement.as_deref(), Some("GET catalog /books/{id}"));
        assert_eq!(f.span_ids, ids(&calls));
        assert_eq!(f.severity, Severity::Critical, "54 of 100 ms");
        assert_eq!(
            f.message,
            "order-service calls `GET catalog /books/{id}` 6 times under `GET /orders/{id}`: \
             54 ms, 54 % of the request; batch it or fetch them together"
        );
    }

    #[test]
    fn calls_without_a_template_are_not_compared() {
        let mut t = TraceBuilder::default();
        let root = request(&mut t, 100.0);
        for i in 0..6 {
            let at = 10.0 * f64::from(i);
            book(&mut t, root, None, at, at + 5.0);
        }
        assert!(find(&mut t).is_empty());
    }

    #[test]
    fn the_message_gives_the_count_time_and_share() {
        let mut t = TraceBuilder::default();
        let root = request(&mut t, 295.0);
        items(&mut t, root, 12, (10.0, 15.0, 15.0));
        let found = find(&mut t);
        assert_eq!(
            found[0].message,
            "order-service runs `SELECT * FROM order_items WHERE order_id = ?` 12 times under \
             `GET /orders/{id}`: 180 ms, 61 % of the request; batch it"
        );
        assert_eq!(found[0].severity, Severity::Critical, "61 % of the request");
    }

    #[test]
    fn twenty_repeats_are_critical_however_short() {
        let mut t = TraceBuilder::default();
        let root = request(&mut t, 1_000.0);
        items(&mut t, root, 19, (0.0, 1.0, 2.0));
        let again = step(&mut t, Some(root), "again", 100.0, 200.0);
        items(&mut t, again, 20, (100.0, 1.0, 2.0));
        let found: Vec<_> = find(&mut t).iter().map(|f| (f.count, f.severity)).collect();
        assert_eq!(
            found,
            vec![(19, Severity::Warning), (20, Severity::Critical)]
        );
    }

    #[test]
    fn a_parallel_burst_before_a_loop_leaves_the_loop() {
        let mut t = TraceBuilder::default();
        let root = request(&mut t, 200.0);
        let burst = items(&mut t, root, 5, (0.0, 20.0, 0.1));
        let sequential = items(&mut t, root, 5, (30.0, 10.0, 10.0));
        let found = find(&mut t);
        assert_eq!(found.len(), 1);
        // The burst was one round trip in turn, then five more.
        assert_eq!(found[0].count, 6);
        assert_eq!(found[0].span_ids[0], span_id(burst[0]));
        assert_eq!(found[0].span_ids[1..], ids(&sequential));
    }

    #[test]
    fn a_loop_awaiting_two_at_a_time_counts_its_rounds() {
        let mut t = TraceBuilder::default();
        let root = request(&mut t, 200.0);
        for round in 0..5 {
            let at = 20.0 * f64::from(round);
            t.query(root, SVC, &format!("{ITEMS}{round}"), at, at + 10.0);
            t.query(
                root,
                SVC,
                &format!("{ITEMS}{}", round + 50),
                at + 0.5,
                at + 15.0,
            );
        }
        let found = find(&mut t);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].count, 5, "five rounds of two");
        assert_eq!(found[0].total_duration_ns, 50_000_000);
    }

    #[test]
    fn the_longest_sequence_skips_calls_that_overlap_it() {
        let ms = |a: u64, b: u64| (a * 1_000_000, b * 1_000_000);
        assert_eq!(longest_sequence(&[]), Vec::<usize>::new());
        let parallel = [ms(0, 10), ms(1, 11), ms(2, 12)];
        assert_eq!(longest_sequence(&parallel), vec![0]);
        // A long call overlapping a sequence of short ones.
        let long = [ms(0, 5), ms(1, 100), ms(6, 10), ms(11, 15), ms(16, 20)];
        assert_eq!(longest_sequence(&long), vec![0, 2, 3, 4]);
        // Sub-millisecond calls overlap nothing beyond the tolerance...
        let short = [(0, 500_000), (100_000, 600_000), (200_000, 700_000)];
        assert_eq!(longest_sequence(&short), vec![0, 1, 2]);
        // ...but one inside a long call ran beside it, not after it.
        let nested = [ms(0, 100), (50_000_000, 50_500_000), ms(51, 60)];
        assert_eq!(longest_sequence(&nested), vec![1, 2]);
    }
}
