//! The errors every receiver answers with, and their one mapping to gRPC and
//! HTTP statuses (the OTLP specification's, which the other HTTP receivers
//! follow too).

use std::time::Duration;

use crate::ingest::IngestError;

/// How long a refused client should wait before retrying.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("malformed request: {0}")]
    Malformed(String),
    #[error("request is larger than the limit of {limit} bytes")]
    TooLarge { limit: usize },
    #[error("unsupported media type {got:?}: send {expected}")]
    UnsupportedMediaType { got: String, expected: &'static str },
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
            Self::UnsupportedMediaType { .. } => "unsupported_media_type",
            Self::UnsupportedEncoding(_) => "unsupported_encoding",
            Self::Ingest(IngestError::Overloaded) => "overloaded",
            Self::Ingest(IngestError::DiskFull { .. }) => "disk_full",
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
            Self::Malformed(_)
            | Self::UnsupportedMediaType { .. }
            | Self::UnsupportedEncoding(_) => tonic::Status::invalid_argument(message),
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
            Self::UnsupportedMediaType { .. } | Self::UnsupportedEncoding(_) => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            Self::Ingest(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// Why one span of a batch was refused while the rest were kept; the
/// `reason` label on `tracemap_spans_rejected_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanRejection {
    InvalidTraceId,
    InvalidSpanId,
    InvalidParentSpanId,
}

impl SpanRejection {
    pub fn reason(self) -> &'static str {
        match self {
            Self::InvalidTraceId => "invalid_trace_id",
            Self::InvalidSpanId => "invalid_span_id",
            Self::InvalidParentSpanId => "invalid_parent_span_id",
        }
    }
}
