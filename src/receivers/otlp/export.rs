//! What both OTLP transports share: conversion, the durable write, accounting,
//! and the one mapping from `ExportError` to gRPC and HTTP statuses.

use std::sync::Arc;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};

use super::convert;
use crate::ingest::{Ingest, IngestError};
use crate::telemetry::Telemetry;

/// Receiver labels on the metrics.
pub const GRPC: &str = "otlp_grpc";
pub const HTTP: &str = "otlp_http";

/// How long a refused client should wait before retrying.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("malformed OTLP request: {0}")]
    Malformed(String),
    #[error("request is larger than the limit of {limit} bytes")]
    TooLarge { limit: usize },
    #[error("unsupported media type {0:?}: send application/x-protobuf or application/json")]
    UnsupportedMediaType(String),
    #[error("unsupported content encoding {0:?}: send gzip or identity")]
    UnsupportedEncoding(String),
    #[error(transparent)]
    Ingest(#[from] IngestError),
}

impl ExportError {
    /// The `reason` label on `tracemap_requests_rejected_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed",
            Self::TooLarge { .. } => "too_large",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::UnsupportedEncoding(_) => "unsupported_encoding",
            Self::Ingest(IngestError::Overloaded) => "overloaded",
            Self::Ingest(_) => "storage_unavailable",
        }
    }

    /// Whether a client should send the same request again later.
    pub fn retryable(&self) -> bool {
        matches!(self, Self::Ingest(_))
    }

    pub fn grpc_status(&self) -> tonic::Status {
        use tonic_types::{ErrorDetails, StatusExt};
        let message = self.to_string();
        match self {
            Self::Malformed(_) | Self::UnsupportedMediaType(_) | Self::UnsupportedEncoding(_) => {
                tonic::Status::invalid_argument(message)
            }
            Self::TooLarge { .. } => tonic::Status::resource_exhausted(message),
            // UNAVAILABLE is retried by every OTLP exporter; RetryInfo says when.
            Self::Ingest(_) => tonic::Status::with_error_details(
                tonic::Code::Unavailable,
                message,
                ErrorDetails::with_retry_info(Some(RETRY_AFTER)),
            ),
        }
    }

    pub fn http_status(&self) -> ::http::StatusCode {
        use ::http::StatusCode;
        match self {
            Self::Malformed(_) => StatusCode::BAD_REQUEST,
            Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) | Self::UnsupportedEncoding(_) => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            Self::Ingest(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// What both OTLP transports share: conversion, durable write, accounting.
pub struct OtlpReceiver {
    pub ingest: Arc<Ingest>,
    pub telemetry: Arc<Telemetry>,
    pub max_message_bytes: usize,
}

impl OtlpReceiver {
    /// Converts and stores one request; returns once the accepted spans are durable.
    pub async fn export(
        &self,
        receiver: &'static str,
        request: ExportTraceServiceRequest,
    ) -> Result<ExportTraceServiceResponse, ExportError> {
        let converted = convert::convert_request(request);
        for (why, count) in &converted.rejected {
            self.telemetry
                .spans_rejected(receiver, why.reason(), *count);
        }
        let rejected = converted.rejected_count();
        let accepted = converted.spans.len() as u64;
        let error_message = converted.error_message;
        if let Err(error) = self.ingest.write(converted.spans).await {
            let error = ExportError::from(error);
            self.telemetry.request_rejected(receiver, error.reason());
            return Err(error);
        }
        self.telemetry.spans_received(receiver, accepted);
        let partial_success = (rejected > 0).then_some(ExportTracePartialSuccess {
            rejected_spans: rejected as i64,
            error_message,
        });
        Ok(ExportTraceServiceResponse { partial_success })
    }

    /// Counts a request refused before conversion.
    pub fn refused(&self, receiver: &'static str, error: &ExportError) {
        self.telemetry.request_rejected(receiver, error.reason());
    }
}
