//! OTLP/HTTP transport: `POST /v1/traces` with protobuf or JSON, optionally gzip.
//!
//! The body is read up to the size limit, decompressed up to the same limit (a
//! small gzip body that inflates past it is refused with 413 without ever being
//! held whole), decoded, and answered in the request's own content type. Error
//! bodies are `google.rpc.Status`, as the OTLP specification asks.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;

use super::{ExportError, OtlpReceiver, HTTP, RETRY_AFTER};
use crate::receivers::body;

const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";

/// The body encodings OTLP/HTTP takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Protobuf,
    Json,
}

pub fn router(receiver: Arc<OtlpReceiver>) -> Router {
    Router::new()
        .route("/v1/traces", post(export))
        // The limit is enforced below, before and after decompression.
        .layer(DefaultBodyLimit::disable())
        .with_state(receiver)
}

async fn export(
    State(receiver): State<Arc<OtlpReceiver>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    // Until the content type is known, errors are answered as JSON.
    let format = match request_format(&headers) {
        Ok(format) => format,
        Err(error) => return refuse(&receiver, Format::Json, error),
    };
    match decode(&receiver, &headers, format, body).await {
        Ok((request, _reservation)) => match receiver.export(HTTP, request).await {
            Ok(response) => success(format, response),
            Err(error) => error_response(format, &error),
        },
        Err(error) => refuse(&receiver, format, error),
    }
}

fn request_format(headers: &HeaderMap) -> Result<Format, ExportError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media_type = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match media_type.as_str() {
        PROTOBUF => Ok(Format::Protobuf),
        JSON => Ok(Format::Json),
        _ => Err(ExportError::UnsupportedMediaType {
            got: content_type.to_string(),
            expected: "application/x-protobuf or application/json",
        }),
    }
}

async fn decode(
    receiver: &OtlpReceiver,
    headers: &HeaderMap,
    format: Format,
    request_body: Body,
) -> Result<(ExportTraceServiceRequest, Vec<crate::ingest::Reservation>), ExportError> {
    let (bytes, reservations) = body::read_reserved(
        &receiver.ingest,
        headers,
        request_body,
        receiver.max_message_bytes,
    )
    .await?;
    Ok((decode_body(format, bytes)?, reservations))
}

/// Decodes a whole (decompressed) body; the fuzz targets call it too.
pub fn decode_body(
    format: Format,
    bytes: bytes::Bytes,
) -> Result<ExportTraceServiceRequest, ExportError> {
    match format {
        Format::Protobuf => ExportTraceServiceRequest::decode(bytes)
            .map_err(|e| ExportError::Malformed(format!("OTLP protobuf: {e}"))),
        Format::Json => serde_json::from_slice(&bytes)
            .map_err(|e| ExportError::Malformed(format!("OTLP/JSON: {e}"))),
    }
}

fn success(format: Format, response: ExportTraceServiceResponse) -> Response {
    match format {
        Format::Protobuf => {
            ([(header::CONTENT_TYPE, PROTOBUF)], response.encode_to_vec()).into_response()
        }
        Format::Json => {
            // int64 is a decimal string in OTLP/JSON.
            let body = match response.partial_success {
                Some(partial) => serde_json::json!({"partialSuccess": {
                    "rejectedSpans": partial.rejected_spans.to_string(),
                    "errorMessage": partial.error_message,
                }}),
                None => serde_json::json!({}),
            };
            ([(header::CONTENT_TYPE, JSON)], body.to_string()).into_response()
        }
    }
}

fn refuse(receiver: &OtlpReceiver, format: Format, error: ExportError) -> Response {
    receiver.refused(HTTP, &error);
    error_response(format, &error)
}

fn error_response(format: Format, error: &ExportError) -> Response {
    let grpc_code = error.grpc_status().code() as i32;
    let message = error.to_string();
    let mut response = match format {
        Format::Protobuf => {
            let status = tonic_types::Status {
                code: grpc_code,
                message,
                details: vec![],
            };
            ([(header::CONTENT_TYPE, PROTOBUF)], status.encode_to_vec()).into_response()
        }
        Format::Json => (
            [(header::CONTENT_TYPE, JSON)],
            serde_json::json!({"code": grpc_code, "message": message}).to_string(),
        )
            .into_response(),
    };
    *response.status_mut() = error.http_status();
    if error.retryable() {
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(RETRY_AFTER.as_secs()),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_with_parameters_are_understood() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        assert_eq!(request_format(&headers).unwrap(), Format::Json);
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert!(matches!(
            request_format(&headers),
            Err(ExportError::UnsupportedMediaType { .. })
        ));
    }

    #[test]
    fn status_code_of_each_error() {
        use axum::http::StatusCode;
        assert_eq!(
            ExportError::Malformed("x".into()).http_status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            ExportError::TooLarge { limit: 1 }.http_status(),
            StatusCode::PAYLOAD_TOO_LARGE
        );
        assert_eq!(
            ExportError::UnsupportedMediaType {
                got: "x".into(),
                expected: "y"
            }
            .http_status(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
    }
}
