//! Zipkin v2 JSON spans → `model::Span`. The Zipkin types stop here.
//!
//! - Ids: 16- or 32-hex trace ids (64-bit ids are left-padded with zeros, as
//!   Zipkin and Jaeger do), 16-hex span ids; a span with an invalid id is
//!   refused on its own, the rest of the list is kept.
//! - `localEndpoint.serviceName` is the service; `remoteEndpoint` becomes
//!   `peer.service`, `network.peer.address` and `network.peer.port`, which name
//!   the callee on the service map; timestamps and durations are microseconds.
//! - Tags are string attributes; the `error` tag (and `otel.status_code` /
//!   `otel.status_description`) become the span status, as the OpenTelemetry
//!   Collector's Zipkin receiver does. Annotations become events.
//! - Shared spans: in Zipkin's B3 model a server may reuse its client's span id
//!   (`shared: true`). tracemap keeps one span per id in a trace, so the server
//!   half gets an id of its own, derived from the trace and shared ids (a retried
//!   post gives the same id), and the client span with the original id becomes
//!   its parent — what Jaeger does for the same case.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;

use crate::model::{
    semconv, AttrValue, Event, KeyValue, Resource, Scope, Span, SpanId, SpanKind, Status,
    StatusCode, TraceId,
};
use crate::receivers::SpanRejection;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ZipkinSpan {
    trace_id: String,
    id: String,
    parent_id: Option<String>,
    name: Option<String>,
    kind: Option<String>,
    timestamp: Option<u64>,
    duration: Option<u64>,
    local_endpoint: Option<Endpoint>,
    remote_endpoint: Option<Endpoint>,
    annotations: Vec<Annotation>,
    tags: BTreeMap<String, Value>,
    debug: Option<bool>,
    shared: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Endpoint {
    service_name: Option<String>,
    ipv4: Option<String>,
    ipv6: Option<String>,
    port: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Annotation {
    timestamp: u64,
    value: String,
}

/// Converts a posted list; returns the spans and the refusals.
pub fn convert_spans(spans: Vec<ZipkinSpan>) -> (Vec<Span>, Vec<SpanRejection>) {
    let mut resources: Vec<Arc<Resource>> = Vec::new();
    let scope = Arc::new(Scope::default());
    let mut out = Vec::with_capacity(spans.len());
    let mut rejected = Vec::new();
    for span in spans {
        match convert_span(span, &mut resources, &scope) {
            Ok(span) => out.push(span),
            Err(why) => rejected.push(why),
        }
    }
    (out, rejected)
}

fn parse_trace_id(text: &str) -> Option<TraceId> {
    match text.len() {
        16 => TraceId::from_hex(&format!("{text:0>32}")).ok(),
        32 => TraceId::from_hex(text).ok(),
        _ => None,
    }
}

fn convert_span(
    span: ZipkinSpan,
    resources: &mut Vec<Arc<Resource>>,
    scope: &Arc<Scope>,
) -> Result<Span, SpanRejection> {
    let trace_id = parse_trace_id(&span.trace_id).ok_or(SpanRejection::InvalidTraceId)?;
    let id = SpanId::from_hex(&span.id).map_err(|_| SpanRejection::InvalidSpanId)?;
    let mut parent_span_id = match span.parent_id.as_deref() {
        None | Some("") => None,
        Some(text) => Some(SpanId::from_hex(text).map_err(|_| SpanRejection::InvalidParentSpanId)?),
    };
    let kind = match span.kind.as_deref() {
        Some("CLIENT") => SpanKind::Client,
        Some("SERVER") => SpanKind::Server,
        Some("PRODUCER") => SpanKind::Producer,
        Some("CONSUMER") => SpanKind::Consumer,
        _ => SpanKind::Unspecified,
    };
    let mut span_id = id;
    if span.shared == Some(true) && kind == SpanKind::Server {
        span_id = shared_server_id(&trace_id, &id);
        parent_span_id = Some(id);
    }

    let local = span.local_endpoint.unwrap_or_default();
    let service = local
        .service_name
        .clone()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| semconv::UNKNOWN_SERVICE.to_string());
    let resource = match resources.iter().find(|r| r.service == service) {
        Some(resource) => resource.clone(),
        None => {
            let resource = Arc::new(Resource {
                service,
                attributes: Vec::new(),
            });
            resources.push(resource.clone());
            resource
        }
    };

    let mut attributes = Vec::with_capacity(span.tags.len() + 4);
    let mut status = Status::default();
    for (key, value) in span.tags {
        let text = match value {
            Value::String(s) => s,
            other => other.to_string(),
        };
        match key.as_str() {
            "error" => {
                status.code = StatusCode::Error;
                if status.message.is_empty() {
                    status.message = if text.is_empty() {
                        "error".into()
                    } else {
                        text
                    };
                }
            }
            "otel.status_code" => match text.as_str() {
                "ERROR" => status.code = StatusCode::Error,
                "OK" => status.code = StatusCode::Ok,
                _ => {}
            },
            "otel.status_description" => status.message = text,
            _ => attributes.push(KeyValue::new(key, AttrValue::String(text))),
        }
    }
    if let Some(address) = local.ipv4.or(local.ipv6) {
        attributes.push(KeyValue::new(
            "network.local.address",
            AttrValue::String(address),
        ));
    }
    if let Some(port) = local.port {
        attributes.push(KeyValue::new("network.local.port", AttrValue::Int(port)));
    }
    if let Some(remote) = span.remote_endpoint {
        if let Some(peer) = remote.service_name.filter(|s| !s.is_empty()) {
            attributes.push(KeyValue::new(
                semconv::PEER_SERVICE,
                AttrValue::String(peer),
            ));
        }
        if let Some(address) = remote.ipv4.or(remote.ipv6) {
            attributes.push(KeyValue::new(
                "network.peer.address",
                AttrValue::String(address),
            ));
        }
        if let Some(port) = remote.port {
            attributes.push(KeyValue::new("network.peer.port", AttrValue::Int(port)));
        }
    }
    if span.debug == Some(true) {
        attributes.push(KeyValue::new("zipkin.debug", AttrValue::Bool(true)));
    }

    let start_ns = span.timestamp.unwrap_or(0).saturating_mul(1_000);
    let end_ns = start_ns.saturating_add(span.duration.unwrap_or(0).saturating_mul(1_000));
    Ok(Span {
        trace_id,
        span_id,
        parent_span_id,
        name: span.name.unwrap_or_default(),
        kind,
        start_ns,
        end_ns,
        status,
        attributes,
        events: span
            .annotations
            .into_iter()
            .map(|a| Event {
                time_ns: a.timestamp.saturating_mul(1_000),
                name: a.value,
                attributes: Vec::new(),
                dropped_attributes: 0,
            })
            .collect(),
        resource,
        scope: scope.clone(),
        ..Span::default()
    })
}

/// A stable, non-zero span id for the server half of a shared span.
fn shared_server_id(trace_id: &TraceId, shared: &SpanId) -> SpanId {
    // FNV-1a over the trace id and the shared id, then a marker bit so it is never zero.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in trace_id.as_bytes().iter().chain(shared.as_bytes()) {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    SpanId((hash | 1).to_be_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> (Vec<Span>, Vec<SpanRejection>) {
        convert_spans(serde_json::from_str(json).unwrap())
    }

    #[test]
    fn ids_endpoints_tags_and_annotations() {
        let (spans, rejected) = parse(
            r#"[{"traceId": "463ac35c9f6413ad", "id": "72485a3953bb6124", "parentId": "463ac35c9f6413ad",
                 "name": "get /api/books", "kind": "CLIENT", "timestamp": 1764316800000000, "duration": 25000,
                 "localEndpoint": {"serviceName": "frontend", "ipv4": "10.0.0.1"},
                 "remoteEndpoint": {"serviceName": "catalog", "ipv4": "10.0.0.2", "port": 8080},
                 "annotations": [{"timestamp": 1764316800001000, "value": "ws"}],
                 "tags": {"http.method": "GET", "http.status_code": "503", "error": "upstream 503"}}]"#,
        );
        assert!(rejected.is_empty());
        let span = &spans[0];
        assert_eq!(
            span.trace_id.to_string(),
            "0000000000000000463ac35c9f6413ad"
        );
        assert_eq!(span.service(), "frontend");
        assert_eq!(span.kind, SpanKind::Client);
        assert_eq!(span.start_ns, 1_764_316_800_000_000_000);
        assert_eq!(span.duration_ns(), 25_000_000);
        assert_eq!(
            span.attr("peer.service"),
            Some(&AttrValue::String("catalog".into()))
        );
        assert_eq!(span.attr("network.peer.port"), Some(&AttrValue::Int(8080)));
        assert_eq!(
            span.attr("http.status_code"),
            Some(&AttrValue::String("503".into()))
        );
        assert!(span.attr("error").is_none());
        assert_eq!(span.status.code, StatusCode::Error);
        assert_eq!(span.status.message, "upstream 503");
        assert_eq!(span.events[0].name, "ws");
        assert_eq!(span.events[0].time_ns, 1_764_316_800_001_000_000);
    }

    #[test]
    fn shared_server_span_gets_its_own_id_under_the_client() {
        let json = r#"[
            {"traceId": "463ac35c9f6413ad48485a3953bb6124", "id": "a2fb4a1d1a96d312", "kind": "CLIENT",
             "localEndpoint": {"serviceName": "frontend"}, "timestamp": 1, "duration": 10},
            {"traceId": "463ac35c9f6413ad48485a3953bb6124", "id": "a2fb4a1d1a96d312", "kind": "SERVER", "shared": true,
             "localEndpoint": {"serviceName": "backend"}, "timestamp": 2, "duration": 8}]"#;
        let (spans, _) = parse(json);
        let (again, _) = parse(json);
        assert_eq!(spans[0].span_id.to_string(), "a2fb4a1d1a96d312");
        assert_ne!(spans[1].span_id, spans[0].span_id);
        assert_eq!(spans[1].parent_span_id, Some(spans[0].span_id));
        assert_eq!(spans[1].span_id, again[1].span_id, "derived ids are stable");
        assert_eq!(spans[1].service(), "backend");
    }

    #[test]
    fn invalid_ids_are_refused_one_by_one() {
        let (spans, rejected) = parse(
            r#"[{"traceId": "xyz", "id": "72485a3953bb6124"},
                {"traceId": "463ac35c9f6413ad", "id": "0000000000000000"},
                {"traceId": "463ac35c9f6413ad", "id": "72485a3953bb6124", "parentId": "12"},
                {"traceId": "463ac35c9f6413ad", "id": "72485a3953bb6124"}]"#,
        );
        assert_eq!(spans.len(), 1);
        assert_eq!(
            rejected,
            vec![
                SpanRejection::InvalidTraceId,
                SpanRejection::InvalidSpanId,
                SpanRejection::InvalidParentSpanId
            ]
        );
        assert_eq!(spans[0].service(), "unknown_service");
    }
}
