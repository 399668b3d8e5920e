//! The X-Ray sender of the load generator: the corpus's spans as X-Ray
//! segment documents, one per UDP datagram behind the daemon's
//! `{"format":"json","version":1}` header line, as the X-Ray SDKs send them.
//! Server spans become segments with `http`, annotations and metadata; database
//! client spans become independent `remote` subsegments with an `sql` block.
//! UDP has no acknowledgement: the sender only counts what it sent.

use std::net::SocketAddr;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use opentelemetry_proto::tonic::trace::v1::Span;
use serde_json::{json, Map, Value};
use tokio::net::UdpSocket;

use super::LoadgenError;

const HEADER: &str = "{\"format\":\"json\",\"version\":1}\n";

/// One segment datagram, with where the last 8 hex digits of its trace id sit.
#[derive(Debug, Clone)]
pub struct Datagram {
    bytes: Vec<u8>,
    generation_at: usize,
}

impl Datagram {
    /// The datagram as generated (header line and segment document).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// A copy whose trace id ends in `generation`, as
    /// [`super::otlp::EncodedRequest::fresh`] patches OTLP trace ids.
    pub fn fresh(&self, generation: u32, into: &mut Vec<u8>) {
        into.clear();
        into.extend_from_slice(&self.bytes);
        let hex = format!("{generation:08x}");
        into[self.generation_at..self.generation_at + 8].copy_from_slice(hex.as_bytes());
    }
}

/// Every span of `request` as one segment datagram.
pub fn datagrams(request: &ExportTraceServiceRequest) -> Vec<Datagram> {
    let mut out = Vec::new();
    for resource_spans in &request.resource_spans {
        let service = resource_spans
            .resource
            .as_ref()
            .and_then(|r| r.attributes.iter().find(|a| a.key == "service.name"))
            .and_then(|a| string_value(a))
            .unwrap_or("unknown");
        for span in resource_spans.scope_spans.iter().flat_map(|s| &s.spans) {
            out.push(datagram(service, span));
        }
    }
    out
}

fn datagram(service: &str, span: &Span) -> Datagram {
    let trace_id = format!(
        "1-{}-{}",
        hex::encode(&span.trace_id[..4]),
        hex::encode(&span.trace_id[4..])
    );
    let attribute = |key: &str| span.attributes.iter().find(|a| a.key == key);
    let text = |key: &str| attribute(key).and_then(string_value).unwrap_or_default();
    let mut metadata = Map::new();
    let mut annotations = Map::new();
    for kv in &span.attributes {
        match kv.key.as_str() {
            "correlation_id" | "thread.name" => {
                annotations.insert(kv.key.replace('.', "_"), json_value(kv));
            }
            "http.request.method"
            | "url.full"
            | "http.response.status_code"
            | "user_agent.original"
            | "db.system.name"
            | "db.query.text" => {}
            key => {
                metadata.insert(key.to_string(), json_value(kv));
            }
        }
    }
    let mut segment = json!({
        "trace_id": trace_id,
        "id": hex::encode(&span.span_id),
        "start_time": span.start_time_unix_nano as f64 / 1e9,
        "end_time": span.end_time_unix_nano as f64 / 1e9,
        "annotations": annotations,
        "metadata": {"default": metadata},
    });
    let fields = segment.as_object_mut().expect("an object");
    if !span.parent_span_id.is_empty() {
        fields.insert("parent_id".into(), hex::encode(&span.parent_span_id).into());
    }
    if attribute("db.system.name").is_some() {
        fields.insert("name".into(), "books-db".into());
        fields.insert("type".into(), "subsegment".into());
        fields.insert("namespace".into(), "remote".into());
        fields.insert(
            "sql".into(),
            json!({
                "sanitized_query": text("db.query.text"),
                "database_type": text("db.system.name"),
            }),
        );
    } else {
        fields.insert("name".into(), service.into());
        let status = attribute("http.response.status_code")
            .and_then(|a| a.value.as_ref()?.value.clone())
            .and_then(|v| match v {
                any_value::Value::IntValue(code) => Some(code),
                _ => None,
            })
            .unwrap_or(200);
        fields.insert(
            "http".into(),
            json!({
                "request": {
                    "method": text("http.request.method"),
                    "url": text("url.full"),
                    "user_agent": text("user_agent.original"),
                },
                "response": {"status": status},
            }),
        );
    }
    let document = segment.to_string();
    // The trace id is the only place its 24 hex digits occur.
    let generation_at = HEADER.len()
        + document
            .find(&trace_id)
            .expect("the trace id is in the document")
        + trace_id.len()
        - 8;
    let mut bytes = Vec::with_capacity(HEADER.len() + document.len());
    bytes.extend_from_slice(HEADER.as_bytes());
    bytes.extend_from_slice(document.as_bytes());
    Datagram {
        bytes,
        generation_at,
    }
}

fn string_value(kv: &KeyValue) -> Option<&str> {
    match kv.value.as_ref()?.value.as_ref()? {
        any_value::Value::StringValue(s) => Some(s),
        _ => None,
    }
}

fn json_value(kv: &KeyValue) -> Value {
    match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone().into(),
        Some(any_value::Value::IntValue(i)) => (*i).into(),
        Some(any_value::Value::BoolValue(b)) => (*b).into(),
        Some(any_value::Value::DoubleValue(d)) => (*d).into(),
        _ => Value::Null,
    }
}

/// A UDP socket connected to the X-Ray daemon port at `endpoint` (`host:port`).
pub async fn connect(endpoint: &str) -> Result<UdpSocket, LoadgenError> {
    let target: SocketAddr = tokio::net::lookup_host(endpoint)
        .await
        .ok()
        .and_then(|mut addresses| addresses.next())
        .ok_or_else(|| LoadgenError::Endpoint(endpoint.to_string()))?;
    let local: SocketAddr = if target.is_ipv4() {
        "0.0.0.0:0".parse().expect("an address")
    } else {
        "[::]:0".parse().expect("an address")
    };
    let connect_error = |error: std::io::Error| LoadgenError::Connect {
        endpoint: endpoint.to_string(),
        reason: error.to_string(),
    };
    let socket = UdpSocket::bind(local).await.map_err(connect_error)?;
    socket.connect(target).await.map_err(connect_error)?;
    Ok(socket)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loadgen::corpus::{request, Shape};
    use crate::receivers::xray::segment::parse_datagram;

    #[test]
    fn every_span_becomes_one_parsable_segment_of_similar_size() {
        let grams = datagrams(&request(3, &Shape::default()));
        assert_eq!(grams.len(), 512);
        let mut buffer = Vec::new();
        for gram in &grams {
            gram.fresh(0xabcdef01, &mut buffer);
            assert!(buffer.starts_with(HEADER.as_bytes()));
            assert!(
                (400..1200).contains(&buffer.len()),
                "{}",
                String::from_utf8_lossy(&buffer)
            );
            let text = std::str::from_utf8(&buffer).unwrap();
            assert!(text.contains("abcdef01\""), "{text}");
            assert!(parse_datagram(&buffer).is_ok(), "{text}");
        }
    }
}
