//! OTLP protobuf types → `model::Span`. The generated types stop here.
//!
//! Spans whose trace or span id is invalid (wrong length or all zeros, as the
//! OTLP specification defines it) are rejected one by one; the rest of the batch
//! goes on. A parent id that is empty or all zeros means "no parent".

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    any_value, AnyValue, InstrumentationScope, KeyValue as OtlpKeyValue,
};
use opentelemetry_proto::tonic::trace::v1::span;

use crate::model::{
    semconv, AttrValue, Event, IdError, KeyValue, Link, Resource, Scope, Span, SpanId, SpanKind,
    Status, StatusCode, TraceId,
};
use crate::receivers::SpanRejection;

/// The spans of a request that were accepted, and what was refused.
#[derive(Debug, Default)]
pub struct Converted {
    pub spans: Vec<Span>,
    pub rejected: Vec<(SpanRejection, u64)>,
    /// A message for `partial_success.error_message`, naming the first refusal.
    pub error_message: String,
}

impl Converted {
    pub fn rejected_count(&self) -> u64 {
        self.rejected.iter().map(|(_, n)| n).sum()
    }

    fn reject(&mut self, why: SpanRejection, detail: String) {
        if self.error_message.is_empty() {
            self.error_message = detail;
        }
        match self.rejected.iter_mut().find(|(r, _)| *r == why) {
            Some((_, n)) => *n += 1,
            None => self.rejected.push((why, 1)),
        }
    }
}

pub fn convert_request(request: ExportTraceServiceRequest) -> Converted {
    let mut out = Converted::default();
    let total: usize = request
        .resource_spans
        .iter()
        .flat_map(|rs| rs.scope_spans.iter())
        .map(|ss| ss.spans.len())
        .sum();
    out.spans.reserve(total);
    for resource_spans in request.resource_spans {
        let resource = Arc::new(convert_resource(
            resource_spans
                .resource
                .map(|r| r.attributes)
                .unwrap_or_default(),
        ));
        for scope_spans in resource_spans.scope_spans {
            let scope = Arc::new(convert_scope(scope_spans.scope));
            for span in scope_spans.spans {
                match convert_span(span, &resource, &scope) {
                    Ok(span) => out.spans.push(span),
                    Err((why, detail)) => out.reject(why, detail),
                }
            }
        }
    }
    if !out.error_message.is_empty() {
        let count = out.rejected_count();
        out.error_message = format!("{count} span(s) rejected; first: {}", out.error_message);
    }
    out
}

fn convert_resource(attributes: Vec<OtlpKeyValue>) -> Resource {
    let mut attributes = convert_attrs(attributes);
    let service = match attributes
        .iter()
        .position(|kv| kv.key == semconv::SERVICE_NAME)
    {
        Some(at) => match attributes.remove(at).value {
            AttrValue::String(name) if !name.is_empty() => name,
            other => {
                let text = other.to_string_form();
                if text.is_empty() {
                    semconv::UNKNOWN_SERVICE.to_string()
                } else {
                    text
                }
            }
        },
        None => semconv::UNKNOWN_SERVICE.to_string(),
    };
    Resource {
        service,
        attributes,
    }
}

fn convert_scope(scope: Option<InstrumentationScope>) -> Scope {
    match scope {
        Some(scope) => Scope {
            name: scope.name,
            version: scope.version,
            attributes: convert_attrs(scope.attributes),
        },
        None => Scope::default(),
    }
}

fn convert_span(
    span: opentelemetry_proto::tonic::trace::v1::Span,
    resource: &Arc<Resource>,
    scope: &Arc<Scope>,
) -> Result<Span, (SpanRejection, String)> {
    let describe = |what: &str, error: IdError| format!("span {:?}: {what}: {error}", span.name);
    let trace_id = TraceId::from_bytes(&span.trace_id).map_err(|e| {
        (
            SpanRejection::InvalidTraceId,
            describe("invalid trace id", e),
        )
    })?;
    let span_id = SpanId::from_bytes(&span.span_id)
        .map_err(|e| (SpanRejection::InvalidSpanId, describe("invalid span id", e)))?;
    let parent_span_id = match SpanId::from_bytes(&span.parent_span_id) {
        Ok(parent) => Some(parent),
        Err(IdError::AllZeros) | Err(IdError::WrongLength { got: 0, .. }) => None,
        Err(e) => {
            return Err((
                SpanRejection::InvalidParentSpanId,
                describe("invalid parent span id", e),
            ))
        }
    };
    let start_ns = span.start_time_unix_nano;
    let status = span.status.unwrap_or_default();
    Ok(Span {
        trace_id,
        span_id,
        parent_span_id,
        name: span.name,
        kind: SpanKind::from_otlp(span.kind),
        start_ns,
        // A span that claims to end before it starts is kept, with zero duration.
        end_ns: span.end_time_unix_nano.max(start_ns),
        status: Status {
            code: StatusCode::from_otlp(status.code),
            message: status.message,
        },
        attributes: convert_attrs(span.attributes),
        events: span.events.into_iter().map(convert_event).collect(),
        links: span.links.into_iter().filter_map(convert_link).collect(),
        trace_state: span.trace_state,
        flags: span.flags,
        dropped_attributes: span.dropped_attributes_count,
        dropped_events: span.dropped_events_count,
        dropped_links: span.dropped_links_count,
        resource: resource.clone(),
        scope: scope.clone(),
    })
}

fn convert_event(event: span::Event) -> Event {
    Event {
        time_ns: event.time_unix_nano,
        name: event.name,
        attributes: convert_attrs(event.attributes),
        dropped_attributes: event.dropped_attributes_count,
    }
}

/// A link to an invalid span context points nowhere and is dropped.
fn convert_link(link: span::Link) -> Option<Link> {
    Some(Link {
        trace_id: TraceId::from_bytes(&link.trace_id).ok()?,
        span_id: SpanId::from_bytes(&link.span_id).ok()?,
        trace_state: link.trace_state,
        attributes: convert_attrs(link.attributes),
        flags: link.flags,
        dropped_attributes: link.dropped_attributes_count,
    })
}

fn convert_attrs(attrs: Vec<OtlpKeyValue>) -> Vec<KeyValue> {
    attrs
        .into_iter()
        .map(|kv| KeyValue {
            key: kv.key,
            value: convert_value(kv.value),
        })
        .collect()
}

fn convert_value(value: Option<AnyValue>) -> AttrValue {
    match value.and_then(|v| v.value) {
        None => AttrValue::Empty,
        Some(any_value::Value::StringValue(s)) => AttrValue::String(s),
        Some(any_value::Value::BoolValue(b)) => AttrValue::Bool(b),
        Some(any_value::Value::IntValue(i)) => AttrValue::Int(i),
        Some(any_value::Value::DoubleValue(d)) => AttrValue::Double(d),
        Some(any_value::Value::BytesValue(b)) => AttrValue::Bytes(b),
        Some(any_value::Value::ArrayValue(a)) => AttrValue::Array(
            a.values
                .into_iter()
                .map(|v| convert_value(Some(v)))
                .collect(),
        ),
        Some(any_value::Value::KvlistValue(kvs)) => AttrValue::Map(convert_attrs(kvs.values)),
        // An index into a profiles string table; spans have no such table.
        Some(any_value::Value::StringValueStrindex(_)) => AttrValue::Empty,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{any_value::Value, ArrayValue};
    use opentelemetry_proto::tonic::resource::v1::Resource as OtlpResource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span as OtlpSpan};

    fn kv(key: &str, value: Value) -> OtlpKeyValue {
        OtlpKeyValue {
            key: key.into(),
            key_strindex: 0,
            value: Some(AnyValue { value: Some(value) }),
        }
    }

    fn otlp_span(trace_id: Vec<u8>, span_id: Vec<u8>, parent: Vec<u8>) -> OtlpSpan {
        OtlpSpan {
            trace_id,
            span_id,
            parent_span_id: parent,
            name: "SELECT books".into(),
            kind: 3,
            start_time_unix_nano: 1_000,
            end_time_unix_nano: 5_000,
            attributes: vec![
                kv("db.system", Value::StringValue("postgresql".into())),
                kv("rows", Value::IntValue(12)),
                kv(
                    "tags",
                    Value::ArrayValue(ArrayValue {
                        values: vec![AnyValue {
                            value: Some(Value::BoolValue(true)),
                        }],
                    }),
                ),
            ],
            ..OtlpSpan::default()
        }
    }

    fn request(spans: Vec<OtlpSpan>) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(OtlpResource {
                    attributes: vec![
                        kv("service.name", Value::StringValue("order-service".into())),
                        kv("host.name", Value::StringValue("h1".into())),
                    ],
                    ..OtlpResource::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..ScopeSpans::default()
                }],
                ..ResourceSpans::default()
            }],
        }
    }

    #[test]
    fn converts_ids_attributes_and_resource() {
        let out = convert_request(request(vec![otlp_span(
            vec![1; 16],
            vec![2; 8],
            vec![3; 8],
        )]));
        assert_eq!(out.rejected_count(), 0);
        let span = &out.spans[0];
        assert_eq!(span.service(), "order-service");
        assert_eq!(
            span.resource.attributes.len(),
            1,
            "service.name is lifted out"
        );
        assert_eq!(span.parent_span_id, Some(SpanId([3; 8])));
        assert_eq!(span.kind, SpanKind::Client);
        assert_eq!(span.duration_ns(), 4_000);
        assert_eq!(span.attr("rows"), Some(&AttrValue::Int(12)));
        assert_eq!(
            span.attr("tags"),
            Some(&AttrValue::Array(vec![AttrValue::Bool(true)]))
        );
    }

    #[test]
    fn empty_or_zero_parent_means_root() {
        let out = convert_request(request(vec![
            otlp_span(vec![1; 16], vec![2; 8], vec![]),
            otlp_span(vec![1; 16], vec![3; 8], vec![0; 8]),
        ]));
        assert!(out.spans.iter().all(|s| s.parent_span_id.is_none()));
    }

    #[test]
    fn invalid_ids_are_rejected_and_the_rest_kept() {
        let out = convert_request(request(vec![
            otlp_span(vec![1; 16], vec![2; 8], vec![]),
            otlp_span(vec![0; 16], vec![2; 8], vec![]),
            otlp_span(vec![1; 15], vec![2; 8], vec![]),
            otlp_span(vec![1; 16], vec![], vec![]),
            otlp_span(vec![1; 16], vec![2; 8], vec![1; 3]),
        ]));
        assert_eq!(out.spans.len(), 1);
        assert_eq!(out.rejected_count(), 4);
        assert_eq!(
            out.rejected,
            vec![
                (SpanRejection::InvalidTraceId, 2),
                (SpanRejection::InvalidSpanId, 1),
                (SpanRejection::InvalidParentSpanId, 1)
            ]
        );
        assert!(
            out.error_message
                .starts_with("4 span(s) rejected; first: span \"SELECT books\": invalid trace id"),
            "{}",
            out.error_message
        );
    }

    #[test]
    fn missing_service_name_is_unknown_service() {
        let mut req = request(vec![otlp_span(vec![1; 16], vec![2; 8], vec![])]);
        req.resource_spans[0].resource = None;
        let out = convert_request(req);
        assert_eq!(out.spans[0].service(), "unknown_service");
    }
}
