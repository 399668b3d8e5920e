//! `slow_call`: one non-database client call (HTTP, RPC, messaging or other)
//! at or over `slow_call_threshold`, or over its target's own threshold in
//! `slow_call_targets` (a payment provider may be allowed 3 s where an
//! internal service gets 1 s). Reported like `slow_db`: where the caller
//! waits, with the callee as `target`; ten times over the threshold is
//! critical.

use std::collections::HashMap;
use std::time::Duration;

use super::{message, slow_call_finding, CallKind, Detector, DetectorConfig, TraceView};
use crate::model::{Finding, FindingKind};

pub struct SlowCall {
    threshold: Duration,
    targets: HashMap<String, Duration>,
}

impl SlowCall {
    pub fn new(config: &DetectorConfig) -> Self {
        Self {
            threshold: config.slow_call_threshold,
            targets: config.slow_call_targets.clone(),
        }
    }

    fn threshold_for(&self, target: &str) -> Duration {
        self.targets.get(target).copied().unwrap_or(self.threshold)
    }
}

impl Detector for SlowCall {
    fn inspect(&self, view: &TraceView<'_>, out: &mut Vec<Finding>) {
        for call in view.calls.iter().filter(|c| c.kind != CallKind::Database) {
            let span = &view.spans[call.span];
            let took = span.duration_ns();
            let threshold = self.threshold_for(&call.target);
            let threshold_ns = u64::try_from(threshold.as_nanos()).unwrap_or(u64::MAX);
            if took < threshold_ns {
                continue;
            }
            let caller = view.caller_of(call);
            let what = message::quote(call.template.as_deref().unwrap_or(&span.name));
            let text = format!(
                "{} waits {} on {what} ({}) under `{}`, over its {} threshold; \
                 find out why {} is slow, or stop the request waiting for it",
                caller.service(),
                message::duration(took),
                call.target,
                caller.name,
                message::duration(threshold_ns),
                call.target,
            );
            out.push(slow_call_finding(
                view,
                call,
                FindingKind::SlowCall,
                threshold,
                text,
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{span_id, TraceBuilder};
    use super::*;
    use crate::model::{AttrValue, Severity, SpanKind};

    fn find(t: &mut TraceBuilder, config: &DetectorConfig) -> Vec<Finding> {
        let trace = t.build();
        let mut out = Vec::new();
        SlowCall::new(config).inspect(&TraceView::new(&trace), &mut out);
        out
    }

    fn request(t: &mut TraceBuilder) -> u32 {
        t.span(
            None,
            "order-service",
            SpanKind::Server,
            "GET /orders/{id}",
            0.0,
            30_000.0,
            &[],
        )
    }

    /// An HTTP client call to `url`, with `callee`'s server span under it.
    fn http(
        t: &mut TraceBuilder,
        parent: u32,
        url: &str,
        callee: &str,
        start: f64,
        end: f64,
    ) -> u32 {
        let call = t.span(
            Some(parent),
            "order-service",
            SpanKind::Client,
            "GET",
            start,
            end,
            &[
                ("http.request.method", AttrValue::String("GET".into())),
                ("url.full", AttrValue::String(url.into())),
            ],
        );
        t.span(
            Some(call),
            callee,
            SpanKind::Server,
            "GET",
            start + 0.5,
            end - 0.5,
            &[],
        );
        call
    }

    #[test]
    fn a_call_at_the_threshold_is_slow_one_just_under_is_not() {
        let mut t = TraceBuilder::default();
        let root = request(&mut t);
        http(
            &mut t,
            root,
            "http://catalog/books/1",
            "catalog",
            0.0,
            999.0,
        );
        let slow = http(
            &mut t,
            root,
            "http://catalog/books/2",
            "catalog",
            1_000.0,
            2_000.0,
        );
        let found = find(&mut t, &DetectorConfig::default());
        assert_eq!(found.len(), 1, "{found:?}");
        let f = &found[0];
        assert_eq!(f.kind, FindingKind::SlowCall);
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(f.service, "order-service");
        assert_eq!(f.operation, "GET /orders/{id}");
        assert_eq!(f.target, "catalog");
        assert_eq!(f.statement.as_deref(), Some("GET catalog /books/{id}"));
        assert_eq!(f.span_ids, vec![span_id(slow)]);
        assert_eq!(f.count, 1);
        assert_eq!(f.total_duration_ns, 1_000_000_000);
        assert_eq!(f.max_duration_ns, 1_000_000_000);
        assert_eq!(f.start_ns, 1_700_000_001_000_000_000);
        assert_eq!(f.details, vec![("threshold_ms".to_string(), 1_000.0)]);
    }

    #[test]
    fn the_message_names_the_caller_time_call_and_threshold() {
        let mut t = TraceBuilder::default();
        let root = request(&mut t);
        http(
            &mut t,
            root,
            "http://catalog/books/1",
            "catalog",
            0.0,
            2_400.0,
        );
        let found = find(&mut t, &DetectorConfig::default());
        assert_eq!(
            found[0].message,
            "order-service waits 2.4 s on `GET catalog /books/{id}` (catalog) under \
             `GET /orders/{id}`, over its 1.0 s threshold; find out why catalog is slow, \
             or stop the request waiting for it"
        );
    }

    #[test]
    fn a_target_with_its_own_threshold_is_judged_by_it() {
        let mut t = TraceBuilder::default();
        let root = request(&mut t);
        // 2 s: slow for catalog (default 1 s), fine for payment (3 s).
        http(
            &mut t,
            root,
            "http://payment/pay/1",
            "payment",
            0.0,
            2_000.0,
        );
        http(
            &mut t,
            root,
            "http://catalog/books/1",
            "catalog",
            2_000.0,
            4_000.0,
        );
        // 300 ms: fine by default, slow for the stricter auth (250 ms).
        http(&mut t, root, "http://auth/check", "auth", 4_000.0, 4_300.0);
        let config = DetectorConfig {
            slow_call_targets: HashMap::from([
                ("payment".to_string(), Duration::from_secs(3)),
                ("auth".to_string(), Duration::from_millis(250)),
            ]),
            ..DetectorConfig::default()
        };
        let found = find(&mut t, &config);
        let targets: Vec<_> = found
            .iter()
            .map(|f| (f.target.as_str(), f.details[0].1))
            .collect();
        assert_eq!(targets, vec![("catalog", 1_000.0), ("auth", 250.0)]);
    }

    #[test]
    fn ten_times_the_threshold_is_critical() {
        let mut t = TraceBuilder::default();
        let root = request(&mut t);
        http(
            &mut t,
            root,
            "http://catalog/books/1",
            "catalog",
            0.0,
            9_999.0,
        );
        http(
            &mut t,
            root,
            "http://catalog/books/2",
            "catalog",
            10_000.0,
            20_000.0,
        );
        let found = find(&mut t, &DetectorConfig::default());
        let severities: Vec<_> = found.iter().map(|f| f.severity).collect();
        assert_eq!(severities, vec![Severity::Warning, Severity::Critical]);
    }

    #[test]
    fn database_calls_are_left_to_slow_db() {
        let mut t = TraceBuilder::default();
        let root = request(&mut t);
        t.query(root, "order-service", "SELECT pg_sleep(5)", 0.0, 5_000.0);
        assert!(find(&mut t, &DetectorConfig::default()).is_empty());
    }

    #[test]
    fn a_slow_publish_is_a_slow_call_named_by_its_span() {
        let mut t = TraceBuilder::default();
        let root = request(&mut t);
        t.span(
            Some(root),
            "order-service",
            SpanKind::Producer,
            "orders publish",
            0.0,
            1_500.0,
            &[
                ("messaging.system", AttrValue::String("kafka".into())),
                ("server.address", AttrValue::String("kafka-1".into())),
            ],
        );
        let found = find(&mut t, &DetectorConfig::default());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].statement, None);
        assert_eq!(found[0].target, "kafka-1");
        assert!(
            found[0]
                .message
                .contains("waits 1.5 s on `orders publish` (kafka-1)"),
            "{}",
            found[0].message
        );
    }
}
