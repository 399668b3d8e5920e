//! The native API, `/api/v1` (see API.md): traces with their summary.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use axum::Json;
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::{json, Value};

use super::error::{parse_trace_id, ApiError};
use super::findings::FindingOut;
use super::ApiState;
use crate::analysis::detectors::critical_path::critical_path;
use crate::ingest::now_us;
use crate::model::{AttrValue, FindingKind, KeyValue, Span, SummaryKeys, TraceSummary};
use crate::storage::keys::pair_term;
use crate::storage::IndexTag;

/// Most index entries one search reads before it answers with what it found.
const SCAN_CAP: usize = 20_000;

/// `GET /api/v1/traces`: completed traces, filtered through the indexes.
pub async fn search_traces(
    State(state): State<Arc<ApiState>>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    let query = SearchQuery::parse(&params)?;
    let (limit, by_duration) = (query.limit, query.by_duration);
    let keys = state.summary_keys.clone();
    let _turn = state.limits.search_turn().await?;
    let search_time = state.limits.search_time;
    let (found, warning) = state
        .blocking(move |store| {
            let started = std::time::Instant::now();
            let (tag, value) = query.index_term(&keys);
            let hits = store.scan_index(tag, &value, query.start_us, query.end_us, SCAN_CAP)?;
            let candidates = hits.len();
            let mut summaries = Vec::new();
            let mut warning = (candidates == SCAN_CAP).then(|| {
                format!("only the newest {SCAN_CAP} traces of the range were examined; narrow the range or add filters")
            });
            for (n, hit) in hits.into_iter().enumerate() {
                if started.elapsed() > search_time {
                    warning = Some(format!(
                        "search stopped after {:?} having examined {n} of {candidates} traces; narrow the range or add filters",
                        search_time
                    ));
                    break;
                }
                let duration = Duration::from_micros(hit.duration_us);
                if query.min_duration.is_some_and(|min| duration < min)
                    || query.max_duration.is_some_and(|max| duration > max)
                    || (query.error_only && !hit.error)
                {
                    continue;
                }
                // The index is keyed by hashes: the summary settles collisions.
                let Some(summary) = store.summary(hit.trace_id)? else {
                    continue;
                };
                if query.matches(&summary, &keys) && query.matches_spans(store, &summary, &keys)? {
                    summaries.push(summary);
                    if !query.by_duration && summaries.len() >= query.limit {
                        // Enough found: what was left unexamined is no loss.
                        warning = None;
                        break;
                    }
                }
            }
            Ok((summaries, warning))
        })
        .await?;
    let mut summaries = found;
    if by_duration {
        summaries.sort_by_key(|s| std::cmp::Reverse(s.duration_ns));
    }
    summaries.truncate(limit);
    let mut body = json!({
        "traces": summaries.iter().map(summary_json).collect::<Vec<_>>(),
    });
    if let Some(warning) = warning {
        body["warnings"] = json!([warning]);
    }
    Ok(Json(body))
}

/// The filters of `GET /api/v1/traces` (API.md), parsed and checked.
pub(crate) struct SearchQuery {
    pub(crate) service: Option<String>,
    /// A span named so, of `service` when given (as in Jaeger).
    pub(crate) operation: Option<String>,
    /// `attr=key:value`, each on any span.
    pub(crate) attrs: Vec<(String, String)>,
    pub(crate) correlation_id: Option<String>,
    /// `finding=<kind>`: traces with a finding of that kind.
    pub(crate) finding: Option<FindingKind>,
    pub(crate) min_duration: Option<Duration>,
    pub(crate) max_duration: Option<Duration>,
    pub(crate) error_only: bool,
    pub(crate) by_duration: bool,
    pub(crate) limit: usize,
    pub(crate) start_us: u64,
    pub(crate) end_us: u64,
}

impl SearchQuery {
    pub(crate) fn parse(params: &[(String, String)]) -> Result<Self, ApiError> {
        let bad = |message: String| ApiError::BadRequest(message);
        let mut attrs = Vec::new();
        for (_, value) in params.iter().filter(|(k, _)| k == "attr") {
            let (k, v) = value
                .split_once(':')
                .ok_or_else(|| bad(format!("attr {value:?} is not key:value")))?;
            attrs.push((k.to_string(), v.to_string()));
        }
        let non_empty = |key: &str| {
            params
                .iter()
                .find(|(k, v)| k == key && !v.is_empty())
                .map(|(_, v)| v.clone())
        };
        let get = |key: &str| params.iter().find(|(k, _)| k == key).map(|(_, v)| v);
        let duration = |key: &str| -> Result<Option<Duration>, ApiError> {
            get(key)
                .map(|v| {
                    parse_duration(v).ok_or_else(|| {
                        bad(format!(
                            "{key}: {v:?} is not a duration like 250ms, 1.5s or 300"
                        ))
                    })
                })
                .transpose()
        };
        let limit = match get("limit") {
            None => 20,
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=1000).contains(n))
                .ok_or_else(|| bad(format!("limit: {v:?} is not a number from 1 to 1000")))?,
        };
        let by_duration = match get("sort").map(String::as_str) {
            None | Some("start") => false,
            Some("duration") => true,
            Some(other) => return Err(bad(format!("sort: {other:?} is not start or duration"))),
        };
        let error_only = match get("error").map(String::as_str) {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => return Err(bad(format!("error: {other:?} is not true or false"))),
        };
        let finding = non_empty("finding")
            .map(|v| {
                FindingKind::parse(&v).ok_or_else(|| {
                    let known: Vec<_> = FindingKind::ALL.iter().map(|k| k.as_str()).collect();
                    bad(format!("finding: {v:?} is not one of {}", known.join(", ")))
                })
            })
            .transpose()?;
        let (start_us, end_us) = time_range(params)?;
        Ok(Self {
            finding,
            operation: non_empty("operation"),
            attrs,
            service: non_empty("service"),
            correlation_id: non_empty("correlation_id"),
            min_duration: duration("min_duration")?,
            max_duration: duration("max_duration")?,
            error_only,
            by_duration,
            limit,
            start_us,
            end_us,
        })
    }

    /// The most selective index for the query: a correlation id, an indexed
    /// attribute, a service and operation, a service, else every trace.
    fn index_term(&self, keys: &SummaryKeys) -> (IndexTag, String) {
        if let Some(id) = &self.correlation_id {
            return (IndexTag::CorrelationId, id.clone());
        }
        if let Some((key, value)) = self.attrs.iter().find(|(k, v)| keys.indexes(k, v)) {
            return (IndexTag::Attribute, pair_term(key, value));
        }
        // Few traces have a finding of a given kind.
        if let Some(kind) = self.finding {
            return (IndexTag::Finding, kind.as_str().to_string());
        }
        match (&self.service, &self.operation) {
            (Some(service), Some(operation)) => {
                (IndexTag::Operation, pair_term(service, operation))
            }
            (Some(service), None) => (IndexTag::Service, service.clone()),
            _ => (IndexTag::All, String::new()),
        }
    }

    /// The filters the summary settles: service, correlation id, operation
    /// and indexed attributes.
    fn matches(&self, summary: &TraceSummary, keys: &SummaryKeys) -> bool {
        self.service
            .as_ref()
            .is_none_or(|s| summary.services.contains(s))
            && self
                .correlation_id
                .as_ref()
                .is_none_or(|c| summary.correlation_ids.contains(c))
            && self
                .finding
                .is_none_or(|kind| summary.finding_kinds.iter().any(|k| k == kind.as_str()))
            && self.operation.as_ref().is_none_or(|op| {
                summary.operations.iter().any(|(service, o)| {
                    o == op && self.service.as_ref().is_none_or(|s| s == service)
                })
            })
            && self.attrs.iter().all(|(key, value)| {
                !keys.indexes(key, value)
                    || summary
                        .attributes
                        .iter()
                        .any(|(k, v)| k == key && v == value)
            })
    }

    /// Attribute filters on keys that are not indexed: the trace is loaded
    /// and its spans checked. The scan stays bounded by `SCAN_CAP`.
    fn matches_spans(
        &self,
        store: &dyn crate::storage::TraceStore,
        summary: &TraceSummary,
        keys: &SummaryKeys,
    ) -> Result<bool, crate::storage::StorageError> {
        let mut unindexed = self
            .attrs
            .iter()
            .filter(|(k, v)| !keys.indexes(k, v))
            .peekable();
        if unindexed.peek().is_none() {
            return Ok(true);
        }
        let Some(trace) = store.trace(summary.trace_id)? else {
            return Ok(false);
        };
        Ok(unindexed.all(|(key, value)| {
            trace
                .spans
                .iter()
                .any(|s| super::jaeger::tag_matches(s, key, value))
        }))
    }
}

/// The time range of a request: `start` and `end` (unix ms or RFC 3339) or
/// `lookback` before `end` (default: the last hour), in µs.
pub(crate) fn time_range(params: &[(String, String)]) -> Result<(u64, u64), ApiError> {
    let bad = |message: String| ApiError::BadRequest(message);
    let get = |key: &str| params.iter().find(|(k, _)| k == key).map(|(_, v)| v);
    let now = now_us();
    let end_us = match get("end") {
        Some(v) => {
            parse_time_us(v).ok_or_else(|| bad(format!("end: {v:?} is not unix ms or RFC 3339")))?
        }
        None => now,
    };
    let start_us = match (get("start"), get("lookback")) {
        (Some(v), _) => parse_time_us(v)
            .ok_or_else(|| bad(format!("start: {v:?} is not unix ms or RFC 3339")))?,
        (None, Some(v)) => {
            let lookback =
                humantime::parse_duration(v).map_err(|e| bad(format!("lookback: {e}")))?;
            end_us.saturating_sub(lookback.as_micros() as u64)
        }
        (None, None) => end_us.saturating_sub(3_600_000_000),
    };
    if start_us > end_us {
        return Err(bad("start is after end".into()));
    }
    Ok((start_us, end_us))
}

/// `250ms`, `1.5s`, `2m`, `100us`, or a plain number of milliseconds.
pub(crate) fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().ok()?;
    let seconds = match unit {
        "" | "ms" => value / 1e3,
        "us" | "µs" => value / 1e6,
        "ns" => value / 1e9,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return None,
    };
    // Not `from_secs_f64`: it panics past u64::MAX seconds (`1e20h`).
    Duration::try_from_secs_f64(seconds).ok()
}

/// Unix milliseconds or RFC 3339, as microseconds.
pub(crate) fn parse_time_us(text: &str) -> Option<u64> {
    if let Ok(ms) = text.parse::<u64>() {
        return ms.checked_mul(1_000);
    }
    let time = humantime::parse_rfc3339_weak(text).ok()?;
    time.duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_micros() as u64)
}

/// `GET /api/v1/traces/{trace_id}`
pub async fn get_trace(
    State(state): State<Arc<ApiState>>,
    Path(trace_id): Path<String>,
) -> Result<axum::response::Response, ApiError> {
    let id = parse_trace_id(&trace_id)?;
    let body = state
        .render_trace(id, |trace, summary, findings| {
            let critical_path = critical_path(&trace)
                .into_iter()
                .map(|step| PathStepOut {
                    span_id: step.span_id.to_string(),
                    self_ms: step.self_ns as f64 / 1e6,
                })
                .collect();
            let out = TraceOut {
                summary: summary_json(&summary),
                findings: FindingOut::list(&findings),
                critical_path,
                spans: trace.spans,
            };
            // Sized up front: growing a megabyte-sized body copies it again and
            // again. sonic-rs escapes strings with SIMD; the output is serde_json's.
            let mut body = Vec::with_capacity(4096 + out.spans.len() * 2048);
            sonic_rs::to_writer(&mut body, &out).map(|()| body)
        })
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("trace {id} not found")))?
        .map_err(|e| ApiError::Internal(format!("encoding the trace: {e}")))?;
    Ok(([(http::header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// A trace as `GET /api/v1/traces/{trace_id}` answers it, serialized straight
/// from the spans (no intermediate JSON tree: a 1,000-span trace is a hot path).
#[derive(Serialize)]
struct TraceOut<'a> {
    summary: Value,
    #[serde(serialize_with = "spans_out")]
    spans: Vec<Span>,
    findings: Vec<FindingOut<'a>>,
    /// The spans that set the trace's duration, root first, each with the
    /// time on the path that is its own (`detectors::critical_path`).
    critical_path: Vec<PathStepOut>,
}

#[derive(Serialize)]
struct PathStepOut {
    span_id: String,
    self_ms: f64,
}

fn spans_out<S: Serializer>(spans: &[Span], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(spans.iter().map(SpanOut))
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
        "finding_kinds": summary.finding_kinds,
        "complete": summary.complete,
    })
}

/// Attributes as one JSON object, in their order (OTLP keys are unique).
struct AttrsOut<'a>(&'a [KeyValue]);

impl Serialize for AttrsOut<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|kv| (&kv.key, ValueOut(&kv.value))))
    }
}

/// An attribute value keeping its JSON type, as `AttrValue::to_json` gives it.
struct ValueOut<'a>(&'a AttrValue);

impl Serialize for ValueOut<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            AttrValue::Empty => serializer.serialize_unit(),
            AttrValue::String(s) => serializer.serialize_str(s),
            AttrValue::Bool(b) => serializer.serialize_bool(*b),
            AttrValue::Int(i) => serializer.serialize_i64(*i),
            AttrValue::Double(d) if d.is_finite() => serializer.serialize_f64(*d),
            // NaN and infinities have no JSON number; their text keeps them visible.
            AttrValue::Double(d) => serializer.collect_str(d),
            AttrValue::Bytes(b) => serializer.serialize_str(&hex::encode(b)),
            AttrValue::Array(items) => serializer.collect_seq(items.iter().map(ValueOut)),
            AttrValue::Map(entries) => AttrsOut(entries).serialize(serializer),
        }
    }
}

struct SpanOut<'a>(&'a Span);

impl Serialize for SpanOut<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct EventOut<'a> {
            name: &'a str,
            time_us: u64,
            attributes: AttrsOut<'a>,
        }
        #[derive(Serialize)]
        struct LinkOut {
            trace_id: String,
            span_id: String,
        }
        #[derive(Serialize)]
        struct ScopeOut<'a> {
            name: &'a str,
            version: &'a str,
        }
        let span = self.0;
        let mut map = serializer.serialize_map(Some(17))?;
        map.serialize_entry("span_id", &span.span_id.to_string())?;
        map.serialize_entry(
            "parent_span_id",
            &span.parent_span_id.map(|p| p.to_string()),
        )?;
        map.serialize_entry("service", span.service())?;
        map.serialize_entry("name", &span.name)?;
        map.serialize_entry("kind", span.kind.as_str())?;
        map.serialize_entry("start_us", &(span.start_ns / 1_000))?;
        map.serialize_entry("duration_us", &(span.duration_ns() / 1_000))?;
        map.serialize_entry("status", span.status.code.as_str())?;
        map.serialize_entry("status_message", &span.status.message)?;
        map.serialize_entry("attributes", &AttrsOut(&span.attributes))?;
        map.serialize_entry(
            "events",
            &span
                .events
                .iter()
                .map(|e| EventOut {
                    name: &e.name,
                    time_us: e.time_ns / 1_000,
                    attributes: AttrsOut(&e.attributes),
                })
                .collect::<Vec<_>>(),
        )?;
        map.serialize_entry(
            "links",
            &span
                .links
                .iter()
                .map(|l| LinkOut {
                    trace_id: l.trace_id.to_string(),
                    span_id: l.span_id.to_string(),
                })
                .collect::<Vec<_>>(),
        )?;
        // What limits (the client's SDK or tracemap's) dropped, as OTLP counts it.
        map.serialize_entry("dropped_attributes_count", &span.dropped_attributes)?;
        map.serialize_entry("dropped_events_count", &span.dropped_events)?;
        map.serialize_entry("dropped_links_count", &span.dropped_links)?;
        map.serialize_entry("resource", &AttrsOut(&span.resource.attributes))?;
        map.serialize_entry(
            "scope",
            &ScopeOut {
                name: &span.scope.name,
                version: &span.scope.version,
            },
        )?;
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_values_serialize_as_their_json_form() {
        let values = vec![
            AttrValue::Empty,
            AttrValue::String("a\"b".into()),
            AttrValue::Bool(true),
            AttrValue::Int(-3),
            AttrValue::Double(1.5),
            AttrValue::Double(f64::NAN),
            AttrValue::Bytes(vec![0xab, 1]),
            AttrValue::Array(vec![AttrValue::Int(1), AttrValue::String("x".into())]),
            AttrValue::Map(vec![KeyValue::new("k", AttrValue::Double(f64::INFINITY))]),
        ];
        for value in values {
            assert_eq!(
                serde_json::to_value(ValueOut(&value)).unwrap(),
                value.to_json(),
                "{value:?}"
            );
        }
    }

    #[test]
    fn durations_in_every_accepted_form() {
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("300"), Some(Duration::from_millis(300)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("fast"), None);
        assert_eq!(parse_duration("5 parsecs"), None);
    }

    /// Found by the `query_params` fuzz target: a duration past what
    /// `Duration` holds panicked the request's task instead of answering 400.
    #[test]
    fn durations_too_long_to_hold_are_refused() {
        assert_eq!(parse_duration("99999999999999999999h"), None);
        assert_eq!(parse_duration("1e400"), None);
        let params = vec![(
            "min_duration".to_string(),
            "99999999999999999999h".to_string(),
        )];
        assert!(matches!(
            SearchQuery::parse(&params),
            Err(ApiError::BadRequest(_))
        ));
    }

    #[test]
    fn times_as_unix_ms_or_rfc3339() {
        assert_eq!(parse_time_us("1764316800000"), Some(1_764_316_800_000_000));
        assert_eq!(
            parse_time_us("2025-11-28T08:00:00Z"),
            Some(1_764_316_800_000_000)
        );
        assert_eq!(parse_time_us("yesterday"), None);
    }
}
