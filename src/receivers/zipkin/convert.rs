//! Zipkin v2 JSON → `model::Span`, at the edge of the Zipkin receiver: `http.rs`
//! reads the body, this module decodes and converts it, ingest stores the result.
//! The serde types of the Zipkin JSON are private to this file; `tags.rs` reads
//! what OpenTelemetry exporters and the Collector encode in tags and annotations.
//!
//! The mapping is the OpenTelemetry Collector's Zipkin receiver's, with the
//! current semantic-convention names:
//!
//! - Ids: a trace id is 16 or 32 hex digits (a 64-bit id is left-padded with
//!   zeros to 128 bits, as Zipkin and Jaeger do), a span id 16. A span whose
//!   trace, span or parent id is missing, of another length, not hex or all
//!   zeros (an all-zero parent excepted: it means "no parent", as in OTLP) is
//!   refused on its own; the rest of the list is kept. A parent equal to the
//!   span's own id is dropped, as the Collector does.
//! - `name` is the span name and `localEndpoint.serviceName` the service (else
//!   a `service.name` tag, else `unknown_service`), both kept as sent: Zipkin's
//!   server lowercases them, the Collector and Jaeger do not, and a service
//!   sending over OTLP and Zipkin must be one node on the map.
//! - `kind`, status, resource, scope: see `tags.rs`. An absent kind is
//!   `unspecified`, as in the Collector (OpenTelemetry exporters send INTERNAL
//!   spans without one).
//! - `timestamp`, `duration` and annotation times are microseconds: integers as
//!   Zipkin sends them, or decimals as early OpenTelemetry exporters did. An
//!   absent timestamp reads as 0, as in the Collector.
//! - `localEndpoint` ipv4/ipv6/port → `network.local.address`/`network.local.port`;
//!   `remoteEndpoint` serviceName → `peer.service`, ipv4/ipv6 →
//!   `network.peer.address`, port → `network.peer.port`: these name the callee
//!   on the service map. Port 0 is Zipkin's "unknown" and is left out.
//! - Tags are string attributes (a non-string JSON value by its JSON text);
//!   annotations are events.
//! - `debug` is not kept: tracemap does not sample, and the OpenTelemetry Python
//!   exporter marks every sampled span `debug`, so it carries no signal.
//! - Shared spans: in Zipkin's B3 model a server may reuse its client's span id
//!   (`shared: true` on the SERVER half). tracemap keys spans by id within a
//!   trace, and a later copy replaces an earlier one, so the server half gets an
//!   id of its own, a hash of the trace and shared ids (a retried post derives
//!   the same id, so posting stays idempotent), and the client span with the
//!   original id becomes its parent: what Jaeger does for the same case. When
//!   the client half never arrives, the server span points to a parent the
//!   trace lacks, as any span whose caller is not instrumented does.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use serde_json::{Number, Value};

use super::tags;
use crate::model::{
    semconv, AttrValue, IdError, KeyValue, Resource, Scope, Span, SpanId, SpanKind, TraceId,
};
use crate::receivers::SpanRejection;

/// One decoded request: the spans to store, and each refusal with its detail.
#[derive(Debug, Default)]
pub struct Converted {
    pub spans: Vec<Span>,
    pub rejected: Vec<(SpanRejection, String)>,
}

/// Decodes a Zipkin v2 JSON list of spans and converts it. A body that is not
/// such a list fails whole; a span with an invalid id is refused on its own.
pub fn decode_json(bytes: &[u8]) -> Result<Converted, serde_json::Error> {
    let posted: Vec<ZipkinSpan> = serde_json::from_slice(bytes)?;
    Ok(convert_spans(posted))
}

// Every field is optional and `null` reads as absent: reporters differ in what
// they omit, and one missing field must not fail a whole batch.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct ZipkinSpan {
    trace_id: Option<String>,
    id: Option<String>,
    parent_id: Option<String>,
    name: Option<String>,
    kind: Option<String>,
    #[serde(deserialize_with = "micros_as_nanos")]
    timestamp: Option<u64>,
    #[serde(deserialize_with = "micros_as_nanos")]
    duration: Option<u64>,
    local_endpoint: Option<Endpoint>,
    remote_endpoint: Option<Endpoint>,
    annotations: Option<Vec<Annotation>>,
    tags: Option<BTreeMap<String, Value>>,
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
    #[serde(deserialize_with = "micros_as_nanos")]
    timestamp: Option<u64>,
    value: Option<String>,
}

/// Reads microseconds (an integer, or a decimal) as nanoseconds.
fn micros_as_nanos<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    match Option::<Number>::deserialize(deserializer)? {
        None => Ok(None),
        Some(number) => nanos_from_micros(&number).map(Some).ok_or_else(|| {
            D::Error::custom(format!(
                "{number} is not a time in microseconds (a number from 0 up)"
            ))
        }),
    }
}

fn nanos_from_micros(number: &Number) -> Option<u64> {
    if let Some(micros) = number.as_u64() {
        return Some(micros.saturating_mul(1_000));
    }
    let micros = number.as_f64()?;
    if !(micros.is_finite() && micros >= 0.0) {
        return None;
    }
    // Whole microseconds and the fraction apart: a time in nanoseconds is past
    // what an f64 holds exactly. `as` saturates at u64::MAX.
    let whole = micros.trunc();
    let fraction_ns = ((micros - whole) * 1_000.0).round() as u64;
    Some(
        (whole as u64)
            .saturating_mul(1_000)
            .saturating_add(fraction_ns),
    )
}

/// Converts a decoded list; the resources and scopes it names are shared by the
/// spans that carry the same ones.
fn convert_spans(posted: Vec<ZipkinSpan>) -> Converted {
    let mut interned = Interned::default();
    let mut out = Converted {
        spans: Vec::with_capacity(posted.len()),
        rejected: Vec::new(),
    };
    for span in posted {
        match convert_span(span, &mut interned) {
            Ok(span) => out.spans.push(span),
            Err(refusal) => out.rejected.push(refusal),
        }
    }
    out
}

type ResourceKey = (String, Vec<(String, String)>);

#[derive(Default)]
struct Interned {
    resources: HashMap<ResourceKey, Arc<Resource>>,
    scopes: HashMap<(String, String), Arc<Scope>>,
}

impl Interned {
    fn resource(&mut self, service: String, attributes: Vec<(String, String)>) -> Arc<Resource> {
        self.resources
            .entry((service, attributes))
            .or_insert_with_key(|(service, attributes)| {
                Arc::new(Resource {
                    service: service.clone(),
                    attributes: attributes
                        .iter()
                        .map(|(k, v)| KeyValue::new(k.clone(), AttrValue::String(v.clone())))
                        .collect(),
                })
            })
            .clone()
    }

    fn scope(&mut self, name: String, version: String) -> Arc<Scope> {
        self.scopes
            .entry((name, version))
            .or_insert_with_key(|(name, version)| {
                Arc::new(Scope {
                    name: name.clone(),
                    version: version.clone(),
                    attributes: Vec::new(),
                })
            })
            .clone()
    }
}

fn parse_trace_id(text: &str) -> Result<TraceId, IdError> {
    if text.len() == 16 {
        TraceId::from_hex(&format!("{text:0>32}"))
    } else {
        TraceId::from_hex(text)
    }
}

fn convert_span(
    span: ZipkinSpan,
    interned: &mut Interned,
) -> Result<Span, (SpanRejection, String)> {
    let name = span.name.unwrap_or_default();
    let refuse = |why: SpanRejection, what: &str, text: &str, error: IdError| {
        (why, format!("span {name:?}: {what} {text:?}: {error}"))
    };
    let trace_text = span.trace_id.unwrap_or_default();
    let trace_id = parse_trace_id(&trace_text)
        .map_err(|e| refuse(SpanRejection::InvalidTraceId, "trace id", &trace_text, e))?;
    let id_text = span.id.unwrap_or_default();
    let id = SpanId::from_hex(&id_text)
        .map_err(|e| refuse(SpanRejection::InvalidSpanId, "span id", &id_text, e))?;
    let mut parent_span_id = match span.parent_id.as_deref() {
        None | Some("") => None,
        Some(text) => match SpanId::from_hex(text) {
            Ok(parent) => Some(parent).filter(|p| *p != id),
            Err(IdError::AllZeros) => None,
            Err(e) => {
                return Err(refuse(
                    SpanRejection::InvalidParentSpanId,
                    "parent id",
                    text,
                    e,
                ))
            }
        },
    };

    let tags: BTreeMap<String, String> = span
        .tags
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(key, value)| match value {
            Value::Null => None,
            Value::String(text) => Some((key, text)),
            other => Some((key, other.to_string())),
        })
        .collect();
    let tags = tags::read(span.kind.as_deref(), tags);

    let span_id = if span.shared == Some(true) && tags.kind == SpanKind::Server {
        parent_span_id = Some(id);
        shared_server_id(&trace_id, &id)
    } else {
        id
    };
    let local = span.local_endpoint.unwrap_or_default();
    let service = [local.service_name.clone(), tags.service]
        .into_iter()
        .flatten()
        .find(|s| !s.is_empty())
        .unwrap_or_else(|| semconv::UNKNOWN_SERVICE.to_string());
    let resource = interned.resource(service, tags.resource);
    let scope = interned.scope(tags.scope_name, tags.scope_version);

    let mut attributes = tags.attributes;
    push_endpoint(
        &mut attributes,
        local,
        None,
        semconv::NETWORK_LOCAL_ADDRESS,
        semconv::NETWORK_LOCAL_PORT,
    );
    if let Some(remote) = span.remote_endpoint {
        push_endpoint(
            &mut attributes,
            remote,
            Some(semconv::PEER_SERVICE),
            semconv::NETWORK_PEER_ADDRESS,
            semconv::NETWORK_PEER_PORT,
        );
    }

    let start_ns = span.timestamp.unwrap_or(0);
    let end_ns = start_ns.saturating_add(span.duration.unwrap_or(0));
    let events = span
        .annotations
        .unwrap_or_default()
        .into_iter()
        .map(|a| tags::event(a.timestamp.unwrap_or(0), a.value.unwrap_or_default()))
        .collect();
    Ok(Span {
        trace_id,
        span_id,
        parent_span_id,
        name,
        kind: tags.kind,
        start_ns,
        end_ns,
        status: tags.status,
        attributes,
        events,
        trace_state: tags.trace_state,
        dropped_attributes: tags.dropped_attributes,
        dropped_events: tags.dropped_events,
        dropped_links: tags.dropped_links,
        resource,
        scope,
        ..Span::default()
    })
}

/// Adds an endpoint's attributes; they replace tags of the same name, as the
/// endpoint is Zipkin's own field for them.
fn push_endpoint(
    attributes: &mut Vec<KeyValue>,
    endpoint: Endpoint,
    service_key: Option<&str>,
    address_key: &str,
    port_key: &str,
) {
    let mut set = |key: &str, value: AttrValue| match attributes.iter_mut().find(|kv| kv.key == key)
    {
        Some(existing) => existing.value = value,
        None => attributes.push(KeyValue::new(key, value)),
    };
    if let (Some(key), Some(service)) = (service_key, endpoint.service_name) {
        if !service.is_empty() {
            set(key, AttrValue::String(service));
        }
    }
    let address = [endpoint.ipv4, endpoint.ipv6]
        .into_iter()
        .flatten()
        .find(|a| !a.is_empty());
    if let Some(address) = address {
        set(address_key, AttrValue::String(address));
    }
    if let Some(port) = endpoint
        .port
        .filter(|p| (1..=i64::from(u16::MAX)).contains(p))
    {
        set(port_key, AttrValue::Int(port));
    }
}

/// A stable, non-zero span id for the server half of a shared span.
fn shared_server_id(trace_id: &TraceId, shared: &SpanId) -> SpanId {
    // FNV-1a over the trace id and the shared id; the low bit set so it is never zero.
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
    use crate::model::StatusCode;

    fn convert(json: &str) -> Converted {
        decode_json(json.as_bytes()).unwrap()
    }

    fn one(json: &str) -> Span {
        let mut converted = convert(json);
        assert!(converted.rejected.is_empty(), "{:?}", converted.rejected);
        assert_eq!(converted.spans.len(), 1);
        converted.spans.remove(0)
    }

    fn string(text: &str) -> Option<AttrValue> {
        Some(AttrValue::String(text.into()))
    }

    #[test]
    fn a_64_bit_trace_id_is_padded_and_a_128_bit_one_kept() {
        let short = one(r#"[{"traceId": "463ac35c9f6413ad", "id": "72485a3953bb6124"}]"#);
        assert_eq!(
            short.trace_id.to_string(),
            "0000000000000000463ac35c9f6413ad"
        );
        let long =
            one(r#"[{"traceId": "5af7183fb1d4cf5f463ac35c9f6413ad", "id": "72485a3953bb6124"}]"#);
        assert_eq!(
            long.trace_id.to_string(),
            "5af7183fb1d4cf5f463ac35c9f6413ad"
        );
        assert_eq!(long.span_id.to_string(), "72485a3953bb6124");
        assert_eq!(long.parent_span_id, None);
    }

    #[test]
    fn invalid_ids_refuse_their_span_only() {
        let converted = convert(
            r#"[{"traceId": "xyz", "id": "72485a3953bb6124"},
                {"traceId": "463ac35c9f6413ad463ac35c", "id": "72485a3953bb6124"},
                {"traceId": "0000000000000000", "id": "72485a3953bb6124"},
                {"traceId": "zz3ac35c9f6413ad", "id": "72485a3953bb6124"},
                {"id": "72485a3953bb6124"},
                {"traceId": "463ac35c9f6413ad", "id": "0000000000000000"},
                {"traceId": "463ac35c9f6413ad", "id": "72485a3953bb61"},
                {"traceId": "463ac35c9f6413ad", "id": "72485a3953bb6124", "parentId": "12"},
                {"traceId": "463ac35c9f6413ad", "id": "72485a3953bb6124", "parentId": "g2485a3953bb6124"},
                {"traceId": "463ac35c9f6413ad", "id": "72485a3953bb6124", "name": "kept"}]"#,
        );
        assert_eq!(converted.spans.len(), 1);
        assert_eq!(converted.spans[0].name, "kept");
        let reasons: Vec<SpanRejection> = converted.rejected.iter().map(|(r, _)| *r).collect();
        use SpanRejection::*;
        assert_eq!(
            reasons,
            vec![
                InvalidTraceId,
                InvalidTraceId,
                InvalidTraceId,
                InvalidTraceId,
                InvalidTraceId,
                InvalidSpanId,
                InvalidSpanId,
                InvalidParentSpanId,
                InvalidParentSpanId,
            ]
        );
        assert!(
            converted.rejected[7].1.contains("parent id \"12\""),
            "{}",
            converted.rejected[7].1
        );
    }

    #[test]
    fn zero_or_own_parent_means_no_parent() {
        let zero = one(
            r#"[{"traceId": "463ac35c9f6413ad", "id": "72485a3953bb6124", "parentId": "0000000000000000"}]"#,
        );
        assert_eq!(zero.parent_span_id, None);
        let own = one(
            r#"[{"traceId": "463ac35c9f6413ad", "id": "72485a3953bb6124", "parentId": "72485a3953bb6124"}]"#,
        );
        assert_eq!(own.parent_span_id, None);
        let real = one(
            r#"[{"traceId": "463ac35c9f6413ad", "id": "72485a3953bb6124", "parentId": "463ac35c9f6413ad"}]"#,
        );
        assert_eq!(real.parent_span_id.unwrap().to_string(), "463ac35c9f6413ad");
    }

    #[test]
    fn body_that_is_not_a_list_of_spans_fails_whole() {
        assert!(decode_json(b"{}").is_err());
        assert!(decode_json(b"[{\"traceId\": 12}]").is_err());
        assert!(decode_json(b"[{\"timestamp\": -1}]").is_err());
        assert!(decode_json(b"[]").unwrap().spans.is_empty());
    }

    #[test]
    fn times_are_microseconds_integer_or_decimal() {
        let span = one(
            r#"[{"traceId": "463ac35c9f6413ad", "id": "72485a3953bb6124",
                 "timestamp": 1764316800000000, "duration": 1.234,
                 "annotations": [{"timestamp": 1764316800000500.5, "value": "ws"}]}]"#,
        );
        assert_eq!(span.start_ns, 1_764_316_800_000_000_000);
        assert_eq!(span.duration_ns(), 1_234);
        assert_eq!(span.events[0].time_ns, 1_764_316_800_000_500_500);
        let untimed = one(r#"[{"traceId": "463ac35c9f6413ad", "id": "72485a3953bb6124"}]"#);
        assert_eq!((untimed.start_ns, untimed.end_ns), (0, 0));
    }

    #[test]
    fn endpoints_map_to_service_and_network_attributes() {
        let span = one(
            r#"[{"traceId": "463ac35c9f6413ad", "id": "72485a3953bb6124", "kind": "CLIENT",
                 "localEndpoint": {"serviceName": "Frontend", "ipv4": "10.0.0.1", "port": 8081},
                 "remoteEndpoint": {"serviceName": "catalog", "ipv6": "2001:db8::c001", "port": 8080}}]"#,
        );
        assert_eq!(span.service(), "Frontend", "kept as sent");
        assert_eq!(
            span.attr("network.local.address").cloned(),
            string("10.0.0.1")
        );
        assert_eq!(span.attr("network.local.port"), Some(&AttrValue::Int(8081)));
        assert_eq!(span.attr("peer.service").cloned(), string("catalog"));
        assert_eq!(
            span.attr("network.peer.address").cloned(),
            string("2001:db8::c001")
        );
        assert_eq!(span.attr("network.peer.port"), Some(&AttrValue::Int(8080)));
        assert_eq!(span.attributes.len(), 5);

        // The endpoint is Zipkin's own field: it wins over a tag of the same name.
        let tagged = one(
            r#"[{"traceId": "463ac35c9f6413ad", "id": "72485a3953bb6124",
                 "tags": {"peer.service": "old-name"}, "remoteEndpoint": {"serviceName": "catalog"}}]"#,
        );
        assert_eq!(tagged.attr("peer.service").cloned(), string("catalog"));
        assert_eq!(tagged.attributes.len(), 1);

        let bare = one(
            r#"[{"traceId": "463ac35c9f6413ad", "id": "72485a3953bb6124",
                 "localEndpoint": {"port": 0}, "remoteEndpoint": {"ipv4": "10.0.0.2", "port": 0}}]"#,
        );
        assert_eq!(bare.service(), "unknown_service");
        assert_eq!(
            bare.attr("network.peer.address").cloned(),
            string("10.0.0.2")
        );
        assert_eq!(bare.attributes.len(), 1, "port 0 is unknown");
    }

    #[test]
    fn spans_of_one_service_share_a_resource() {
        let converted = convert(
            r#"[{"traceId": "463ac35c9f6413ad", "id": "72485a3953bb6124", "localEndpoint": {"serviceName": "a"}},
                {"traceId": "463ac35c9f6413ad", "id": "72485a3953bb6125", "localEndpoint": {"serviceName": "a"}},
                {"traceId": "463ac35c9f6413ad", "id": "72485a3953bb6126", "localEndpoint": {"serviceName": "b"}}]"#,
        );
        let spans = &converted.spans;
        assert!(Arc::ptr_eq(&spans[0].resource, &spans[1].resource));
        assert_eq!(spans[2].service(), "b");
    }

    #[test]
    fn shared_server_span_gets_its_own_id_under_the_client() {
        let json = r#"[
            {"traceId": "463ac35c9f6413ad48485a3953bb6124", "id": "a2fb4a1d1a96d312", "parentId": "0020000000000001",
             "kind": "CLIENT", "localEndpoint": {"serviceName": "frontend"}, "timestamp": 1, "duration": 10},
            {"traceId": "463ac35c9f6413ad48485a3953bb6124", "id": "a2fb4a1d1a96d312", "parentId": "0020000000000001",
             "kind": "SERVER", "shared": true, "localEndpoint": {"serviceName": "backend"}, "timestamp": 2, "duration": 8}]"#;
        let spans = convert(json).spans;
        let again = convert(json).spans;
        assert_eq!(spans[0].span_id.to_string(), "a2fb4a1d1a96d312");
        assert_eq!(
            spans[0].parent_span_id.unwrap().to_string(),
            "0020000000000001"
        );
        assert_ne!(spans[1].span_id, spans[0].span_id);
        assert_eq!(spans[1].parent_span_id, Some(spans[0].span_id));
        assert_eq!(spans[1].span_id, again[1].span_id, "derived ids are stable");
        assert_eq!(spans[1].service(), "backend");
        assert_eq!(spans[1].kind, SpanKind::Server);

        // The same id in another trace derives another id.
        let other = convert(&json.replace("463ac35c9f6413ad48485a3953bb6124", "563ac35c9f6413ad"));
        assert_ne!(other.spans[1].span_id, spans[1].span_id);

        // `shared` only means something on the server half.
        let client = one(
            r#"[{"traceId": "463ac35c9f6413ad", "id": "a2fb4a1d1a96d312", "kind": "CLIENT", "shared": true}]"#,
        );
        assert_eq!(client.span_id.to_string(), "a2fb4a1d1a96d312");
    }

    #[test]
    fn tags_become_string_attributes_resource_and_scope() {
        let span = one(
            r#"[{"traceId": "463ac35c9f6413ad", "id": "72485a3953bb6124",
                 "localEndpoint": {"serviceName": "orders"},
                 "tags": {"http.request.method": "GET", "http.response.status_code": 503,
                          "cache.hit": true, "empty": null,
                          "service.name": "orders", "service.version": "1.4.0",
                          "telemetry.sdk.language": "python", "host.name": "web-1",
                          "otel.scope.name": "orders.lib", "otel.scope.version": "2.0",
                          "otel.library.name": "orders.lib", "otel.library.version": "2.0",
                          "w3c.tracestate": "vendor=1", "otel.dropped_attributes_count": "3"}}]"#,
        );
        let attributes: Vec<(&str, &AttrValue)> = span
            .attributes
            .iter()
            .map(|kv| (kv.key.as_str(), &kv.value))
            .collect();
        assert_eq!(
            attributes,
            vec![
                ("cache.hit", &AttrValue::String("true".into())),
                ("http.request.method", &AttrValue::String("GET".into())),
                (
                    "http.response.status_code",
                    &AttrValue::String("503".into())
                ),
            ]
        );
        assert_eq!(span.service(), "orders");
        let resource: Vec<(&str, String)> = span
            .resource
            .attributes
            .iter()
            .map(|kv| (kv.key.as_str(), kv.value.to_string_form()))
            .collect();
        assert_eq!(
            resource,
            vec![
                ("host.name", "web-1".to_string()),
                ("service.version", "1.4.0".to_string()),
                ("telemetry.sdk.language", "python".to_string()),
            ]
        );
        assert_eq!(
            (span.scope.name.as_str(), span.scope.version.as_str()),
            ("orders.lib", "2.0")
        );
        assert_eq!(span.trace_state, "vendor=1");
        assert_eq!(span.dropped_attributes, 3);
    }

    #[test]
    fn service_name_tag_stands_in_for_a_missing_endpoint() {
        let span = one(
            r#"[{"traceId": "463ac35c9f6413ad", "id": "72485a3953bb6124", "tags": {"service.name": "billing"}}]"#,
        );
        assert_eq!(span.service(), "billing");
        assert!(span.attributes.is_empty());
    }

    #[test]
    fn error_tag_and_annotations_reach_the_span() {
        let span = one(
            r#"[{"traceId": "463ac35c9f6413ad", "id": "72485a3953bb6124", "kind": "SERVER",
                 "tags": {"error": "upstream 503", "http.response.status_code": "503"},
                 "annotations": [{"timestamp": 10, "value": "wire send"},
                                 {"timestamp": 11, "value": "{\"retry\": {\"attempt\": 2}}"}]}]"#,
        );
        assert_eq!(span.kind, SpanKind::Server);
        assert_eq!(span.status.code, StatusCode::Error);
        assert_eq!(span.status.message, "upstream 503");
        assert_eq!(span.attr("error"), None);
        assert_eq!(
            span.attr("http.response.status_code").cloned(),
            string("503")
        );
        let events: Vec<(u64, &str, usize)> = span
            .events
            .iter()
            .map(|e| (e.time_ns, e.name.as_str(), e.attributes.len()))
            .collect();
        assert_eq!(events, vec![(10_000, "wire send", 0), (11_000, "retry", 1)]);
    }
}
