//! Access control against the real server: tokens on ingest (OTLP gRPC and
//! HTTP, Zipkin), tokens or basic-auth users on the query port with the
//! probes left open, and TLS on every TCP listener with a certificate made
//! by the test — a gRPC client and an HTTPS client with the token get in,
//! plain text and missing credentials do not.

mod common;

use std::time::Duration;

use base64::Engine as _;
use common::{otlp_request, otlp_span, TestServer};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use serde_json::Value;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tracemap::config::{BasicUser, Secret};

const INGEST: &str = "ingest-token-1";
const QUERY: &str = "query-token-1";

fn request(trace: u8, name: &str) -> ExportTraceServiceRequest {
    otlp_request("checkout", vec![otlp_span([trace; 16], 1, None, name)])
}

/// One gRPC export with `token` (if any) on `channel`.
async fn grpc_export(
    channel: Channel,
    token: Option<&str>,
    trace: u8,
) -> Result<(), tonic::Status> {
    let mut client = TraceServiceClient::new(channel);
    let mut call = tonic::Request::new(request(trace, "grpc"));
    if let Some(token) = token {
        call.metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    client.export(call).await.map(|_| ())
}

fn basic(user: &str, password: &str) -> String {
    let pair = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {pair}")
}

async fn status(client: &reqwest::Client, url: &str, authorization: Option<&str>) -> u16 {
    let mut get = client.get(url);
    if let Some(value) = authorization {
        get = get.header("authorization", value);
    }
    get.send().await.unwrap().status().as_u16()
}

async fn post_otlp(client: &reqwest::Client, url: &str, token: Option<&str>, trace: u8) -> u16 {
    let mut post = client
        .post(url)
        .header("content-type", "application/x-protobuf")
        .body(request(trace, "http").encode_to_vec());
    if let Some(token) = token {
        post = post.bearer_auth(token);
    }
    post.send().await.unwrap().status().as_u16()
}

fn with_auth(config: &mut tracemap::config::Config) {
    config.auth.ingest_tokens = vec![Secret::new(INGEST)];
    config.auth.query_tokens = vec![Secret::new(QUERY)];
    config.auth.query_users = vec![BasicUser {
        user: "ana".into(),
        password: Secret::new("correct horse"),
    }];
}

#[tokio::test]
async fn credentials_are_required_where_configured_and_probes_stay_open() {
    let server = TestServer::start_with(with_auth).await;
    let http = reqwest::Client::new();
    let channel = Endpoint::from_shared(server.grpc_url.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();

    // gRPC: no token and a wrong one are UNAUTHENTICATED; the token gets in.
    for token in [None, Some("wrong"), Some(QUERY)] {
        let error = grpc_export(channel.clone(), token, 1).await.unwrap_err();
        assert_eq!(error.code(), tonic::Code::Unauthenticated, "{token:?}");
    }
    grpc_export(channel.clone(), Some(INGEST), 1).await.unwrap();

    // OTLP/HTTP and Zipkin: 401 without the token.
    assert_eq!(post_otlp(&http, &server.otlp_http_url, None, 2).await, 401);
    assert_eq!(
        post_otlp(&http, &server.otlp_http_url, Some("nope"), 2).await,
        401
    );
    assert_eq!(
        post_otlp(&http, &server.otlp_http_url, Some(INGEST), 2).await,
        200
    );
    let zipkin = http
        .post(&server.zipkin_url)
        .header("content-type", "application/json")
        .body("[]")
        .send()
        .await
        .unwrap();
    assert_eq!(zipkin.status(), 401);

    // The query port: API and UI pages need a query token or a user.
    let trace = format!(
        "{}/api/v1/traces/{}",
        server.api_url,
        hex::encode([1u8; 16])
    );
    let refused = http.get(&trace).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    assert!(refused.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Basic"));
    for authorization in [
        format!("Bearer {INGEST}"),
        basic("ana", "wrong horse"),
        basic("bob", "correct horse"),
    ] {
        assert_eq!(status(&http, &trace, Some(&authorization)).await, 401);
    }
    let ui = format!("{}/map", server.api_url);
    assert_eq!(status(&http, &ui, None).await, 401);
    assert_eq!(
        status(&http, &ui, Some(&basic("ana", "correct horse"))).await,
        200
    );
    let bearer = format!("Bearer {QUERY}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let response = http
            .get(&trace)
            .header("authorization", &bearer)
            .send()
            .await
            .unwrap();
        if response.status() == 200 {
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["spans"][0]["name"], "grpc");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{}",
            response.status()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Probes and metrics stay open; refusals are counted by receiver.
    for probe in ["/healthz", "/readyz"] {
        assert_eq!(
            status(&http, &format!("{}{probe}", server.api_url), None).await,
            200
        );
    }
    let (_, metrics) = common::get_text(&format!("{}/metrics", server.api_url)).await;
    for (receiver, count) in [("otlp_grpc", 3.0), ("otlp_http", 2.0), ("zipkin", 1.0)] {
        let name = format!(
            "tracemap_requests_rejected_total{{receiver=\"{receiver}\",reason=\"unauthenticated\"}}"
        );
        assert_eq!(common::metric(&metrics, &name), Some(count), "{name}");
    }
    server.stop().await;
}

#[tokio::test]
async fn closed_probes_need_credentials_too() {
    let server = TestServer::start_with(|config| {
        with_auth(config);
        config.auth.open_probes = false;
    })
    .await;
    let http = reqwest::Client::new();
    let metrics = format!("{}/metrics", server.api_url);
    assert_eq!(status(&http, &metrics, None).await, 401);
    assert_eq!(
        status(&http, &metrics, Some(&format!("Bearer {QUERY}"))).await,
        200
    );
    server.stop().await;
}

#[tokio::test]
async fn tls_with_a_token_works_and_plain_text_does_not() {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let cert_pem = certified.cert.pem();
    let dir = tempfile::tempdir().unwrap();
    let (cert_file, key_file) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_file, &cert_pem).unwrap();
    std::fs::write(&key_file, certified.signing_key.serialize_pem()).unwrap();
    let server = TestServer::start_with(|config| {
        with_auth(config);
        config.tls.cert_file = Some(cert_file.clone());
        config.tls.key_file = Some(key_file.clone());
    })
    .await;
    let https = |url: &str| url.replacen("http://127.0.0.1", "https://localhost", 1);

    // gRPC over TLS, the token in the metadata.
    let channel = Endpoint::from_shared(https(&server.grpc_url))
        .unwrap()
        .tls_config(
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(&cert_pem))
                .domain_name("localhost"),
        )
        .unwrap()
        .connect()
        .await
        .unwrap();
    grpc_export(channel.clone(), Some(INGEST), 7).await.unwrap();
    let error = grpc_export(channel, None, 8).await.unwrap_err();
    assert_eq!(error.code(), tonic::Code::Unauthenticated);

    // HTTPS for OTLP/HTTP and the query API, trusting only the test's CA.
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap())
        .resolve(
            "localhost",
            server
                .api_url
                .trim_start_matches("http://")
                .parse()
                .unwrap(),
        )
        .build()
        .unwrap();
    let otlp_https = https(&server.otlp_http_url);
    assert_eq!(post_otlp(&client, &otlp_https, Some(INGEST), 9).await, 200);
    let trace = https(&format!(
        "{}/api/v1/traces/{}",
        server.api_url,
        hex::encode([7u8; 16])
    ));
    assert_eq!(status(&client, &trace, None).await, 401);
    assert_eq!(
        status(&client, &trace, Some(&format!("Bearer {QUERY}"))).await,
        200
    );

    // Plain text to a TLS port gets no answer; an untrusted client refuses.
    let plain = reqwest::Client::new();
    assert!(plain
        .get(format!("{}/healthz", server.api_url))
        .send()
        .await
        .is_err());
    let untrusting = reqwest::Client::builder().build().unwrap();
    assert!(untrusting
        .get(https(&format!("{}/healthz", server.api_url)))
        .send()
        .await
        .is_err());
    server.stop().await;
}

#[tokio::test]
async fn bad_tls_files_stop_the_start_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let cert_file = dir.path().join("cert.pem");
    std::fs::write(&cert_file, "not a certificate").unwrap();
    let config = tracemap::config::Config {
        data_dir: dir.path().join("data"),
        otlp_grpc_port: 0,
        otlp_http_port: 0,
        http_port: 0,
        xray_port: 0,
        zipkin_port: 0,
        tls: tracemap::config::TlsConfig {
            cert_file: Some(cert_file.clone()),
            key_file: Some(dir.path().join("missing.pem")),
        },
        ..Default::default()
    };
    let error = tracemap::app::start(config, Default::default())
        .await
        .err()
        .expect("refused");
    let message = error.to_string();
    assert!(
        message.contains("TLS") && message.contains("missing.pem"),
        "{message}"
    );
}
