//! The Zipkin v2 receiver: `POST /api/v2/spans` (JSON, optionally gzip) on 9411.
//! `http.rs` is the transport, `convert.rs` maps Zipkin spans to `model::Span`.

pub mod convert;
pub mod http;

/// Receiver label on the metrics.
pub const ZIPKIN: &str = "zipkin";
