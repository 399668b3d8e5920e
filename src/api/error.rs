//! API errors and their HTTP answers, in one place.
//!
//! The native API answers `{"error": "…"}`; the Jaeger API wraps errors in its
//! envelope (`errors: [{"code", "msg"}]`), which `jaeger.rs` builds from the
//! same status and message.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    #[error("internal error: {0}")]
    Internal(String),
    /// Too many heavy queries at once: retry after a second.
    #[error("{0}")]
    Busy(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Storage(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let busy = matches!(self, Self::Busy(_));
        let mut response = (
            self.status(),
            Json(serde_json::json!({"error": self.to_string()})),
        )
            .into_response();
        if busy {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        response
    }
}

/// Parses a trace id in hex or X-Ray form.
pub fn parse_trace_id(text: &str) -> Result<crate::model::TraceId, ApiError> {
    text.parse()
        .map_err(|e| ApiError::BadRequest(format!("invalid trace id {text:?}: {e}")))
}
