//! What both OTLP transports share: conversion, the durable write, accounting.

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};

use super::convert;
use crate::ingest::Ingest;
use crate::receivers::ExportError;
use crate::telemetry::Telemetry;

/// Receiver labels on the metrics.
pub const GRPC: &str = "otlp_grpc";
pub const HTTP: &str = "otlp_http";

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
        let mut error_message = converted.error_message;
        let written = match self.ingest.write(receiver, converted.spans).await {
            Ok(written) => written,
            Err(error) => {
                let error = ExportError::from(error);
                self.telemetry.request_rejected(receiver, error.reason());
                return Err(error);
            }
        };
        self.telemetry.spans_received(receiver, written.stored);
        if let Some(refusal) = written.refusal {
            if !error_message.is_empty() {
                error_message.push_str("; ");
            }
            error_message.push_str(&refusal);
        }
        let rejected = rejected + written.refused;
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
