//! The native API, `/api/v1` (see API.md): traces with their summary.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Map, Value};

use super::error::{parse_trace_id, ApiError};
use super::ApiState;
use crate::model::{KeyValue, Span, TraceSummary};

/// `GET /api/v1/traces/{trace_id}`
pub async fn get_trace(
    State(state): State<Arc<ApiState>>,
    Path(trace_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_trace_id(&trace_id)?;
    let trace = state
        .trace(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("trace {id} not found")))?;
    let summary = state.summary(&trace);
    Ok(Json(json!({
        "summary": summary_json(&summary),
        "spans": trace.spans.iter().map(span_json).collect::<Vec<_>>(),
        "findings": [],
    })))
}

pub fn summary_json(summary: &TraceSummary) -> Value {
    json!({
        "trace_id": summary.trace_id.to_string(),
        "root_service": summary.root_service,
        "root_operation": summary.root_operation,
        "start_us": summary.start_ns / 1_000,
        "duration_ms": summary.duration_ns as f64 / 1e6,
        "span_count": summary.span_count,
        "error_count": summary.error_count,
        "services": summary.services,
        "correlation_ids": summary.correlation_ids,
        "finding_kinds": [],
        "complete": summary.complete,
    })
}

fn attributes_json(attributes: &[KeyValue]) -> Value {
    Value::Object(
        attributes
            .iter()
            .map(|kv| (kv.key.clone(), kv.value.to_json()))
            .collect::<Map<_, _>>(),
    )
}

fn span_json(span: &Span) -> Value {
    json!({
        "span_id": span.span_id.to_string(),
        "parent_span_id": span.parent_span_id.map(|p| p.to_string()),
        "service": span.service(),
        "name": span.name,
        "kind": span.kind.as_str(),
        "start_us": span.start_ns / 1_000,
        "duration_us": span.duration_ns() / 1_000,
        "status": span.status.code.as_str(),
        "status_message": span.status.message,
        "attributes": attributes_json(&span.attributes),
        "events": span.events.iter().map(|e| json!({
            "name": e.name,
            "time_us": e.time_ns / 1_000,
            "attributes": attributes_json(&e.attributes),
        })).collect::<Vec<_>>(),
        "links": span.links.iter().map(|l| json!({
            "trace_id": l.trace_id.to_string(),
            "span_id": l.span_id.to_string(),
        })).collect::<Vec<_>>(),
        "resource": attributes_json(&span.resource.attributes),
        "scope": {"name": span.scope.name, "version": span.scope.version},
    })
}
