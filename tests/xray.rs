//! The X-Ray daemon port with the real AWS X-Ray SDK for Python (segments,
//! streamed subsegments, a mixed OpenTelemetry + X-Ray trace, centralized
//! sampling through the SDK's own pollers), one malformed datagram per drop
//! reason, and datagrams dropped when ingest has no room.

mod common;

use std::time::{Duration, Instant};

use common::{get_json, get_text, metric, run_python, TestServer};

async fn python_mode(server: &TestServer, mode: &str) -> String {
    run_python(
        "send_xray.py",
        vec![
            mode.into(),
            "--port".into(),
            server.xray_addr.port().to_string(),
            "--api".into(),
            server.api_url.clone(),
            "--grpc".into(),
            server.grpc_url.clone(),
        ],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xray_sdk_segments_are_stored_field_by_field() {
    let server = TestServer::start().await;
    let report = python_mode(&server, "segments").await;
    eprintln!("{report}");
    let (_, metrics) = get_text(&format!("{}/metrics", server.api_url)).await;
    let received = metric(&metrics, "tracemap_spans_received_total{receiver=\"xray\"}").unwrap();
    assert!(received >= 9.0, "{metrics}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otel_and_xray_services_make_one_trace() {
    let server = TestServer::start().await;
    python_mode(&server, "mixed").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xray_sampler_gets_its_rules_from_tracemap() {
    let server = TestServer::start().await;
    let report = python_mode(&server, "sampling").await;
    assert!(report.contains("Default"), "{report}");
    assert!(report.contains("\"quota\": 1"), "{report}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_malformed_datagram_is_dropped_and_counted() {
    let server = TestServer::start().await;
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let header = "{\"format\": \"json\", \"version\": 1}\n";
    let good = |id: &str| {
        format!(
            "{header}{{\"name\": \"checkout\", \"id\": \"{id}\", \"trace_id\": \"1-581cf771-a006649127e371903a2de979\", \"start_time\": 1478293361.271, \"end_time\": 1478293361.449}}"
        )
    };
    let deep = format!("{header}{{\"metadata\": {{\"x\": {}}}}}", "[".repeat(300));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("bad_header", b"{\"format\": \"xml\"}\n{}".to_vec()),
        ("bad_header", b"no header line".to_vec()),
        ("bad_json", format!("{header}{{nope}}").into_bytes()),
        (
            "truncated",
            good("70de5b6f19ff9a0a").as_bytes()[..80].to_vec(),
        ),
        ("too_deep", deep.into_bytes()),
        ("invalid_id", good("not-a-span-id").into_bytes()),
        (
            "bad_document",
            format!("{header}{{\"name\": 42}}").into_bytes(),
        ),
    ];
    for (_, datagram) in &cases {
        socket.send_to(datagram, server.xray_addr).unwrap();
    }
    // A good segment after all of them is still received.
    socket
        .send_to(good("70de5b6f19ff9a0a").as_bytes(), server.xray_addr)
        .unwrap();

    let url = format!(
        "{}/api/v1/traces/1-581cf771-a006649127e371903a2de979",
        server.api_url
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = get_json(&url).await;
        if status == 200 {
            assert_eq!(body["spans"][0]["service"], "checkout");
            break;
        }
        assert!(Instant::now() < deadline, "the good segment never arrived");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, metrics) = get_text(&format!("{}/metrics", server.api_url)).await;
    for reason in [
        "bad_header",
        "bad_json",
        "truncated",
        "too_deep",
        "invalid_id",
        "bad_document",
    ] {
        let want = cases.iter().filter(|(r, _)| *r == reason).count() as f64;
        let series =
            format!("tracemap_requests_rejected_total{{receiver=\"xray\",reason=\"{reason}\"}}");
        assert_eq!(metric(&metrics, &series), Some(want), "{reason}: {metrics}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datagrams_beyond_the_in_flight_budget_are_dropped_and_counted() {
    // A budget smaller than the one big datagram sent: it can never be taken in.
    let server = TestServer::start_with(|c| {
        c.limits.max_message_bytes = 1024;
        c.limits.max_inflight_bytes = 1024;
    })
    .await;
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let segment = |id: &str, trace: &str, padding: usize| {
        format!(
            "{{\"format\": \"json\", \"version\": 1}}\n{{\"name\": \"checkout\", \"id\": \"{id}\", \"trace_id\": \"{trace}\", \"start_time\": 1478293361.271, \"end_time\": 1478293361.449, \"metadata\": {{\"default\": {{\"pad\": \"{}\"}}}}}}",
            "x".repeat(padding)
        )
    };
    let big_trace = "1-581cf771-a006649127e371903a2de970";
    socket
        .send_to(
            segment("70de5b6f19ff9a0a", big_trace, 4096).as_bytes(),
            server.xray_addr,
        )
        .unwrap();
    let series = "tracemap_requests_rejected_total{receiver=\"xray\",reason=\"overloaded\"}";
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, metrics) = get_text(&format!("{}/metrics", server.api_url)).await;
        if metric(&metrics, series) == Some(1.0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no overloaded drop counted: {metrics}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A small one still fits, and the big one was not stored.
    let small_trace = "1-581cf771-a006649127e371903a2de971";
    socket
        .send_to(
            segment("70de5b6f19ff9a0b", small_trace, 10).as_bytes(),
            server.xray_addr,
        )
        .unwrap();
    let url = |trace: &str| format!("{}/api/v1/traces/{trace}", server.api_url);
    while get_json(&url(small_trace)).await.0 != 200 {
        assert!(Instant::now() < deadline, "the small segment never arrived");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(get_json(&url(big_trace)).await.0, 404);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_progress_then_complete_is_stored_once_complete() {
    let server = TestServer::start().await;
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let trace = "1-581cf771-b006649127e371903a2de979";
    let segment = |end: &str| {
        format!(
            "{{\"format\":\"json\",\"version\":1}}\n{{\"name\": \"order-service\", \"id\": \"80de5b6f19ff9a0a\", \"trace_id\": \"{trace}\", \"start_time\": 1478293361.271{end}}}"
        )
    };
    let in_progress = segment(", \"in_progress\": true");
    let complete = segment(", \"end_time\": 1478293361.971");
    // An independent subsegment first, then the segment in progress, complete,
    // and a late duplicate of the in-progress copy.
    let subsegment = format!(
        "{{\"format\":\"json\",\"version\":1}}\n{{\"type\": \"subsegment\", \"name\": \"payments\", \"namespace\": \"remote\", \"id\": \"80de5b6f19ff9a0b\", \"parent_id\": \"80de5b6f19ff9a0a\", \"trace_id\": \"{trace}\", \"start_time\": 1478293361.3, \"end_time\": 1478293361.5}}"
    );
    for datagram in [&subsegment, &in_progress, &complete, &in_progress] {
        socket
            .send_to(datagram.as_bytes(), server.xray_addr)
            .unwrap();
        // Separate batches, so each copy is a later write.
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let url = format!("{}/api/v1/traces/{trace}", server.api_url);
    let deadline = Instant::now() + Duration::from_secs(10);
    let body = loop {
        let (status, body) = get_json(&url).await;
        if status == 200 && body["spans"].as_array().unwrap().len() == 2 {
            break body;
        }
        assert!(Instant::now() < deadline, "spans never arrived: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let spans = body["spans"].as_array().unwrap();
    let root = spans.iter().find(|s| s["name"] == "order-service").unwrap();
    assert_eq!(root["duration_us"], 700_000, "the complete copy is kept");
    assert!(root["attributes"].get("aws.xray.in_progress").is_none());
    let child = spans.iter().find(|s| s["name"] == "payments").unwrap();
    assert_eq!(
        child["service"], "order-service",
        "inherited from its parent"
    );
    assert_eq!(child["parent_span_id"], "80de5b6f19ff9a0a");
    assert_eq!(child["kind"], "client");
    server.stop().await;
}
