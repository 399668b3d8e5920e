//! The OTLP receivers: gRPC on 4317, HTTP (protobuf and JSON) on 4318.
//!
//! Both transports decode to `ExportTraceServiceRequest` and hand it to
//! `OtlpReceiver::export` (in `export.rs`), which converts at the edge, writes
//! durably through ingest and answers with `partial_success` when some spans
//! were refused.

pub mod convert;
mod export;
pub mod grpc;
pub mod http;

pub use crate::receivers::error::{ExportError, RETRY_AFTER};
pub use export::{OtlpReceiver, GRPC, HTTP};
