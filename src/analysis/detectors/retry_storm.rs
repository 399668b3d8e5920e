//! `retry_storm`: one logical call, from one caller to the same callee and
//! operation, attempted at least `retry_min_attempts` times in a trace
//! (API.md). A detector of `analysis::detectors`, run at completion.
//!
//! Attempts are sibling calls: the same parent span, `Call::target` and
//! `Call::operation`. Within such a group a call is the next attempt of an
//! earlier one when it starts after that one ended (an overlap of at most
//! 1 ms tolerated, as `n_plus_one` tolerates it) and either the earlier one
//! failed (`Call::failed`) or timed out, or the later one carries a retry
//! marker (`Call::retry_marker`). Calls running at the same time are a fan-out,
//! not retries; a call after a success is a new logical call unless it says
//! it is a retry. When attempts could continue more than one earlier chain
//! (concurrent lanes that each retry), they continue the one that ended last.
//!
//! Retries multiply down a call path: when the gateway tries `order` 3 times
//! and every `order` request tries `payment` 3 times, `payment` sees 9
//! requests for one user request. A finding's `amplification` is its attempts
//! times the attempts of every retried call above it (the chains its
//! ancestor call spans belong to).
//!
//! The same rule marks map edges as retries (`graph::edges::retried_calls`),
//! which counts only faults and throttles as failures; a storm here also
//! counts 4xx answers and timeouts, since a client that retries them still
//! multiplies load.

use super::{Call, Detector, DetectorConfig, FastMap, TraceView};
use crate::model::{Finding, FindingKind, Severity, Span, SpanId};

/// How far an attempt may overlap the one before it and still follow it.
const OVERLAP_TOLERANCE_NS: u64 = 1_000_000;

/// From this amplification on a storm is critical...
const CRITICAL_AMPLIFICATION: u64 = 9;
/// ...and from this many attempts at one layer.
const CRITICAL_ATTEMPTS: usize = 5;

/// Backoffs listed in a message before the rest are elided.
const LISTED_BACKOFFS: usize = 5;

/// Reports logical calls attempted `retry_min_attempts` times or more.
pub struct RetryStorm {
    min_attempts: usize,
}

impl RetryStorm {
    pub fn new(config: &DetectorConfig) -> Self {
        Self {
            // One attempt is no retry, whatever the config says.
            min_attempts: config.retry_min_attempts.max(2),
        }
    }
}

/// The trace's calls split into logical calls: each chain holds the
/// attempts of one, as positions in `TraceView::calls`, in start order.
pub(super) struct Attempts {
    pub chains: Vec<Vec<usize>>,
    /// Each call's chain, by position in `calls`.
    pub chain_of: Vec<usize>,
}

impl Attempts {
    /// Whether call `call` is one of several attempts of a logical call.
    pub fn is_retried(&self, call: usize) -> bool {
        self.chains[self.chain_of[call]].len() > 1
    }
}

/// Whether a span says it timed out without (necessarily) saying it failed:
/// a status message or `error.type` naming a timeout or deadline.
fn timed_out(span: &Span) -> bool {
    let says_timeout = |text: &str| {
        let text = text.to_ascii_lowercase();
        ["timeout", "timed out", "deadline"]
            .iter()
            .any(|word| text.contains(word))
    };
    says_timeout(&span.status.message)
        || matches!(span.attr("error.type"), Some(crate::model::AttrValue::String(s)) if says_timeout(s))
}

fn unsuccessful(view: &TraceView<'_>, call: &Call) -> bool {
    call.failed || timed_out(&view.spans[call.span])
}

/// A chain being built: its attempts and how its last attempt ended.
struct Chain {
    calls: Vec<usize>,
    last_end: u64,
    last_failed: bool,
}

/// Splits the trace's calls into logical calls (module doc).
pub(super) fn attempts(view: &TraceView<'_>) -> Attempts {
    // Sibling calls to one callee and operation, in start order (`calls` is).
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut group_of: FastMap<(Option<SpanId>, &str, &str), usize> = FastMap::default();
    for (at, call) in view.calls.iter().enumerate() {
        let key = (
            view.spans[call.span].parent_span_id,
            call.target.as_str(),
            call.operation.as_str(),
        );
        let group = *group_of.entry(key).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[group].push(at);
    }
    let mut out = Attempts {
        chains: Vec::new(),
        chain_of: vec![0; view.calls.len()],
    };
    for group in groups {
        let mut chains: Vec<Chain> = Vec::new();
        // Chains whose last attempt failed: any later call may continue them.
        // The rest only take a call marked as a retry.
        let mut open: Vec<usize> = Vec::new();
        for at in group {
            let call = &view.calls[at];
            let span = &view.spans[call.span];
            let failed = unsuccessful(view, call);
            let follows = |c: &Chain| {
                c.last_end <= span.start_ns.saturating_add(OVERLAP_TOLERANCE_NS)
                    && (c.last_failed || call.retry_marker)
            };
            let best = if call.retry_marker {
                (0..chains.len())
                    .filter(|&c| follows(&chains[c]))
                    .max_by_key(|&c| chains[c].last_end)
            } else {
                open.iter()
                    .copied()
                    .filter(|&c| follows(&chains[c]))
                    .max_by_key(|&c| chains[c].last_end)
            };
            let chain = match best {
                Some(c) => {
                    chains[c].calls.push(at);
                    c
                }
                None => {
                    chains.push(Chain {
                        calls: vec![at],
                        last_end: 0,
                        last_failed: false,
                    });
                    chains.len() - 1
                }
            };
            // A new chain starts closed: `last_failed` is false.
            let was_open = chains[chain].last_failed;
            chains[chain].last_end = span.end_ns;
            chains[chain].last_failed = failed;
            match (was_open, failed) {
                (false, true) => open.push(chain),
                (true, false) => open.retain(|&c| c != chain),
                _ => {}
            }
        }
        for chain in chains {
            for &at in &chain.calls {
                out.chain_of[at] = out.chains.len();
            }
            out.chains.push(chain.calls);
        }
    }
    out
}

/// The attempts of the chain at `chain` times those of every chain its
/// ancestor call spans belong to.
fn amplification(view: &TraceView<'_>, attempts: &Attempts, chain: usize) -> u64 {
    let calls = &attempts.chains[chain];
    let mut amplification = calls.len() as u64;
    let mut at = view.parent[view.calls[calls[0]].span];
    // Bounded: a parent cycle in a malformed trace must not hold us.
    for _ in 0..view.spans.len() {
        let Some(span) = at else { break };
        if let Some(call) = view.call_of[span] {
            let upstream = attempts.chains[attempts.chain_of[call]].len() as u64;
            amplification = amplification.saturating_mul(upstream);
        }
        at = view.parent[span];
    }
    amplification
}

/// A duration for a message: whole milliseconds, one decimal below 10 ms.
pub(super) fn ms(ns: u64) -> String {
    let ms = ns as f64 / 1e6;
    if ms >= 10.0 || ns.is_multiple_of(1_000_000) {
        format!("{ms:.0} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

impl Detector for RetryStorm {
    fn inspect(&self, view: &TraceView<'_>, out: &mut Vec<Finding>) {
        let attempts = view.attempts();
        for (chain, calls) in attempts.chains.iter().enumerate() {
            if calls.len() < self.min_attempts {
                continue;
            }
            let first = &view.calls[calls[0]];
            let spans: Vec<&Span> = calls
                .iter()
                .map(|&c| &view.spans[view.calls[c].span])
                .collect();
            let failed = calls
                .iter()
                .filter(|&&c| unsuccessful(view, &view.calls[c]))
                .count();
            let backoffs: Vec<u64> = spans
                .windows(2)
                .map(|pair| pair[1].start_ns.saturating_sub(pair[0].end_ns))
                .collect();
            let amplification = amplification(view, attempts, chain);
            let caller = view.caller_of(first);
            let operation = first.template.as_deref().unwrap_or(&first.operation);

            let mut listed: Vec<String> = backoffs
                .iter()
                .take(LISTED_BACKOFFS)
                .map(|&b| ms(b))
                .collect();
            if backoffs.len() > LISTED_BACKOFFS {
                listed.push("…".into());
            }
            let outcome = if failed > 0 {
                format!("{failed} failed")
            } else {
                format!("{} marked as retries", calls.len() - 1)
            };
            let upstream = if amplification > calls.len() as u64 {
                format!(
                    "; with upstream retries it reaches {} {amplification}×",
                    first.target
                )
            } else {
                String::new()
            };
            let message = format!(
                "{} tried `{operation}` {} times ({outcome}, backoff {}){upstream}: \
                 cap retries and add jittered backoff",
                caller.service(),
                calls.len(),
                listed.join(", "),
            );

            let mut details: Vec<(String, f64)> = backoffs
                .iter()
                .enumerate()
                .map(|(i, &b)| (format!("backoff_ms_{}", i + 1), b as f64 / 1e6))
                .collect();
            details.push(("amplification".into(), amplification as f64));
            let severity =
                if amplification >= CRITICAL_AMPLIFICATION || calls.len() >= CRITICAL_ATTEMPTS {
                    Severity::Critical
                } else {
                    Severity::Warning
                };
            out.push(Finding {
                kind: FindingKind::RetryStorm,
                severity,
                trace_id: view.trace.trace_id,
                service: caller.service().to_string(),
                operation: caller.name.clone(),
                target: first.target.clone(),
                statement: first.template.clone(),
                span_ids: spans.iter().map(|s| s.span_id).collect(),
                count: calls.len() as u32,
                total_duration_ns: spans
                    .iter()
                    .map(|s| s.duration_ns())
                    .fold(0, u64::saturating_add),
                max_duration_ns: spans.iter().map(|s| s.duration_ns()).max().unwrap_or(0),
                start_ns: spans[0].start_ns,
                message,
                details,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{span_id, TraceBuilder};
    use super::*;
    use crate::model::AttrValue;

    fn storms(trace: &crate::model::Trace) -> Vec<Finding> {
        let mut out = Vec::new();
        RetryStorm::new(&DetectorConfig::default()).inspect(&TraceView::new(trace), &mut out);
        out
    }

    fn detail(finding: &Finding, name: &str) -> Option<f64> {
        finding
            .details
            .iter()
            .find(|(n, _)| n == name)
            .map(|&(_, v)| v)
    }

    /// `TraceBuilder`'s time 0 (ns since the epoch).
    fn t_origin() -> u64 {
        1_700_000_000_000_000_000
    }

    /// `order` calling `payment` at the given times, each answered with its status.
    fn payment_calls(attempts: &[(f64, f64, i64)]) -> (TraceBuilder, Vec<u32>) {
        let mut t = TraceBuilder::default();
        let root = t.server(None, "order-service", "POST /orders", 0.0, 1000.0);
        let calls = attempts
            .iter()
            .map(|&(start, end, status)| {
                let call =
                    t.http_call(root, "order-service", "POST http://payment/pay", start, end);
                t.status(call, status);
                call
            })
            .collect();
        (t, calls)
    }

    #[test]
    fn one_failed_call_without_retry_is_no_storm() {
        let (mut t, _) = payment_calls(&[(10.0, 20.0, 503)]);
        assert!(storms(&t.build()).is_empty());
        // Nor are calls after a success: a new logical call each time.
        let (mut t, _) = payment_calls(&[(10.0, 20.0, 200), (30.0, 40.0, 200), (50.0, 60.0, 200)]);
        assert!(storms(&t.build()).is_empty());
    }

    #[test]
    fn three_attempts_after_two_failures_are_a_storm_two_are_not() {
        let (mut t, calls) =
            payment_calls(&[(10.0, 20.0, 503), (20.0, 30.0, 503), (40.0, 55.0, 200)]);
        let found = storms(&t.build());
        assert_eq!(found.len(), 1);
        let storm = &found[0];
        assert_eq!(storm.kind, FindingKind::RetryStorm);
        assert_eq!(storm.severity, Severity::Warning);
        assert_eq!(
            (storm.service.as_str(), storm.operation.as_str()),
            ("order-service", "POST /orders")
        );
        assert_eq!(storm.target, "payment");
        assert_eq!(storm.statement.as_deref(), Some("POST payment /pay"));
        assert_eq!(
            storm.span_ids,
            calls.iter().map(|&c| span_id(c)).collect::<Vec<_>>()
        );
        assert_eq!(storm.count, 3);
        assert_eq!(storm.total_duration_ns, 35_000_000);
        assert_eq!(storm.max_duration_ns, 15_000_000);
        assert_eq!(storm.start_ns, t_origin() + 10_000_000);
        assert_eq!(detail(storm, "backoff_ms_1"), Some(0.0));
        assert_eq!(detail(storm, "backoff_ms_2"), Some(10.0));
        assert_eq!(detail(storm, "backoff_ms_3"), None);
        assert_eq!(detail(storm, "amplification"), Some(3.0));
        assert_eq!(
            storm.message,
            "order-service tried `POST payment /pay` 3 times (2 failed, backoff 0 ms, 10 ms): \
             cap retries and add jittered backoff"
        );

        let (mut t, _) = payment_calls(&[(10.0, 20.0, 503), (30.0, 40.0, 200)]);
        assert!(storms(&t.build()).is_empty());
    }

    #[test]
    fn concurrent_fan_out_to_one_callee_is_not_a_retry() {
        let (mut t, _) = payment_calls(&[
            (10.0, 40.0, 503),
            (11.0, 41.0, 503),
            (12.0, 42.0, 503),
            (13.0, 43.0, 503),
        ]);
        assert!(storms(&t.build()).is_empty());
    }

    #[test]
    fn concurrent_lanes_that_each_retry_are_separate_calls() {
        // Two requests in parallel, each retried twice after failing.
        let (mut t, calls) = payment_calls(&[
            (10.0, 20.0, 503),
            (10.0, 25.0, 503),
            (21.0, 30.0, 503),
            (26.0, 35.0, 503),
            (31.0, 40.0, 200),
            (36.0, 45.0, 200),
        ]);
        let found = storms(&t.build());
        let lanes: Vec<Vec<_>> = found.iter().map(|f| f.span_ids.clone()).collect();
        let ids = |n: &[usize]| n.iter().map(|&i| span_id(calls[i])).collect::<Vec<_>>();
        assert_eq!(lanes, [ids(&[0, 2, 4]), ids(&[1, 3, 5])]);
    }

    #[test]
    fn retry_markers_make_attempts_of_one_call() {
        let (mut t, calls) =
            payment_calls(&[(10.0, 20.0, 200), (25.0, 30.0, 200), (35.0, 40.0, 200)]);
        t.attr(calls[1], "http.request.resend_count", AttrValue::Int(1))
            .attr(calls[2], "http.request.resend_count", AttrValue::Int(2));
        let found = storms(&t.build());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].count, 3);
        assert_eq!(
            found[0].message,
            "order-service tried `POST payment /pay` 3 times (2 marked as retries, backoff 5 ms, 5 ms): \
             cap retries and add jittered backoff"
        );
    }

    #[test]
    fn timeouts_count_as_failed_attempts() {
        let (mut t, calls) =
            payment_calls(&[(10.0, 20.0, 200), (20.0, 30.0, 200), (30.0, 31.0, 200)]);
        for &call in &calls[..2] {
            t.attr(call, "error.type", AttrValue::String("TimeoutError".into()));
        }
        assert_eq!(storms(&t.build()).len(), 1);
    }

    #[test]
    fn attempts_need_the_same_operation() {
        let mut t = TraceBuilder::default();
        let root = t.server(None, "order-service", "POST /orders", 0.0, 1000.0);
        for (i, path) in ["/pay", "/refund", "/void"].iter().enumerate() {
            let at = 10.0 * i as f64;
            let call = t.http_call(
                root,
                "order-service",
                &format!("POST http://payment{path}"),
                at,
                at + 5.0,
            );
            t.status(call, 503);
        }
        assert!(storms(&t.build()).is_empty());
    }

    #[test]
    fn five_attempts_are_critical() {
        let (mut t, _) = payment_calls(&[
            (0.0, 10.0, 503),
            (10.0, 20.0, 503),
            (20.0, 30.0, 503),
            (30.0, 40.0, 503),
            (40.0, 50.0, 503),
        ]);
        let found = storms(&t.build());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].severity, Severity::Critical);
        assert_eq!(detail(&found[0], "backoff_ms_4"), Some(0.0));
    }

    #[test]
    fn amplification_multiplies_attempts_across_layers() {
        let mut t = TraceBuilder::default();
        let root = t.server(None, "gateway", "POST /checkout", 0.0, 1000.0);
        for g in 0..3 {
            let at = 300.0 * g as f64;
            let call = t.http_call(root, "gateway", "POST http://order/orders", at, at + 250.0);
            t.status(call, 503);
            let order = t.server(
                Some(call),
                "order-service",
                "POST /orders",
                at + 1.0,
                at + 249.0,
            );
            for p in 0..3 {
                let at = at + 2.0 + 80.0 * p as f64;
                let pay = t.http_call(
                    order,
                    "order-service",
                    "POST http://payment/pay",
                    at,
                    at + 70.0,
                );
                t.status(pay, 503);
                t.server(Some(pay), "payment", "POST /pay", at + 1.0, at + 69.0);
            }
        }
        let found = storms(&t.build());
        assert_eq!(found.len(), 4, "{found:#?}");
        let gateway: Vec<_> = found.iter().filter(|f| f.service == "gateway").collect();
        assert_eq!(gateway.len(), 1);
        assert_eq!(gateway[0].target, "order-service");
        assert_eq!(detail(gateway[0], "amplification"), Some(3.0));
        assert_eq!(gateway[0].severity, Severity::Warning);
        for payment in found.iter().filter(|f| f.service == "order-service") {
            assert_eq!(payment.target, "payment");
            assert_eq!(payment.count, 3);
            assert_eq!(detail(payment, "amplification"), Some(9.0));
            assert_eq!(payment.severity, Severity::Critical);
            assert_eq!(
                payment.message,
                "order-service tried `POST payment /pay` 3 times (3 failed, backoff 10 ms, 10 ms); \
                 with upstream retries it reaches payment 9×: cap retries and add jittered backoff"
            );
        }
    }
}
