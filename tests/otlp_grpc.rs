//! OTLP/gRPC failure contract, spoken at the wire level so each bad input can be
//! sent exactly: truncated protobuf, over-limit frames, gzip bombs, corrupt
//! gzip, partly invalid batches, unknown methods.

mod common;

use common::grpc::{gzip, raw_export, EXPORT};
use common::{otlp_request, otlp_span, TestServer};
use prost::Message;
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_grpc_input_gets_its_specified_status() {
    let server = TestServer::start_with(|c| c.limits.max_message_bytes = 4 << 20).await;
    let url = server.grpc_url.clone();
    let good = otlp_request("gateway", vec![otlp_span([1; 16], 1, None, "GET /")]).encode_to_vec();

    let answer = raw_export(&url, EXPORT, good[..good.len() - 3].to_vec(), false).await;
    assert_eq!(
        answer.status.code(),
        Code::InvalidArgument,
        "{:?}",
        answer.status
    );

    let answer = raw_export(&url, EXPORT, vec![0x0a; 5 << 20], false).await;
    assert_eq!(
        answer.status.code(),
        Code::ResourceExhausted,
        "{:?}",
        answer.status
    );

    let answer = raw_export(&url, EXPORT, gzip(&vec![0u8; 5 << 20]), true).await;
    assert_eq!(
        answer.status.code(),
        Code::ResourceExhausted,
        "{:?}",
        answer.status
    );

    let answer = raw_export(&url, EXPORT, b"definitely not gzip".to_vec(), true).await;
    assert_eq!(
        answer.status.code(),
        Code::InvalidArgument,
        "{:?}",
        answer.status
    );

    let answer = raw_export(
        &url,
        "/opentelemetry.proto.collector.trace.v1.TraceService/Nope",
        good.clone(),
        false,
    )
    .await;
    assert_eq!(answer.status.code(), Code::Unimplemented);

    // Part of a batch invalid: the rest is stored, the client is told how many.
    let mut zero_span_id = otlp_span([3; 16], 9, None, "zero span id");
    zero_span_id.span_id = vec![0; 8];
    let mut long_trace_id = otlp_span([3; 16], 10, None, "17-byte trace id");
    long_trace_id.trace_id = vec![3; 17];
    let batch = otlp_request(
        "gateway",
        vec![
            zero_span_id,
            otlp_span([3; 16], 11, None, "kept"),
            long_trace_id,
        ],
    );
    let answer = raw_export(&url, EXPORT, gzip(&batch.encode_to_vec()), true).await;
    assert_eq!(answer.status.code(), Code::Ok, "{:?}", answer.status);
    let partial = answer.response.unwrap().partial_success.unwrap();
    assert_eq!(partial.rejected_spans, 2);
    assert!(
        partial.error_message.contains("invalid span id"),
        "{}",
        partial.error_message
    );
    let (status, trace) = common::get_json(&format!(
        "{}/api/v1/traces/{}",
        server.api_url,
        hex::encode([3u8; 16])
    ))
    .await;
    assert_eq!(status, 200);
    assert_eq!(trace["spans"].as_array().unwrap().len(), 1);

    // The next good request succeeds, with no partial success.
    let answer = raw_export(&url, EXPORT, good, false).await;
    assert_eq!(answer.status.code(), Code::Ok);
    assert!(answer.response.unwrap().partial_success.is_none());

    let (_, metrics) = common::get_text(&format!("{}/metrics", server.api_url)).await;
    let rejected = |reason: &str| {
        common::metric(
            &metrics,
            &format!(
                "tracemap_requests_rejected_total{{receiver=\"otlp_grpc\",reason=\"{reason}\"}}"
            ),
        )
    };
    assert_eq!(rejected("malformed"), Some(2.0), "{metrics}");
    assert_eq!(rejected("too_large"), Some(2.0), "{metrics}");
    server.stop().await;
}
