//! A gRPC client that sends frames exactly as given, for bad-input tests.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;
use tonic::{Code, Status};
use tower::ServiceExt;

pub const EXPORT: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

pub struct Answer {
    pub status: Status,
    pub response: Option<ExportTraceServiceResponse>,
}

/// Sends one gRPC frame as-is: `payload` must already be gzip when `gzip` is set.
pub async fn raw_export(url: &str, path: &str, payload: Vec<u8>, gzip: bool) -> Answer {
    let channel = tonic::transport::Endpoint::from_shared(url.to_string())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut frame = Vec::with_capacity(payload.len() + 5);
    frame.push(u8::from(gzip));
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.extend_from_slice(&payload);
    let mut request = http::Request::builder()
        .method("POST")
        .uri(format!("{url}{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    if gzip {
        request = request.header("grpc-encoding", "gzip");
    }
    let request = request
        .body(tonic::body::Body::new(Full::new(Bytes::from(frame))))
        .unwrap();
    let response = channel.oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let collected = body.collect().await.unwrap();
    let trailers = collected.trailers().cloned();
    let bytes = collected.to_bytes();
    let status = Status::from_header_map(&parts.headers)
        .or_else(|| trailers.as_ref().and_then(Status::from_header_map))
        .expect("a grpc-status in headers or trailers");
    let response = (status.code() == Code::Ok && bytes.len() >= 5)
        .then(|| ExportTraceServiceResponse::decode(&bytes[5..]).unwrap());
    Answer { status, response }
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}
