//! Receivers decode a wire format, convert it to `model::Span` at the edge, hand
//! the batch to ingest, and answer the client. Each has the same files: `mod.rs`
//! (shared handling and error mapping), a transport per protocol, `convert.rs`.

pub mod body;
pub mod error;
pub mod otlp;
pub mod xray;
pub mod zipkin;

pub use error::{ExportError, SpanRejection, RETRY_AFTER};
