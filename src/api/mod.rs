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
    /// Bounds on what one search may cost (`[query]`).
    pub limits: QueryLimits,
    /// The data directory's free space, for readiness.
    pub disk: Option<Arc<crate::storage::disk::DiskSpace>>,
    /// What the storage check after start found wrong, for readiness.
    pub storage_problem: Arc<std::sync::RwLock<Option<String>>>,
}

/// What one search may cost: its time, the spans one answer carries, and how
/// many searches run at once (`[query]`). A search that reaches a bound
/// answers with what it found and says so in `warnings`; one that cannot
/// start within `QUEUE_WAIT` gets 503 with `Retry-After`.
pub struct QueryLimits {
    pub search_time: std::time::Duration,
    pub response_spans: usize,
    searches: tokio::sync::Semaphore,
}

/// How long a search waits for one of the running ones to finish.
const QUEUE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

impl QueryLimits {
    pub fn new(config: &crate::config::QueryConfig) -> Self {
        Self {
            search_time: config.max_search_time,
            response_spans: config.max_response_spans,
            searches: tokio::sync::Semaphore::new(config.max_concurrent_searches),
        }
    }

    /// A turn to search, waiting up to `QUEUE_WAIT` for one.
    pub(crate) async fn search_turn(&self) -> Result<tokio::sync::SemaphorePermit<'_>, ApiError> {
        match tokio::time::timeout(QUEUE_WAIT, self.searches.acquire()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(ApiError::Busy(
                "too many searches running; retry in a second".into(),
            )),
        }
    }
}

impl Default for QueryLimits {
    fn default() -> Self {
        Self::new(&crate::config::QueryConfig::default())
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::response::IntoResponse;

    #[tokio::test]
    async fn a_search_past_the_concurrency_bound_gets_503_with_retry_after() {
        let limits = QueryLimits::new(&crate::config::QueryConfig {
            max_concurrent_searches: 1,
            ..Default::default()
        });
        let running = limits.search_turn().await.unwrap();
        let started = std::time::Instant::now();
        let refused = limits.search_turn().await.unwrap_err();
        assert!(started.elapsed() >= QUEUE_WAIT);
        let response = refused.into_response();
        assert_eq!(response.status(), http::StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[http::header::RETRY_AFTER], "1");
        drop(running);
        let _again = limits.search_turn().await.unwrap();
    }
}
