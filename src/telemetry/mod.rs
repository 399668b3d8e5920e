//! tracemap's own counters, exposed on `/metrics` in Prometheus text format.
//!
//! Each event that matters to an operator (a span received, a span or a request
//! rejected and why) has one counter here; names follow
//! `tracemap_<noun>_<unit>_total` as API.md lists them.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReceiverLabels {
    receiver: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RejectLabels {
    receiver: &'static str,
    reason: &'static str,
}

/// The counters of one running server.
pub struct Telemetry {
    registry: Registry,
    spans_received: Family<ReceiverLabels, Counter>,
    spans_rejected: Family<RejectLabels, Counter>,
    spans_truncated: Family<RejectLabels, Counter>,
    requests_rejected: Family<RejectLabels, Counter>,
    inflight_bytes: Gauge,
    spans_stored: Counter,
    store_errors: Counter,
    traces_open: Gauge,
    traces_open_bytes: Gauge,
    traces_completed: Counter,
    traces_completed_early: Counter,
    retention_cutoff: Gauge,
    disk_bytes: Gauge,
    partitions_dropped_for_disk: Counter,
}

impl Default for Telemetry {
    fn default() -> Self {
        Self::new()
    }
}

impl Telemetry {
    pub fn new() -> Self {
        Self::with(|_| {})
    }

    /// With more metrics: `register` adds them to the same registry, so they
    /// appear on `/metrics` with these (analysis registers its own this way).
    pub fn with(register: impl FnOnce(&mut Registry)) -> Self {
        let mut registry = Registry::default();
        register(&mut registry);
        let spans_received = Family::<ReceiverLabels, Counter>::default();
        registry.register(
            "tracemap_spans_received",
            "Spans accepted from clients, by receiver",
            spans_received.clone(),
        );
        let spans_rejected = Family::<RejectLabels, Counter>::default();
        registry.register(
            "tracemap_spans_rejected",
            "Spans refused one by one (invalid ids, limits), by receiver and reason",
            spans_rejected.clone(),
        );
        let spans_truncated = Family::<RejectLabels, Counter>::default();
        registry.register(
            "tracemap_spans_truncated",
            "Spans stored cut to the limits (attributes, attribute_value, events, links dropped or cut), by receiver and reason",
            spans_truncated.clone(),
        );
        let requests_rejected = Family::<RejectLabels, Counter>::default();
        registry.register(
            "tracemap_requests_rejected",
            "Whole requests refused (malformed, too large, overloaded, wrong media type), by receiver and reason",
            requests_rejected.clone(),
        );
        let inflight_bytes = Gauge::default();
        registry.register(
            "tracemap_ingest_inflight_bytes",
            "Bytes of requests being decoded and written now",
            inflight_bytes.clone(),
        );
        let spans_stored = Counter::default();
        registry.register(
            "tracemap_spans_stored",
            "Spans durably written to storage",
            spans_stored.clone(),
        );
        let store_errors = Counter::default();
        registry.register(
            "tracemap_storage_write_errors",
            "Storage writes that failed (the client was told to retry)",
            store_errors.clone(),
        );
        let traces_open = Gauge::default();
        registry.register(
            "tracemap_traces_open",
            "Traces still receiving spans",
            traces_open.clone(),
        );
        let traces_open_bytes = Gauge::default();
        registry.register(
            "tracemap_traces_open_bytes",
            "Estimated memory of the spans of open traces",
            traces_open_bytes.clone(),
        );
        let traces_completed = Counter::default();
        registry.register(
            "tracemap_traces_completed",
            "Traces completed (summary and index written), re-completions included",
            traces_completed.clone(),
        );
        let traces_completed_early = Counter::default();
        registry.register(
            "tracemap_traces_completed_early",
            "Traces completed before they were idle because the open-trace bounds were reached",
            traces_completed_early.clone(),
        );
        let retention_cutoff = Gauge::default();
        registry.register(
            "tracemap_retention_cutoff_timestamp_seconds",
            "Data older than this (Unix seconds) has been deleted by retention or the disk cap",
            retention_cutoff.clone(),
        );
        let disk_bytes = Gauge::default();
        registry.register(
            "tracemap_storage_disk_bytes",
            "Bytes the store's table files take on disk",
            disk_bytes.clone(),
        );
        let partitions_dropped_for_disk = Counter::default();
        registry.register(
            "tracemap_retention_disk_cap_hours_dropped",
            "Hours of the oldest data deleted early because the store was over its disk cap",
            partitions_dropped_for_disk.clone(),
        );
        Self {
            registry,
            retention_cutoff,
            disk_bytes,
            partitions_dropped_for_disk,
            traces_open,
            traces_open_bytes,
            traces_completed,
            traces_completed_early,
            spans_received,
            spans_rejected,
            spans_truncated,
            requests_rejected,
            inflight_bytes,
            spans_stored,
            store_errors,
        }
    }

    pub fn spans_received(&self, receiver: &'static str, count: u64) {
        self.spans_received
            .get_or_create(&ReceiverLabels { receiver })
            .inc_by(count);
    }

    pub fn spans_rejected(&self, receiver: &'static str, reason: &'static str, count: u64) {
        self.spans_rejected
            .get_or_create(&RejectLabels { receiver, reason })
            .inc_by(count);
    }

    /// Spans stored after being cut to a limit; `reason` names the limit.
    pub fn spans_truncated(&self, receiver: &'static str, reason: &'static str, count: u64) {
        self.spans_truncated
            .get_or_create(&RejectLabels { receiver, reason })
            .inc_by(count);
    }

    pub fn request_rejected(&self, receiver: &'static str, reason: &'static str) {
        self.requests_rejected(receiver, reason, 1);
    }

    pub fn requests_rejected(&self, receiver: &'static str, reason: &'static str, count: u64) {
        self.requests_rejected
            .get_or_create(&RejectLabels { receiver, reason })
            .inc_by(count);
    }

    pub fn inflight_bytes_changed(&self, delta: i64) {
        self.inflight_bytes.inc_by(delta);
    }

    pub fn spans_stored(&self, count: u64) {
        self.spans_stored.inc_by(count);
    }

    pub fn store_error(&self) {
        self.store_errors.inc();
    }

    pub fn traces_open(&self, count: usize, bytes: usize) {
        self.traces_open.set(count as i64);
        self.traces_open_bytes.set(bytes as i64);
    }

    pub fn trace_completed(&self, early: bool) {
        self.traces_completed.inc();
        if early {
            self.traces_completed_early.inc();
        }
    }

    pub fn retention_applied(&self, cutoff_us: u64, disk_bytes: u64, hours_dropped_for_disk: u64) {
        self.retention_cutoff.set((cutoff_us / 1_000_000) as i64);
        self.disk_bytes.set(disk_bytes as i64);
        self.partitions_dropped_for_disk
            .inc_by(hours_dropped_for_disk);
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("encoding metrics into a String");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_appear_with_their_labels() {
        let telemetry = Telemetry::new();
        telemetry.spans_received("otlp_grpc", 3);
        telemetry.spans_rejected("otlp_http", "invalid_trace_id", 2);
        let text = telemetry.encode();
        assert!(
            text.contains("tracemap_spans_received_total{receiver=\"otlp_grpc\"} 3"),
            "{text}"
        );
        assert!(
            text.contains(
                "tracemap_spans_rejected_total{receiver=\"otlp_http\",reason=\"invalid_trace_id\"} 2"
            ),
            "{text}"
        );
    }
}
