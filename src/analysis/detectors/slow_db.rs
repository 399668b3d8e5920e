//! `slow_db`: one database call at or over `slow_db_threshold`. Reported
//! where the caller waits for it: the caller span's service and operation,
//! the database node as `target`, the normalized statement. A call ten times
//! over the threshold is critical.

use std::time::Duration;

use super::{message, slow_call_finding, CallKind, Detector, DetectorConfig, TraceView};
use crate::model::{semconv, Finding, FindingKind};

pub struct SlowDb {
    threshold: Duration,
}

impl SlowDb {
    pub fn new(config: &DetectorConfig) -> Self {
        Self {
            threshold: config.slow_db_threshold,
        }
    }
}

impl Detector for SlowDb {
    fn inspect(&self, view: &TraceView<'_>, out: &mut Vec<Finding>) {
        let threshold_ns = u64::try_from(self.threshold.as_nanos()).unwrap_or(u64::MAX);
        for call in view.calls.iter().filter(|c| c.kind == CallKind::Database) {
            let span = &view.spans[call.span];
            let took = span.duration_ns();
            if took < threshold_ns {
                continue;
            }
            let caller = view.caller_of(call);
            // "postgresql bookstore", or just "postgresql" when the database
            // is only known by its system.
            let system = semconv::db_system(span);
            let database = match system.as_deref() {
                Some(system) if system != call.target => format!("{system} {}", call.target),
                _ => call.target.clone(),
            };
            let advice = match system.as_deref() {
                Some("redis" | "memcached" | "valkey") => {
                    "check the value's size and the server's load"
                }
                _ => "check its plan and indexes",
            };
            let what = message::quote(call.template.as_deref().unwrap_or(&span.name));
            let text = format!(
                "{} waits {} on {what} ({database}) under `{}`; {advice}",
                caller.service(),
                message::duration(took),
                caller.name,
            );
            out.push(slow_call_finding(
                view,
                call,
                FindingKind::SlowDb,
                self.threshold,
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
        SlowDb::new(config).inspect(&TraceView::new(&trace), &mut out);
        out
    }

    fn request(t: &mut TraceBuilder) -> u32 {
        t.span(
            None,
            "order-service",
            SpanKind::Server,
            "GET /orders/{id}",
            0.0,
            1_000.0,
            &[],
        )
    }

    #[test]
    fn a_query_at_the_threshold_is_slow_one_just_under_is_not() {
        let mut t = TraceBuilder::default();
        let root = request(&mut t);
        t.query(
            root,
            "order-service",
            "SELECT * FROM a WHERE id = 1",
            1.0,
            100.0,
        );
        let slow = t.query(
            root,
            "order-service",
            "SELECT * FROM b WHERE id = 2",
            200.0,
            300.0,
        );
        let found = find(&mut t, &DetectorConfig::default());
        assert_eq!(found.len(), 1, "99 ms is not slow, 100 ms is: {found:?}");
        let f = &found[0];
        assert_eq!(f.kind, FindingKind::SlowDb);
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(f.service, "order-service");
        assert_eq!(f.operation, "GET /orders/{id}");
        assert_eq!(f.target, "bookstore");
        assert_eq!(f.statement.as_deref(), Some("SELECT * FROM b WHERE id = ?"));
        assert_eq!(f.span_ids, vec![span_id(slow)]);
        assert_eq!(f.count, 1);
        assert_eq!(f.total_duration_ns, 100_000_000);
        assert_eq!(f.max_duration_ns, 100_000_000);
        assert_eq!(f.start_ns, 1_700_000_000_200_000_000);
        assert_eq!(f.details, vec![("threshold_ms".to_string(), 100.0)]);
    }

    #[test]
    fn the_message_names_the_caller_time_statement_and_database() {
        let mut t = TraceBuilder::default();
        let root = request(&mut t);
        t.query(
            root,
            "order-service",
            "select * from orders where id = 7",
            10.0,
            350.0,
        );
        let found = find(&mut t, &DetectorConfig::default());
        assert_eq!(
            found[0].message,
            "order-service waits 340 ms on `SELECT * FROM orders WHERE id = ?` \
             (postgresql bookstore) under `GET /orders/{id}`; check its plan and indexes"
        );
    }

    #[test]
    fn ten_times_the_threshold_is_critical() {
        let mut t = TraceBuilder::default();
        let root = request(&mut t);
        t.query(root, "order-service", "SELECT 1", 0.0, 999.0);
        t.query(root, "order-service", "SELECT 2", 0.0, 1_000.0);
        let found = find(&mut t, &DetectorConfig::default());
        let severities: Vec<_> = found.iter().map(|f| f.severity).collect();
        assert_eq!(severities, vec![Severity::Warning, Severity::Critical]);
    }

    #[test]
    fn the_threshold_comes_from_the_config() {
        let mut t = TraceBuilder::default();
        let root = request(&mut t);
        t.query(root, "order-service", "SELECT 1", 0.0, 60.0);
        let config = DetectorConfig {
            slow_db_threshold: Duration::from_millis(50),
            ..DetectorConfig::default()
        };
        let found = find(&mut t, &config);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].details, vec![("threshold_ms".to_string(), 50.0)]);
    }

    #[test]
    fn slow_http_calls_are_not_slow_database_calls() {
        let mut t = TraceBuilder::default();
        let root = request(&mut t);
        t.span(
            Some(root),
            "order-service",
            SpanKind::Client,
            "GET",
            0.0,
            900.0,
            &[
                ("http.request.method", AttrValue::String("GET".into())),
                (
                    "url.full",
                    AttrValue::String("http://catalog/books/1".into()),
                ),
            ],
        );
        assert!(find(&mut t, &DetectorConfig::default()).is_empty());
    }

    #[test]
    fn a_query_without_a_statement_is_named_by_its_span() {
        let mut t = TraceBuilder::default();
        let root = request(&mut t);
        t.span(
            Some(root),
            "order-service",
            SpanKind::Client,
            "HGETALL",
            0.0,
            150.0,
            &[("db.system", AttrValue::String("redis".into()))],
        );
        let found = find(&mut t, &DetectorConfig::default());
        assert_eq!(found[0].statement, None);
        assert_eq!(found[0].target, "redis");
        assert_eq!(
            found[0].message,
            "order-service waits 150 ms on `HGETALL` (redis) under `GET /orders/{id}`; \
             check the value's size and the server's load"
        );
    }
}
