//! The OTLP senders of the load generator: pre-encoded export requests posted
//! over OTLP/gRPC (one tonic channel per connection) or OTLP/HTTP protobuf
//! (one keep-alive connection per client), each request answered with an
//! [`Outcome`]. The bytes are sent as encoded once; only the trace ids are
//! patched per send, so each request carries traces the server has not seen.

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use tonic::codec::{Codec, EncodeBuf, Encoder};
use tonic::transport::{Channel, Endpoint};

use super::LoadgenError;

const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// How the server answered one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted; `rejected_spans` of them refused in a partial success.
    Acknowledged { rejected_spans: u64 },
    /// Refused for now, to be retried: gRPC `RESOURCE_EXHAUSTED`/`UNAVAILABLE`, HTTP 429/503.
    Refused,
    /// Any other answer, or none.
    Failed(String),
}

/// One export request, encoded once, with where its trace ids sit.
#[derive(Debug, Clone)]
pub struct EncodedRequest {
    bytes: Vec<u8>,
    trace_id_offsets: Vec<usize>,
    /// Spans in the request.
    pub spans: u64,
}

impl EncodedRequest {
    pub fn new(request: &ExportTraceServiceRequest) -> Self {
        let spans = request
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| &s.spans);
        let mut trace_ids: Vec<&[u8]> = spans.clone().map(|s| s.trace_id.as_slice()).collect();
        let span_count = trace_ids.len() as u64;
        trace_ids.sort_unstable();
        trace_ids.dedup();
        let bytes = request.encode_to_vec();
        // Every trace id field is `0x0a 0x10` and 16 bytes; searching for the
        // random 16 bytes finds exactly those fields.
        let mut trace_id_offsets = Vec::with_capacity(span_count as usize);
        for at in 0..bytes.len().saturating_sub(15) {
            if trace_ids.binary_search(&&bytes[at..at + 16]).is_ok() {
                trace_id_offsets.push(at);
            }
        }
        Self {
            bytes,
            trace_id_offsets,
            spans: span_count,
        }
    }

    /// A copy whose trace ids end in `generation`: distinct generations of
    /// the same request carry distinct traces.
    pub fn fresh(&self, generation: u32) -> Bytes {
        let mut bytes = self.bytes.clone();
        for &at in &self.trace_id_offsets {
            bytes[at + 12..at + 16].copy_from_slice(&generation.to_be_bytes());
        }
        Bytes::from(bytes)
    }
}

/// One connection to an OTLP receiver.
pub enum OtlpSender {
    Grpc(tonic::client::Grpc<Channel>),
    Http {
        client: reqwest::Client,
        url: String,
    },
}

impl OtlpSender {
    /// A gRPC channel of its own to `endpoint` (`http://host:port`).
    pub async fn grpc(endpoint: &str) -> Result<Self, LoadgenError> {
        let channel = Endpoint::from_shared(endpoint.to_string())
            .map_err(|_| LoadgenError::Endpoint(endpoint.to_string()))?
            .connect()
            .await
            .map_err(|error| LoadgenError::Connect {
                endpoint: endpoint.to_string(),
                reason: error.to_string(),
            })?;
        Ok(Self::Grpc(tonic::client::Grpc::new(channel)))
    }

    /// An HTTP client of its own (so a connection of its own) for `url`.
    pub fn http(url: &str) -> Result<Self, LoadgenError> {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .build()
            .map_err(|error| LoadgenError::Connect {
                endpoint: url.to_string(),
                reason: error.to_string(),
            })?;
        Ok(Self::Http {
            client,
            url: url.to_string(),
        })
    }

    /// Sends one encoded request and waits for its answer.
    pub async fn send(&mut self, body: Bytes) -> Outcome {
        match self {
            Self::Grpc(grpc) => send_grpc(grpc, body).await,
            Self::Http { client, url } => send_http(client, url, body).await,
        }
    }
}

async fn send_grpc(grpc: &mut tonic::client::Grpc<Channel>, body: Bytes) -> Outcome {
    if let Err(error) = grpc.ready().await {
        return Outcome::Failed(format!("channel not ready: {error}"));
    }
    let path = http::uri::PathAndQuery::from_static(EXPORT_PATH);
    match grpc
        .unary(tonic::Request::new(body), path, EncodedCodec)
        .await
    {
        Ok(response) => Outcome::Acknowledged {
            rejected_spans: rejected(&response.into_inner()),
        },
        Err(status) => match status.code() {
            tonic::Code::ResourceExhausted | tonic::Code::Unavailable => Outcome::Refused,
            code => Outcome::Failed(format!("gRPC {code:?}: {}", status.message())),
        },
    }
}

async fn send_http(client: &reqwest::Client, url: &str, body: Bytes) -> Outcome {
    let response = match client
        .post(url)
        .header(http::header::CONTENT_TYPE, "application/x-protobuf")
        .body(body)
        .send()
        .await
    {
        Ok(response) => response,
        Err(error) => return Outcome::Failed(format!("HTTP request: {error}")),
    };
    let status = response.status();
    let answer = match response.bytes().await {
        Ok(answer) => answer,
        Err(error) => return Outcome::Failed(format!("HTTP response body: {error}")),
    };
    match status.as_u16() {
        200..=299 => match ExportTraceServiceResponse::decode(answer) {
            Ok(response) => Outcome::Acknowledged {
                rejected_spans: rejected(&response),
            },
            Err(error) => Outcome::Failed(format!("undecodable HTTP 200 body: {error}")),
        },
        429 | 503 => Outcome::Refused,
        code => Outcome::Failed(format!("HTTP {code}")),
    }
}

fn rejected(response: &ExportTraceServiceResponse) -> u64 {
    response
        .partial_success
        .as_ref()
        .map_or(0, |p| p.rejected_spans.max(0) as u64)
}

/// Sends already encoded request bytes as they are and decodes the answer.
#[derive(Debug, Clone, Copy, Default)]
struct EncodedCodec;

impl Codec for EncodedCodec {
    type Encode = Bytes;
    type Decode = ExportTraceServiceResponse;
    type Encoder = EncodedCodec;
    type Decoder = tonic_prost::ProstDecoder<ExportTraceServiceResponse>;

    fn encoder(&mut self) -> Self::Encoder {
        EncodedCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        tonic_prost::ProstDecoder::default()
    }
}

impl Encoder for EncodedCodec {
    type Item = Bytes;
    type Error = tonic::Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        use bytes::BufMut;
        dst.put_slice(&item);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loadgen::corpus::{request, Shape};

    #[test]
    fn fresh_copies_change_only_the_trace_ids() {
        let original = request(7, &Shape::default());
        let encoded = EncodedRequest::new(&original);
        assert_eq!(encoded.spans, 512);
        assert_eq!(encoded.trace_id_offsets.len(), 512);
        let fresh = ExportTraceServiceRequest::decode(encoded.fresh(9)).unwrap();
        let spans = |r: &ExportTraceServiceRequest| -> Vec<_> {
            r.resource_spans
                .iter()
                .flat_map(|r| &r.scope_spans)
                .flat_map(|s| s.spans.clone())
                .collect()
        };
        for (before, after) in spans(&original).iter().zip(spans(&fresh)) {
            assert_eq!(before.trace_id[..12], after.trace_id[..12]);
            assert_eq!(after.trace_id[12..], 9u32.to_be_bytes());
            assert_eq!(before.span_id, after.span_id);
            assert_eq!(before.attributes, after.attributes);
        }
    }
}
