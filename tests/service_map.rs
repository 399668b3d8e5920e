//! The service map against the real server: a topology recorded with the
//! OpenTelemetry SDK (and the X-Ray SDK for one service) comes back with
//! exactly its nodes, edges, counts by class and latency percentiles; ranges
//! add up, a restart loses nothing, a late span adds its edge once; and a
//! flood of random service names stays bounded.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{
    get_json, get_text, otlp_request, otlp_span, poll_json, sdk_provider, ServerProcess, TestServer,
};
use opentelemetry::trace::{Span as _, SpanKind, TraceContextExt, Tracer, TracerProvider};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use opentelemetry_sdk::Resource;
use serde_json::{json, Value};

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

async fn export(grpc_url: &str, service: &str, spans: Vec<SpanData>) {
    let mut exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(grpc_url.to_string())
        .with_timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    exporter.set_resource(
        &Resource::builder()
            .with_service_name(service.to_string())
            .build(),
    );
    exporter.export(spans).await.expect("tracemap acknowledged");
}

fn edge<'a>(map: &'a Value, source: &str, target: &str) -> Option<&'a Value> {
    map["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["source"] == source && e["target"] == target)
}

fn requests(map: &Value, source: &str, target: &str) -> i64 {
    edge(map, source, target).map_or(0, |e| e["requests"].as_i64().unwrap())
}

/// True value at quantile `q` of `values` is within 1 % of `got` (either
/// neighbouring rank, as quantile definitions differ by one).
fn close_to_quantile(values: &[f64], q: f64, got: f64) -> bool {
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let rank = q * sorted.len() as f64;
    let candidates =
        [rank.floor() as usize, rank.ceil() as usize].map(|r| sorted[r.clamp(1, sorted.len()) - 1]);
    candidates
        .iter()
        .any(|truth| (got - truth).abs() <= truth * 0.01 + 0.001)
}

const CALLS: u64 = 40;

/// An edge's type, requests, errors, faults and throttles.
type EdgeCounts = (String, i64, i64, i64, i64);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_map_shows_the_topology_the_sdks_recorded() {
    let server =
        TestServer::start_with(|c| c.assembly.trace_idle = Duration::from_millis(300)).await;
    let (gateway, gateway_spans) = sdk_provider("api-gateway");
    let (order, order_spans) = sdk_provider("order-service");
    let gateway_tracer = gateway.tracer("gateway");
    let order_tracer = order.tracer("order");
    let base = SystemTime::now() - Duration::from_secs(120);
    let at = |ms: u64| base + Duration::from_millis(ms);
    let mut db_latencies = Vec::new();
    let mut order_latencies = Vec::new();
    let mut inventory_calls = Vec::new();
    for i in 0..CALLS {
        let t = i * 200;
        let root = gateway_tracer
            .span_builder("GET /checkout")
            .with_kind(SpanKind::Server)
            .with_start_time(at(t))
            .with_attributes(vec![KeyValue::new("http.request.method", "GET")])
            .start(&gateway_tracer);
        let root_cx = Context::current_with_span(root);
        // gateway → order-service: 503 every tenth call, 404 on another.
        let status: i64 = match i % 10 {
            3 => 503,
            7 => 404,
            _ => 200,
        };
        let order_ms = 20 + (i * 37) % 90;
        order_latencies.push(order_ms as f64);
        let client = gateway_tracer
            .span_builder("GET /orders")
            .with_kind(SpanKind::Client)
            .with_start_time(at(t + 1))
            .with_attributes(vec![
                KeyValue::new("http.request.method", "GET"),
                KeyValue::new("http.response.status_code", status),
            ])
            .start_with_context(&gateway_tracer, &root_cx);
        let client_cx = root_cx.with_span(client);
        let server = order_tracer
            .span_builder("GET /orders")
            .with_kind(SpanKind::Server)
            .with_start_time(at(t + 2))
            .with_attributes(vec![KeyValue::new("http.response.status_code", status)])
            .start_with_context(&order_tracer, &client_cx);
        let server_cx = client_cx.with_span(server);
        // order-service → PostgreSQL, Redis and Stripe (no server sides).
        let db_ms = 1 + (i * 13) % 17;
        db_latencies.push(db_ms as f64);
        order_tracer
            .span_builder("SELECT orders")
            .with_kind(SpanKind::Client)
            .with_start_time(at(t + 3))
            .with_attributes(vec![
                KeyValue::new("db.system", "postgresql"),
                KeyValue::new("server.address", "orders-db"),
                KeyValue::new("db.query.text", "SELECT * FROM orders WHERE id = $1"),
            ])
            .start_with_context(&order_tracer, &server_cx)
            .end_with_timestamp(at(t + 3 + db_ms));
        order_tracer
            .span_builder("GET")
            .with_kind(SpanKind::Client)
            .with_start_time(at(t + 4))
            .with_attributes(vec![
                KeyValue::new("db.system.name", "redis"),
                KeyValue::new("server.address", "cache"),
            ])
            .start_with_context(&order_tracer, &server_cx)
            .end_with_timestamp(at(t + 5));
        let stripe_status: i64 = if i % 8 == 0 { 429 } else { 200 };
        order_tracer
            .span_builder("POST /v1/charges")
            .with_kind(SpanKind::Client)
            .with_start_time(at(t + 5))
            .with_attributes(vec![
                KeyValue::new("http.request.method", "POST"),
                KeyValue::new("server.address", "api.stripe.com"),
                KeyValue::new("http.response.status_code", stripe_status),
            ])
            .start_with_context(&order_tracer, &server_cx)
            .end_with_timestamp(at(t + 6));
        server_cx.span().end_with_timestamp(at(t + order_ms));
        client_cx.span().end_with_timestamp(at(t + 1 + order_ms));
        // gateway → inventory, traced by the X-Ray SDK.
        let inventory = gateway_tracer
            .span_builder("GET /stock")
            .with_kind(SpanKind::Client)
            .with_start_time(at(t + 2 + order_ms))
            .with_attributes(vec![KeyValue::new("http.request.method", "GET")])
            .start_with_context(&gateway_tracer, &root_cx);
        let span_context = inventory.span_context().clone();
        inventory_calls.push(format!(
            "{}:{}",
            span_context.trace_id(),
            span_context.span_id()
        ));
        root_cx
            .with_span(inventory)
            .span()
            .end_with_timestamp(at(t + 10 + order_ms));
        root_cx.span().end_with_timestamp(at(t + 12 + order_ms));
    }
    gateway.force_flush().unwrap();
    order.force_flush().unwrap();
    export(
        &server.grpc_url,
        "api-gateway",
        gateway_spans.get_finished_spans().unwrap(),
    )
    .await;
    export(
        &server.grpc_url,
        "order-service",
        order_spans.get_finished_spans().unwrap(),
    )
    .await;
    common::run_python(
        "send_xray.py",
        vec![
            "map".into(),
            "--port".into(),
            server.xray_addr.port().to_string(),
            "--api".into(),
            server.api_url.clone(),
            "--calls".into(),
            inventory_calls.join(","),
        ],
    )
    .await;

    let url = format!("{}/api/v1/service-map?lookback=1h", server.api_url);
    let map = poll_json(&url, |map| {
        requests(map, "inventory", "DynamoDB") == CALLS as i64
            && requests(map, "order-service", "api.stripe.com") == CALLS as i64
            && requests(map, "api-gateway", "inventory") == CALLS as i64
    })
    .await;

    let nodes: BTreeMap<String, (String, Value, i64)> = map["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["id"].as_str().unwrap().to_string(),
                (
                    n["type"].as_str().unwrap().to_string(),
                    n["system"].clone(),
                    n["requests"].as_i64().unwrap(),
                ),
            )
        })
        .collect();
    let n = CALLS as i64;
    let expected_nodes: BTreeMap<String, (String, Value, i64)> = [
        ("user", "client", Value::Null, n),
        ("api-gateway", "service", Value::Null, n),
        ("order-service", "service", Value::Null, n),
        ("inventory", "service", Value::Null, n),
        ("orders-db", "database", Value::from("postgresql"), n),
        ("cache", "database", Value::from("redis"), n),
        ("api.stripe.com", "external", Value::Null, n),
        ("DynamoDB", "database", Value::from("dynamodb"), n),
    ]
    .into_iter()
    .map(|(id, t, s, r)| (id.to_string(), (t.to_string(), s, r)))
    .collect();
    assert_eq!(nodes, expected_nodes, "{map}");

    let edges: BTreeMap<(String, String), EdgeCounts> = map["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let n = |k: &str| e[k].as_i64().unwrap();
            (
                (
                    e["source"].as_str().unwrap().to_string(),
                    e["target"].as_str().unwrap().to_string(),
                ),
                (
                    e["type"].as_str().unwrap().to_string(),
                    n("requests"),
                    n("errors"),
                    n("faults"),
                    n("throttles"),
                ),
            )
        })
        .collect();
    let tenth = n / 10;
    let expected_edges: BTreeMap<(String, String), EdgeCounts> = [
        ("user", "api-gateway", "http", n, 0, 0, 0),
        ("api-gateway", "order-service", "http", n, tenth, tenth, 0),
        ("api-gateway", "inventory", "http", n, 0, 0, 0),
        ("order-service", "orders-db", "database", n, 0, 0, 0),
        ("order-service", "cache", "database", n, 0, 0, 0),
        ("order-service", "api.stripe.com", "http", n, 0, 0, n / 8),
        ("inventory", "DynamoDB", "database", n, 0, n / 5, 0),
    ]
    .into_iter()
    .map(|(s, t, ty, r, e, f, th)| {
        (
            (s.to_string(), t.to_string()),
            (ty.to_string(), r, e, f, th),
        )
    })
    .collect();
    assert_eq!(edges, expected_edges, "{map}");

    // Percentiles within the sketch's 1 % of the true values.
    for (source, target, values) in [
        ("order-service", "orders-db", &db_latencies),
        ("api-gateway", "order-service", &order_latencies),
    ] {
        let e = edge(&map, source, target).unwrap();
        for (q, key) in [(0.5, "p50_ms"), (0.95, "p95_ms"), (0.99, "p99_ms")] {
            let got = e[key].as_f64().unwrap();
            assert!(
                close_to_quantile(values, q, got),
                "{source}→{target} {key} = {got}, values {values:?}"
            );
        }
        assert!(e["rate_per_s"].as_f64().unwrap() > 0.0);
        assert_eq!(e["storm"], false);
    }

    // Focus: order-service with depth 1 leaves out the client and inventory's
    // database; upstream and the entry point are named.
    let (_, focused) = get_json(&format!(
        "{}/api/v1/service-map?lookback=1h&service=order-service&depth=1",
        server.api_url
    ))
    .await;
    let mut ids: Vec<&str> = focused["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap())
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        [
            "api-gateway",
            "api.stripe.com",
            "cache",
            "order-service",
            "orders-db"
        ]
    );
    assert_eq!(
        focused["focus"]["entry_points"],
        serde_json::json!(["api-gateway"])
    );
    assert_eq!(
        focused["focus"]["upstream"],
        serde_json::json!(["api-gateway", "user"])
    );

    // The side panel's detail: the distribution adds up to the map's count
    // and holds each latency in its bucket; operations come from the traces.
    let detail = |query: &str| {
        let url = format!(
            "{}/api/v1/service-map/detail?lookback=1h&{query}",
            server.api_url
        );
        let query = query.to_string();
        async move {
            let (status, body) = get_json(&url).await;
            assert_eq!(status, 200, "{query}: {body}");
            body
        }
    };
    let db = detail("node=orders-db").await;
    let buckets = db["latency"].as_array().unwrap();
    let counted: i64 = buckets.iter().map(|b| b["count"].as_i64().unwrap()).sum();
    assert_eq!(counted, n, "{db}");
    // Counts below each bucket's bound, as bins 1 % wide allow: every
    // latency 1 % under the bound, and none over it.
    let mut below = 0;
    for b in buckets {
        let le = b["le_ms"].as_f64().unwrap();
        below += b["count"].as_i64().unwrap();
        let count = |under: &dyn Fn(f64) -> bool| {
            db_latencies.iter().filter(|&&ms| under(ms)).count() as i64
        };
        assert!(
            count(&|ms| ms < le * 0.99) <= below && below <= count(&|ms| ms <= le),
            "{below} below {le} ms: {db}"
        );
    }
    assert_eq!(db["sampled_traces"], n, "{db}");
    let ops = db["operations"].as_array().unwrap();
    assert_eq!(ops.len(), 1, "{db}");
    assert!(
        ops[0]["name"]
            .as_str()
            .unwrap()
            .starts_with("SELECT * FROM orders WHERE id ="),
        "{db}"
    );
    assert_eq!(ops[0]["requests"], n);
    let call = detail("source=api-gateway&target=order-service").await;
    let ops = call["operations"].as_array().unwrap();
    assert_eq!(ops.len(), 1, "{call}");
    assert_eq!(ops[0]["name"], "GET /orders");
    assert_eq!(
        (&ops[0]["requests"], &ops[0]["errors"], &ops[0]["faults"]),
        (&json!(n), &json!(tenth), &json!(tenth)),
        "{call}"
    );
    let entry = detail("source=user&target=api-gateway").await;
    assert_eq!(entry["operations"][0]["name"], "GET /checkout", "{entry}");
    let gateway = detail("node=api-gateway").await;
    assert_eq!(
        gateway["operations"][0]["name"], "GET /checkout",
        "{gateway}"
    );
    assert_eq!(gateway["operations"][0]["requests"], n, "{gateway}");
    let stripe = detail("source=order-service&target=api.stripe.com").await;
    assert_eq!(
        stripe["operations"][0]["throttles"],
        (n + 7) / 8,
        "{stripe}"
    );
    let (status, _) = get_json(&format!(
        "{}/api/v1/service-map/detail?node=nowhere",
        server.api_url
    ))
    .await;
    assert_eq!(status, 404);
    let (status, _) = get_json(&format!(
        "{}/api/v1/service-map/detail?source=api-gateway",
        server.api_url
    ))
    .await;
    assert_eq!(status, 400);

    // Jaeger's dependencies: the same edges but the one from `user`.
    let (status, deps) = get_json(&format!(
        "{}/api/dependencies?endTs={}&lookback=3600000",
        server.api_url,
        now_ns() / 1_000_000
    ))
    .await;
    assert_eq!(status, 200, "{deps}");
    let links = deps["data"].as_array().unwrap();
    assert_eq!(links.len(), 6, "{deps}");
    assert!(links.iter().any(|l| l["parent"] == "api-gateway"
        && l["child"] == "order-service"
        && l["callCount"] == n));

    // Span and service-graph metrics under the connector's names.
    let (_, metrics) = get_text(&format!("{}/metrics", server.api_url)).await;
    assert_eq!(
        common::metric(
            &metrics,
            "traces_service_graph_request_total{client=\"api-gateway\",server=\"order-service\",connection_type=\"\"}"
        ),
        Some(n as f64),
        "{metrics}"
    );
    assert_eq!(
        common::metric(
            &metrics,
            "traces_service_graph_request_total{client=\"order-service\",server=\"orders-db\",connection_type=\"database\"}"
        ),
        Some(n as f64)
    );
    assert_eq!(
        common::metric(
            &metrics,
            "traces_service_graph_request_failed_total{client=\"api-gateway\",server=\"order-service\",connection_type=\"\"}"
        ),
        Some(2.0 * tenth as f64)
    );
    assert_eq!(
        common::metric(
            &metrics,
            "traces_span_metrics_calls_total{service_name=\"order-service\",span_name=\"SELECT orders\",span_kind=\"SPAN_KIND_CLIENT\",status_code=\"STATUS_CODE_UNSET\"}"
        ),
        Some(n as f64)
    );
    assert!(metrics.contains("traces_span_metrics_duration_milliseconds_bucket{"));
    assert!(metrics.contains("traces_service_graph_request_server_seconds_bucket{"));
    server.stop().await;
}

/// One trace in minute `minute` after `base_ns`: gateway (root) → order →
/// PostgreSQL, sent as one request per service.
async fn send_trace(grpc: &str, base_ns: u64, minute: u64, trace: [u8; 16]) {
    let start = base_ns + minute * 60_000_000_000 + 1_000_000_000;
    let mut root = otlp_span(trace, 1, None, "GET /checkout");
    let mut client = otlp_span(trace, 2, Some(1), "GET /orders");
    client.kind = 3;
    let mut server = otlp_span(trace, 3, Some(2), "GET /orders");
    let mut db = otlp_span(trace, 4, Some(3), "SELECT");
    db.kind = 3;
    db.attributes = vec![
        common::string_attr("db.system.name", "postgresql"),
        common::string_attr("server.address", "orders-db"),
    ];
    for (n, span) in [&mut root, &mut client, &mut server, &mut db]
        .into_iter()
        .enumerate()
    {
        span.start_time_unix_nano = start + n as u64 * 1_000_000;
        span.end_time_unix_nano = start + 50_000_000 - n as u64 * 1_000_000;
    }
    let mut grpc_client = TraceServiceClient::connect(grpc.to_string()).await.unwrap();
    grpc_client
        .export(otlp_request("gateway", vec![root, client]))
        .await
        .unwrap();
    grpc_client
        .export(otlp_request("order", vec![server, db]))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranges_add_up_restarts_keep_counts_and_late_spans_count_once() {
    let data = tempfile::tempdir().unwrap();
    let path = data.path().to_path_buf();
    let config = move |c: &mut tracemap::config::Config| {
        c.data_dir = path.clone();
        c.assembly.trace_idle = Duration::from_millis(200);
    };
    let server = TestServer::start_with(config.clone()).await;
    // Twenty traces, one a minute, starting half an hour ago on a minute boundary.
    let base_ns = (now_ns() / 60_000_000_000 - 30) * 60_000_000_000;
    for minute in 0..20u64 {
        let mut trace = [0u8; 16];
        trace[0] = 0xab;
        trace[15] = minute as u8;
        send_trace(&server.grpc_url, base_ns, minute, trace).await;
    }
    let range = |from: u64, to: u64| {
        format!(
            "/api/v1/service-map?start={}&end={}",
            (base_ns + from * 60_000_000_000) / 1_000_000,
            (base_ns + to * 60_000_000_000) / 1_000_000
        )
    };
    let whole = format!("{}{}", server.api_url, range(0, 20));
    let map = poll_json(&whole, |m| requests(m, "order", "orders-db") == 20).await;
    assert_eq!(requests(&map, "user", "gateway"), 20);
    assert_eq!(requests(&map, "gateway", "order"), 20);
    let mut parts = 0;
    for (from, to) in [(0, 7), (7, 13), (13, 20)] {
        let (_, part) = get_json(&format!("{}{}", server.api_url, range(from, to))).await;
        assert_eq!(
            requests(&part, "gateway", "order"),
            (to - from) as i64,
            "{from}..{to}"
        );
        parts += requests(&part, "gateway", "order");
    }
    assert_eq!(parts, 20);

    // A restart loses nothing.
    server.stop().await;
    let server = TestServer::start_with(config.clone()).await;
    let whole = format!("{}{}", server.api_url, range(0, 20));
    let (_, after) = get_json(&whole).await;
    assert_eq!(requests(&after, "gateway", "order"), 20, "{after}");
    assert_eq!(requests(&after, "order", "orders-db"), 20, "{after}");

    // A late span re-completes trace 0: its new edge counts once, the old
    // ones are not counted again.
    let mut trace = [0u8; 16];
    trace[0] = 0xab;
    let mut late = otlp_span(trace, 5, Some(3), "GET");
    late.kind = 3;
    late.start_time_unix_nano = base_ns + 1_010_000_000;
    late.end_time_unix_nano = late.start_time_unix_nano + 1_000_000;
    late.attributes = vec![
        common::string_attr("db.system.name", "redis"),
        common::string_attr("server.address", "cache"),
    ];
    let mut client = TraceServiceClient::connect(server.grpc_url.clone())
        .await
        .unwrap();
    client
        .export(otlp_request("order", vec![late]))
        .await
        .unwrap();
    let map = poll_json(&whole, |m| requests(m, "order", "cache") > 0).await;
    // Re-completion is one batch: once the new edge shows, so does the rest.
    assert_eq!(requests(&map, "order", "cache"), 1, "{map}");
    assert_eq!(requests(&map, "gateway", "order"), 20, "{map}");
    assert_eq!(requests(&map, "order", "orders-db"), 20, "{map}");
    assert_eq!(requests(&map, "user", "gateway"), 20, "{map}");
    // And again after another restart.
    server.stop().await;
    let server = TestServer::start_with(config).await;
    let (_, map) = get_json(&format!("{}{}", server.api_url, range(0, 20))).await;
    assert_eq!(requests(&map, "order", "cache"), 1, "{map}");
    assert_eq!(requests(&map, "gateway", "order"), 20, "{map}");
    server.stop().await;
}

/// Sends 101,000 one-span traces, each from its own service (`distinct`) or
/// all from one; waits until they are on the map; returns the server's peak
/// RSS growth over the flood, the `/metrics` text and the map.
async fn flood(distinct: bool) -> (u64, String, Value) {
    let data = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::spawn(data.path());
    let client = TraceServiceClient::connect(server.grpc_url())
        .await
        .unwrap();
    let start_ns = now_ns() - 60_000_000_000;
    let send = |from: u64, count: u64| {
        let request = opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest {
            resource_spans: (from..from + count)
                .flat_map(|n| {
                    let mut trace = [0u8; 16];
                    trace[..8].copy_from_slice(&n.to_be_bytes());
                    trace[8] = 1;
                    let mut span = otlp_span(trace, n + 1, None, "GET /");
                    span.start_time_unix_nano = start_ns;
                    span.end_time_unix_nano = start_ns + 1_000_000;
                    let service = if distinct {
                        format!("svc-{n:08x}")
                    } else {
                        "svc".into()
                    };
                    otlp_request(&service, vec![span]).resource_spans
                })
                .collect(),
        };
        let mut client = client.clone();
        async move { client.export(request).await.unwrap() }
    };
    send(0, 1_000).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let baseline = server.peak_rss_bytes();
    for batch in 0..100 {
        send(1_000 + batch * 1_000, 1_000).await;
    }
    let api = server.api_url();
    // Once every trace completes (idle 10 s), the map counts them all.
    let map = poll_json(&format!("{api}/api/v1/service-map?lookback=1h"), |m| {
        m["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["requests"].as_i64().unwrap())
            .sum::<i64>()
            >= 101_000
    })
    .await;
    let (_, metrics) = get_text(&format!("{api}/metrics")).await;
    let grown = server.peak_rss_bytes().saturating_sub(baseline);
    server.terminate();
    (grown, metrics, map)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_random_service_names_stays_bounded() {
    let (grown, metrics, map) = flood(true).await;
    let overflowed = common::metric(&metrics, "tracemap_graph_overflow_total{what=\"nodes\"}");
    assert!(overflowed.is_some_and(|n| n >= 99_000.0), "{overflowed:?}");
    let span_series = metrics
        .lines()
        .filter(|l| l.starts_with("traces_span_metrics_calls_total{"))
        .count();
    assert!(span_series <= 1_001, "{span_series} span-metric series");
    assert!(
        metrics.len() < 6 << 20,
        "/metrics is {} bytes after 101,000 service names",
        metrics.len()
    );
    let nodes = map["nodes"].as_array().unwrap();
    // The default cap (1,000 nodes, `user` among them) and the overflow node.
    assert!(nodes.len() <= 1_001, "{} nodes", nodes.len());
    assert!(nodes
        .iter()
        .any(|n| n["id"] == "__overflow__" && n["requests"].as_i64() >= Some(99_000)));
    // Memory: the same flood from one service name is the yardstick, so what
    // is measured is what the names cost, not the traces.
    let (control, _, _) = flood(false).await;
    eprintln!(
        "peak RSS grew {} MiB with 101,000 names, {} MiB with one",
        grown >> 20,
        control >> 20
    );
    // Beyond the guard, each distinct name is an index value of its trace
    // (one index block each where the one-name flood shares one), so the
    // index memtable fills up to its 64 MiB write buffer before a flush;
    // the rest is slack for allocator noise (the two floods differ by
    // 38–67 MiB run to run here).
    assert!(
        grown < control + (96 << 20),
        "names cost {} MiB over the one-name flood",
        grown.saturating_sub(control) >> 20
    );
}
