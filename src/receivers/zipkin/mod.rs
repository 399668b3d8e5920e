//! The Zipkin v2 receiver: `POST /api/v2/spans` (JSON, optionally gzip) on
//! 9411, for Zipkin reporters (Brave, zipkin-go, …) and the OpenTelemetry
//! SDKs' Zipkin exporters. `http.rs` is the transport (media type, limits,
//! answers); `convert.rs` decodes the JSON and maps it to `model::Span`, shared
//! client/server spans included (see its module doc); `tags.rs` reads what
//! OpenTelemetry exporters encode in tags and annotations (status, resource,
//! scope, event attributes).

pub mod convert;
pub mod http;
mod tags;

pub use http::{router, ZipkinReceiver};

/// Receiver label on the metrics.
pub const ZIPKIN: &str = "zipkin";
