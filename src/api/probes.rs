//! Liveness, readiness and the Prometheus scrape endpoint.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;

use super::ApiState;

pub async fn healthz() -> &'static str {
    "ok"
}

pub async fn readyz(State(state): State<Arc<ApiState>>) -> impl IntoResponse {
    if !state.ready.load(Ordering::Acquire) {
        return (StatusCode::SERVICE_UNAVAILABLE, "starting".to_string());
    }
    if let Some(problem) = state
        .storage_problem
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone()
    {
        return (StatusCode::SERVICE_UNAVAILABLE, problem);
    }
    match state.disk.as_ref().filter(|d| d.is_full()) {
        Some(disk) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "disk almost full: {} MiB free, storage.min_free_disk_mb is {}; spans are refused until space returns",
                disk.free_bytes() >> 20,
                disk.reserve_bytes() >> 20
            ),
        ),
        None => (StatusCode::OK, "ready".to_string()),
    }
}

pub async fn metrics(State(state): State<Arc<ApiState>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.telemetry.encode(),
    )
}
