//! The compact span encoding stored in the `spans` column family.
//!
//! The schema is `proto/tracemap/storage/v1/spans.proto`. One value holds the
//! spans of one trace from one request; resources and scopes are written once
//! and referenced by index, event times are offsets from the span start.

use std::sync::Arc;

use prost::Message;

use crate::model::{
    AttrValue, Event, KeyValue, Link, Resource, Scope, Span, SpanId, SpanKind, Status, StatusCode,
    TraceId, TraceSummary,
};

#[allow(clippy::all, missing_docs)]
pub(super) mod pb {
    include!(concat!(env!("OUT_DIR"), "/tracemap.storage.v1.rs"));
}

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("undecodable stored value: {0}")]
    Decode(#[from] prost::DecodeError),
    #[error("malformed stored value: {0}")]
    Malformed(&'static str),
    #[error("span chunk refers to missing {what} #{index}")]
    DanglingIndex { what: &'static str, index: u32 },
    #[error("span chunk holds an invalid id: {0}")]
    Id(#[from] crate::model::IdError),
}

/// Encodes the spans of one chunk (they share a trace id, kept in the key).
///
/// This is the ingest hot path, so it writes the protobuf wire format straight
/// from the model instead of first copying every string into the generated
/// types; `tests::direct_encoding_matches_prost` checks it byte for byte against
/// prost's own encoding of the same chunk.
pub fn encode_chunk(spans: &[Span]) -> Vec<u8> {
    let mut resources: Vec<&Arc<Resource>> = Vec::new();
    let mut scopes: Vec<&Arc<Scope>> = Vec::new();
    let mut refs = Vec::with_capacity(spans.len());
    for span in spans {
        refs.push((
            intern(&mut resources, &span.resource),
            intern(&mut scopes, &span.scope),
        ));
    }
    let mut size = 0;
    for resource in &resources {
        size += nested_len(1, resource_len(resource));
    }
    for scope in &scopes {
        size += nested_len(2, scope_len(scope));
    }
    let span_lens: Vec<usize> = spans
        .iter()
        .zip(&refs)
        .map(|(span, (r, s))| span_len(span, *r, *s))
        .collect();
    size += span_lens
        .iter()
        .map(|len| nested_len(3, *len))
        .sum::<usize>();

    let mut buf = Vec::with_capacity(size);
    for resource in &resources {
        put_nested(&mut buf, 1, resource_len(resource));
        put_string(&mut buf, 1, &resource.service);
        put_attrs(&mut buf, 2, &resource.attributes);
    }
    for scope in &scopes {
        put_nested(&mut buf, 2, scope_len(scope));
        put_string(&mut buf, 1, &scope.name);
        put_string(&mut buf, 2, &scope.version);
        put_attrs(&mut buf, 3, &scope.attributes);
    }
    for ((span, (resource, scope)), len) in spans.iter().zip(&refs).zip(span_lens) {
        put_nested(&mut buf, 3, len);
        put_span(&mut buf, span, *resource, *scope);
    }
    debug_assert_eq!(buf.len(), size);
    buf
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

// Wire-format writers. Like prost, proto3 scalars at their default are left
// out, oneof members and present optionals are always written.

use prost::encoding::{encode_key, encode_varint, encoded_len_varint, key_len, WireType};

fn nested_len(tag: u32, len: usize) -> usize {
    key_len(tag) + encoded_len_varint(len as u64) + len
}

fn put_nested(buf: &mut Vec<u8>, tag: u32, len: usize) {
    encode_key(tag, WireType::LengthDelimited, buf);
    encode_varint(len as u64, buf);
}

fn string_len(tag: u32, value: &str) -> usize {
    if value.is_empty() {
        0
    } else {
        nested_len(tag, value.len())
    }
}

fn put_string(buf: &mut Vec<u8>, tag: u32, value: &str) {
    if !value.is_empty() {
        put_nested(buf, tag, value.len());
        buf.extend_from_slice(value.as_bytes());
    }
}

fn varint_len(tag: u32, value: u64) -> usize {
    if value == 0 {
        0
    } else {
        key_len(tag) + encoded_len_varint(value)
    }
}

fn put_varint(buf: &mut Vec<u8>, tag: u32, value: u64) {
    if value != 0 {
        encode_key(tag, WireType::Varint, buf);
        encode_varint(value, buf);
    }
}

fn put_fixed64(buf: &mut Vec<u8>, tag: u32, value: u64) {
    encode_key(tag, WireType::SixtyFourBit, buf);
    buf.extend_from_slice(&value.to_le_bytes());
}

fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

fn resource_len(resource: &Resource) -> usize {
    string_len(1, &resource.service) + attrs_len(2, &resource.attributes)
}

fn scope_len(scope: &Scope) -> usize {
    string_len(1, &scope.name) + string_len(2, &scope.version) + attrs_len(3, &scope.attributes)
}

fn attrs_len(tag: u32, attrs: &[KeyValue]) -> usize {
    attrs.iter().map(|kv| nested_len(tag, kv_len(kv))).sum()
}

fn put_attrs(buf: &mut Vec<u8>, tag: u32, attrs: &[KeyValue]) {
    for kv in attrs {
        put_nested(buf, tag, kv_len(kv));
        put_string(buf, 1, &kv.key);
        put_nested(buf, 2, value_len(&kv.value));
        put_value(buf, &kv.value);
    }
}

fn kv_len(kv: &KeyValue) -> usize {
    string_len(1, &kv.key) + nested_len(2, value_len(&kv.value))
}

/// Length of an `AnyValue` message body.
fn value_len(value: &AttrValue) -> usize {
    match value {
        AttrValue::Empty => 0,
        AttrValue::String(s) => nested_len(1, s.len()),
        AttrValue::Bool(_) => key_len(2) + 1,
        AttrValue::Int(i) => key_len(3) + encoded_len_varint(zigzag(*i)),
        AttrValue::Double(_) => key_len(4) + 8,
        AttrValue::Bytes(b) => nested_len(5, b.len()),
        AttrValue::Array(items) => nested_len(6, array_len(items)),
        AttrValue::Map(entries) => nested_len(7, attrs_len(1, entries)),
    }
}

fn array_len(items: &[AttrValue]) -> usize {
    items
        .iter()
        .map(|item| nested_len(1, value_len(item)))
        .sum()
}

fn put_value(buf: &mut Vec<u8>, value: &AttrValue) {
    match value {
        AttrValue::Empty => {}
        AttrValue::String(s) => {
            put_nested(buf, 1, s.len());
            buf.extend_from_slice(s.as_bytes());
        }
        AttrValue::Bool(b) => {
            encode_key(2, WireType::Varint, buf);
            encode_varint(u64::from(*b), buf);
        }
        AttrValue::Int(i) => {
            encode_key(3, WireType::Varint, buf);
            encode_varint(zigzag(*i), buf);
        }
        AttrValue::Double(d) => {
            encode_key(4, WireType::SixtyFourBit, buf);
            buf.extend_from_slice(&d.to_le_bytes());
        }
        AttrValue::Bytes(b) => {
            put_nested(buf, 5, b.len());
            buf.extend_from_slice(b);
        }
        AttrValue::Array(items) => {
            put_nested(buf, 6, array_len(items));
            for item in items {
                put_nested(buf, 1, value_len(item));
                put_value(buf, item);
            }
        }
        AttrValue::Map(entries) => {
            put_nested(buf, 7, attrs_len(1, entries));
            put_attrs(buf, 1, entries);
        }
    }
}

fn event_offset(event: &Event, span: &Span) -> i64 {
    (event.time_ns as i64).wrapping_sub(span.start_ns as i64)
}

fn event_len(event: &Event, span: &Span) -> usize {
    varint_len(1, zigzag(event_offset(event, span)))
        + string_len(2, &event.name)
        + attrs_len(3, &event.attributes)
        + varint_len(4, u64::from(event.dropped_attributes))
}

fn link_len(link: &Link) -> usize {
    nested_len(1, TraceId::LEN)
        + key_len(2)
        + 8
        + string_len(3, &link.trace_state)
        + attrs_len(4, &link.attributes)
        + varint_len(5, u64::from(link.flags))
        + varint_len(6, u64::from(link.dropped_attributes))
}

fn span_len(span: &Span, resource: u32, scope: u32) -> usize {
    let id = if span.span_id.0 == [0; 8] {
        0
    } else {
        key_len(1) + 8
    };
    id + span.parent_span_id.map_or(0, |_| key_len(2) + 8)
        + varint_len(3, u64::from(resource))
        + varint_len(4, u64::from(scope))
        + string_len(5, &span.name)
        + varint_len(6, span.kind as u64)
        + if span.start_ns == 0 {
            0
        } else {
            key_len(7) + 8
        }
        + varint_len(8, span.duration_ns())
        + varint_len(9, span.status.code as u64)
        + string_len(10, &span.status.message)
        + attrs_len(11, &span.attributes)
        + span
            .events
            .iter()
            .map(|e| nested_len(12, event_len(e, span)))
            .sum::<usize>()
        + span
            .links
            .iter()
            .map(|l| nested_len(13, link_len(l)))
            .sum::<usize>()
        + string_len(14, &span.trace_state)
        + varint_len(15, u64::from(span.flags))
        + varint_len(16, u64::from(span.dropped_attributes))
        + varint_len(17, u64::from(span.dropped_events))
        + varint_len(18, u64::from(span.dropped_links))
}

fn put_span(buf: &mut Vec<u8>, span: &Span, resource: u32, scope: u32) {
    if span.span_id.0 != [0; 8] {
        put_fixed64(buf, 1, u64::from_be_bytes(span.span_id.0));
    }
    if let Some(parent) = span.parent_span_id {
        put_fixed64(buf, 2, u64::from_be_bytes(parent.0));
    }
    put_varint(buf, 3, u64::from(resource));
    put_varint(buf, 4, u64::from(scope));
    put_string(buf, 5, &span.name);
    put_varint(buf, 6, span.kind as u64);
    if span.start_ns != 0 {
        put_fixed64(buf, 7, span.start_ns);
    }
    put_varint(buf, 8, span.duration_ns());
    put_varint(buf, 9, span.status.code as u64);
    put_string(buf, 10, &span.status.message);
    put_attrs(buf, 11, &span.attributes);
    for event in &span.events {
        put_nested(buf, 12, event_len(event, span));
        put_varint(buf, 1, zigzag(event_offset(event, span)));
        put_string(buf, 2, &event.name);
        put_attrs(buf, 3, &event.attributes);
        put_varint(buf, 4, u64::from(event.dropped_attributes));
    }
    for link in &span.links {
        put_nested(buf, 13, link_len(link));
        put_nested(buf, 1, TraceId::LEN);
        buf.extend_from_slice(link.trace_id.as_bytes());
        put_fixed64(buf, 2, u64::from_be_bytes(link.span_id.0));
        put_string(buf, 3, &link.trace_state);
        put_attrs(buf, 4, &link.attributes);
        put_varint(buf, 5, u64::from(link.flags));
        put_varint(buf, 6, u64::from(link.dropped_attributes));
    }
    put_string(buf, 14, &span.trace_state);
    put_varint(buf, 15, u64::from(span.flags));
    put_varint(buf, 16, u64::from(span.dropped_attributes));
    put_varint(buf, 17, u64::from(span.dropped_events));
    put_varint(buf, 18, u64::from(span.dropped_links));
}

/// Encodes a completed trace's summary (the `traces` column family value),
/// whose index entries are in the blocks of batch `index_seq`. Written
/// directly, byte for byte what prost writes for `pb::TraceSummary`, without
/// copying the strings into one first.
pub fn encode_summary(summary: &TraceSummary, index_seq: u64) -> Vec<u8> {
    let strings_len = |tag: u32, list: &[String]| -> usize {
        list.iter().map(|s| nested_len(tag, s.len())).sum()
    };
    let pair_len =
        |(first, second): &(String, String)| string_len(1, first) + string_len(2, second);
    let pairs_len = |tag: u32, list: &[(String, String)]| -> usize {
        list.iter().map(|p| nested_len(tag, pair_len(p))).sum()
    };
    let span_count = u32::try_from(summary.span_count).unwrap_or(u32::MAX);
    let error_count = u32::try_from(summary.error_count).unwrap_or(u32::MAX);
    let len = string_len(1, &summary.root_service)
        + string_len(2, &summary.root_operation)
        + if summary.start_ns == 0 {
            0
        } else {
            key_len(3) + 8
        }
        + varint_len(4, summary.duration_ns)
        + varint_len(5, u64::from(span_count))
        + varint_len(6, u64::from(error_count))
        + strings_len(7, &summary.services)
        + strings_len(8, &summary.correlation_ids)
        + varint_len(9, summary.last_received_us)
        + pairs_len(10, &summary.operations)
        + pairs_len(11, &summary.attributes)
        + varint_len(12, index_seq)
        + strings_len(13, &summary.finding_kinds)
        + varint_len(14, u64::from(summary.finding_count))
        + strings_len(15, &summary.finding_services);
    let mut buf = Vec::with_capacity(len);
    put_string(&mut buf, 1, &summary.root_service);
    put_string(&mut buf, 2, &summary.root_operation);
    if summary.start_ns != 0 {
        put_fixed64(&mut buf, 3, summary.start_ns);
    }
    put_varint(&mut buf, 4, summary.duration_ns);
    put_varint(&mut buf, 5, u64::from(span_count));
    put_varint(&mut buf, 6, u64::from(error_count));
    for (tag, list) in [(7, &summary.services), (8, &summary.correlation_ids)] {
        for item in list {
            // Repeated elements are written even when empty.
            put_nested(&mut buf, tag, item.len());
            buf.extend_from_slice(item.as_bytes());
        }
    }
    put_varint(&mut buf, 9, summary.last_received_us);
    for (tag, list) in [(10, &summary.operations), (11, &summary.attributes)] {
        for pair in list {
            put_nested(&mut buf, tag, pair_len(pair));
            put_string(&mut buf, 1, &pair.0);
            put_string(&mut buf, 2, &pair.1);
        }
    }
    put_varint(&mut buf, 12, index_seq);
    for item in &summary.finding_kinds {
        put_nested(&mut buf, 13, item.len());
        buf.extend_from_slice(item.as_bytes());
    }
    put_varint(&mut buf, 14, u64::from(summary.finding_count));
    for item in &summary.finding_services {
        put_nested(&mut buf, 15, item.len());
        buf.extend_from_slice(item.as_bytes());
    }
    debug_assert_eq!(buf.len(), len);
    buf
}

fn from_pairs(pairs: Vec<pb::StringPair>) -> Vec<(String, String)> {
    pairs.into_iter().map(|p| (p.first, p.second)).collect()
}

/// Decodes a summary of `trace_id` and its index batch; `complete` is the
/// caller's to set.
pub fn decode_summary(trace_id: TraceId, bytes: &[u8]) -> Result<(TraceSummary, u64), CodecError> {
    let s = pb::TraceSummary::decode(bytes)?;
    let index_seq = s.index_seq;
    let summary = TraceSummary {
        trace_id,
        root_service: s.root_service,
        root_operation: s.root_operation,
        start_ns: s.start_ns,
        duration_ns: s.duration_ns,
        span_count: s.span_count as usize,
        error_count: s.error_count as usize,
        services: s.services,
        correlation_ids: s.correlation_ids,
        operations: from_pairs(s.operations),
        attributes: from_pairs(s.attributes),
        complete: false,
        last_received_us: s.last_received_us,
        finding_kinds: s.finding_kinds,
        finding_count: s.finding_count,
        finding_services: s.finding_services,
    };
    Ok((summary, index_seq))
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

    /// The straightforward encoder through prost's generated types: the reference
    /// the direct encoder must match byte for byte.
    fn encode_chunk_reference(spans: &[Span]) -> Vec<u8> {
        let mut resources: Vec<&Arc<Resource>> = Vec::new();
        let mut scopes: Vec<&Arc<Scope>> = Vec::new();
        let mut stored = Vec::with_capacity(spans.len());
        for span in spans {
            let resource = intern(&mut resources, &span.resource);
            let scope = intern(&mut scopes, &span.scope);
            stored.push(encode_span_reference(span, resource, scope));
        }
        let chunk = pb::SpanChunk {
            resources: resources
                .iter()
                .map(|r| pb::Resource {
                    service: r.service.clone(),
                    attributes: encode_attrs_reference(&r.attributes),
                })
                .collect(),
            scopes: scopes
                .iter()
                .map(|s| pb::Scope {
                    name: s.name.clone(),
                    version: s.version.clone(),
                    attributes: encode_attrs_reference(&s.attributes),
                })
                .collect(),
            spans: stored,
        };
        chunk.encode_to_vec()
    }

    fn encode_span_reference(span: &Span, resource: u32, scope: u32) -> pb::StoredSpan {
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
            attributes: encode_attrs_reference(&span.attributes),
            events: span
                .events
                .iter()
                .map(|e| pb::Event {
                    time_offset_ns: (e.time_ns as i64).wrapping_sub(span.start_ns as i64),
                    name: e.name.clone(),
                    attributes: encode_attrs_reference(&e.attributes),
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
                    attributes: encode_attrs_reference(&l.attributes),
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

    fn encode_attrs_reference(attrs: &[KeyValue]) -> Vec<pb::KeyValue> {
        attrs
            .iter()
            .map(|kv| pb::KeyValue {
                key: kv.key.clone(),
                value: Some(encode_value_reference(&kv.value)),
            })
            .collect()
    }

    fn encode_value_reference(value: &AttrValue) -> pb::AnyValue {
        use pb::any_value::Value as V;
        let inner = match value {
            AttrValue::Empty => None,
            AttrValue::String(s) => Some(V::StringValue(s.clone())),
            AttrValue::Bool(b) => Some(V::BoolValue(*b)),
            AttrValue::Int(i) => Some(V::IntValue(*i)),
            AttrValue::Double(d) => Some(V::DoubleValue(*d)),
            AttrValue::Bytes(b) => Some(V::BytesValue(b.clone())),
            AttrValue::Array(items) => Some(V::ArrayValue(pb::ArrayValue {
                values: items.iter().map(encode_value_reference).collect(),
            })),
            AttrValue::Map(entries) => Some(V::MapValue(pb::KeyValueList {
                values: encode_attrs_reference(entries),
            })),
        };
        pb::AnyValue { value: inner }
    }

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
        fn direct_encoding_matches_prost(spans in proptest::collection::vec(arb_span(TraceId([7; 16])), 0..6)) {
            prop_assert_eq!(encode_chunk(&spans), encode_chunk_reference(&spans));
        }

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
    fn summary_round_trips() {
        let summary = TraceSummary {
            trace_id: TraceId([4; 16]),
            root_service: "api-gateway".into(),
            root_operation: "GET /books".into(),
            start_ns: 1_764_316_800_000_000_000,
            duration_ns: 250_000_000,
            span_count: 12,
            error_count: 1,
            services: vec!["api-gateway".into(), "order".into()],
            correlation_ids: vec!["req_abc123".into()],
            operations: vec![("api-gateway".into(), "GET /books".into())],
            attributes: vec![("http.route".into(), "/books/{id}".into())],
            complete: false,
            last_received_us: 1_764_316_801_000_000,
            finding_kinds: vec!["n_plus_one".into(), "slow_db".into()],
            finding_count: 3,
            finding_services: vec!["order".into()],
        };
        assert_eq!(
            decode_summary(TraceId([4; 16]), &encode_summary(&summary, 77)).unwrap(),
            (summary, 77)
        );
    }

    fn to_pairs(pairs: &[(String, String)]) -> Vec<pb::StringPair> {
        pairs
            .iter()
            .map(|(first, second)| pb::StringPair {
                first: first.clone(),
                second: second.clone(),
            })
            .collect()
    }

    fn encode_summary_reference(summary: &TraceSummary, index_seq: u64) -> Vec<u8> {
        pb::TraceSummary {
            root_service: summary.root_service.clone(),
            root_operation: summary.root_operation.clone(),
            start_ns: summary.start_ns,
            duration_ns: summary.duration_ns,
            span_count: u32::try_from(summary.span_count).unwrap_or(u32::MAX),
            error_count: u32::try_from(summary.error_count).unwrap_or(u32::MAX),
            services: summary.services.clone(),
            correlation_ids: summary.correlation_ids.clone(),
            last_received_us: summary.last_received_us,
            operations: to_pairs(&summary.operations),
            attributes: to_pairs(&summary.attributes),
            index_seq,
            finding_kinds: summary.finding_kinds.clone(),
            finding_count: summary.finding_count,
            finding_services: summary.finding_services.clone(),
        }
        .encode_to_vec()
    }

    proptest! {
        #[test]
        fn direct_summary_encoding_matches_prost(
            root in ".{0,8}",
            start_ns in proptest::option::of(any::<u64>()),
            counts in (any::<u64>(), 0usize..3, 0usize..3, any::<u64>(), any::<u64>()),
            services in proptest::collection::vec(".{0,6}", 0..4),
            pairs in proptest::collection::vec((".{0,5}", ".{0,5}"), 0..4),
        ) {
            let summary = TraceSummary {
                trace_id: TraceId([1; 16]),
                root_service: root.clone(),
                root_operation: root,
                start_ns: start_ns.unwrap_or(0),
                duration_ns: counts.0,
                span_count: counts.1,
                error_count: counts.2,
                services: services.clone(),
                correlation_ids: services.clone(),
                operations: pairs.clone(),
                attributes: pairs,
                complete: false,
                last_received_us: counts.3,
                finding_kinds: services.clone(),
                finding_count: counts.1 as u32,
                finding_services: services,
            };
            prop_assert_eq!(
                encode_summary(&summary, counts.4),
                encode_summary_reference(&summary, counts.4)
            );
        }
    }

    #[test]
    fn garbage_is_a_decode_error() {
        assert!(decode_chunk(TraceId([1; 16]), &[0xff, 0xff, 0xff]).is_err());
    }
}
