//! `sequential_calls`: under one parent span, independent calls made one
//! after another that could run in parallel. A detector of
//! `analysis::detectors`, run at completion.
//!
//! Running them in parallel would take as long as the longest, so the time
//! it saves is the sum of their durations minus the longest; a run of calls
//! is reported when that saving reaches `sequential_min_saving`.
//!
//! A trace shows no data dependencies — whether the second call needs what
//! the first returned — so the detector is conservative and takes a run of
//! calls as independent only when:
//!
//! - they are consecutive children of the parent: any other child in between
//!   (an internal span, a call that does not qualify) ends the run;
//! - each starts at or after the previous one ended (calls that overlap are
//!   already concurrent) and at most 5 ms after it: a longer gap is the caller
//!   working, likely on what the previous call returned;
//! - they differ: no two have the same target and operation. A repeated
//!   template is a loop, `n_plus_one`'s business, and ends the run;
//! - each is an HTTP, RPC or other client call, or a database read (a SQL
//!   `SELECT` without `FOR UPDATE`/`FOR SHARE`/`INTO`, a Redis read command,
//!   a MongoDB `find`, `count`, `distinct` or `aggregate` without `$out` or
//!   `$merge`). Writes, messages sent, and statements we cannot read must
//!   keep their order;
//! - none is an attempt of a retried call (`retry_storm::attempts`): a retry
//!   waits for the attempt before it by definition.
//!
//! A finding's `target` lists the run's distinct targets, comma-separated;
//! its `statement` is null, as the calls have several.

use super::retry_storm::ms;
use super::{Call, CallKind, Detector, DetectorConfig, TraceView};
use crate::model::{Finding, FindingKind, Severity};

/// The longest pause between two calls of one run.
const MAX_GAP_NS: u64 = 5_000_000;

/// Reports sequential independent calls whose parallel run would save
/// `sequential_min_saving` or more.
pub struct SequentialCalls {
    min_saving_ns: u64,
}

impl SequentialCalls {
    pub fn new(config: &DetectorConfig) -> Self {
        Self {
            min_saving_ns: u64::try_from(config.sequential_min_saving.as_nanos())
                .unwrap_or(u64::MAX),
        }
    }
}

/// Redis commands that only read.
const REDIS_READS: &[&str] = &[
    "GET",
    "MGET",
    "HGET",
    "HMGET",
    "HGETALL",
    "HKEYS",
    "HVALS",
    "HEXISTS",
    "EXISTS",
    "TTL",
    "STRLEN",
    "SMEMBERS",
    "SISMEMBER",
    "SCARD",
    "ZRANGE",
    "ZRANGEBYSCORE",
    "ZREVRANGE",
    "ZSCORE",
    "ZCARD",
    "ZRANK",
    "LRANGE",
    "LLEN",
    "LINDEX",
];

/// Whether a normalized database statement only reads (module doc).
fn is_read(template: &str) -> bool {
    // Templates spell keywords and commands in capitals (`fingerprint`).
    let upper = template;
    if upper.starts_with("SELECT ") {
        return ![" FOR UPDATE", " FOR SHARE", " FOR NO KEY UPDATE", " INTO "]
            .iter()
            .any(|clause| upper.contains(clause));
    }
    if template.starts_with('{') {
        let reads = [
            "{\"find\":",
            "{\"count\":",
            "{\"distinct\":",
            "{\"aggregate\":",
        ];
        return reads.iter().any(|r| template.starts_with(r))
            && !template.contains("$out")
            && !template.contains("$merge");
    }
    let command = upper.split_whitespace().next().unwrap_or_default();
    REDIS_READS.contains(&command)
}

/// Whether a call may be moved to run beside others.
fn movable(call: &Call) -> bool {
    match call.kind {
        CallKind::Http | CallKind::Rpc | CallKind::Other => true,
        CallKind::Database => call.template.as_deref().is_some_and(is_read),
        CallKind::Messaging => false,
    }
}

/// "a", "a and b", "a, b and c".
fn list(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => one.to_string(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

impl SequentialCalls {
    /// Reports `run` (positions in `view.calls`) under `parent` if it saves enough.
    fn report(&self, view: &TraceView<'_>, parent: usize, run: &[usize], out: &mut Vec<Finding>) {
        if run.len() < 2 {
            return;
        }
        let calls: Vec<&Call> = run.iter().map(|&c| &view.calls[c]).collect();
        let durations: Vec<u64> = calls
            .iter()
            .map(|c| view.spans[c.span].duration_ns())
            .collect();
        let total = durations.iter().fold(0u64, |sum, &d| sum.saturating_add(d));
        let longest = durations.iter().copied().max().unwrap_or(0);
        let saving = total - longest;
        if saving < self.min_saving_ns {
            return;
        }
        let parent = &view.spans[parent];
        let mut targets: Vec<&str> = Vec::new();
        for call in &calls {
            if !targets.contains(&call.target.as_str()) {
                targets.push(&call.target);
            }
        }
        let what = if targets.len() == calls.len() {
            format!("calls {}", list(&targets))
        } else {
            format!("makes {} calls to {}", calls.len(), list(&targets))
        };
        let message = format!(
            "{} {what} one after another under `{}` ({}); run them in parallel to save about {}",
            parent.service(),
            parent.name,
            ms(total),
            ms(saving),
        );
        let severity = if saving.saturating_mul(2) >= parent.duration_ns() {
            Severity::Warning
        } else {
            Severity::Info
        };
        out.push(Finding {
            kind: FindingKind::SequentialCalls,
            severity,
            trace_id: view.trace.trace_id,
            service: parent.service().to_string(),
            operation: parent.name.clone(),
            target: targets.join(", "),
            statement: None,
            span_ids: calls.iter().map(|c| view.spans[c.span].span_id).collect(),
            count: calls.len() as u32,
            total_duration_ns: total,
            max_duration_ns: longest,
            start_ns: view.spans[calls[0].span].start_ns,
            message,
            details: vec![("saving_ms".into(), saving as f64 / 1e6)],
        });
    }
}

impl Detector for SequentialCalls {
    fn inspect(&self, view: &TraceView<'_>, out: &mut Vec<Finding>) {
        let attempts = view.attempts();
        for (parent, children) in view.children.iter().enumerate() {
            let mut run: Vec<usize> = Vec::new();
            for &child in children {
                let candidate = view.call_of[child]
                    .filter(|&c| movable(&view.calls[c]) && !attempts.is_retried(c));
                let Some(at) = candidate else {
                    self.report(view, parent, &run, out);
                    run.clear();
                    continue;
                };
                let call = &view.calls[at];
                let follows = run.last().is_some_and(|&prev| {
                    let before = &view.spans[view.calls[prev].span];
                    let start = view.spans[call.span].start_ns;
                    start >= before.end_ns && start - before.end_ns <= MAX_GAP_NS
                });
                let repeated = run.iter().any(|&c| {
                    let other = &view.calls[c];
                    other.target == call.target && other.operation == call.operation
                });
                if !follows || repeated {
                    self.report(view, parent, &run, out);
                    run.clear();
                }
                run.push(at);
            }
            self.report(view, parent, &run, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{span_id, TraceBuilder};
    use super::*;
    use crate::model::{SpanKind, Trace};

    fn found(trace: &Trace) -> Vec<Finding> {
        let mut out = Vec::new();
        SequentialCalls::new(&DetectorConfig::default()).inspect(&TraceView::new(trace), &mut out);
        out
    }

    /// `api-gateway` handling `GET /home` from 0 to `end_ms`.
    fn gateway(end_ms: f64) -> (TraceBuilder, u32) {
        let mut t = TraceBuilder::default();
        let root = t.server(None, "api-gateway", "GET /home", 0.0, end_ms);
        (t, root)
    }

    #[test]
    fn independent_calls_one_after_another_are_reported() {
        let (mut t, root) = gateway(430.0);
        let auth = t.http_call(root, "api-gateway", "GET http://auth/session", 1.0, 101.0);
        let user = t.http_call(root, "api-gateway", "GET http://user/me", 102.0, 222.0);
        let catalog = t.http_call(root, "api-gateway", "GET http://catalog/top", 223.0, 423.0);
        let found = found(&t.build());
        assert_eq!(found.len(), 1);
        let f = &found[0];
        assert_eq!(f.kind, FindingKind::SequentialCalls);
        assert_eq!(
            (f.service.as_str(), f.operation.as_str()),
            ("api-gateway", "GET /home")
        );
        assert_eq!(f.target, "auth, user, catalog");
        assert_eq!(f.statement, None);
        assert_eq!(f.span_ids, [span_id(auth), span_id(user), span_id(catalog)]);
        assert_eq!(f.count, 3);
        assert_eq!(f.total_duration_ns, 420_000_000);
        assert_eq!(f.max_duration_ns, 200_000_000);
        assert_eq!(f.details, [("saving_ms".to_string(), 220.0)]);
        assert_eq!(f.severity, Severity::Warning, "220 of 430 ms");
        assert_eq!(
            f.message,
            "api-gateway calls auth, user and catalog one after another under `GET /home` \
             (420 ms); run them in parallel to save about 220 ms"
        );
    }

    #[test]
    fn a_saving_under_half_the_parent_is_info_and_under_the_minimum_is_nothing() {
        let (mut t, root) = gateway(1000.0);
        t.http_call(root, "api-gateway", "GET http://auth/session", 0.0, 150.0);
        t.http_call(root, "api-gateway", "GET http://user/me", 150.0, 300.0);
        let found = found(&t.build());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].severity, Severity::Info);

        let (mut t, root) = gateway(1000.0);
        t.http_call(root, "api-gateway", "GET http://auth/session", 0.0, 90.0);
        t.http_call(root, "api-gateway", "GET http://user/me", 90.0, 300.0);
        assert!(super::tests::found(&t.build()).is_empty(), "saves 90 ms");
    }

    #[test]
    fn overlapping_calls_are_already_parallel() {
        let (mut t, root) = gateway(500.0);
        t.http_call(root, "api-gateway", "GET http://auth/session", 0.0, 200.0);
        t.http_call(root, "api-gateway", "GET http://user/me", 10.0, 210.0);
        t.http_call(root, "api-gateway", "GET http://catalog/top", 20.0, 220.0);
        assert!(found(&t.build()).is_empty());
    }

    #[test]
    fn work_between_calls_ends_the_run() {
        // A pause: the caller works, likely on the first answer.
        let (mut t, root) = gateway(500.0);
        t.http_call(root, "api-gateway", "GET http://auth/session", 0.0, 200.0);
        t.http_call(root, "api-gateway", "GET http://user/me", 210.0, 410.0);
        assert!(found(&t.build()).is_empty());
        // A child span in between, however short.
        let (mut t, root) = gateway(500.0);
        t.http_call(root, "api-gateway", "GET http://auth/session", 0.0, 200.0);
        t.span(
            Some(root),
            "api-gateway",
            SpanKind::Internal,
            "decode",
            200.0,
            201.0,
            &[],
        );
        t.http_call(root, "api-gateway", "GET http://user/me", 201.0, 401.0);
        assert!(found(&t.build()).is_empty());
    }

    #[test]
    fn a_repeated_template_is_n_plus_one_not_sequential() {
        let (mut t, root) = gateway(1000.0);
        for i in 0..4 {
            let at = 200.0 * i as f64;
            t.http_call(
                root,
                "api-gateway",
                &format!("GET http://user/users/{}", i + 100),
                at,
                at + 200.0,
            );
        }
        assert!(found(&t.build()).is_empty());
    }

    #[test]
    fn retry_attempts_are_not_independent_calls() {
        let (mut t, root) = gateway(1000.0);
        let first = t.http_call(root, "api-gateway", "GET http://auth/session", 0.0, 200.0);
        t.status(first, 503);
        t.http_call(root, "api-gateway", "GET http://auth/session", 200.0, 400.0);
        t.http_call(root, "api-gateway", "GET http://user/me", 400.0, 600.0);
        assert!(found(&t.build()).is_empty());
    }

    #[test]
    fn database_reads_run_in_parallel_but_writes_keep_their_place() {
        let (mut t, root) = gateway(1000.0);
        t.query(
            root,
            "api-gateway",
            "SELECT * FROM users WHERE id = 1",
            0.0,
            150.0,
        );
        t.query(
            root,
            "api-gateway",
            "SELECT * FROM carts WHERE user_id = 1",
            150.0,
            300.0,
        );
        t.http_call(root, "api-gateway", "GET http://catalog/top", 300.0, 450.0);
        let reads = found(&t.build());
        assert_eq!(reads.len(), 1);
        assert_eq!(reads[0].count, 3);
        assert_eq!(
            reads[0].message,
            "api-gateway makes 3 calls to bookstore and catalog one after another under \
             `GET /home` (450 ms); run them in parallel to save about 300 ms"
        );

        let (mut t, root) = gateway(1000.0);
        t.query(
            root,
            "api-gateway",
            "SELECT * FROM users WHERE id = 1",
            0.0,
            150.0,
        );
        t.query(
            root,
            "api-gateway",
            "UPDATE carts SET n = 2 WHERE id = 1",
            150.0,
            300.0,
        );
        t.query(
            root,
            "api-gateway",
            "SELECT * FROM carts WHERE user_id = 1 FOR UPDATE",
            300.0,
            450.0,
        );
        t.http_call(root, "api-gateway", "GET http://catalog/top", 450.0, 600.0);
        assert!(found(&t.build()).is_empty());
    }

    #[test]
    fn reads_are_told_from_writes() {
        assert!(is_read("SELECT * FROM users WHERE id = ?"));
        assert!(!is_read("SELECT * FROM users WHERE id = ? FOR UPDATE"));
        assert!(!is_read("INSERT INTO users VALUES (?)"));
        assert!(is_read("HGETALL user:?"));
        assert!(!is_read("SET user:?:name ?"));
        assert!(is_read(r#"{"find":"users","filter":{"_id":?}}"#));
        assert!(!is_read(r#"{"aggregate":"users","pipeline":[{"$out":?}]}"#));
        assert!(!is_read(r#"{"insert":"users"}"#));
    }
}
