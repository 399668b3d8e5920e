//! The query side on one port (16686): Jaeger's query API, the native `/api/v1`,
//! health and readiness probes, and `/metrics`.
//!
//! Handlers only read from storage; blocking storage reads run on the blocking
//! pool so a slow disk never stalls the async workers.

mod error;
mod jaeger;
mod probes;
mod v1;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::Router;

use crate::ingest::now_us;
use crate::model::{Trace, TraceId, TraceSummary};
use crate::storage::TraceStore;
use crate::telemetry::Telemetry;

pub use error::ApiError;

/// What every handler reads.
pub struct ApiState {
    pub store: Arc<dyn TraceStore>,
    pub telemetry: Arc<Telemetry>,
    /// A trace with no new span for this long is complete.
    pub trace_idle: Duration,
    pub correlation_keys: Vec<String>,
    /// Set once storage is open and every listener is bound.
    pub ready: Arc<AtomicBool>,
}

impl ApiState {
    /// Reads a whole trace from storage off the async workers.
    async fn trace(&self, trace_id: TraceId) -> Result<Option<Trace>, ApiError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.trace(trace_id))
            .await
            .map_err(|e| ApiError::Internal(format!("storage read task: {e}")))?
            .map_err(ApiError::from)
    }

    fn summary(&self, trace: &Trace) -> TraceSummary {
        let idle_us = self.trace_idle.as_micros() as u64;
        let complete = now_us().saturating_sub(trace.last_received_us) >= idle_us;
        TraceSummary::of(trace, &self.correlation_keys, complete)
    }
}

pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/api/traces/{trace_id}", get(jaeger::get_trace))
        .route("/api/v1/traces/{trace_id}", get(v1::get_trace))
        .route("/healthz", get(probes::healthz))
        .route("/readyz", get(probes::readyz))
        .route("/metrics", get(probes::metrics))
        .with_state(state)
}
