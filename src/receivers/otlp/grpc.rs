//! OTLP/gRPC transport: `opentelemetry.proto.collector.trace.v1.TraceService/Export`.
//!
//! The service is written out by hand rather than generated so that its codec is
//! ours: the in-flight budget is reserved before a message is decoded, a
//! malformed message is `INVALID_ARGUMENT` (prost's codec says `INTERNAL`), and
//! tonic's size and decompression errors are re-coded as the OTLP specification
//! asks (`RESOURCE_EXHAUSTED` for too large, `INVALID_ARGUMENT` for bad gzip).
//! tonic checks the size limit after decompression (since 0.14.3).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Buf;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic::Status;

use super::{ExportError, OtlpReceiver, GRPC};
use crate::ingest::Reservation;

const SERVICE_NAME: &str = "opentelemetry.proto.collector.trace.v1.TraceService";
const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// The tower service to mount on a tonic server.
#[derive(Clone)]
pub struct TraceExportService {
    receiver: Arc<OtlpReceiver>,
}

impl TraceExportService {
    pub fn new(receiver: Arc<OtlpReceiver>) -> Self {
        Self { receiver }
    }
}

impl NamedService for TraceExportService {
    const NAME: &'static str = SERVICE_NAME;
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = Result<T, Infallible>> + Send>>;

impl tower::Service<http::Request<tonic::body::Body>> for TraceExportService {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let receiver = self.receiver.clone();
        Box::pin(async move {
            if request.uri().path() != EXPORT_PATH {
                return Ok(Status::unimplemented("unknown method").into_http());
            }
            let mut grpc = Grpc::new(ExportCodec {
                receiver: receiver.clone(),
            })
            .accept_compressed(CompressionEncoding::Gzip)
            .send_compressed(CompressionEncoding::Gzip)
            .max_decoding_message_size(receiver.max_message_bytes);
            let response = grpc
                .unary(
                    Export {
                        receiver: receiver.clone(),
                    },
                    request,
                )
                .await;
            Ok(recode_transport_errors(response, &receiver))
        })
    }
}

/// A decoded request with its share of the in-flight budget, held until answered.
struct Reserved {
    request: ExportTraceServiceRequest,
    _reservation: Reservation,
}

#[derive(Clone)]
struct Export {
    receiver: Arc<OtlpReceiver>,
}

impl UnaryService<Reserved> for Export {
    type Response = ExportTraceServiceResponse;
    type Future =
        Pin<Box<dyn Future<Output = Result<tonic::Response<Self::Response>, Status>> + Send>>;

    fn call(&mut self, request: tonic::Request<Reserved>) -> Self::Future {
        let receiver = self.receiver.clone();
        Box::pin(async move {
            let reserved = request.into_inner();
            receiver
                .export(GRPC, reserved.request)
                .await
                .map(tonic::Response::new)
                .map_err(|error| error.grpc_status())
        })
    }
}

struct ExportCodec {
    receiver: Arc<OtlpReceiver>,
}

impl Codec for ExportCodec {
    type Encode = ExportTraceServiceResponse;
    type Decode = Reserved;
    type Encoder = ResponseEncoder;
    type Decoder = RequestDecoder;

    fn encoder(&mut self) -> ResponseEncoder {
        ResponseEncoder
    }

    fn decoder(&mut self) -> RequestDecoder {
        RequestDecoder {
            receiver: self.receiver.clone(),
        }
    }
}

struct ResponseEncoder;

impl Encoder for ResponseEncoder {
    type Item = ExportTraceServiceResponse;
    type Error = Status;

    fn encode(&mut self, item: Self::Item, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(buf)
            .map_err(|e| Status::internal(format!("encoding the response: {e}")))
    }
}

struct RequestDecoder {
    receiver: Arc<OtlpReceiver>,
}

impl Decoder for RequestDecoder {
    type Item = Reserved;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Reserved>, Status> {
        let refuse = |error: ExportError| {
            self.receiver.refused(GRPC, &error);
            error.grpc_status()
        };
        let reservation = self
            .receiver
            .ingest
            .reserve(buf.remaining())
            .map_err(|e| refuse(e.into()))?;
        let request = ExportTraceServiceRequest::decode(buf)
            .map_err(|e| refuse(ExportError::Malformed(e.to_string())))?;
        Ok(Some(Reserved {
            request,
            _reservation: reservation,
        }))
    }
}

/// tonic answers an over-limit frame with `OUT_OF_RANGE` and undecompressable
/// gzip with `INTERNAL`; OTLP clients expect `RESOURCE_EXHAUSTED` and
/// `INVALID_ARGUMENT`. Both arrive as trailers-only responses, so the status is
/// in the headers.
fn recode_transport_errors(
    mut response: http::Response<tonic::body::Body>,
    receiver: &OtlpReceiver,
) -> http::Response<tonic::body::Body> {
    let Some(status) = Status::from_header_map(response.headers()) else {
        return response;
    };
    let recoded = match status.code() {
        tonic::Code::OutOfRange if status.message().contains("too large") => {
            Some(ExportError::TooLarge {
                limit: receiver.max_message_bytes,
            })
        }
        tonic::Code::ResourceExhausted if status.message().contains("decompressing") => {
            Some(ExportError::TooLarge {
                limit: receiver.max_message_bytes,
            })
        }
        tonic::Code::Internal if status.message().contains("decompressing") => Some(
            ExportError::Malformed(format!("cannot decompress: {}", status.message())),
        ),
        _ => None,
    };
    if let Some(error) = recoded {
        receiver.refused(GRPC, &error);
        let headers = response.headers_mut();
        headers.remove("grpc-message");
        headers.remove("grpc-status");
        if let Err(e) = error.grpc_status().add_header(headers) {
            tracing::warn!(error = %e, "could not re-code a gRPC status");
        }
    }
    response
}
