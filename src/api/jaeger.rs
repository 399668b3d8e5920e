//! Jaeger's query API, in the JSON shapes Grafana's Jaeger data source and
//! jaeger-ui read (see API.md): an envelope `{data, total, limit, offset,
//! errors}`, times in microseconds, attributes as typed tags.
//!
//! Spans map the way Jaeger maps OTLP: the parent becomes a `CHILD_OF`
//! reference, links `FOLLOWS_FROM`, events logs, kind and status tags.

use std::sync::Arc;

use std::collections::{BTreeSet, HashMap};

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use serde::Serialize;
use serde_json::Value;

use super::error::{parse_trace_id, ApiError};
use super::ApiState;
use crate::ingest::now_us;
use crate::model::{
    AttrValue, KeyValue, Resource, Span, SpanKind, StatusCode, SummaryKeys, Trace, TraceId,
};
use crate::storage::keys::pair_term;
use crate::storage::IndexTag;

/// Most candidate traces one search loads before answering.
const SEARCH_CANDIDATES: usize = 5_000;

#[derive(Serialize)]
struct Envelope<T: Serialize> {
    data: T,
    total: usize,
    limit: usize,
    offset: usize,
    errors: Option<Vec<EnvelopeError>>,
}

#[derive(Serialize)]
struct EnvelopeError {
    code: u16,
    msg: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JaegerTrace {
    #[serde(rename = "traceID")]
    trace_id: String,
    spans: Vec<JaegerSpan>,
    processes: serde_json::Map<String, Value>,
    warnings: Option<Vec<String>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JaegerSpan {
    #[serde(rename = "traceID")]
    trace_id: String,
    #[serde(rename = "spanID")]
    span_id: String,
    operation_name: String,
    references: Vec<Reference>,
    start_time: u64,
    duration: u64,
    tags: Vec<Tag>,
    logs: Vec<Log>,
    #[serde(rename = "processID")]
    process_id: String,
    warnings: Option<Vec<String>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Reference {
    ref_type: &'static str,
    #[serde(rename = "traceID")]
    trace_id: String,
    #[serde(rename = "spanID")]
    span_id: String,
}

#[derive(Serialize)]
struct Tag {
    key: String,
    #[serde(rename = "type")]
    kind: &'static str,
    value: Value,
}

#[derive(Serialize)]
struct Log {
    timestamp: u64,
    fields: Vec<Tag>,
}

pub(super) fn ok<T: Serialize>(data: Vec<T>) -> Response {
    Json(Envelope {
        total: data.len(),
        data,
        limit: 0,
        offset: 0,
        errors: None,
    })
    .into_response()
}

/// `GET /api/services`: every service that has completed traces, sorted.
pub async fn services(State(state): State<Arc<ApiState>>) -> Response {
    match state.blocking(|store| store.names(None)).await {
        Ok(names) => {
            let services: BTreeSet<String> = names.into_iter().map(|n| n.service).collect();
            ok(services.into_iter().collect())
        }
        Err(error) => error_envelope(error),
    }
}

/// `GET /api/services/{service}/operations`: the service's operation names.
pub async fn service_operations(
    State(state): State<Arc<ApiState>>,
    Path(service): Path<String>,
) -> Response {
    match state
        .blocking(move |store| store.names(Some(&service)))
        .await
    {
        Ok(names) => {
            let operations: BTreeSet<String> = names.into_iter().map(|n| n.operation).collect();
            ok(operations.into_iter().collect())
        }
        Err(error) => error_envelope(error),
    }
}

/// `GET /api/operations?service=&spanKind=`: operations with their span kind.
pub async fn operations(
    State(state): State<Arc<ApiState>>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let Some(service) = params.get("service").filter(|s| !s.is_empty()).cloned() else {
        return error_envelope(ApiError::BadRequest(
            "parameter 'service' is required".into(),
        ));
    };
    let kind_filter = params.get("spanKind").filter(|k| !k.is_empty()).cloned();
    match state
        .blocking(move |store| store.names(Some(&service)))
        .await
    {
        Ok(names) => {
            let operations: Vec<Value> = names
                .into_iter()
                .map(|n| {
                    // Jaeger names an unspecified kind with the empty string.
                    let kind = match SpanKind::from_otlp(i32::from(n.kind)) {
                        SpanKind::Unspecified => "",
                        other => other.as_str(),
                    };
                    (n.operation, kind)
                })
                .filter(|(_, kind)| kind_filter.as_deref().is_none_or(|k| k == *kind))
                .map(|(name, kind)| serde_json::json!({"name": name, "spanKind": kind}))
                .collect();
            ok(operations)
        }
        Err(error) => error_envelope(error),
    }
}

/// What `/api/traces` selects: a trace matches when one of its spans matches
/// every criterion, as in Jaeger.
pub(crate) struct SpanCriteria {
    pub(crate) service: String,
    pub(crate) operation: Option<String>,
    pub(crate) tags: Vec<(String, String)>,
    pub(crate) min_duration_us: Option<u64>,
    pub(crate) max_duration_us: Option<u64>,
    pub(crate) start_us: u64,
    pub(crate) end_us: u64,
}

impl SpanCriteria {
    /// The index that narrows the candidates most: an indexed tag, the
    /// service and operation, else the service. Candidates are still checked
    /// span by span, as Jaeger matches every criterion on one span.
    fn index_term(&self, keys: &SummaryKeys) -> (IndexTag, String) {
        if let Some((key, value)) = self.tags.iter().find(|(k, v)| keys.indexes(k, v)) {
            return (IndexTag::Attribute, pair_term(key, value));
        }
        match &self.operation {
            Some(operation) => (IndexTag::Operation, pair_term(&self.service, operation)),
            None => (IndexTag::Service, self.service.clone()),
        }
    }

    pub(crate) fn parse(params: &[(String, String)]) -> Result<(Self, usize), ApiError> {
        let bad = |m: String| ApiError::BadRequest(m);
        let get = |key: &str| {
            params
                .iter()
                .find(|(k, v)| k == key && !v.is_empty())
                .map(|(_, v)| v.clone())
        };
        let service =
            get("service").ok_or_else(|| bad("parameter 'service' is required".into()))?;
        let mut tags = Vec::new();
        for (key, value) in params {
            match key.as_str() {
                "tag" => {
                    let (k, v) = value
                        .split_once(':')
                        .ok_or_else(|| bad(format!("tag {value:?} is not key:value")))?;
                    tags.push((k.to_string(), v.to_string()));
                }
                "tags" => {
                    let map: serde_json::Map<String, Value> = serde_json::from_str(value)
                        .map_err(|e| bad(format!("tags is not a JSON object: {e}")))?;
                    for (k, v) in map {
                        let v = match v {
                            Value::String(s) => s,
                            other => other.to_string(),
                        };
                        tags.push((k, v));
                    }
                }
                _ => {}
            }
        }
        let micros = |key: &str| -> Result<Option<u64>, ApiError> {
            get(key)
                .map(|v| {
                    v.parse::<u64>()
                        .map_err(|_| bad(format!("{key}: {v:?} is not microseconds")))
                })
                .transpose()
        };
        let duration = |key: &str| -> Result<Option<u64>, ApiError> {
            get(key)
                .map(|v| {
                    parse_go_duration_us(&v).ok_or_else(|| {
                        bad(format!("{key}: {v:?} is not a duration like 1.5ms or 2s"))
                    })
                })
                .transpose()
        };
        let end_us = micros("end")?.unwrap_or_else(now_us);
        let start_us = micros("start")?.unwrap_or(end_us.saturating_sub(3_600_000_000));
        let limit = match get("limit") {
            None => 20,
            Some(v) => v
                .parse::<usize>()
                .map_err(|_| bad(format!("limit: {v:?} is not a number")))?
                .clamp(1, 1500),
        };
        Ok((
            Self {
                service,
                operation: get("operation"),
                tags,
                min_duration_us: duration("minDuration")?,
                max_duration_us: duration("maxDuration")?,
                start_us,
                end_us,
            },
            limit,
        ))
    }

    fn matches(&self, span: &Span) -> bool {
        let duration_us = span.duration_ns() / 1_000;
        let start_us = span.start_ns / 1_000;
        span.service() == self.service
            && self.operation.as_ref().is_none_or(|op| *op == span.name)
            && self.min_duration_us.is_none_or(|min| duration_us >= min)
            && self.max_duration_us.is_none_or(|max| duration_us <= max)
            && (self.start_us..=self.end_us).contains(&start_us)
            && self
                .tags
                .iter()
                .all(|(key, value)| tag_matches(span, key, value))
    }
}

/// A tag filter compares the string form of the span's attribute, else of its
/// resource's, plus the tags Jaeger derives (`error`, `span.kind`).
pub(super) fn tag_matches(span: &Span, key: &str, value: &str) -> bool {
    let derived = match key {
        "error" => Some((span.status.code == StatusCode::Error).to_string()),
        "span.kind" => Some(span.kind.as_str().to_string()),
        _ => None,
    };
    if derived.as_deref() == Some(value) {
        return true;
    }
    span.attributes
        .iter()
        .chain(span.resource.attributes.iter())
        .any(|kv| kv.key == key && kv.value.to_string_form() == value)
}

/// Go's duration syntax as Jaeger takes it: `1.5ms`, `100us`, `1m30s`.
pub(crate) fn parse_go_duration_us(text: &str) -> Option<u64> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    let mut total_ns = 0f64;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let value: f64 = rest[..number_end].parse().ok()?;
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_end..];
        total_ns += value * scale;
    }
    (total_ns.is_finite() && total_ns >= 0.0).then(|| (total_ns / 1e3) as u64)
}

/// `GET /api/traces`: Jaeger's trace search. Candidates come from the most
/// selective index (`SpanCriteria::index_term`), newest first; each is loaded
/// and kept when one of its spans matches.
/// The scan is bounded in candidates and time; when it stops early the answer
/// says so in `warnings`.
pub async fn search_traces(
    State(state): State<Arc<ApiState>>,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let (criteria, limit) = match SpanCriteria::parse(&params) {
        Ok(parsed) => parsed,
        Err(error) => return error_envelope(error),
    };
    let keys = state.summary_keys.clone();
    let _turn = match state.limits.search_turn().await {
        Ok(turn) => turn,
        Err(error) => return error_envelope(error),
    };
    let (search_time, response_spans) = (state.limits.search_time, state.limits.response_spans);
    let result = state
        .blocking(move |store| {
            let started = std::time::Instant::now();
            let (tag, value) = criteria.index_term(&keys);
            // A trace starts at or before its spans; an hour of slack catches
            // long traces whose matching span starts in the range.
            let hits = store.scan_index(
                tag,
                &value,
                criteria.start_us.saturating_sub(3_600_000_000),
                criteria.end_us,
                SEARCH_CANDIDATES,
            )?;
            let candidates = hits.len();
            let mut found = Vec::new();
            let mut warning = None;
            let mut spans = 0;
            for (n, hit) in hits.into_iter().enumerate() {
                if found.len() >= limit {
                    break;
                }
                if started.elapsed() > search_time {
                    warning = Some(format!(
                        "search stopped after {search_time:?} having examined {n} of {candidates} traces; narrow the time range or add filters",
                    ));
                    break;
                }
                if let Some(trace) = store.trace(hit.trace_id)? {
                    if trace.spans.iter().any(|s| criteria.matches(s)) {
                        spans += trace.spans.len();
                        if spans > response_spans && !found.is_empty() {
                            warning = Some(format!(
                                "answer stopped at {} traces: the next would pass {response_spans} spans; lower the limit",
                                found.len()
                            ));
                            break;
                        }
                        found.push(trace);
                    }
                }
            }
            if warning.is_none() && candidates == SEARCH_CANDIDATES && found.len() < limit {
                warning = Some(format!(
                    "only the newest {SEARCH_CANDIDATES} traces of the service were examined"
                ));
            }
            Ok((found, warning))
        })
        .await;
    match result {
        Ok((traces, warning)) => {
            let data: Vec<JaegerTrace> = traces.iter().map(to_jaeger).collect();
            let mut body = serde_json::to_value(Envelope {
                total: data.len(),
                data,
                limit: 0,
                offset: 0,
                errors: None,
            })
            .unwrap_or(Value::Null);
            if let Some(warning) = warning {
                body["warnings"] = serde_json::json!([warning]);
            }
            Json(body).into_response()
        }
        Err(error) => error_envelope(error),
    }
}

/// `GET /api/traces/{traceID}`
pub async fn get_trace(
    State(state): State<Arc<ApiState>>,
    Path(trace_id): Path<String>,
) -> Response {
    let result = async {
        let id = parse_jaeger_trace_id(&trace_id)?;
        // Rendered where it was read: see `ApiState::render_trace`.
        state
            .blocking(move |store| {
                Ok(store.trace(id)?.map(|trace| {
                    sonic_rs::to_vec(&Envelope {
                        data: vec![to_jaeger(&trace)],
                        total: 1,
                        limit: 0,
                        offset: 0,
                        errors: None,
                    })
                }))
            })
            .await?
            .ok_or_else(|| ApiError::NotFound("trace not found".into()))?
            .map_err(|e| ApiError::Internal(format!("encoding the trace: {e}")))
    }
    .await;
    match result {
        Ok(body) => ([(http::header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(error) => error_envelope(error),
    }
}

pub(super) fn error_envelope(error: ApiError) -> Response {
    let status = error.status();
    let body = Envelope::<Option<()>> {
        data: None,
        total: 0,
        limit: 0,
        offset: 0,
        errors: Some(vec![EnvelopeError {
            code: status.as_u16(),
            msg: error.to_string(),
        }]),
    };
    (status, Json(body)).into_response()
}

/// Jaeger ids may come without leading zeros (64-bit ids); pad them back.
pub(crate) fn parse_jaeger_trace_id(text: &str) -> Result<TraceId, ApiError> {
    if text.len() < 32 && !text.is_empty() && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return parse_trace_id(&format!("{text:0>32}"));
    }
    parse_trace_id(text)
}

pub fn to_jaeger(trace: &Trace) -> JaegerTrace {
    let trace_id = trace.trace_id.to_string();
    let mut processes: Vec<&Arc<Resource>> = Vec::new();
    let mut spans = Vec::with_capacity(trace.spans.len());
    for span in &trace.spans {
        let position = processes
            .iter()
            .position(|p| Arc::ptr_eq(*p, &span.resource) || ***p == *span.resource)
            .unwrap_or_else(|| {
                processes.push(&span.resource);
                processes.len() - 1
            });
        spans.push(to_jaeger_span(
            span,
            &trace_id,
            format!("p{}", position + 1),
        ));
    }
    let processes = processes
        .iter()
        .enumerate()
        .map(|(i, resource)| {
            let process = serde_json::json!({
                "serviceName": resource.service,
                "tags": tags(&resource.attributes),
            });
            (format!("p{}", i + 1), process)
        })
        .collect();
    JaegerTrace {
        trace_id,
        spans,
        processes,
        warnings: None,
    }
}

fn to_jaeger_span(span: &Span, trace_id: &str, process_id: String) -> JaegerSpan {
    let mut references = Vec::new();
    if let Some(parent) = span.parent_span_id {
        references.push(Reference {
            ref_type: "CHILD_OF",
            trace_id: trace_id.to_string(),
            span_id: parent.to_string(),
        });
    }
    references.extend(span.links.iter().map(|link| Reference {
        ref_type: "FOLLOWS_FROM",
        trace_id: link.trace_id.to_string(),
        span_id: link.span_id.to_string(),
    }));

    let mut span_tags = tags(&span.attributes);
    let mut push = |key: &str, kind: &'static str, value: Value| {
        span_tags.push(Tag {
            key: key.to_string(),
            kind,
            value,
        })
    };
    if span.kind != SpanKind::Unspecified {
        push("span.kind", "string", span.kind.as_str().into());
    }
    match span.status.code {
        StatusCode::Unset => {}
        StatusCode::Ok => push("otel.status_code", "string", "OK".into()),
        StatusCode::Error => {
            push("otel.status_code", "string", "ERROR".into());
            push("error", "bool", true.into());
        }
    }
    if !span.status.message.is_empty() {
        push(
            "otel.status_description",
            "string",
            span.status.message.clone().into(),
        );
    }
    if !span.scope.name.is_empty() {
        push("otel.scope.name", "string", span.scope.name.clone().into());
    }
    if !span.scope.version.is_empty() {
        push(
            "otel.scope.version",
            "string",
            span.scope.version.clone().into(),
        );
    }
    if !span.trace_state.is_empty() {
        push("w3c.tracestate", "string", span.trace_state.clone().into());
    }

    let logs = span
        .events
        .iter()
        .map(|event| {
            let mut fields = vec![Tag {
                key: "event".into(),
                kind: "string",
                value: event.name.clone().into(),
            }];
            fields.extend(tags(&event.attributes));
            Log {
                timestamp: event.time_ns / 1_000,
                fields,
            }
        })
        .collect();

    JaegerSpan {
        trace_id: trace_id.to_string(),
        span_id: span.span_id.to_string(),
        operation_name: span.name.clone(),
        references,
        start_time: span.start_ns / 1_000,
        duration: span.duration_ns() / 1_000,
        tags: span_tags,
        logs,
        process_id,
        warnings: None,
    }
}

fn tags(attributes: &[KeyValue]) -> Vec<Tag> {
    attributes.iter().map(tag).collect()
}

/// One attribute as a Jaeger tag; arrays and maps become their JSON text, as
/// Jaeger's own OTLP translator does.
fn tag(kv: &KeyValue) -> Tag {
    let (kind, value) = match &kv.value {
        AttrValue::String(s) => ("string", Value::String(s.clone())),
        AttrValue::Bool(b) => ("bool", Value::Bool(*b)),
        AttrValue::Int(i) => ("int64", Value::from(*i)),
        AttrValue::Double(_) => ("float64", kv.value.to_json()),
        AttrValue::Bytes(b) => (
            "binary",
            Value::String(base64::engine::general_purpose::STANDARD.encode(b)),
        ),
        AttrValue::Empty | AttrValue::Array(_) | AttrValue::Map(_) => {
            ("string", Value::String(kv.value.to_string_form()))
        }
    };
    Tag {
        key: kv.key.clone(),
        kind,
        value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Event, SpanId, Status};

    #[test]
    fn span_maps_to_the_jaeger_shape() {
        let resource = Arc::new(Resource {
            service: "order-service".into(),
            attributes: vec![KeyValue::new("host.name", AttrValue::String("h1".into()))],
        });
        let span = Span {
            trace_id: TraceId([0xab; 16]),
            span_id: SpanId([2; 8]),
            parent_span_id: Some(SpanId([1; 8])),
            name: "SELECT".into(),
            kind: SpanKind::Client,
            start_ns: 5_000_000,
            end_ns: 7_500_000,
            status: Status {
                code: StatusCode::Error,
                message: "timeout".into(),
            },
            attributes: vec![
                KeyValue::new("http.response.status_code", AttrValue::Int(503)),
                KeyValue::new("ratio", AttrValue::Double(0.5)),
            ],
            events: vec![Event {
                time_ns: 6_000_000,
                name: "retry".into(),
                attributes: vec![KeyValue::new("attempt", AttrValue::Int(2))],
                dropped_attributes: 0,
            }],
            resource,
            ..Span::default()
        };
        let trace = Trace {
            trace_id: span.trace_id,
            spans: vec![span],
            last_received_us: 0,
        };
        let json = serde_json::to_value(to_jaeger(&trace)).unwrap();
        let s = &json["spans"][0];
        assert_eq!(json["traceID"], "abababababababababababababababab");
        assert_eq!(s["spanID"], "0202020202020202");
        assert_eq!(s["operationName"], "SELECT");
        assert_eq!(s["startTime"], 5_000);
        assert_eq!(s["duration"], 2_500);
        assert_eq!(s["processID"], "p1");
        assert_eq!(s["references"][0]["refType"], "CHILD_OF");
        assert_eq!(s["references"][0]["spanID"], "0101010101010101");
        assert_eq!(
            s["tags"][0],
            serde_json::json!({"key": "http.response.status_code", "type": "int64", "value": 503})
        );
        assert_eq!(s["tags"][1]["type"], "float64");
        let tag_keys: Vec<&str> = s["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["key"].as_str().unwrap())
            .collect();
        assert!(tag_keys.contains(&"span.kind"));
        assert!(tag_keys.contains(&"error"));
        assert_eq!(s["logs"][0]["timestamp"], 6_000);
        assert_eq!(s["logs"][0]["fields"][0]["value"], "retry");
        assert_eq!(json["processes"]["p1"]["serviceName"], "order-service");
        assert_eq!(json["processes"]["p1"]["tags"][0]["key"], "host.name");
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration_us("1.5ms"), Some(1_500));
        assert_eq!(parse_go_duration_us("100us"), Some(100));
        assert_eq!(parse_go_duration_us("1m30s"), Some(90_000_000));
        assert_eq!(parse_go_duration_us("2s"), Some(2_000_000));
        assert_eq!(parse_go_duration_us("10"), None);
        assert_eq!(parse_go_duration_us("1x"), None);
        assert_eq!(parse_go_duration_us(""), None);
    }

    #[test]
    fn short_jaeger_ids_are_left_padded() {
        assert_eq!(
            parse_jaeger_trace_id("abc").unwrap().to_string(),
            "00000000000000000000000000000abc"
        );
        assert!(parse_jaeger_trace_id("xyz").is_err());
    }
}
