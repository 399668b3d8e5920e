//! Zipkin v2 transport: `POST /api/v2/spans`, a JSON list of spans, optionally
//! gzip, answered `202 Accepted` as Zipkin answers it once the spans are
//! durable. The size limit applies before and after decompression, as for
//! OTLP/HTTP. Zipkin's protobuf encoding is refused with 415 and a message.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;

use super::convert::{convert_spans, ZipkinSpan};
use super::ZIPKIN;
use crate::ingest::Ingest;
use crate::receivers::{body, ExportError, RETRY_AFTER};
use crate::telemetry::Telemetry;

pub struct ZipkinReceiver {
    pub ingest: Arc<Ingest>,
    pub telemetry: Arc<Telemetry>,
    pub max_message_bytes: usize,
}

pub fn router(receiver: Arc<ZipkinReceiver>) -> Router {
    Router::new()
        .route("/api/v2/spans", post(post_spans))
        .layer(DefaultBodyLimit::disable())
        .with_state(receiver)
}

async fn post_spans(
    State(receiver): State<Arc<ZipkinReceiver>>,
    headers: HeaderMap,
    request_body: Body,
) -> Response {
    match receive(&receiver, &headers, request_body).await {
        Ok(()) => StatusCode::ACCEPTED.into_response(),
        Err(error) => {
            receiver.telemetry.request_rejected(ZIPKIN, error.reason());
            error_response(&error)
        }
    }
}

async fn receive(
    receiver: &ZipkinReceiver,
    headers: &HeaderMap,
    request_body: Body,
) -> Result<(), ExportError> {
    // zipkin-reporter always says application/json; curl users often say nothing.
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let media_type = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if media_type != "application/json" {
        return Err(ExportError::UnsupportedMediaType {
            got: content_type.to_string(),
            expected: "application/json (Zipkin v2 JSON; the protobuf encoding is not supported)",
        });
    }
    let gzip = body::is_gzip(headers)?;
    let limit = receiver.max_message_bytes;
    let raw = body::read_limited(request_body, limit).await?;
    let _raw_reservation = receiver.ingest.reserve(raw.len())?;
    let (bytes, _inflated_reservation) = if gzip {
        let inflated = body::gunzip_limited(&raw, limit)?;
        let reservation = receiver.ingest.reserve(inflated.len())?;
        (axum::body::Bytes::from(inflated), Some(reservation))
    } else {
        (raw, None)
    };
    let posted: Vec<ZipkinSpan> = serde_json::from_slice(&bytes)
        .map_err(|e| ExportError::Malformed(format!("Zipkin v2 JSON: {e}")))?;
    let (spans, rejected) = convert_spans(posted);
    for why in &rejected {
        receiver.telemetry.spans_rejected(ZIPKIN, why.reason(), 1);
    }
    let accepted = spans.len() as u64;
    receiver.ingest.write(spans).await?;
    receiver.telemetry.spans_received(ZIPKIN, accepted);
    Ok(())
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
