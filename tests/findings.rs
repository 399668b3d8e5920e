//! The detectors end to end, as the issue asks: traffic recorded with the real
//! OpenTelemetry SDK (exported through the real OTLP/gRPC exporter) and the
//! real X-Ray SDK, with an N+1 loop, a slow query, a retry storm and a slow
//! X-Ray SQL query planted among clean requests. Every planted pattern is
//! found, with its services, targets, statements, counts and spans; nothing
//! else is flagged; the groups, the `finding=` trace filter, the trace view's
//! findings and critical path, `/metrics` and the map's `storm` flag agree;
//! and a late span re-completes a trace without duplicating its finding.

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{get_json, get_text, poll_json, sdk_provider, TestServer};
use opentelemetry::trace::{
    Span as _, SpanContext, SpanKind, Status, TraceContextExt, Tracer, TracerProvider,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracer, SdkTracerProvider, SpanExporter};
use opentelemetry_sdk::Resource;
use serde_json::Value;

const CLEAN: u64 = 6;
const STORMS: u64 = 6;
const ITEMS: u64 = 12;
/// The slow catalog query and the slow X-Ray query, in ms.
const SLOW_QUERY_MS: u64 = 340;
const XRAY_QUERY_MS: f64 = 250.0;

/// One service instrumented with the Rust OpenTelemetry SDK, recording into
/// memory until `export` sends its spans through the OTLP/gRPC exporter.
struct Service {
    name: &'static str,
    provider: SdkTracerProvider,
    memory: InMemorySpanExporter,
    tracer: SdkTracer,
}

fn at(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

fn span_id(cx: &Context) -> String {
    cx.span().span_context().span_id().to_string()
}

impl Service {
    fn new(name: &'static str) -> Self {
        let (provider, memory) = sdk_provider(name);
        let tracer = provider.tracer(name);
        Self {
            name,
            provider,
            memory,
            tracer,
        }
    }

    /// Records one span under `parent` over `window` (unix ms), ended there;
    /// its context, for its children.
    fn span(
        &self,
        parent: &Context,
        name: &str,
        kind: SpanKind,
        window: (u64, u64),
        attributes: Vec<KeyValue>,
        error: bool,
    ) -> Context {
        let mut span = self
            .tracer
            .span_builder(name.to_string())
            .with_kind(kind)
            .with_start_time(at(window.0))
            .with_attributes(attributes)
            .start_with_context(&self.tracer, parent);
        if error {
            span.set_status(Status::error("Service Unavailable"));
        }
        span.end_with_timestamp(at(window.1));
        parent.with_span(span)
    }

    /// A server span handling `route` (the root of a trace without a parent).
    fn server(&self, parent: &Context, method: &str, route: &str, window: (u64, u64)) -> Context {
        let attributes = vec![
            KeyValue::new("http.request.method", method.to_string()),
            KeyValue::new("http.route", route.to_string()),
            KeyValue::new("http.response.status_code", 200),
        ];
        let name = format!("{method} {route}");
        self.span(parent, &name, SpanKind::Server, window, attributes, false)
    }

    /// An HTTP client call to `url` on `host`, answered with `status`.
    fn call(
        &self,
        parent: &Context,
        (method, host, url): (&str, &str, &str),
        status: i64,
        window: (u64, u64),
    ) -> Context {
        let attributes = vec![
            KeyValue::new("http.request.method", method.to_string()),
            KeyValue::new("server.address", host.to_string()),
            KeyValue::new("url.full", url.to_string()),
            KeyValue::new("http.response.status_code", status),
        ];
        let error = status >= 500;
        self.span(parent, method, SpanKind::Client, window, attributes, error)
    }

    /// A PostgreSQL query on `db`; `old_names` records it under the older
    /// `db.system`/`db.statement` keys, as older instrumentations do.
    fn query(
        &self,
        parent: &Context,
        db: &str,
        sql: &str,
        window: (u64, u64),
        old_names: bool,
    ) -> Context {
        let (system, text) = if old_names {
            ("db.system", "db.statement")
        } else {
            ("db.system.name", "db.query.text")
        };
        let attributes = vec![
            KeyValue::new(system, "postgresql"),
            KeyValue::new("server.address", db.to_string()),
            KeyValue::new(text, sql.to_string()),
        ];
        let table = sql.split(" FROM ").nth(1).unwrap_or("").split(' ').next();
        let name = format!("SELECT {}", table.unwrap_or_default());
        self.span(parent, &name, SpanKind::Client, window, attributes, false)
    }

    /// Sends what was recorded since the last export, through the real
    /// OTLP/gRPC exporter.
    async fn export(&self, grpc_url: &str) {
        self.provider.force_flush().unwrap();
        let spans = self.memory.get_finished_spans().unwrap();
        self.memory.reset();
        let mut exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(grpc_url.to_string())
            .with_timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        exporter.set_resource(&Resource::builder().with_service_name(self.name).build());
        exporter.export(spans).await.expect("tracemap acknowledged");
    }
}

/// What order-service does in one request, besides looking the order up.
#[derive(Clone, Copy, PartialEq)]
enum Plan {
    /// Asks the catalog for the product (one 5 ms query there) and payment
    /// for the charge (one successful Stripe call).
    Clean,
    /// The same, but the catalog's query takes `SLOW_QUERY_MS`.
    SlowCatalogQuery,
    /// Loads the order's items one query at a time.
    NPlusOne,
    /// Payment tries Stripe three times, the first two failing with 503;
    /// each attempt takes 30 + n ms.
    Storm(u64),
}

/// The ids of one recorded request.
struct Request {
    trace_id: String,
    root: String,
    spans: usize,
    /// Root to end, in ms.
    duration_ms: u64,
    /// The planted spans: the loop's queries, the slow query, the attempts.
    planted: Vec<String>,
    /// order-service's server span, to send a late child under.
    order_server: SpanContext,
}

struct Shop {
    gateway: Service,
    order: Service,
    catalog: Service,
    payment: Service,
}

impl Shop {
    /// `GET /orders/{id}` at the gateway at `t` (unix ms) for order `n`.
    fn request(&self, t: u64, n: u64, plan: Plan) -> Request {
        let w = |a: u64, b: u64| (t + a, t + b);
        // The catalog query's length, and how far it moves what follows.
        let q = if plan == Plan::SlowCatalogQuery {
            SLOW_QUERY_MS
        } else {
            5
        };
        let shift = q - 5;
        let attempt_ms = match plan {
            Plan::Storm(k) => 30 + k,
            _ => 0,
        };
        // When order-service's own work ends, in ms after `t`.
        let work = match plan {
            Plan::Clean | Plan::SlowCatalogQuery => 125 + shift,
            Plan::NPlusOne => 160,
            Plan::Storm(_) => 60 + 3 * attempt_ms,
        };
        let root = self
            .gateway
            .server(&Context::new(), "GET", "/orders/{id}", w(0, work + 2));
        let order_url = format!("http://order-service:8080/orders/{n}");
        let client = self.gateway.call(
            &root,
            ("GET", "order-service", &order_url),
            200,
            w(1, work + 1),
        );
        let order = self
            .order
            .server(&client, "GET", "/orders/{id}", w(2, work));
        let lookup = format!("SELECT * FROM orders WHERE id = {n}");
        self.order
            .query(&order, "orders-db", &lookup, w(5, 10), false);
        let mut spans = 4;
        let mut planted = Vec::new();
        let charge = |start: u64, attempts: &[(i64, u64)], planted: &mut Vec<String>| {
            let end = start + 5 + attempts.iter().map(|&(_, d)| d + 10).sum::<u64>();
            let client = self.order.call(
                &order,
                (
                    "POST",
                    "payment-service",
                    "http://payment-service:8080/charges",
                ),
                200,
                w(start, end + 3),
            );
            let server = self
                .payment
                .server(&client, "POST", "/charges", w(start + 1, end + 2));
            let mut at = start + 5;
            for &(status, took) in attempts {
                let attempt = self.payment.call(
                    &server,
                    (
                        "POST",
                        "api.stripe.com",
                        "https://api.stripe.com/v1/charges",
                    ),
                    status,
                    w(at, at + took),
                );
                planted.push(span_id(&attempt));
                at += took + 10;
            }
            2 + attempts.len()
        };
        match plan {
            Plan::Clean | Plan::SlowCatalogQuery => {
                let url = format!("http://product-catalog:8080/products/{n}");
                let client =
                    self.order
                        .call(&order, ("GET", "product-catalog", &url), 200, w(20, 31 + q));
                let server = self
                    .catalog
                    .server(&client, "GET", "/products/{id}", w(21, 30 + q));
                let sql = if plan == Plan::Clean {
                    format!("SELECT * FROM products WHERE id = {n}")
                } else {
                    "SELECT * FROM products WHERE category_id = 7".to_string()
                };
                let query = self
                    .catalog
                    .query(&server, "catalog-db", &sql, w(25, 25 + q), true);
                if plan == Plan::SlowCatalogQuery {
                    planted.push(span_id(&query));
                }
                spans += 3;
                // A successful charge: one call, not a retry.
                spans += charge(60 + shift, &[(200, 30)], &mut Vec::new());
            }
            Plan::NPlusOne => {
                for i in 0..ITEMS {
                    let start = 20 + 10 * i;
                    let sql = format!("SELECT * FROM order_items WHERE order_id = {}", 5000 + i);
                    let query =
                        self.order
                            .query(&order, "orders-db", &sql, w(start, start + 8), false);
                    planted.push(span_id(&query));
                }
                spans += ITEMS as usize;
            }
            Plan::Storm(_) => {
                let attempts = [(503, attempt_ms), (503, attempt_ms), (200, attempt_ms)];
                spans += charge(20, &attempts, &mut planted);
            }
        }
        Request {
            trace_id: root.span().span_context().trace_id().to_string(),
            root: span_id(&root),
            spans,
            duration_ms: work + 2,
            planted,
            order_server: order.span().span_context().clone(),
        }
    }

    async fn export(&self, grpc_url: &str) {
        for service in [&self.gateway, &self.order, &self.catalog, &self.payment] {
            service.export(grpc_url).await;
        }
    }
}

fn list<'a>(body: &'a Value, key: &str) -> &'a Vec<Value> {
    body[key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key} in {body}"))
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {value}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// A finding's identity: kind, trace, service, operation, target,
/// statement, count and spans.
type Identity = (
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    u64,
    Vec<String>,
);

fn identity(f: &Value) -> Identity {
    let s = |k: &str| f[k].as_str().unwrap_or_else(|| panic!("{k} in {f}")).into();
    (
        s("kind"),
        s("trace_id"),
        s("service"),
        s("operation"),
        s("target"),
        f["statement"].as_str().map(str::to_string),
        f["count"].as_u64().unwrap(),
        strings(&f["span_ids"]),
    )
}

fn edge<'a>(map: &'a Value, source: &str, target: &str) -> &'a Value {
    list(map, "edges")
        .iter()
        .find(|e| e["source"] == source && e["target"] == target)
        .unwrap_or_else(|| panic!("no edge {source} → {target} in {map}"))
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 0.01
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planted_patterns_are_found_and_nothing_else() {
    let server =
        TestServer::start_with(|c| c.assembly.trace_idle = Duration::from_millis(2500)).await;
    let api = server.api_url.clone();
    let shop = Shop {
        gateway: Service::new("api-gateway"),
        order: Service::new("order-service"),
        catalog: Service::new("product-catalog"),
        payment: Service::new("payment-service"),
    };
    // Every request within one minute (two minutes ago), so the storm's
    // retries share a minute bucket on the map.
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let base = (now_ms / 60_000 - 2) * 60_000 + 1_000;
    let mut clean = Vec::new();
    for n in 0..CLEAN {
        clean.push(shop.request(base + n * 1_000, 1000 + n, Plan::Clean));
    }
    let slow = shop.request(base + 10_000, 2000, Plan::SlowCatalogQuery);
    let loop_ = shop.request(base + 12_000, 3000, Plan::NPlusOne);
    let storms: Vec<Request> = (0..STORMS)
        .map(|k| shop.request(base + 14_000 + k * 1_000, 4000 + k, Plan::Storm(k)))
        .collect();
    shop.export(&server.grpc_url).await;

    // The search service, traced by the X-Ray SDK: one slow SQL query.
    let xray_start_ms = base + 25_000;
    let out = common::run_python(
        "send_xray.py",
        vec![
            "findings".into(),
            "--port".into(),
            server.xray_addr.port().to_string(),
            "--api".into(),
            api.clone(),
            "--start".into(),
            format!("{:.3}", xray_start_ms as f64 / 1e3),
        ],
    )
    .await;
    let xray: Value = serde_json::from_str(out.trim()).unwrap();
    let xray_id = xray["trace_id"].as_str().unwrap();
    let xray_trace = xray_id.replace('-', "")[1..].to_string();
    let xray_segment = xray["segment_id"].as_str().unwrap().to_string();
    let xray_sql = xray["sql_id"].as_str().unwrap().to_string();

    // Wait until every trace has completed with every span.
    let all: Vec<&Request> = clean
        .iter()
        .chain([&slow, &loop_])
        .chain(storms.iter())
        .collect();
    let traces = all.len() + 1;
    let spans: usize = all.iter().map(|r| r.spans).sum::<usize>() + 2;
    let started = Instant::now();
    poll_json(
        &format!("{api}/api/v1/traces?lookback=1h&limit=100"),
        |body| {
            let got = list(body, "traces");
            got.len() == traces
                && got.iter().all(|t| t["complete"] == true)
                && got
                    .iter()
                    .map(|t| t["span_count"].as_u64().unwrap())
                    .sum::<u64>()
                    == spans as u64
        },
    )
    .await;
    eprintln!("all {traces} traces complete after {:?}", started.elapsed());

    // Exactly the planted findings.
    let (status, body) = get_json(&format!("{api}/api/v1/findings?lookback=1h")).await;
    assert_eq!(status, 200, "{body}");
    let findings = list(&body, "findings");
    let mut got: Vec<Identity> = findings.iter().map(identity).collect();
    got.sort();
    let s = |v: &str| v.to_string();
    let mut want: Vec<Identity> = vec![
        (
            s("n_plus_one"),
            loop_.trace_id.clone(),
            s("order-service"),
            s("GET /orders/{id}"),
            s("orders-db"),
            Some(s("SELECT * FROM order_items WHERE order_id = ?")),
            ITEMS,
            loop_.planted.clone(),
        ),
        (
            s("slow_db"),
            slow.trace_id.clone(),
            s("product-catalog"),
            s("GET /products/{id}"),
            s("catalog-db"),
            Some(s("SELECT * FROM products WHERE category_id = ?")),
            1,
            slow.planted.clone(),
        ),
        (
            s("slow_db"),
            xray_trace.clone(),
            s("search-service"),
            s("search-service"),
            s("bookstore@db.internal"),
            Some(s("SELECT id, title FROM books WHERE author_id = ?")),
            1,
            vec![xray_sql.clone()],
        ),
    ];
    for storm in &storms {
        want.push((
            s("retry_storm"),
            storm.trace_id.clone(),
            s("payment-service"),
            s("POST /charges"),
            s("api.stripe.com"),
            Some(s("POST api.stripe.com /v1/charges")),
            3,
            storm.planted.clone(),
        ));
    }
    want.sort();
    assert_eq!(got, want, "{body:#}");
    let clean_ids: Vec<&str> = clean.iter().map(|r| r.trace_id.as_str()).collect();
    assert!(findings
        .iter()
        .all(|f| !clean_ids.contains(&f["trace_id"].as_str().unwrap())));

    let of = |kind: &str, trace: &str| {
        findings
            .iter()
            .find(|f| f["kind"] == kind && f["trace_id"] == trace)
            .unwrap()
    };
    // The loop: 12 × 8 ms, 96 of the request's 162 ms: critical.
    let n1 = of("n_plus_one", &loop_.trace_id);
    assert_eq!(n1["severity"], "critical", "{n1}");
    assert!(
        close(n1["total_duration_ms"].as_f64().unwrap(), 96.0),
        "{n1}"
    );
    assert!(close(n1["max_duration_ms"].as_f64().unwrap(), 8.0), "{n1}");
    assert_eq!(n1["start_us"], (base + 12_020) * 1_000);
    let message = n1["message"].as_str().unwrap();
    assert!(
        message.contains("SELECT * FROM order_items WHERE order_id = ?")
            && message.contains("12 times"),
        "{message}"
    );
    let slow_db = of("slow_db", &slow.trace_id);
    assert_eq!(slow_db["severity"], "warning");
    assert!(close(
        slow_db["max_duration_ms"].as_f64().unwrap(),
        SLOW_QUERY_MS as f64
    ));
    assert!(slow_db["message"].as_str().unwrap().contains("340 ms"));
    let xray_db = of("slow_db", &xray_trace);
    assert!(close(
        xray_db["max_duration_ms"].as_f64().unwrap(),
        XRAY_QUERY_MS
    ));
    assert_eq!(xray_db["start_us"], (xray_start_ms + 5) * 1_000);
    for (k, storm) in storms.iter().enumerate() {
        let f = of("retry_storm", &storm.trace_id);
        let attempt = 30.0 + k as f64;
        assert_eq!(f["severity"], "warning", "{f}");
        assert!(close(
            f["total_duration_ms"].as_f64().unwrap(),
            3.0 * attempt
        ));
        assert!(close(f["details"]["amplification"].as_f64().unwrap(), 3.0));
        assert!(close(f["details"]["backoff_ms_1"].as_f64().unwrap(), 10.0));
    }

    // Filters.
    let ids = |body: &Value| -> Vec<Identity> {
        let mut v: Vec<Identity> = list(body, "findings").iter().map(identity).collect();
        v.sort();
        v
    };
    let only = |kind: &str, service: Option<&str>| -> Vec<Identity> {
        want.iter()
            .filter(|f| f.0 == kind && service.is_none_or(|s| f.2 == s))
            .cloned()
            .collect()
    };
    let (_, body) = get_json(&format!(
        "{api}/api/v1/findings?lookback=1h&kind=n_plus_one"
    ))
    .await;
    assert_eq!(ids(&body), only("n_plus_one", None), "{body}");
    let (_, body) = get_json(&format!("{api}/api/v1/findings?lookback=1h&kind=slow_db")).await;
    assert_eq!(ids(&body), only("slow_db", None), "{body}");
    let (_, body) = get_json(&format!(
        "{api}/api/v1/findings?lookback=1h&service=payment-service"
    ))
    .await;
    assert_eq!(ids(&body), only("retry_storm", None), "{body}");
    let (_, body) = get_json(&format!(
        "{api}/api/v1/findings?lookback=1h&service=product-catalog&kind=slow_db"
    ))
    .await;
    assert_eq!(
        ids(&body),
        only("slow_db", Some("product-catalog")),
        "{body}"
    );
    let (_, body) = get_json(&format!(
        "{api}/api/v1/findings?lookback=1h&service=order-service&kind=retry_storm"
    ))
    .await;
    assert!(list(&body, "findings").is_empty(), "{body}");
    let (_, body) = get_json(&format!(
        "{api}/api/v1/findings?trace_id={}",
        loop_.trace_id
    ))
    .await;
    assert_eq!(ids(&body), only("n_plus_one", None), "{body}");
    let (_, body) = get_json(&format!(
        "{api}/api/v1/findings?lookback=1h&trace_id={}",
        clean[0].trace_id
    ))
    .await;
    assert!(list(&body, "findings").is_empty(), "{body}");
    let (status, body) = get_json(&format!("{api}/api/v1/findings?kind=slowness")).await;
    assert_eq!(status, 400, "{body}");

    // Groups: the storm's six traces are one group; worst (most time) first.
    let (status, body) = get_json(&format!("{api}/api/v1/findings/groups?lookback=1h")).await;
    assert_eq!(status, 200, "{body}");
    let groups = list(&body, "groups");
    let order: Vec<(&str, &str, &str, u64, u64)> = groups
        .iter()
        .map(|g| {
            (
                g["kind"].as_str().unwrap(),
                g["service"].as_str().unwrap(),
                g["target"].as_str().unwrap(),
                g["occurrences"].as_u64().unwrap(),
                g["traces"].as_u64().unwrap(),
            )
        })
        .collect();
    // 6 × 3 × (30..35) ms = 585 ms; 340 ms; 250 ms; 96 ms.
    assert_eq!(
        order,
        vec![
            ("retry_storm", "payment-service", "api.stripe.com", 6, 6),
            ("slow_db", "product-catalog", "catalog-db", 1, 1),
            ("slow_db", "search-service", "bookstore@db.internal", 1, 1),
            ("n_plus_one", "order-service", "orders-db", 1, 1),
        ],
        "{body:#}"
    );
    let storm_group = &groups[0];
    assert_eq!(
        storm_group["statement"], "POST api.stripe.com /v1/charges",
        "{storm_group}"
    );
    assert!(close(storm_group["p95_ms"].as_f64().unwrap(), 105.0));
    // The slowest five of the six, slowest first.
    let examples: Vec<String> = storms
        .iter()
        .rev()
        .take(5)
        .map(|r| r.trace_id.clone())
        .collect();
    assert_eq!(strings(&storm_group["example_trace_ids"]), examples);
    assert_eq!(
        storm_group["last_seen_us"],
        (base + 14_000 + (STORMS - 1) * 1_000 + 25) * 1_000
    );
    assert_eq!(
        groups[3]["statement"],
        "SELECT * FROM order_items WHERE order_id = ?"
    );

    // The trace search: `finding=` picks exactly the traces with one.
    let trace_ids = |body: &Value| -> Vec<String> {
        let mut v: Vec<String> = list(body, "traces")
            .iter()
            .map(|t| t["trace_id"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    let (status, body) = get_json(&format!(
        "{api}/api/v1/traces?finding=n_plus_one&lookback=1h"
    ))
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(trace_ids(&body), vec![loop_.trace_id.clone()], "{body}");
    assert_eq!(
        strings(&list(&body, "traces")[0]["finding_kinds"]),
        ["n_plus_one"]
    );
    let (_, body) = get_json(&format!(
        "{api}/api/v1/traces?finding=retry_storm&lookback=1h"
    ))
    .await;
    let mut storm_ids: Vec<String> = storms.iter().map(|r| r.trace_id.clone()).collect();
    storm_ids.sort();
    assert_eq!(trace_ids(&body), storm_ids, "{body}");
    let (_, body) = get_json(&format!("{api}/api/v1/traces?finding=slow_db&lookback=1h")).await;
    let mut slow_ids = vec![slow.trace_id.clone(), xray_trace.clone()];
    slow_ids.sort();
    assert_eq!(trace_ids(&body), slow_ids, "{body}");
    for kind in ["slow_call", "sequential_calls"] {
        let (_, body) = get_json(&format!("{api}/api/v1/traces?finding={kind}&lookback=1h")).await;
        assert!(list(&body, "traces").is_empty(), "{kind}: {body}");
    }
    let (_, body) = get_json(&format!(
        "{api}/api/v1/traces?service=api-gateway&lookback=1h&limit=100"
    ))
    .await;
    for t in list(&body, "traces") {
        let kinds = strings(&t["finding_kinds"]);
        if clean_ids.contains(&t["trace_id"].as_str().unwrap()) {
            assert!(kinds.is_empty(), "{t}");
        }
    }

    // The N+1 trace: its finding, and a critical path through the loop that
    // accounts for the whole request.
    let (status, trace) = get_json(&format!("{api}/api/v1/traces/{}", loop_.trace_id)).await;
    assert_eq!(status, 200, "{trace}");
    let trace_findings: Vec<Identity> = list(&trace, "findings").iter().map(identity).collect();
    assert_eq!(trace_findings, only("n_plus_one", None), "{trace}");
    let path = list(&trace, "critical_path");
    assert_eq!(path[0]["span_id"], loop_.root.as_str(), "{trace}");
    let on_path: Vec<String> = path
        .iter()
        .map(|s| s["span_id"].as_str().unwrap().to_string())
        .collect();
    assert!(
        loop_.planted.iter().all(|id| on_path.contains(id)),
        "the loop is on the critical path: {path:?}"
    );
    let self_ms: f64 = path.iter().map(|s| s["self_ms"].as_f64().unwrap()).sum();
    assert!(close(self_ms, loop_.duration_ms as f64), "{self_ms} ms");
    assert!(close(
        trace["summary"]["duration_ms"].as_f64().unwrap(),
        loop_.duration_ms as f64
    ));
    // A clean trace has none.
    let (_, trace) = get_json(&format!("{api}/api/v1/traces/{}", clean[0].trace_id)).await;
    assert!(list(&trace, "findings").is_empty(), "{trace}");
    // The X-Ray trace, by its X-Ray id: the slow query under the segment.
    let (status, trace) = get_json(&format!("{api}/api/v1/traces/{xray_id}")).await;
    assert_eq!(status, 200, "{trace}");
    let xray_findings = list(&trace, "findings");
    assert_eq!(xray_findings.len(), 1, "{trace}");
    assert_eq!(
        strings(&xray_findings[0]["span_ids"]),
        vec![xray_sql.clone()]
    );
    assert_eq!(trace["critical_path"][0]["span_id"], xray_segment.as_str());

    // The map: the Stripe edge storms (12 retries in 25 calls in one
    // minute), no other edge does.
    let (status, map) = get_json(&format!("{api}/api/v1/service-map?lookback=1h")).await;
    assert_eq!(status, 200, "{map}");
    let stripe = edge(&map, "payment-service", "api.stripe.com");
    assert_eq!(stripe["storm"], true, "{stripe}");
    assert_eq!(stripe["retries"], 2 * STORMS, "{stripe}");
    assert_eq!(stripe["requests"], CLEAN + 1 + 3 * STORMS, "{stripe}");
    assert_eq!(stripe["faults"], 2 * STORMS, "{stripe}");
    let storms_on_map: Vec<(String, String)> = list(&map, "edges")
        .iter()
        .filter(|e| e["storm"] != false)
        .map(|e| {
            (
                e["source"].as_str().unwrap().to_string(),
                e["target"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        storms_on_map,
        [(s("payment-service"), s("api.stripe.com"))],
        "{map:#}"
    );
    for (source, target) in [
        ("user", "api-gateway"),
        ("api-gateway", "order-service"),
        ("order-service", "orders-db"),
        ("order-service", "product-catalog"),
        ("product-catalog", "catalog-db"),
        ("order-service", "payment-service"),
        ("user", "search-service"),
        ("search-service", "bookstore@db.internal"),
    ] {
        let e = edge(&map, source, target);
        assert_eq!(e["storm"], false, "{e}");
        assert_eq!(e["retries"], 0, "{e}");
    }

    // Findings on /metrics, by kind and service.
    let (_, metrics) = get_text(&format!("{api}/metrics")).await;
    let series = |kind: &str, service: &str| {
        let series = format!("tracemap_findings_total{{kind=\"{kind}\",service=\"{service}\"}}");
        common::metric(&metrics, &series)
    };
    for (kind, service, n) in [
        ("n_plus_one", "order-service", Some(1.0)),
        ("slow_db", "product-catalog", Some(1.0)),
        ("slow_db", "search-service", Some(1.0)),
        ("retry_storm", "payment-service", Some(STORMS as f64)),
        ("slow_call", "order-service", None),
        ("sequential_calls", "order-service", None),
    ] {
        assert_eq!(series(kind, service), n, "{kind} {service}: {metrics}");
    }
    let total: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("tracemap_findings_total{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum();
    assert_eq!(total, want.len() as f64, "{metrics}");

    // A late span for the N+1 trace re-completes it: a cache read under
    // order-service's request, after the loop. The trace's finding is
    // replaced, not added to.
    let parent = Context::new().with_remote_span_context(loop_.order_server.clone());
    let late_start = base + 12_150;
    shop.order.span(
        &parent,
        "GET",
        SpanKind::Client,
        (late_start, late_start + 1),
        vec![
            KeyValue::new("db.system.name", "redis"),
            KeyValue::new("server.address", "cache"),
            KeyValue::new("db.query.text", "GET order:3000"),
        ],
        false,
    );
    shop.order.export(&server.grpc_url).await;
    // Re-completion writes the map, the summary and the findings in one
    // batch: once the new edge shows, the rest is there.
    poll_json(&format!("{api}/api/v1/service-map?lookback=1h"), |map| {
        list(map, "edges")
            .iter()
            .any(|e| e["source"] == "order-service" && e["target"] == "cache")
    })
    .await;
    let (_, trace) = get_json(&format!("{api}/api/v1/traces/{}", loop_.trace_id)).await;
    assert_eq!(trace["summary"]["complete"], true, "{trace}");
    assert_eq!(
        trace["summary"]["span_count"],
        loop_.spans + 1,
        "{}",
        trace["summary"]
    );
    let (_, body) = get_json(&format!("{api}/api/v1/findings?lookback=1h")).await;
    let mut after: Vec<Identity> = list(&body, "findings").iter().map(identity).collect();
    after.sort();
    assert_eq!(after, want, "{body:#}");
    let (_, body) = get_json(&format!("{api}/api/v1/findings/groups?lookback=1h")).await;
    assert_eq!(list(&body, "groups").len(), 4, "{body}");
    assert_eq!(list(&body, "groups")[3]["occurrences"], 1, "{body}");
    let (_, body) = get_json(&format!(
        "{api}/api/v1/traces?finding=n_plus_one&lookback=1h"
    ))
    .await;
    assert_eq!(trace_ids(&body), vec![loop_.trace_id.clone()], "{body}");

    server.stop().await;
}

/// Bad parameters on the findings and map endpoints get a 400 that names the
/// parameter; a map range from the epoch is answered from what is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_finding_queries_get_clear_errors() {
    let server = TestServer::start().await;
    let api = &server.api_url;
    for (query, names) in [
        ("findings?limit=0", "limit"),
        ("findings?limit=many", "limit"),
        ("findings?limit=10001", "limit"),
        ("findings?kind=slow", "kind"),
        ("findings?trace_id=not-a-trace", "trace"),
        ("findings?start=yesterday", "start"),
        ("findings/groups?kind=slow", "kind"),
        ("traces?finding=slow", "finding"),
    ] {
        let (status, body) = get_json(&format!("{api}/api/v1/{query}")).await;
        assert_eq!(status, 400, "{query}: {body}");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(error.contains(names), "{query}: {error}");
    }
    let (status, body) = get_json(&format!("{api}/api/v1/findings?lookback=1h")).await;
    assert_eq!(status, 200);
    assert_eq!(body["findings"], serde_json::json!([]));
    // From the epoch: clamped to the graph retention (30 days by default).
    let started = Instant::now();
    let (status, body) = get_json(&format!("{api}/api/v1/service-map?start=0")).await;
    assert_eq!(status, 200, "{body}");
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let start_ms = body["start_ms"].as_u64().unwrap();
    assert!(start_ms >= now_ms - 31 * 86_400_000, "start_ms {start_ms}");
    assert!(started.elapsed() < Duration::from_secs(5));
    server.stop().await;
}
