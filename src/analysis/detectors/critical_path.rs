//! The critical path of a trace: the chain of spans that determines its
//! end-to-end latency, each with the time on the path spent in the span
//! itself. A pure function beside the detectors, for the trace view and for
//! attributing a slow trace to the spans worth making faster.
//!
//! The algorithm is the one Jaeger's UI and Uber's CRISP use. Start at the
//! root with a cursor at its end. Walk backwards: the child that finished
//! last at or before the cursor is on the path; the time between its end and
//! the cursor is the parent's own; the child's window is walked the same way,
//! then the cursor moves to the child's start. When no child ended before the
//! cursor, the rest of the window, back to its start, is the parent's own.
//!
//! - A child still running at the cursor (ended after it) is skipped: the
//!   parent was not waiting for it there, it was waiting for the later one.
//! - Children are clamped to their parent's window first, so a child that
//!   outlives its parent (an async job, clock skew between hosts) counts only
//!   up to the parent's end, and one entirely outside it not at all. Hence
//!   the steps' `self_ns` sum to the root's duration.
//! - Spans that are not descendants of `Trace::root` (other orphan subtrees
//!   of an incomplete trace) are not on the path.

use std::cmp::Reverse;
use std::collections::HashMap;

use crate::model::{SpanId, Trace};

/// One span on the critical path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathStep {
    pub span_id: SpanId,
    /// The time on the path spent in this span and none of its children (ns).
    pub self_ns: u64,
}

/// A span being walked: its window, the cursor moving back from its end,
/// and its clamped children by end, latest first.
struct Frame {
    span: usize,
    start: u64,
    cursor: u64,
    children: Vec<(u64, u64, usize)>,
    next: usize,
}

/// The critical path of `trace`, root first, each span's children on the
/// path after it in start order (a waterfall's order). Empty for an empty
/// trace.
pub fn critical_path(trace: &Trace) -> Vec<PathStep> {
    let spans = &trace.spans;
    let Some(root) = trace.root() else {
        return Vec::new();
    };
    let Some(root) = spans.iter().position(|s| std::ptr::eq(s, root)) else {
        return Vec::new();
    };
    let at: HashMap<SpanId, usize> = spans
        .iter()
        .enumerate()
        .map(|(i, s)| (s.span_id, i))
        .collect();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); spans.len()];
    for (i, span) in spans.iter().enumerate() {
        if let Some(&p) = span.parent_span_id.and_then(|p| at.get(&p)) {
            if p != i {
                children[p].push(i);
            }
        }
    }

    let frame = |span: usize, start: u64, end: u64| {
        let mut clamped: Vec<(u64, u64, usize)> = children[span]
            .iter()
            .map(|&c| (spans[c].start_ns.max(start), spans[c].end_ns.min(end), c))
            .filter(|&(s, e, _)| e > s)
            .collect();
        // Latest end first; of two ending together, the longer covers more.
        clamped.sort_by_key(|&(s, e, c)| (Reverse(e), s, c));
        Frame {
            span,
            start,
            cursor: end,
            children: clamped,
            next: 0,
        }
    };

    let mut self_ns = vec![0u64; spans.len()];
    let mut on_path = vec![false; spans.len()];
    // Each span's children on the path, latest first (the walk's order).
    let mut path_children: Vec<Vec<usize>> = vec![Vec::new(); spans.len()];
    on_path[root] = true;
    let root_span = &spans[root];
    let mut stack = vec![frame(
        root,
        root_span.start_ns,
        root_span.end_ns.max(root_span.start_ns),
    )];
    while let Some(top) = stack.last_mut() {
        // The cursor only moves back, so a child skipped for ending after
        // it never qualifies again.
        while top
            .children
            .get(top.next)
            .is_some_and(|&(_, end, c)| end > top.cursor || on_path[c])
        {
            top.next += 1;
        }
        match top.children.get(top.next).copied() {
            Some((start, end, child)) => {
                top.next += 1;
                self_ns[top.span] += top.cursor - end;
                top.cursor = start;
                path_children[top.span].push(child);
                on_path[child] = true;
                stack.push(frame(child, start, end));
            }
            None => {
                self_ns[top.span] += top.cursor - top.start;
                stack.pop();
            }
        }
    }

    let mut out = Vec::new();
    let mut order = vec![root];
    while let Some(span) = order.pop() {
        out.push(PathStep {
            span_id: spans[span].span_id,
            self_ns: self_ns[span],
        });
        // Latest first onto the stack: the earliest comes off next.
        order.extend(path_children[span].iter().copied());
    }
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::testing::{span_id, TraceBuilder};
    use super::*;
    use crate::model::SpanKind;

    fn steps(path: &[PathStep]) -> Vec<(SpanId, u64)> {
        path.iter().map(|s| (s.span_id, s.self_ns)).collect()
    }

    const MS: u64 = 1_000_000;

    fn internal(t: &mut TraceBuilder, parent: Option<u32>, start: f64, end: f64) -> u32 {
        t.span(parent, "svc", SpanKind::Internal, "work", start, end, &[])
    }

    #[test]
    fn sequential_children_are_all_on_the_path() {
        let mut t = TraceBuilder::default();
        let root = internal(&mut t, None, 0.0, 100.0);
        let a = internal(&mut t, Some(root), 10.0, 40.0);
        let b = internal(&mut t, Some(root), 40.0, 90.0);
        assert_eq!(
            steps(&critical_path(&t.build())),
            [
                (span_id(root), 20 * MS),
                (span_id(a), 30 * MS),
                (span_id(b), 50 * MS)
            ]
        );
    }

    #[test]
    fn of_parallel_children_only_the_last_to_finish_is_on_the_path() {
        let mut t = TraceBuilder::default();
        let root = internal(&mut t, None, 0.0, 100.0);
        let slow = internal(&mut t, Some(root), 10.0, 90.0);
        let nested = internal(&mut t, Some(slow), 20.0, 60.0);
        internal(&mut t, Some(root), 10.0, 50.0);
        // Ends after the slow one started: the root was waiting for that.
        internal(&mut t, Some(root), 5.0, 15.0);
        assert_eq!(
            steps(&critical_path(&t.build())),
            [
                (span_id(root), 20 * MS),
                (span_id(slow), 40 * MS),
                (span_id(nested), 40 * MS)
            ]
        );
    }

    #[test]
    fn a_child_that_outlives_its_parent_counts_up_to_the_parents_end() {
        let mut t = TraceBuilder::default();
        let root = internal(&mut t, None, 0.0, 100.0);
        let job = internal(&mut t, Some(root), 50.0, 150.0);
        // Entirely after the root: not on the path at all.
        internal(&mut t, Some(root), 120.0, 130.0);
        let path = critical_path(&t.build());
        assert_eq!(
            steps(&path),
            [(span_id(root), 50 * MS), (span_id(job), 50 * MS)]
        );
    }

    #[test]
    fn a_trace_missing_its_root_starts_at_the_earliest_orphan() {
        let mut t = TraceBuilder::default();
        // Span 0 stands in for the missing root and is left out of the trace.
        let missing = internal(&mut t, None, 0.0, 1.0);
        let orphan = internal(&mut t, Some(missing), 10.0, 60.0);
        let child = internal(&mut t, Some(orphan), 20.0, 30.0);
        internal(&mut t, Some(missing), 70.0, 90.0);
        let mut trace = t.build();
        trace.spans.retain(|s| s.span_id != span_id(missing));
        assert_eq!(
            steps(&critical_path(&trace)),
            [(span_id(orphan), 40 * MS), (span_id(child), 10 * MS)]
        );
        assert!(critical_path(&crate::model::Trace::default()).is_empty());
    }

    #[test]
    fn a_client_span_covered_by_its_server_span_is_on_the_path_with_no_time_of_its_own() {
        let mut t = TraceBuilder::default();
        let root = internal(&mut t, None, 0.0, 100.0);
        let client = t.span(Some(root), "a", SpanKind::Client, "GET", 10.0, 90.0, &[]);
        let server = t.span(
            Some(client),
            "b",
            SpanKind::Server,
            "GET /",
            10.0,
            90.0,
            &[],
        );
        assert_eq!(
            steps(&critical_path(&t.build())),
            [
                (span_id(root), 20 * MS),
                (span_id(client), 0),
                (span_id(server), 80 * MS)
            ]
        );
    }

    proptest! {
        /// Whatever the tree, the path's time is the root's duration, each
        /// span on it once, and the root first.
        #[test]
        fn the_path_accounts_for_the_roots_duration(
            spans in prop::collection::vec((0usize..64, 0u32..1000, 0u32..1000), 1..40)
        ) {
            let mut t = TraceBuilder::default();
            let root = internal(&mut t, None, 0.0, 500.0);
            for (i, &(parent, start, length)) in spans.iter().enumerate() {
                let parent = (parent % (i + 1)) as u32;
                let start = f64::from(start) - 100.0;
                internal(&mut t, Some(parent), start.max(0.0), start.max(0.0) + f64::from(length) / 2.0);
            }
            let path = critical_path(&t.build());
            prop_assert_eq!(path[0].span_id, span_id(root));
            prop_assert_eq!(path.iter().map(|s| s.self_ns).sum::<u64>(), 500 * MS);
            let mut ids: Vec<_> = path.iter().map(|s| s.span_id).collect();
            ids.sort();
            ids.dedup();
            prop_assert_eq!(ids.len(), path.len());
        }
    }
}
