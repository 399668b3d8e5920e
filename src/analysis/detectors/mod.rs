//! Detectors: pure functions of an assembled trace that say what to fix —
//! slow database calls, N+1 loops, retry storms, slow external calls,
//! sequential calls that could run in parallel — one file each, behind the
//! `Detector` trait. They run inside completion (`analysis::Analyzer`), so a
//! trace's findings are written in the same batch as its summary.
//!
//! Every detector reads the same `TraceView`: the trace's spans with their
//! children in start order, and every outgoing call classified once (what
//! kind, which target as the service map names it, its normalized statement).

pub mod critical_path;
mod message;
mod n_plus_one;
mod retry_storm;
mod sequential_calls;
mod slow_call;
mod slow_db;

use std::cell::OnceCell;
use std::collections::HashMap;
use std::time::Duration;

use crate::analysis::fingerprint;
use crate::model::{semconv, Finding, Span, SpanId, SpanKind, Trace};

/// The detectors' maps: hashed with foldhash (seeded per map), as they are
/// built for every completed trace.
pub(super) type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// The target of a call that names no peer.
pub const UNKNOWN_TARGET: &str = "unknown";

/// One detector: adds what it finds in `trace` to `out`.
pub trait Detector: Send + Sync {
    fn inspect(&self, trace: &TraceView<'_>, out: &mut Vec<Finding>);
}

/// The thresholds, from `[detectors]` in the config (defaults in API.md).
#[derive(Debug, Clone)]
pub struct DetectorConfig {
    /// A database call this long or longer is slow.
    pub slow_db_threshold: Duration,
    /// Calls with one template under one parent, one after another, that
    /// make an N+1 loop.
    pub n_plus_one_min: usize,
    /// Attempts of one logical call that make a retry storm.
    pub retry_min_attempts: usize,
    /// A non-database client call this long or longer is slow...
    pub slow_call_threshold: Duration,
    /// ...unless its target has its own threshold.
    pub slow_call_targets: HashMap<String, Duration>,
    /// Sequential independent calls are reported when running them in
    /// parallel would save at least this much.
    pub sequential_min_saving: Duration,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        Self {
            slow_db_threshold: Duration::from_millis(100),
            n_plus_one_min: 5,
            retry_min_attempts: 3,
            slow_call_threshold: Duration::from_secs(1),
            slow_call_targets: HashMap::new(),
            sequential_min_saving: Duration::from_millis(100),
        }
    }
}

/// What an outgoing call talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallKind {
    Database,
    Http,
    Rpc,
    Messaging,
    Other,
}

/// One outgoing call: a CLIENT or PRODUCER span, or a span that names a
/// database system.
#[derive(Debug, Clone)]
pub struct Call {
    /// The span's position in `TraceView::spans`.
    pub span: usize,
    pub kind: CallKind,
    /// The callee as the service map names it: the service whose server
    /// span it caused, else the peer (database, cache, external host).
    pub target: String,
    /// The normalized statement, command or route (`fingerprint`), when the
    /// span carries one.
    pub template: Option<String>,
    /// The call's operation for grouping attempts: its template, else the
    /// span name.
    pub operation: String,
    /// It failed: error status, a 4xx/5xx or non-OK gRPC status, an X-Ray
    /// error, fault or throttle.
    pub failed: bool,
    /// It says it is a retry (`http.request.resend_count`, `aws.xray.retries`,
    /// gRPC previous attempts).
    pub retry_marker: bool,
}

/// A trace prepared for the detectors.
pub struct TraceView<'a> {
    pub trace: &'a Trace,
    /// The spans, in start order (as `Trace` keeps them).
    pub spans: &'a [Span],
    /// Each span's parent's position, when the parent is in the trace.
    pub parent: Vec<Option<usize>>,
    /// Each span's children's positions, in start order.
    pub children: Vec<Vec<usize>>,
    /// Every outgoing call, in start order.
    pub calls: Vec<Call>,
    /// Each span's call, by position in `calls`.
    pub call_of: Vec<Option<usize>>,
    /// The calls grouped into logical calls and their attempts, worked out
    /// once for the detectors that ask (`attempts`).
    attempts: OnceCell<retry_storm::Attempts>,
}

fn string_attr<'s>(span: &'s Span, keys: &[&str]) -> Option<&'s str> {
    keys.iter().find_map(|key| match span.attr(key)? {
        crate::model::AttrValue::String(s) if !s.is_empty() => Some(s.as_str()),
        _ => None,
    })
}

/// The statement a database span ran, normalized.
fn db_template(span: &Span, system: &str) -> Option<String> {
    let text = string_attr(span, &[semconv::DB_QUERY_TEXT, semconv::DB_STATEMENT_OLD])?;
    Some(match system {
        "redis" | "memcached" | "mongodb" | "valkey" => fingerprint::command(text),
        _ => fingerprint::sql(text),
    })
}

/// The route an HTTP client span called, normalized with its method.
fn http_template(span: &Span) -> Option<String> {
    let method = string_attr(
        span,
        &[semconv::HTTP_REQUEST_METHOD, semconv::HTTP_METHOD_OLD],
    )
    .unwrap_or("GET");
    let url = string_attr(
        span,
        &[
            "url.full",
            "http.url",
            "http.route",
            "url.template",
            "url.path",
            "http.target",
        ],
    )?;
    Some(fingerprint::http(method, url))
}

fn failed(span: &Span) -> bool {
    span.status.code == crate::model::StatusCode::Error
        || semconv::http_status(span).is_some_and(|code| code >= 400)
        || semconv::grpc_status(span).is_some_and(|code| code != 0)
        || semconv::xray_error(span)
        || semconv::xray_fault(span)
        || semconv::xray_throttle(span)
}

impl<'a> TraceView<'a> {
    pub fn new(trace: &'a Trace) -> Self {
        let spans = trace.spans.as_slice();
        let at: FastMap<SpanId, usize> = spans
            .iter()
            .enumerate()
            .map(|(i, s)| (s.span_id, i))
            .collect();
        let parent: Vec<Option<usize>> = spans
            .iter()
            .map(|s| s.parent_span_id.and_then(|p| at.get(&p).copied()))
            .collect();
        let mut children = vec![Vec::new(); spans.len()];
        for (i, p) in parent.iter().enumerate() {
            if let Some(p) = *p {
                children[p].push(i);
            }
        }
        for list in &mut children {
            list.sort_by_key(|&i| (spans[i].start_ns, i));
        }
        let mut calls = Vec::new();
        let mut call_of = vec![None; spans.len()];
        let mut order: Vec<usize> = (0..spans.len()).collect();
        order.sort_by_key(|&i| (spans[i].start_ns, i));
        for i in order {
            let span = &spans[i];
            let db = semconv::db_system(span);
            let outgoing = matches!(span.kind, SpanKind::Client | SpanKind::Producer);
            if !outgoing && db.is_none() {
                continue;
            }
            // The server side it caused, in another service.
            let callee = children[i].iter().map(|&c| &spans[c]).find(|c| {
                matches!(c.kind, SpanKind::Server | SpanKind::Consumer)
                    && c.service() != span.service()
            });
            let kind = if db.is_some() {
                CallKind::Database
            } else if semconv::messaging_system(span).is_some() || span.kind == SpanKind::Producer {
                CallKind::Messaging
            } else if semconv::rpc_system(span).is_some() {
                CallKind::Rpc
            } else if semconv::is_http(span) {
                CallKind::Http
            } else {
                CallKind::Other
            };
            let target = match callee {
                Some(server) => server.service().to_string(),
                None => semconv::peer_name(span)
                    .map(|name| name.into_owned())
                    .unwrap_or_else(|| UNKNOWN_TARGET.to_string()),
            };
            let template = match kind {
                CallKind::Database => db_template(span, db.as_deref().unwrap_or_default()),
                CallKind::Http => http_template(span),
                CallKind::Rpc => string_attr(span, &["rpc.service"]).map(|service| {
                    let method = string_attr(span, &["rpc.method"]).unwrap_or_default();
                    format!("{service}/{method}")
                }),
                CallKind::Messaging | CallKind::Other => None,
            };
            call_of[i] = Some(calls.len());
            calls.push(Call {
                span: i,
                kind,
                target,
                operation: template.clone().unwrap_or_else(|| span.name.clone()),
                template,
                failed: failed(span),
                retry_marker: semconv::retry_marker(span),
            });
        }
        TraceView {
            trace,
            spans,
            parent,
            children,
            calls,
            call_of,
            attempts: OnceCell::new(),
        }
    }

    /// The calls split into logical calls and their attempts (`retry_storm`).
    fn attempts(&self) -> &retry_storm::Attempts {
        self.attempts.get_or_init(|| retry_storm::attempts(self))
    }

    /// The trace's duration (ns): its first start to its last end.
    pub fn duration_ns(&self) -> u64 {
        self.trace.end_ns().saturating_sub(self.trace.start_ns())
    }

    /// The calls whose span's parent is `parent`, in start order.
    pub fn calls_under(&self, parent: usize) -> impl Iterator<Item = &Call> + '_ {
        self.children[parent]
            .iter()
            .filter_map(|&c| self.call_of[c].map(|at| &self.calls[at]))
    }

    /// The span where a call was made from: the call span's parent, or the
    /// call span itself at a root.
    pub fn caller_of(&self, call: &Call) -> &Span {
        &self.spans[self.parent[call.span].unwrap_or(call.span)]
    }
}

/// A call this many times over its threshold is critical (`slow_db`,
/// `slow_call`).
const SLOW_CRITICAL_FACTOR: u64 = 10;

/// The finding about one call at or over `threshold` (`slow_db`,
/// `slow_call`): where the caller waits for it, the callee as `target`.
fn slow_call_finding(
    view: &TraceView<'_>,
    call: &Call,
    kind: crate::model::FindingKind,
    threshold: Duration,
    message: String,
) -> Finding {
    let span = &view.spans[call.span];
    let caller = view.caller_of(call);
    let took = span.duration_ns();
    let threshold_ns = u64::try_from(threshold.as_nanos()).unwrap_or(u64::MAX);
    let severity = if took >= threshold_ns.saturating_mul(SLOW_CRITICAL_FACTOR) {
        crate::model::Severity::Critical
    } else {
        crate::model::Severity::Warning
    };
    Finding {
        kind,
        severity,
        trace_id: view.trace.trace_id,
        service: caller.service().to_string(),
        operation: caller.name.clone(),
        target: call.target.clone(),
        statement: call.template.clone(),
        span_ids: vec![span.span_id],
        count: 1,
        total_duration_ns: took,
        max_duration_ns: took,
        start_ns: span.start_ns,
        message,
        details: vec![("threshold_ms".to_string(), threshold.as_secs_f64() * 1e3)],
    }
}

/// Every detector, configured.
pub fn all(config: &DetectorConfig) -> Vec<Box<dyn Detector>> {
    vec![
        Box::new(slow_db::SlowDb::new(config)),
        Box::new(slow_call::SlowCall::new(config)),
        Box::new(n_plus_one::NPlusOne::new(config)),
        Box::new(retry_storm::RetryStorm::new(config)),
        Box::new(sequential_calls::SequentialCalls::new(config)),
    ]
}

/// What `detectors` find in `trace`.
pub fn inspect(trace: &Trace, detectors: &[Box<dyn Detector>]) -> Vec<Finding> {
    let view = TraceView::new(trace);
    let mut out = Vec::new();
    for detector in detectors {
        detector.inspect(&view, &mut out);
    }
    out
}

#[cfg(test)]
pub(crate) mod testing;

#[cfg(test)]
mod tests {
    use super::testing::TraceBuilder;
    use super::*;
    use crate::model::AttrValue;

    #[test]
    fn calls_are_classified_once_with_their_targets_and_templates() {
        let mut t = TraceBuilder::default();
        let root = t.span(
            None,
            "order",
            SpanKind::Server,
            "GET /orders/{id}",
            0.0,
            50.0,
            &[],
        );
        let query = t.query(root, "order", "SELECT * FROM items WHERE id = 7", 1.0, 3.0);
        t.error(query);
        let pay = t.span(
            Some(root),
            "order",
            SpanKind::Client,
            "POST",
            4.0,
            20.0,
            &[
                ("http.request.method", AttrValue::String("POST".into())),
                (
                    "url.full",
                    AttrValue::String("http://payment:8080/pay/42".into()),
                ),
                ("http.response.status_code", AttrValue::Int(503)),
            ],
        );
        t.span(
            Some(pay),
            "payment",
            SpanKind::Server,
            "POST /pay",
            5.0,
            19.0,
            &[],
        );
        let trace = t.build();
        let view = TraceView::new(&trace);
        assert_eq!(view.calls.len(), 2);
        let (db, http) = (&view.calls[0], &view.calls[1]);
        assert_eq!(db.kind, CallKind::Database);
        assert_eq!(db.target, "bookstore");
        assert_eq!(
            db.template.as_deref(),
            Some("SELECT * FROM items WHERE id = ?")
        );
        assert!(db.failed);
        assert_eq!(http.kind, CallKind::Http);
        assert_eq!(http.target, "payment", "the service its server span is in");
        assert_eq!(
            http.template.as_deref(),
            Some("POST payment:8080 /pay/{id}")
        );
        assert!(http.failed);
        assert_eq!(view.caller_of(http).name, "GET /orders/{id}");
        assert_eq!(view.calls_under(0).count(), 2);
        assert_eq!(view.duration_ns(), 50_000_000);
    }
}
