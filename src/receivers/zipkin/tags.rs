//! Reading what Zipkin tags and annotations carry beyond plain strings, for
//! `convert.rs`: Zipkin has no field for a span's status, resource,
//! instrumentation scope, trace state or event attributes, so the OpenTelemetry
//! SDKs' Zipkin exporters and the OpenTelemetry Collector encode them in tags
//! and annotation values, and Zipkin's own instrumentation marks errors with an
//! `error` tag. This module takes those back out, as the Collector's Zipkin
//! receiver does; what is left are the span's string attributes.
//!
//! - Kind: the Zipkin `kind` field; when absent, a `span.kind` tag naming a
//!   kind (the Collector reads `internal` there), else `unspecified`.
//! - Status: `otel.status_code` (`OK`/`ERROR`/`UNSET`, or the `STATUS_CODE_*`
//!   forms) sets the code and `otel.status_description` the message. An `error`
//!   tag, Zipkin's way, makes the span an error whatever `otel.status_code` said;
//!   its value is the message unless it is `true` or empty (a description wins).
//!   `error: "false"` is no error (the OpenTelemetry specification has exporters
//!   omit it; Jaeger reads it as false) and stays an attribute.
//! - Resource: tags in the namespaces the semantic conventions define for
//!   resources only (`service.*`, `telemetry.*`, `host.*`, `os.*`, `process.*`,
//!   `container.*`, `k8s.*`, `cloud.*`, `deployment.*`), which the SDK
//!   exporters copy from the resource onto every span.
//! - Scope: `otel.scope.name`/`otel.scope.version` (older `otel.library.*`).
//! - `w3c.tracestate` → trace state; `otel.dropped_{attributes,events,links}_count`
//!   → the dropped counts.
//! - Events: an annotation value in the SDK exporters' form
//!   `{"name": {attributes}}` or the Collector's `name|{attributes}|dropped`
//!   gives the event's name and typed attributes; any other value is the name.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::model::{semconv, AttrValue, Event, KeyValue, SpanKind, Status, StatusCode};

/// A span's tags, read.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Tags {
    pub kind: SpanKind,
    pub status: Status,
    pub trace_state: String,
    pub dropped_attributes: u32,
    pub dropped_events: u32,
    pub dropped_links: u32,
    pub scope_name: String,
    pub scope_version: String,
    /// The `service.name` tag, which stands in for a missing local endpoint.
    pub service: Option<String>,
    /// Resource attributes, in key order.
    pub resource: Vec<(String, String)>,
    /// Every other tag, a string attribute, in key order.
    pub attributes: Vec<KeyValue>,
}

/// Reads a span's `kind` field and its tags.
pub(super) fn read(kind: Option<&str>, mut tags: BTreeMap<String, String>) -> Tags {
    let kind = take_kind(kind, &mut tags);
    let status = take_status(&mut tags);
    let trace_state = tags.remove("w3c.tracestate").unwrap_or_default();
    let dropped_attributes = take_count(&mut tags, "otel.dropped_attributes_count");
    let dropped_events = take_count(&mut tags, "otel.dropped_events_count");
    let dropped_links = take_count(&mut tags, "otel.dropped_links_count");
    let scope_name = take_first(&mut tags, &["otel.scope.name", "otel.library.name"]);
    let scope_version = take_first(&mut tags, &["otel.scope.version", "otel.library.version"]);
    let service = tags.remove(semconv::SERVICE_NAME).filter(|s| !s.is_empty());
    let (resource, attributes): (Vec<_>, Vec<_>) =
        tags.into_iter().partition(|(key, _)| is_resource_key(key));
    Tags {
        kind,
        status,
        trace_state,
        dropped_attributes,
        dropped_events,
        dropped_links,
        scope_name,
        scope_version,
        service,
        resource,
        attributes: attributes
            .into_iter()
            .map(|(key, value)| KeyValue::new(key, AttrValue::String(value)))
            .collect(),
    }
}

fn take_kind(kind: Option<&str>, tags: &mut BTreeMap<String, String>) -> SpanKind {
    let named = |text: &str| match text.to_ascii_uppercase().as_str() {
        "CLIENT" => Some(SpanKind::Client),
        "SERVER" => Some(SpanKind::Server),
        "PRODUCER" => Some(SpanKind::Producer),
        "CONSUMER" => Some(SpanKind::Consumer),
        "INTERNAL" => Some(SpanKind::Internal),
        _ => None,
    };
    if let Some(kind) = kind.and_then(named) {
        return kind;
    }
    match tags.get("span.kind").and_then(|tag| named(tag)) {
        Some(kind) => {
            tags.remove("span.kind");
            kind
        }
        None => SpanKind::Unspecified,
    }
}

fn take_status(tags: &mut BTreeMap<String, String>) -> Status {
    let mut status = Status::default();
    let code = tags
        .get("otel.status_code")
        .and_then(|code| match code.as_str() {
            "OK" | "STATUS_CODE_OK" => Some(StatusCode::Ok),
            "ERROR" | "STATUS_CODE_ERROR" => Some(StatusCode::Error),
            "UNSET" | "STATUS_CODE_UNSET" => Some(StatusCode::Unset),
            _ => None,
        });
    if let Some(code) = code {
        status.code = code;
        tags.remove("otel.status_code");
    }
    let description = tags.remove("otel.status_description").unwrap_or_default();
    let mut error_message = String::new();
    if tags.get("error").is_some_and(|value| value != "false") {
        status.code = StatusCode::Error;
        let value = tags.remove("error").unwrap_or_default();
        if value != "true" {
            error_message = value;
        }
    }
    if status.code == StatusCode::Error {
        status.message = if description.is_empty() {
            error_message
        } else {
            description
        };
    }
    status
}

fn take_count(tags: &mut BTreeMap<String, String>, key: &str) -> u32 {
    match tags.get(key).and_then(|value| value.parse().ok()) {
        Some(count) => {
            tags.remove(key);
            count
        }
        None => 0,
    }
}

/// Removes every key of `keys` and returns the first one's non-empty value.
fn take_first(tags: &mut BTreeMap<String, String>, keys: &[&str]) -> String {
    let mut found = String::new();
    for key in keys {
        if let Some(value) = tags.remove(*key) {
            if found.is_empty() {
                found = value;
            }
        }
    }
    found
}

fn is_resource_key(key: &str) -> bool {
    const PREFIXES: [&str; 9] = [
        "service.",
        "telemetry.",
        "host.",
        "os.",
        "process.",
        "container.",
        "k8s.",
        "cloud.",
        "deployment.",
    ];
    PREFIXES.iter().any(|prefix| key.starts_with(prefix))
}

/// The event an annotation stands for.
pub(super) fn event(time_ns: u64, value: String) -> Event {
    let (name, attributes, dropped_attributes) = match structured_annotation(&value) {
        Some(parts) => parts,
        None => (value, Vec::new(), 0),
    };
    Event {
        time_ns,
        name,
        attributes,
        dropped_attributes,
    }
}

/// An event written into an annotation by an OpenTelemetry exporter:
/// `{"name": {attributes}}` (the SDKs) or `name|{attributes}|dropped` (the Collector).
fn structured_annotation(value: &str) -> Option<(String, Vec<KeyValue>, u32)> {
    if value.starts_with('{') {
        let Ok(Value::Object(outer)) = serde_json::from_str::<Value>(value) else {
            return None;
        };
        if outer.len() != 1 {
            return None;
        }
        let (name, inner) = outer.into_iter().next()?;
        let Value::Object(attributes) = inner else {
            return None;
        };
        return Some((name, json_attributes(attributes), 0));
    }
    let (head, dropped) = value.rsplit_once('|')?;
    let (name, json) = head.split_once('|')?;
    let dropped = dropped.parse().ok()?;
    match serde_json::from_str::<Value>(json).ok()? {
        Value::Object(attributes) => Some((name.to_string(), json_attributes(attributes), dropped)),
        _ => None,
    }
}

fn json_attributes(object: Map<String, Value>) -> Vec<KeyValue> {
    object
        .into_iter()
        .map(|(key, value)| KeyValue::new(key, json_value(value)))
        .collect()
}

fn json_value(value: Value) -> AttrValue {
    match value {
        Value::Null => AttrValue::Empty,
        Value::Bool(b) => AttrValue::Bool(b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => AttrValue::Int(i),
            None => n.as_f64().map_or(AttrValue::Empty, AttrValue::Double),
        },
        Value::String(s) => AttrValue::String(s),
        Value::Array(items) => AttrValue::Array(items.into_iter().map(json_value).collect()),
        Value::Object(object) => AttrValue::Map(json_attributes(object)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn status(pairs: &[(&str, &str)]) -> (StatusCode, String, Vec<String>) {
        let read = read(None, tags(pairs));
        let left = read.attributes.iter().map(|kv| kv.key.clone()).collect();
        (read.status.code, read.status.message, left)
    }

    #[test]
    fn kind_field_then_span_kind_tag() {
        assert_eq!(read(Some("SERVER"), tags(&[])).kind, SpanKind::Server);
        assert_eq!(read(Some("CLIENT"), tags(&[])).kind, SpanKind::Client);
        assert_eq!(read(Some("PRODUCER"), tags(&[])).kind, SpanKind::Producer);
        assert_eq!(read(Some("CONSUMER"), tags(&[])).kind, SpanKind::Consumer);
        assert_eq!(read(None, tags(&[])).kind, SpanKind::Unspecified);
        assert_eq!(read(Some("BOGUS"), tags(&[])).kind, SpanKind::Unspecified);
        let tagged = read(None, tags(&[("span.kind", "internal")]));
        assert_eq!(tagged.kind, SpanKind::Internal);
        assert!(tagged.attributes.is_empty());
        // The field wins, and the tag then stays an attribute.
        let both = read(Some("CLIENT"), tags(&[("span.kind", "internal")]));
        assert_eq!(both.kind, SpanKind::Client);
        assert_eq!(both.attributes.len(), 1);
    }

    #[test]
    fn error_tag_makes_an_error_with_its_value_as_message() {
        let none: Vec<String> = Vec::new();
        assert_eq!(
            status(&[("error", "upstream 503")]),
            (StatusCode::Error, "upstream 503".into(), none.clone())
        );
        assert_eq!(
            status(&[("error", "true")]),
            (StatusCode::Error, String::new(), none.clone())
        );
        assert_eq!(
            status(&[("error", "")]),
            (StatusCode::Error, String::new(), none.clone())
        );
        assert_eq!(
            status(&[("error", "false")]),
            (StatusCode::Unset, String::new(), vec!["error".to_string()])
        );
        assert_eq!(status(&[]), (StatusCode::Unset, String::new(), none));
    }

    #[test]
    fn otel_status_tags_as_the_sdks_and_the_collector_write_them() {
        let none: Vec<String> = Vec::new();
        // The SDK exporters: the code by name, the description in `error`.
        assert_eq!(
            status(&[("otel.status_code", "ERROR"), ("error", "card declined")]),
            (StatusCode::Error, "card declined".into(), none.clone())
        );
        assert_eq!(
            status(&[("otel.status_code", "OK")]),
            (StatusCode::Ok, String::new(), none.clone())
        );
        // The Collector's exporter.
        assert_eq!(
            status(&[
                ("otel.status_code", "STATUS_CODE_ERROR"),
                ("otel.status_description", "timeout")
            ]),
            (StatusCode::Error, "timeout".into(), none.clone())
        );
        // Only an error has a message.
        assert_eq!(
            status(&[
                ("otel.status_code", "OK"),
                ("otel.status_description", "fine")
            ]),
            (StatusCode::Ok, String::new(), none.clone())
        );
        // Zipkin's error tag wins over a contradicting code; a description over its value.
        assert_eq!(
            status(&[
                ("otel.status_code", "OK"),
                ("error", "x"),
                ("otel.status_description", "why")
            ]),
            (StatusCode::Error, "why".into(), none)
        );
        // An unknown code is left as it came.
        assert_eq!(
            status(&[("otel.status_code", "DEADLINE_EXCEEDED")]),
            (
                StatusCode::Unset,
                String::new(),
                vec!["otel.status_code".to_string()]
            )
        );
    }

    #[test]
    fn resource_scope_and_bookkeeping_tags_are_taken_out() {
        let read = read(
            Some("SERVER"),
            tags(&[
                ("http.request.method", "GET"),
                ("service.name", "orders"),
                ("service.version", "1.4.0"),
                ("telemetry.sdk.language", "python"),
                ("host.name", "web-1"),
                ("otel.scope.name", "orders.lib"),
                ("otel.scope.version", "2.0"),
                ("otel.library.name", "orders.lib"),
                ("otel.library.version", "2.0"),
                ("w3c.tracestate", "vendor=1"),
                ("otel.dropped_attributes_count", "3"),
                ("otel.dropped_events_count", "2"),
                ("otel.dropped_links_count", "1"),
            ]),
        );
        assert_eq!(
            read.attributes,
            vec![KeyValue::new(
                "http.request.method",
                AttrValue::String("GET".into())
            )]
        );
        assert_eq!(read.service.as_deref(), Some("orders"));
        assert_eq!(
            read.resource,
            vec![
                ("host.name".to_string(), "web-1".to_string()),
                ("service.version".to_string(), "1.4.0".to_string()),
                ("telemetry.sdk.language".to_string(), "python".to_string()),
            ]
        );
        assert_eq!(
            (read.scope_name.as_str(), read.scope_version.as_str()),
            ("orders.lib", "2.0")
        );
        assert_eq!(read.trace_state, "vendor=1");
        assert_eq!(
            (
                read.dropped_attributes,
                read.dropped_events,
                read.dropped_links
            ),
            (3, 2, 1)
        );
        let older = super::read(None, tags(&[("otel.library.name", "legacy")]));
        assert_eq!(older.scope_name, "legacy");
    }

    #[test]
    fn annotations_become_events_with_attributes_when_structured() {
        let plain = event(10, "wire send".into());
        assert_eq!((plain.time_ns, plain.name.as_str()), (10, "wire send"));
        assert!(plain.attributes.is_empty());

        let sdk = event(
            11,
            r#"{"cache.miss": {"attempt": 1, "key": "book:42", "ratio": 0.5, "tags": ["a"]}}"#
                .into(),
        );
        assert_eq!(sdk.name, "cache.miss");
        assert_eq!(
            sdk.attributes,
            vec![
                KeyValue::new("attempt", AttrValue::Int(1)),
                KeyValue::new("key", AttrValue::String("book:42".into())),
                KeyValue::new("ratio", AttrValue::Double(0.5)),
                KeyValue::new(
                    "tags",
                    AttrValue::Array(vec![AttrValue::String("a".into())])
                ),
            ]
        );

        let collector = event(12, r#"retry|{"attempt":2}|1"#.into());
        assert_eq!(collector.name, "retry");
        assert_eq!(
            collector.attributes,
            vec![KeyValue::new("attempt", AttrValue::Int(2))]
        );
        assert_eq!(collector.dropped_attributes, 1);

        for text in [
            "a|b",
            "a|b|c",
            "{not json",
            r#"{"a": 1}"#,
            r#"{"a": {}, "b": {}}"#,
        ] {
            let kept = event(13, text.into());
            assert_eq!(kept.name, text);
            assert!(kept.attributes.is_empty());
        }
    }
}
