//! Zipkin v2 transport: `POST /api/v2/spans` on the Zipkin port, a JSON list of
//! spans, optionally gzip, answered `202 Accepted` (as Zipkin answers it) once
//! the accepted spans are durable.
//!
//! - Media type: `application/json`, as every Zipkin reporter sends it. A
//!   missing content type, `text/plain` and `application/x-www-form-urlencoded`
//!   (what `curl -d` sends) are read as JSON too, because Zipkin's own server
//!   reads every body that is not protobuf or thrift as JSON and scripts rely on
//!   it. Zipkin's proto3 encoding (`application/x-protobuf`) and v1 thrift, and
//!   any other type, are refused with 415 and a message saying to send JSON.
//! - Limits and backpressure as OTLP/HTTP: the body is read up to
//!   `limits.max_message_bytes` and inflated up to the same limit (413 past it),
//!   and both are reserved in the ingest in-flight budget before decoding (503
//!   with `Retry-After` when it is spent, or when storage fails).
//! - A body that is not a JSON list of spans is 400 with a message. Spans with
//!   invalid ids are refused one by one and counted; the rest are stored, and
//!   the 202 body says how many were refused (Zipkin has no partial-success
//!   answer, so reporters ignore it; people with curl read it). Spans over
//!   `limits.max_spans_per_trace` are refused the same way; spans over the
//!   per-span limits are cut and stored (see `ingest`).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;

use super::convert;
use super::ZIPKIN;
use crate::ingest::Ingest;
use crate::receivers::{body, ExportError, RETRY_AFTER};
use crate::telemetry::Telemetry;

/// What the Zipkin endpoint needs: where to write and what to count.
pub struct ZipkinReceiver {
    pub ingest: Arc<Ingest>,
    pub telemetry: Arc<Telemetry>,
    pub max_message_bytes: usize,
}

pub fn router(receiver: Arc<ZipkinReceiver>) -> Router {
    Router::new()
        .route("/api/v2/spans", post(post_spans))
        // The limit is enforced below, before and after decompression.
        .layer(DefaultBodyLimit::disable())
        .with_state(receiver)
}

async fn post_spans(
    State(receiver): State<Arc<ZipkinReceiver>>,
    headers: HeaderMap,
    request_body: Body,
) -> Response {
    match receive(&receiver, &headers, request_body).await {
        Ok(refused) => accepted(refused),
        Err(error) => {
            receiver.telemetry.request_rejected(ZIPKIN, error.reason());
            error_response(&error)
        }
    }
}

/// Decodes, converts and stores one post; returns the refusals' summary, if any.
async fn receive(
    receiver: &ZipkinReceiver,
    headers: &HeaderMap,
    request_body: Body,
) -> Result<Option<String>, ExportError> {
    check_media_type(headers)?;
    let (bytes, _reservations) = body::read_reserved(
        &receiver.ingest,
        headers,
        request_body,
        receiver.max_message_bytes,
    )
    .await?;
    let converted = convert::decode_json(&bytes)
        .map_err(|e| ExportError::Malformed(format!("Zipkin v2 JSON: {e}")))?;
    drop(bytes);
    for (why, _) in &converted.rejected {
        receiver.telemetry.spans_rejected(ZIPKIN, why.reason(), 1);
    }
    let total = converted.rejected.len() + converted.spans.len();
    let mut refused = converted.rejected.first().map(|(_, first)| {
        format!(
            "{} of {total} span(s) refused; first: {first}",
            converted.rejected.len(),
        )
    });
    let written = receiver.ingest.write(ZIPKIN, converted.spans).await?;
    receiver.telemetry.spans_received(ZIPKIN, written.stored);
    if let Some(refusal) = written.refusal {
        refused = Some(match refused {
            Some(first) => format!("{first}; {refusal}"),
            None => refusal,
        });
    }
    Ok(refused)
}

/// Media types read as Zipkin v2 JSON; see the module doc for why these.
fn check_media_type(headers: &HeaderMap) -> Result<(), ExportError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let content_type = String::from_utf8_lossy(value.as_bytes());
    let media_type = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match media_type.as_str() {
        "" | "application/json" | "text/plain" | "application/x-www-form-urlencoded" => Ok(()),
        "application/x-protobuf" | "application/protobuf" | "application/x-thrift" => {
            Err(ExportError::UnsupportedMediaType {
                got: content_type.into_owned(),
                expected: "application/json: tracemap reads Zipkin v2 JSON only; \
                           set the reporter's encoding to JSON",
            })
        }
        _ => Err(ExportError::UnsupportedMediaType {
            got: content_type.into_owned(),
            expected: "application/json (a Zipkin v2 JSON list of spans)",
        }),
    }
}

fn accepted(refused: Option<String>) -> Response {
    match refused {
        None => StatusCode::ACCEPTED.into_response(),
        Some(message) => (
            StatusCode::ACCEPTED,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            message,
        )
            .into_response(),
    }
}

fn error_response(error: &ExportError) -> Response {
    let mut response = (
        error.http_status(),
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        error.to_string(),
    )
        .into_response();
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

    fn with_content_type(value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn json_and_what_zipkin_reads_as_json_are_accepted() {
        assert!(check_media_type(&HeaderMap::new()).is_ok());
        for value in [
            "application/json",
            "Application/JSON; charset=utf-8",
            "text/plain",
            "application/x-www-form-urlencoded",
        ] {
            assert!(
                check_media_type(&with_content_type(value)).is_ok(),
                "{value}"
            );
        }
    }

    #[test]
    fn binary_encodings_and_other_types_are_refused_with_a_hint() {
        let error = check_media_type(&with_content_type("application/x-protobuf")).unwrap_err();
        assert_eq!(error.http_status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert!(error.to_string().contains("JSON only"), "{error}");
        let error = check_media_type(&with_content_type("image/png")).unwrap_err();
        assert!(matches!(error, ExportError::UnsupportedMediaType { .. }));
    }

    #[test]
    fn overload_answers_retry_after() {
        let response = error_response(&ExportError::Ingest(crate::ingest::IngestError::Overloaded));
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        let response = error_response(&ExportError::TooLarge { limit: 1 });
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert!(response.headers().get(header::RETRY_AFTER).is_none());
    }
}
