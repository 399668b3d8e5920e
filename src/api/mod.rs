//! The query side on one port (16686): Jaeger's query API, the native `/api/v1`,
//! health and readiness probes, `/metrics`, and the web UI.
//!
//! Handlers only read from storage; blocking storage reads run on the blocking
//! pool so a slow disk never stalls the async workers.

mod detail;
mod error;
pub(crate) mod findings;
pub(crate) mod jaeger;
pub(crate) mod map;
mod probes;
mod ui;
pub(crate) mod v1;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use axum::routing::get;
use axum::Router;

use crate::model::{Finding, SummaryKeys, Trace, TraceId, TraceSummary};
use crate::storage::{FindingQuery, TraceStore};
use crate::telemetry::Telemetry;

pub use error::ApiError;

/// What every handler reads.
pub struct ApiState {
    pub store: Arc<dyn TraceStore>,
    pub telemetry: Arc<Telemetry>,
    pub summary_keys: SummaryKeys,
    /// Set once storage is open and every listener is bound.
    pub ready: Arc<AtomicBool>,
    /// When a map edge is a retry storm.
    pub storm: crate::storage::storm::StormRule,
    /// How long graph aggregates are kept (`[graph] retention`).
    pub graph_retention: std::time::Duration,
}

impl ApiState {
    /// A map range's start, no earlier than the oldest aggregates kept: a
    /// range from the epoch would otherwise read thousands of empty buckets.
    fn graph_kept_from(&self, start_us: u64) -> u64 {
        let retention_us = u64::try_from(self.graph_retention.as_micros()).unwrap_or(u64::MAX);
        start_us.max(crate::ingest::now_us().saturating_sub(retention_us))
    }

    /// Runs a blocking storage call off the async workers.
    async fn blocking<T: Send + 'static>(
        &self,
        call: impl FnOnce(&dyn TraceStore) -> Result<T, crate::storage::StorageError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || call(store.as_ref()))
            .await
            .map_err(|e| ApiError::Internal(format!("storage task: {e}")))?
            .map_err(ApiError::from)
    }

    /// A trace and its summary as read now, in one trip to storage (the
    /// stored summary when assembly has completed the trace and nothing
    /// arrived since, else one computed from the spans, not complete), handed
    /// to `render` on the same blocking thread: a 1,000-span trace is tens of
    /// thousands of allocations, cheapest freed by the thread that made them.
    async fn render_trace<T: Send + 'static>(
        &self,
        trace_id: TraceId,
        render: impl FnOnce(Trace, TraceSummary, Vec<Finding>) -> T + Send + 'static,
    ) -> Result<Option<T>, ApiError> {
        let keys = self.summary_keys.clone();
        self.blocking(move |store| {
            let Some(trace) = store.trace(trace_id)? else {
                return Ok(None);
            };
            let stored = store.summary(trace_id)?;
            // What the last completion found, also while the trace is open again.
            let findings = match &stored {
                Some(s) if s.finding_count > 0 => store.findings(&FindingQuery {
                    from_us: 0,
                    to_us: u64::MAX,
                    trace_id: Some(trace_id),
                    limit: usize::MAX,
                    ..FindingQuery::default()
                })?,
                _ => Vec::new(),
            };
            let summary = match stored {
                Some(stored) if stored.complete => stored,
                // Open again: what the last completion found stays shown.
                Some(stored) => TraceSummary {
                    finding_kinds: stored.finding_kinds,
                    finding_count: stored.finding_count,
                    finding_services: stored.finding_services,
                    ..TraceSummary::of(&trace, &keys, false)
                },
                None => TraceSummary::of(&trace, &keys, false),
            };
            Ok(Some(render(trace, summary, findings)))
        })
        .await
    }
}

pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/api/services", get(jaeger::services))
        .route(
            "/api/services/{service}/operations",
            get(jaeger::service_operations),
        )
        .route("/api/operations", get(jaeger::operations))
        .route("/api/traces", get(jaeger::search_traces))
        .route("/api/traces/{trace_id}", get(jaeger::get_trace))
        .route("/api/dependencies", get(map::dependencies))
        .route("/api/v1/service-map", get(map::service_map))
        .route("/api/v1/service-map/detail", get(detail::detail))
        .route("/api/v1/traces", get(v1::search_traces))
        .route("/api/v1/traces/{trace_id}", get(v1::get_trace))
        .route("/api/v1/findings", get(findings::findings))
        .route("/api/v1/findings/groups", get(findings::finding_groups))
        .route("/healthz", get(probes::healthz))
        .route("/readyz", get(probes::readyz))
        .route("/metrics", get(probes::metrics))
        .fallback(ui::serve)
        .with_state(state)
}
