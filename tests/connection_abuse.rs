//! Clients that try to hold the ports: slow-loris connections dripping their
//! headers, idle connections past the per-listener cap, HTTP/2 rapid resets
//! on the query and OTLP ports, oversized headers. Each time a normal request
//! still gets its answer, quickly.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::TestServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn addr_of(url: &str) -> String {
    url.trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_string()
}

/// A normal request answers 200 within `within`.
async fn healthy(api: &str, within: Duration) {
    let started = Instant::now();
    let response = reqwest::Client::new()
        .get(format!("{api}/healthz"))
        .timeout(within)
        .send()
        .await
        .unwrap_or_else(|e| panic!("a normal request failed after {:?}: {e}", started.elapsed()));
    assert_eq!(response.status(), 200);
}

/// The tests here run one at a time: one counts the process's descriptors,
/// and every one wants the server's CPU to itself.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_loris_connections_are_cut_off_and_others_get_served() {
    let _serial = SERIAL.lock().await;
    let server = TestServer::start_with(|config| {
        config.connections.header_read_timeout = Duration::from_secs(1);
    })
    .await;
    let addr = addr_of(&server.api_url);
    let mut slow = Vec::new();
    for _ in 0..300 {
        let mut stream = TcpStream::connect(&addr).await.unwrap();
        stream
            .write_all(b"GET /api/services HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        slow.push(stream);
    }
    // They drip a header line now and then, never finishing.
    let started = Instant::now();
    let drip = tokio::spawn(async move {
        let mut closed = 0;
        let mut round = 0;
        while closed < slow.len() && round < 40 {
            round += 1;
            tokio::time::sleep(Duration::from_millis(200)).await;
            closed = 0;
            for stream in &mut slow {
                if stream.write_all(b"X-Drip: 1\r\n").await.is_err() {
                    closed += 1;
                    continue;
                }
                let mut byte = [0u8; 1];
                // Closed by the server: EOF, a reset, or a 408 before it.
                if let Ok(Ok(n)) =
                    tokio::time::timeout(Duration::from_millis(1), stream.peek(&mut byte)).await
                {
                    closed += usize::from(n == 0 || byte[0] == b'H');
                }
            }
        }
        closed
    });
    healthy(&server.api_url, Duration::from_secs(1)).await;
    let closed = drip.await.unwrap();
    assert_eq!(
        closed,
        300,
        "slow connections still open after {:?}",
        started.elapsed()
    );
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    healthy(&server.api_url, Duration::from_secs(1)).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_cap_wait_and_idle_ones_are_closed() {
    let _serial = SERIAL.lock().await;
    let server = TestServer::start_with(|config| {
        config.connections.max_per_listener = 16;
        config.connections.idle_timeout = Duration::from_secs(1);
    })
    .await;
    let addr = addr_of(&server.api_url);
    let before = open_fds();
    let mut idle = Vec::new();
    for _ in 0..100 {
        idle.push(TcpStream::connect(&addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // 100 client sockets, and at most 16 accepted by the server.
    let grown = open_fds() - before;
    assert!(
        grown <= 100 + 16 + 4,
        "{grown} descriptors for 100 connections"
    );
    // Idle ones are closed after a second, 16 at a time; a normal request gets in.
    healthy(&server.api_url, Duration::from_secs(15)).await;
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(2), idle[0].read(&mut buf))
        .await
        .expect("the first idle connection was closed")
        .unwrap_or(0);
    assert_eq!(n, 0);
    server.stop().await;
}

/// Opens `streams` HTTP/2 requests on one connection, resetting each at once;
/// returns how many were sent before the server ended the connection.
async fn rapid_reset(addr: &str, path: &str, streams: usize) -> usize {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut client, connection) = h2::client::handshake(tcp).await.unwrap();
    let driver = tokio::spawn(connection);
    let mut sent = 0;
    for _ in 0..streams {
        let request = http::Request::builder()
            .method("POST")
            .uri(format!("http://{addr}{path}"))
            .header("content-type", "application/x-protobuf")
            .body(())
            .unwrap();
        client = match client.ready().await {
            Ok(ready) => ready,
            Err(_) => return sent,
        };
        match client.send_request(request, false) {
            Ok((_, mut stream)) => {
                stream.send_reset(h2::Reason::CANCEL);
                sent += 1;
            }
            Err(_) => break,
        }
    }
    drop(client);
    let _ = tokio::time::timeout(Duration::from_secs(2), driver).await;
    sent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_rapid_resets_do_not_starve_normal_requests() {
    let _serial = SERIAL.lock().await;
    let server = TestServer::start().await;
    let api = server.api_url.clone();
    let attacks = [
        (addr_of(&server.api_url), "/api/services"),
        (addr_of(&server.otlp_http_url), "/v1/traces"),
        (addr_of(&server.grpc_url), common::grpc::EXPORT),
    ];
    // The attackers run on a thread and runtime of their own, as another
    // machine would: the server's runtime is not theirs to starve.
    let attackers = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let mut set = tokio::task::JoinSet::new();
            for (addr, path) in attacks {
                for _ in 0..3 {
                    let addr = addr.clone();
                    set.spawn(async move { rapid_reset(&addr, path, 20_000).await });
                }
            }
            let mut sent = 0;
            while let Some(result) = set.join_next().await {
                sent += result.unwrap();
            }
            sent
        })
    });
    // While they run, normal requests keep getting quick answers.
    let mut slowest = Duration::ZERO;
    for _ in 0..20 {
        let started = Instant::now();
        healthy(&api, Duration::from_secs(2)).await;
        slowest = slowest.max(started.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let sent = attackers.join().unwrap();
    eprintln!("{sent} streams opened and reset");
    assert!(slowest < Duration::from_secs(1), "{slowest:?}");
    // An export over gRPC still works after the storm.
    let mut client = opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient::connect(server.grpc_url.clone())
        .await
        .unwrap();
    client
        .export(common::otlp_request(
            "after",
            vec![common::otlp_span([3; 16], 1, None, "ok")],
        ))
        .await
        .unwrap();
    server.stop().await;
}

#[tokio::test]
async fn oversized_headers_are_refused_and_the_port_keeps_working() {
    let _serial = SERIAL.lock().await;
    let server = TestServer::start().await;
    let client = reqwest::Client::new();
    let huge = "x".repeat(200 << 10);
    let refused = client
        .get(format!("{}/api/services", server.api_url))
        .header("x-big", &huge)
        .send()
        .await;
    match refused {
        Ok(response) => assert_eq!(response.status(), 431),
        Err(error) => assert!(error.is_request() || error.is_connect(), "{error}"),
    }
    let refused = client
        .post(&server.otlp_http_url)
        .header("x-big", &huge)
        .body(Bytes::from_static(b""))
        .send()
        .await;
    if let Ok(response) = refused {
        assert_eq!(response.status(), 431);
    }
    healthy(&server.api_url, Duration::from_secs(1)).await;
    server.stop().await;
}
