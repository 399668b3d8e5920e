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

    /// An HTTP client span; `request` is the method and URL,
    /// `"POST http://payment:8080/pay"`. The URL's host is its
    /// `server.address`, so the call has a target without a server span.
    pub fn http_call(
        &mut self,
        parent: u32,
        service: &str,
        request: &str,
        start_ms: f64,
        end_ms: f64,
    ) -> u32 {
        let (method, url) = request.split_once(' ').unwrap_or(("GET", request));
        let authority = url.split_once("://").map_or("", |(_, rest)| rest);
        let host = authority.split(['/', ':']).next().unwrap_or_default();
        self.span(
            Some(parent),
            service,
            SpanKind::Client,
            method,
            start_ms,
            end_ms,
            &[
                ("http.request.method", AttrValue::String(method.into())),
                ("url.full", AttrValue::String(url.into())),
                ("server.address", AttrValue::String(host.into())),
            ],
        )
    }

    /// A SERVER span of `service` handling `name`.
    pub fn server(
        &mut self,
        parent: Option<u32>,
        service: &str,
        name: &str,
        start_ms: f64,
        end_ms: f64,
    ) -> u32 {
        self.span(
            parent,
            service,
            SpanKind::Server,
            name,
            start_ms,
            end_ms,
            &[],
        )
    }

    /// Sets attribute `key` on span `n`.
    pub fn attr(&mut self, n: u32, key: &str, value: AttrValue) -> &mut Self {
        self.spans[n as usize]
            .attributes
            .push(KeyValue::new(key, value));
        self
    }

    /// Gives span `n` an HTTP response status.
    pub fn status(&mut self, n: u32, code: i64) -> &mut Self {
        self.attr(n, "http.response.status_code", AttrValue::Int(code))
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
