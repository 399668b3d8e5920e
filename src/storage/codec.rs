//! The compact span encoding stored in the `spans` column family.
//!
//! The schema is `proto/tracemap/storage/v1/spans.proto`. One value holds the
//! spans of one trace from one request; resources and scopes are written once
//! and referenced by index, event times are offsets from the span start.

use std::sync::Arc;

use prost::Message;

use crate::model::{
    AttrValue, Event, KeyValue, Link, Resource, Scope, Span, SpanId, SpanKind, Status, StatusCode,
    TraceId,
};

#[allow(clippy::all, missing_docs)]
mod pb {
    include!(concat!(env!("OUT_DIR"), "/tracemap.storage.v1.rs"));
}

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("undecodable span chunk: {0}")]
    Decode(#[from] prost::DecodeError),
    #[error("span chunk refers to missing {what} #{index}")]
    DanglingIndex { what: &'static str, index: u32 },
    #[error("span chunk holds an invalid id: {0}")]
    Id(#[from] crate::model::IdError),
}

/// Encodes the spans of one chunk (they share a trace id, kept in the key).
pub fn encode_chunk(spans: &[Span]) -> Vec<u8> {
    let mut resources: Vec<&Arc<Resource>> = Vec::new();
    let mut scopes: Vec<&Arc<Scope>> = Vec::new();
    let mut stored = Vec::with_capacity(spans.len());
    for span in spans {
        let resource = intern(&mut resources, &span.resource);
        let scope = intern(&mut scopes, &span.scope);
        stored.push(encode_span(span, resource, scope));
    }
    let chunk = pb::SpanChunk {
        resources: resources
            .iter()
            .map(|r| pb::Resource {
                service: r.service.clone(),
                attributes: encode_attrs(&r.attributes),
            })
            .collect(),
        scopes: scopes
            .iter()
            .map(|s| pb::Scope {
                name: s.name.clone(),
                version: s.version.clone(),
                attributes: encode_attrs(&s.attributes),
            })
            .collect(),
        spans: stored,
    };
    chunk.encode_to_vec()
}

/// Index of `item` in `list`, adding it if absent. Spans of one request share
/// their resource by pointer, so the pointer test almost always decides; equal
/// values behind different pointers are merged too.
fn intern<'a, T: PartialEq>(list: &mut Vec<&'a Arc<T>>, item: &'a Arc<T>) -> u32 {
    let position = list
        .iter()
        .position(|known| Arc::ptr_eq(*known, item))
        .or_else(|| list.iter().position(|known| ***known == **item));
    let index = position.unwrap_or_else(|| {
        list.push(item);
        list.len() - 1
    });
    index as u32
}

fn encode_span(span: &Span, resource: u32, scope: u32) -> pb::StoredSpan {
    pb::StoredSpan {
        span_id: u64::from_be_bytes(span.span_id.0),
        parent_span_id: span.parent_span_id.map(|p| u64::from_be_bytes(p.0)),
        resource,
        scope,
        name: span.name.clone(),
        kind: span.kind as u32,
        start_ns: span.start_ns,
        duration_ns: span.duration_ns(),
        status_code: span.status.code as u32,
        status_message: span.status.message.clone(),
        attributes: encode_attrs(&span.attributes),
        events: span
            .events
            .iter()
            .map(|e| pb::Event {
                time_offset_ns: (e.time_ns as i64).wrapping_sub(span.start_ns as i64),
                name: e.name.clone(),
                attributes: encode_attrs(&e.attributes),
                dropped_attributes: e.dropped_attributes,
            })
            .collect(),
        links: span
            .links
            .iter()
            .map(|l| pb::Link {
                trace_id: l.trace_id.0.to_vec(),
                span_id: u64::from_be_bytes(l.span_id.0),
                trace_state: l.trace_state.clone(),
                attributes: encode_attrs(&l.attributes),
                flags: l.flags,
                dropped_attributes: l.dropped_attributes,
            })
            .collect(),
        trace_state: span.trace_state.clone(),
        flags: span.flags,
        dropped_attributes: span.dropped_attributes,
        dropped_events: span.dropped_events,
        dropped_links: span.dropped_links,
    }
}

fn encode_attrs(attrs: &[KeyValue]) -> Vec<pb::KeyValue> {
    attrs
        .iter()
        .map(|kv| pb::KeyValue {
            key: kv.key.clone(),
            value: Some(encode_value(&kv.value)),
        })
        .collect()
}

fn encode_value(value: &AttrValue) -> pb::AnyValue {
    use pb::any_value::Value as V;
    let inner = match value {
        AttrValue::Empty => None,
        AttrValue::String(s) => Some(V::StringValue(s.clone())),
        AttrValue::Bool(b) => Some(V::BoolValue(*b)),
        AttrValue::Int(i) => Some(V::IntValue(*i)),
        AttrValue::Double(d) => Some(V::DoubleValue(*d)),
        AttrValue::Bytes(b) => Some(V::BytesValue(b.clone())),
        AttrValue::Array(items) => Some(V::ArrayValue(pb::ArrayValue {
            values: items.iter().map(encode_value).collect(),
        })),
        AttrValue::Map(entries) => Some(V::MapValue(pb::KeyValueList {
            values: encode_attrs(entries),
        })),
    };
    pb::AnyValue { value: inner }
}

/// Decodes one stored chunk back to spans of `trace_id`.
pub fn decode_chunk(trace_id: TraceId, bytes: &[u8]) -> Result<Vec<Span>, CodecError> {
    let chunk = pb::SpanChunk::decode(bytes)?;
    let resources: Vec<Arc<Resource>> = chunk
        .resources
        .into_iter()
        .map(|r| {
            Arc::new(Resource {
                service: r.service,
                attributes: decode_attrs(r.attributes),
            })
        })
        .collect();
    let scopes: Vec<Arc<Scope>> = chunk
        .scopes
        .into_iter()
        .map(|s| {
            Arc::new(Scope {
                name: s.name,
                version: s.version,
                attributes: decode_attrs(s.attributes),
            })
        })
        .collect();
    chunk
        .spans
        .into_iter()
        .map(|s| {
            let resource = resources
                .get(s.resource as usize)
                .ok_or(CodecError::DanglingIndex {
                    what: "resource",
                    index: s.resource,
                })?
                .clone();
            let scope = scopes
                .get(s.scope as usize)
                .ok_or(CodecError::DanglingIndex {
                    what: "scope",
                    index: s.scope,
                })?
                .clone();
            let start_ns = s.start_ns;
            Ok(Span {
                trace_id,
                span_id: SpanId(s.span_id.to_be_bytes()),
                parent_span_id: s.parent_span_id.map(|p| SpanId(p.to_be_bytes())),
                name: s.name,
                kind: SpanKind::from_otlp(s.kind as i32),
                start_ns,
                end_ns: start_ns.saturating_add(s.duration_ns),
                status: Status {
                    code: StatusCode::from_otlp(s.status_code as i32),
                    message: s.status_message,
                },
                attributes: decode_attrs(s.attributes),
                events: s
                    .events
                    .into_iter()
                    .map(|e| Event {
                        time_ns: (start_ns as i64).wrapping_add(e.time_offset_ns) as u64,
                        name: e.name,
                        attributes: decode_attrs(e.attributes),
                        dropped_attributes: e.dropped_attributes,
                    })
                    .collect(),
                links: s
                    .links
                    .into_iter()
                    .map(|l| {
                        Ok(Link {
                            trace_id: TraceId::from_bytes(&l.trace_id)?,
                            span_id: SpanId(l.span_id.to_be_bytes()),
                            trace_state: l.trace_state,
                            attributes: decode_attrs(l.attributes),
                            flags: l.flags,
                            dropped_attributes: l.dropped_attributes,
                        })
                    })
                    .collect::<Result<_, CodecError>>()?,
                trace_state: s.trace_state,
                flags: s.flags,
                dropped_attributes: s.dropped_attributes,
                dropped_events: s.dropped_events,
                dropped_links: s.dropped_links,
                resource,
                scope,
            })
        })
        .collect()
}

fn decode_attrs(attrs: Vec<pb::KeyValue>) -> Vec<KeyValue> {
    attrs
        .into_iter()
        .map(|kv| KeyValue {
            key: kv.key,
            value: kv.value.map(decode_value).unwrap_or_default(),
        })
        .collect()
}

fn decode_value(value: pb::AnyValue) -> AttrValue {
    use pb::any_value::Value as V;
    match value.value {
        None => AttrValue::Empty,
        Some(V::StringValue(s)) => AttrValue::String(s),
        Some(V::BoolValue(b)) => AttrValue::Bool(b),
        Some(V::IntValue(i)) => AttrValue::Int(i),
        Some(V::DoubleValue(d)) => AttrValue::Double(d),
        Some(V::BytesValue(b)) => AttrValue::Bytes(b),
        Some(V::ArrayValue(a)) => {
            AttrValue::Array(a.values.into_iter().map(decode_value).collect())
        }
        Some(V::MapValue(m)) => AttrValue::Map(decode_attrs(m.values)),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_value() -> impl Strategy<Value = AttrValue> {
        let leaf = prop_oneof![
            Just(AttrValue::Empty),
            ".{0,12}".prop_map(AttrValue::String),
            any::<bool>().prop_map(AttrValue::Bool),
            any::<i64>().prop_map(AttrValue::Int),
            // NaN never equals itself; finite doubles keep the round trip comparable.
            (-1e12f64..1e12).prop_map(AttrValue::Double),
            proptest::collection::vec(any::<u8>(), 0..8).prop_map(AttrValue::Bytes),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(AttrValue::Array),
                proptest::collection::vec(("[a-z.]{1,8}", inner), 0..4).prop_map(|kvs| {
                    AttrValue::Map(kvs.into_iter().map(|(k, v)| KeyValue::new(k, v)).collect())
                }),
            ]
        })
    }

    fn arb_attrs() -> impl Strategy<Value = Vec<KeyValue>> {
        proptest::collection::vec(("[a-z._]{1,12}", arb_value()), 0..6)
            .prop_map(|kvs| kvs.into_iter().map(|(k, v)| KeyValue::new(k, v)).collect())
    }

    prop_compose! {
        pub(crate) fn arb_span(trace_id: TraceId)(
            span_id in any::<[u8; 8]>(),
            parent in proptest::option::of(any::<[u8; 8]>()),
            name in ".{0,20}",
            kind in 0i32..6,
            start_ns in 0u64..4_000_000_000_000_000_000,
            duration_ns in 0u64..1_000_000_000_000,
            status in 0i32..3,
            message in ".{0,10}",
            attributes in arb_attrs(),
            event_offsets in proptest::collection::vec(0u64..1_000_000_000, 0..3),
            service in "[a-z-]{1,10}",
            resource_attrs in arb_attrs(),
            link_span in proptest::option::of(any::<[u8; 8]>()),
            flags in any::<u32>(),
        ) -> Span {
            Span {
                trace_id,
                span_id: SpanId(span_id),
                parent_span_id: parent.map(SpanId),
                name,
                kind: SpanKind::from_otlp(kind),
                start_ns,
                end_ns: start_ns + duration_ns,
                status: Status { code: StatusCode::from_otlp(status), message },
                attributes: attributes.clone(),
                events: event_offsets
                    .iter()
                    .map(|o| Event {
                        time_ns: start_ns + o,
                        name: format!("event-{o}"),
                        attributes: attributes.clone(),
                        dropped_attributes: 1,
                    })
                    .collect(),
                links: link_span
                    .map(|s| Link {
                        trace_id,
                        span_id: SpanId(s),
                        trace_state: "k=v".into(),
                        attributes: vec![KeyValue::new("l", AttrValue::Int(1))],
                        flags: 1,
                        dropped_attributes: 0,
                    })
                    .into_iter()
                    .collect(),
                trace_state: String::new(),
                flags,
                dropped_attributes: 2,
                dropped_events: 3,
                dropped_links: 4,
                resource: Arc::new(Resource { service, attributes: resource_attrs }),
                scope: Arc::new(Scope { name: "lib".into(), version: "1.0".into(), attributes: vec![] }),
            }
        }
    }

    proptest! {
        #[test]
        fn chunk_round_trips(spans in proptest::collection::vec(arb_span(TraceId([7; 16])), 0..6)) {
            let bytes = encode_chunk(&spans);
            prop_assert_eq!(decode_chunk(TraceId([7; 16]), &bytes).unwrap(), spans);
        }
    }

    #[test]
    fn shared_resource_is_written_once() {
        let resource = Arc::new(Resource {
            service: "order-service".into(),
            attributes: vec![KeyValue::new(
                "host.name",
                AttrValue::String("a-long-host-name-that-would-repeat".into()),
            )],
        });
        let span = |n: u8| Span {
            trace_id: TraceId([1; 16]),
            span_id: SpanId([n; 8]),
            resource: resource.clone(),
            ..Span::default()
        };
        let one = encode_chunk(&[span(1)]).len();
        let ten = encode_chunk(&(1..=10).map(span).collect::<Vec<_>>()).len();
        // Each extra span costs only its own fields, not another resource.
        assert!(ten < one + 9 * 20, "one {one} bytes, ten {ten} bytes");
    }

    #[test]
    fn garbage_is_a_decode_error() {
        assert!(decode_chunk(TraceId([1; 16]), &[0xff, 0xff, 0xff]).is_err());
    }
}
