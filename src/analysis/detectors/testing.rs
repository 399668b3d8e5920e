//! Hand-built traces for the detectors' unit tests.

use std::sync::Arc;

use crate::model::{
    AttrValue, KeyValue, Resource, Span, SpanId, SpanKind, StatusCode, Trace, TraceId,
};

/// Builds a trace span by span; times in ms from an arbitrary origin.
#[derive(Default)]
pub(crate) struct TraceBuilder {
    spans: Vec<Span>,
}

pub(crate) fn span_id(n: u32) -> SpanId {
    let mut bytes = [0u8; 8];
    bytes[4..].copy_from_slice(&(n + 1).to_be_bytes());
    SpanId(bytes)
}

impl TraceBuilder {
    /// Adds a span and returns its number (for `parent` and `error`).
    #[allow(clippy::too_many_arguments)]
    pub fn span(
        &mut self,
        parent: Option<u32>,
        service: &str,
        kind: SpanKind,
        name: &str,
        start_ms: f64,
        end_ms: f64,
        attrs: &[(&str, AttrValue)],
    ) -> u32 {
        let n = self.spans.len() as u32;
        let origin_ns = 1_700_000_000_000_000_000u64;
        self.spans.push(Span {
            trace_id: TraceId([7; 16]),
            span_id: span_id(n),
            parent_span_id: parent.map(span_id),
            name: name.into(),
            kind,
            start_ns: origin_ns + (start_ms * 1e6) as u64,
            end_ns: origin_ns + (end_ms * 1e6) as u64,
            attributes: attrs
                .iter()
                .map(|(k, v)| KeyValue::new(*k, v.clone()))
                .collect(),
            resource: Arc::new(Resource {
                service: service.into(),
                attributes: vec![],
            }),
            ..Span::default()
        });
        n
    }

    /// A database client span running `statement` on PostgreSQL.
    pub fn query(
        &mut self,
        parent: u32,
        service: &str,
        statement: &str,
        start_ms: f64,
        end_ms: f64,
    ) -> u32 {
        self.span(
            Some(parent),
            service,
            SpanKind::Client,
            "SELECT",
            start_ms,
            end_ms,
            &[
                ("db.system", AttrValue::String("postgresql".into())),
                ("db.name", AttrValue::String("bookstore".into())),
                ("db.statement", AttrValue::String(statement.into())),
            ],
        )
    }

    /// Marks span `n` as failed.
    pub fn error(&mut self, n: u32) -> &mut Self {
        self.spans[n as usize].status.code = StatusCode::Error;
        self
    }

    pub fn build(&mut self) -> Trace {
        let mut spans = std::mem::take(&mut self.spans);
        spans.sort_by_key(|s| (s.start_ns, s.span_id));
        Trace {
            trace_id: TraceId([7; 16]),
            spans,
            last_received_us: 0,
        }
    }
}
