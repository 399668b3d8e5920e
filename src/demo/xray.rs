//! search-service's spans as the AWS X-Ray SDK sends them: one segment
//! document per request, its subsegments embedded, in one UDP datagram to
//! tracemap's X-Ray daemon port behind the daemon protocol's header line.
//!
//! The segment continues the gateway's trace: its `trace_id` is the
//! OpenTelemetry trace id in X-Ray form (the demo's ids begin with their
//! time, as X-Ray ids must) and its `parent_id` the gateway's client span,
//! as the X-Ray propagator carries them across. The request's correlation id
//! is a segment annotation, filterable as X-Ray annotations are. Elasticsearch
//! queries go through its SQL interface, so they are `remote` subsegments
//! with an `sql` block; other spans are local subsegments.

use std::sync::atomic::Ordering;

use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::Span;
use serde_json::{json, Map, Value};
use tokio::net::UdpSocket;

use super::topology::Service;
use super::Counters;

const HEADER: &str = "{\"format\": \"json\", \"version\": 1}\n";

fn attribute<'a>(span: &'a Span, key: &str) -> Option<&'a any_value::Value> {
    span.attributes
        .iter()
        .find(|a| a.key == key)
        .and_then(|a: &KeyValue| a.value.as_ref()?.value.as_ref())
}

fn text<'a>(span: &'a Span, key: &str) -> &'a str {
    match attribute(span, key) {
        Some(any_value::Value::StringValue(s)) => s,
        _ => "",
    }
}

fn status(span: &Span) -> Option<i64> {
    match attribute(span, "http.response.status_code") {
        Some(any_value::Value::IntValue(code)) => Some(*code),
        _ => None,
    }
}

fn seconds(ns: u64) -> f64 {
    // Microseconds, as the SDKs write them.
    (ns / 1_000) as f64 / 1e6
}

/// The segment document of one request's search-service spans (its server
/// span and what happened under it), or `None` without a server span.
pub fn segment(spans: &[Span]) -> Option<Value> {
    let root = spans.iter().find(|s| s.kind == SpanKind::Server as i32)?;
    let trace_id = hex::encode(&root.trace_id);
    let mut document = entity(root, spans);
    let fields = document.as_object_mut()?;
    fields.insert("name".into(), Service::Search.name().into());
    fields.insert(
        "trace_id".into(),
        format!("1-{}-{}", &trace_id[..8], &trace_id[8..]).into(),
    );
    fields.insert("parent_id".into(), hex::encode(&root.parent_span_id).into());
    fields.insert("origin".into(), "AWS::EKS::Container".into());
    fields.insert("service".into(), json!({"version": "3.4.1"}));
    fields.insert(
        "aws".into(),
        json!({
            "xray": {"sdk": "X-Ray for Java", "sdk_version": "2.18.2"},
            "eks": {"cluster_name": "bookstore", "pod": "search-service-5c8d7b9f4-q7wzt"},
        }),
    );
    let query = text(root, "url.query");
    let url = format!(
        "http://search-service:8080{}{}{query}",
        text(root, "url.path"),
        if query.is_empty() { "" } else { "?" }
    );
    fields.insert(
        "http".into(),
        json!({
            "request": {"method": text(root, "http.request.method"), "url": url,
                        "client_ip": text(root, "client.address")},
            "response": {"status": status(root).unwrap_or(200)},
        }),
    );
    let mut annotations = Map::new();
    annotations.insert("correlation_id".into(), text(root, "correlation_id").into());
    fields.insert("annotations".into(), annotations.into());
    Some(document)
}

/// One span as a segment or subsegment, its children embedded.
fn entity(span: &Span, spans: &[Span]) -> Value {
    let mut fields = Map::new();
    fields.insert("name".into(), span.name.clone().into());
    fields.insert("id".into(), hex::encode(&span.span_id).into());
    fields.insert(
        "start_time".into(),
        seconds(span.start_time_unix_nano).into(),
    );
    fields.insert("end_time".into(), seconds(span.end_time_unix_nano).into());
    match status(span) {
        Some(429) => {
            fields.insert("throttle".into(), true.into());
            fields.insert("error".into(), true.into());
        }
        Some(400..=499) => {
            fields.insert("error".into(), true.into());
        }
        Some(500..) => {
            fields.insert("fault".into(), true.into());
        }
        _ if span.status.as_ref().is_some_and(|s| s.code == 2) => {
            fields.insert("fault".into(), true.into());
        }
        _ => {}
    }
    let statement = text(span, "db.query.text");
    if span.kind == SpanKind::Client as i32 && !statement.is_empty() {
        let host = text(span, "server.address");
        fields.insert("name".into(), host.into());
        fields.insert("namespace".into(), "remote".into());
        fields.insert(
            "sql".into(),
            json!({
                "url": format!("jdbc:es://{host}:9200"),
                "database_type": "Elasticsearch",
                "database_version": "8.13.4",
                "driver_version": "Elasticsearch JDBC 8.13.4",
                "user": "search",
                "sanitized_query": statement,
            }),
        );
    }
    let children: Vec<Value> = spans
        .iter()
        .filter(|child| child.parent_span_id == span.span_id)
        .map(|child| entity(child, spans))
        .collect();
    if !children.is_empty() {
        fields.insert("subsegments".into(), children.into());
    }
    Value::Object(fields)
}

/// Sends one request's search-service spans as one segment datagram.
pub async fn send(socket: &UdpSocket, spans: &[Span], counters: &Counters) {
    let Some(document) = segment(spans) else {
        return;
    };
    let mut datagram = HEADER.to_string();
    datagram.push_str(&document.to_string());
    match socket.send(datagram.as_bytes()).await {
        Ok(_) => counters
            .spans_sent
            .fetch_add(spans.len() as u64, Ordering::Relaxed),
        // UDP: nobody listening shows as a refused send, at most.
        Err(_) => counters
            .spans_failed
            .fetch_add(spans.len() as u64, Ordering::Relaxed),
    };
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;
    use crate::demo::scenario::request;
    use crate::demo::schedule::Phase;
    use crate::model::AttrValue;
    use crate::receivers::xray::convert::convert_segment;
    use crate::receivers::xray::segment::parse_datagram;

    #[test]
    fn a_search_is_one_segment_the_xray_receiver_reads_back() {
        let mut rng = StdRng::seed_from_u64(6);
        let phase = Phase {
            slow_catalog_query: false,
            storm: 0.0,
        };
        let mut checked = 0;
        while checked < 20 {
            let trace = request(&mut rng, phase, 1_800_000_000_000_000_000);
            let search: Vec<Span> = trace
                .iter()
                .filter(|r| r.service == Service::Search)
                .map(|r| r.span.clone())
                .collect();
            if search.len() < 3 {
                continue;
            }
            checked += 1;
            let gateway_client = &trace
                .iter()
                .find(|r| r.span.span_id == search[0].parent_span_id)
                .unwrap()
                .span;
            let datagram = format!("{HEADER}{}", segment(&search).unwrap());
            let spans = convert_segment(parse_datagram(datagram.as_bytes()).unwrap(), 8).unwrap();
            assert_eq!(spans.len(), search.len());
            let root = &spans[0];
            assert_eq!(root.service(), "search-service");
            assert_eq!(root.trace_id.to_string(), hex::encode(&search[0].trace_id));
            assert_eq!(
                root.parent_span_id.unwrap().to_string(),
                hex::encode(&gateway_client.span_id)
            );
            assert_eq!(
                root.start_ns / 1_000,
                search[0].start_time_unix_nano / 1_000
            );
            let correlation = text(&search[0], "correlation_id");
            assert_eq!(
                root.attr("correlation_id"),
                Some(&AttrValue::String(correlation.into()))
            );
            let es = spans.iter().find(|s| s.name == "elasticsearch").unwrap();
            assert_eq!(
                es.attr("db.system.name"),
                Some(&AttrValue::String("elasticsearch".into()))
            );
            assert_eq!(
                es.attr("peer.service"),
                Some(&AttrValue::String("elasticsearch".into()))
            );
            assert!(spans.iter().any(|s| s.name == "rank_results"));
        }
    }
}
