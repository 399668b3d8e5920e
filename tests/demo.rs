//! `tracemap demo` end to end: the built binary started as a user would,
//! on free ports, with a 40 s problem cycle so the whole story plays out in
//! seconds. Everything is checked through the HTTP API: the bookstore's map
//! with the right node types, search-service arriving over X-Ray and
//! notification-service over OTLP/HTTP, the storm flag on payment → Stripe,
//! the planted findings with the N+1 first, a correlation-id search; then a
//! SIGTERM stops it cleanly and its temporary data directory is gone.
//!
//! Then the web UI in a real Chromium (Debian's, driven by playwright-core
//! from `web/tests/`) against a running demo: what a person checks on each
//! page, and hostile span names rendered as text. Screenshots land in
//! `$CARGO_TARGET_TMPDIR/ui-screenshots`.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{free_port, get_json, get_text, metric};
use serde_json::Value;

const SERVICES: [&str; 8] = [
    "api-gateway",
    "auth-service",
    "user-service",
    "product-catalog",
    "order-service",
    "payment-service",
    "notification-service",
    "search-service",
];
const DATABASES: [&str; 4] = ["postgresql", "redis", "dynamodb", "elasticsearch"];
const STRIPE: &str = "api.stripe.com";

/// The demo's process; killed if the test fails before stopping it.
struct Demo {
    child: Child,
    api: String,
    otlp_http_port: u16,
    log: Arc<Mutex<String>>,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(tmp: &std::path::Path) -> Demo {
    let http_port = free_port();
    let otlp_http_port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tracemap"))
        .arg("demo")
        .args(["--otlp-grpc-port", &free_port().to_string()])
        .args(["--otlp-http-port", &otlp_http_port.to_string()])
        .args(["--http-port", &http_port.to_string()])
        .args(["--xray-port", "0", "--zipkin-port", "0"])
        .args(["--rate", "30", "--cycle", "40s"])
        // The scratch data directory goes where the test can look for it.
        .env("TMPDIR", tmp)
        .env("TRACEMAP_LOG", "info")
        // tracemap logs to stdout.
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting tracemap demo");
    let log = Arc::new(Mutex::new(String::new()));
    let stdout = child.stdout.take().unwrap();
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            eprintln!("{line}");
            let mut log = sink.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    });
    Demo {
        child,
        api: format!("http://127.0.0.1:{http_port}"),
        otlp_http_port,
        log,
    }
}

/// Polls `url` until `ready` holds, up to `deadline`.
async fn poll(url: &str, deadline: Instant, ready: impl Fn(&Value) -> bool) -> Value {
    loop {
        let body = match reqwest::get(url).await {
            Ok(response) if response.status() == 200 => response.json().await.unwrap(),
            _ => Value::Null,
        };
        if ready(&body) {
            return body;
        }
        assert!(Instant::now() < deadline, "{url} never got there: {body:#}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn list<'a>(body: &'a Value, key: &str) -> &'a [Value] {
    body[key].as_array().map_or(&[], Vec::as_slice)
}

fn node<'a>(map: &'a Value, id: &str) -> Option<&'a Value> {
    list(map, "nodes").iter().find(|n| n["id"] == id)
}

/// The map has every service, a database node of every system, Stripe as
/// an external peer and the user; what is missing, else `None`.
fn missing_from_map(map: &Value) -> Option<String> {
    for service in SERVICES {
        match node(map, service) {
            Some(n) if n["type"] == "service" && n["requests"].as_u64() > Some(0) => {}
            other => return Some(format!("service {service}: {other:?}")),
        }
    }
    for system in DATABASES {
        let found = list(map, "nodes")
            .iter()
            .any(|n| n["type"] == "database" && n["system"] == system);
        if !found {
            return Some(format!("a {system} database node"));
        }
    }
    match node(map, STRIPE) {
        Some(n) if n["type"] == "external" => {}
        other => return Some(format!("{STRIPE}: {other:?}")),
    }
    match node(map, "user") {
        Some(n) if n["type"] == "client" => {}
        other => return Some(format!("user: {other:?}")),
    }
    let stripe_edge = list(map, "edges")
        .iter()
        .find(|e| e["source"] == "payment-service" && e["target"] == STRIPE)?;
    (stripe_edge["storm"] != true).then(|| format!("no storm yet: {stripe_edge}"))
}

fn group_of<'a>(groups: &'a [Value], kind: &str, service: &str) -> Option<&'a Value> {
    groups
        .iter()
        .find(|g| g["kind"] == kind && g["service"] == service)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_bookstore_shows_its_map_and_its_planted_problems() {
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let mut demo = start(tmp.path());
    let api = demo.api.clone();
    let deadline = started + Duration::from_secs(50);

    let map = poll(
        &format!("{api}/api/v1/service-map?lookback=15m"),
        deadline,
        |map| missing_from_map(map).is_none(),
    )
    .await;
    eprintln!("map complete, storm on, after {:?}", started.elapsed());
    let databases = list(&map, "nodes")
        .iter()
        .filter(|n| n["system"] == "postgresql")
        .count();
    assert!(databases >= 3, "users, orders, catalog databases: {map:#}");
    for (source, target) in [
        ("user", "api-gateway"),
        ("api-gateway", "auth-service"),
        ("auth-service", "user-service"),
        ("api-gateway", "order-service"),
        ("order-service", "product-catalog"),
        ("order-service", "payment-service"),
        ("payment-service", "notification-service"),
        ("api-gateway", "search-service"),
        ("search-service", "elasticsearch"),
    ] {
        let edge = list(&map, "edges")
            .iter()
            .find(|e| e["source"] == source && e["target"] == target);
        assert!(edge.is_some(), "no edge {source} → {target}: {map:#}");
    }

    // The findings: all three problems, the N+1 loop the worst.
    let groups = poll(
        &format!("{api}/api/v1/findings/groups?lookback=15m"),
        deadline,
        |body| {
            let groups = list(body, "groups");
            !groups.is_empty()
                && groups[0]["kind"] == "n_plus_one"
                && groups[0]["service"] == "order-service"
                && group_of(groups, "slow_db", "product-catalog").is_some()
                && group_of(groups, "retry_storm", "payment-service").is_some()
        },
    )
    .await;
    let groups = list(&groups, "groups");
    let slow = group_of(groups, "slow_db", "product-catalog").unwrap();
    assert!(slow["p95_ms"].as_f64().unwrap() >= 100.0, "{slow}");
    let storm = group_of(groups, "retry_storm", "payment-service").unwrap();
    assert_eq!(storm["target"], STRIPE);
    assert_eq!(groups[0]["target"], "orders-db", "{:#}", groups[0]);
    eprintln!("findings complete after {:?}", started.elapsed());

    // search-service came as X-Ray segments, notification-service over OTLP/HTTP.
    let (_, metrics) = get_text(&format!("{api}/metrics")).await;
    let received = |receiver: &str| {
        metric(
            &metrics,
            &format!("tracemap_spans_received_total{{receiver=\"{receiver}\"}}"),
        )
        .unwrap_or(0.0)
    };
    assert!(
        received("xray") > 0.0 && received("otlp_http") > 0.0,
        "{metrics}"
    );
    assert!(received("otlp_grpc") > received("otlp_http"));
    let (_, found) = get_json(&format!(
        "{api}/api/v1/traces?service=search-service&lookback=15m&limit=1"
    ))
    .await;
    let search_trace = &list(&found, "traces")[0];
    let (_, trace) = get_json(&format!(
        "{api}/api/v1/traces/{}",
        search_trace["trace_id"].as_str().unwrap()
    ))
    .await;
    let from_xray = list(&trace, "spans")
        .iter()
        .filter(|s| s["service"] == "search-service")
        .any(|s| {
            s["attributes"]
                .as_object()
                .unwrap()
                .keys()
                .any(|k| k.starts_with("aws.xray."))
        });
    assert!(from_xray, "{trace:#}");

    // A correlation id finds its request, across OTLP and X-Ray services.
    for service in ["notification-service", "search-service"] {
        let (_, found) = get_json(&format!(
            "{api}/api/v1/traces?service={service}&lookback=15m&limit=1"
        ))
        .await;
        let wanted = &list(&found, "traces")[0];
        let correlation = wanted["correlation_ids"][0].as_str().unwrap();
        assert!(correlation.starts_with("req_"), "{wanted}");
        let (status, by_id) = get_json(&format!(
            "{api}/api/v1/traces?correlation_id={correlation}&lookback=15m"
        ))
        .await;
        assert_eq!(status, 200);
        let traces = list(&by_id, "traces");
        assert_eq!(traces.len(), 1, "{by_id}");
        assert_eq!(traces[0]["trace_id"], wanted["trace_id"]);
        let (_, trace) = get_json(&format!(
            "{api}/api/v1/traces/{}",
            wanted["trace_id"].as_str().unwrap()
        ))
        .await;
        // Every span, but X-Ray subsegments: the annotation is the segment's.
        for span in list(&trace, "spans") {
            if span["service"] != "search-service" || span["kind"] == "server" {
                assert_eq!(span["attributes"]["correlation_id"], correlation, "{span}");
            }
        }
    }

    // The user was told where to look; SIGTERM stops it and cleans up.
    let log = demo.log.lock().unwrap().clone();
    assert!(log.contains(&format!("open {api}/")), "{log}");
    let pid = demo.child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let status = demo.child.wait().unwrap();
    assert!(status.success(), "{status}");
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert!(left.is_empty(), "the demo left {left:?}");
    eprintln!("done after {:?}", started.elapsed());
}

/// Runs `node <script> <args>` from `web/`, failing the test with its output
/// unless it succeeds.
fn run_node(script: &str, args: &[&str]) -> String {
    let web = concat!(env!("CARGO_MANIFEST_DIR"), "/web");
    let output = Command::new("node")
        .arg(script)
        .args(args)
        .current_dir(web)
        .output()
        .expect("running node (Node.js is needed to build tracemap, so it is here)");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    eprintln!("{stdout}");
    assert!(
        output.status.success(),
        "node {script} failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_ui_shows_the_demo_in_chromium() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&chromium).is_file(),
        "the UI tests need Chromium at {chromium} (Debian: apt-get install chromium; \
         scripts/setup.sh installs it)"
    );
    let tmp = tempfile::tempdir().unwrap();
    let demo = start(tmp.path());
    let shots = concat!(env!("CARGO_TARGET_TMPDIR"), "/ui-screenshots");

    // A trace with markup in its names and attributes, sent over OTLP/HTTP.
    let otlp = format!("http://127.0.0.1:{}", demo.otlp_http_port);
    let deadline = Instant::now() + Duration::from_secs(20);
    poll(&format!("{}/api/services", demo.api), deadline, |_| true).await;
    let sent = run_node("tests/seed.mjs", &[&otlp, "0"]);
    let sent: Value = serde_json::from_str(sent.trim()).expect("seed.mjs prints JSON");
    let hostile = sent["xss"].as_str().unwrap().to_string();

    // ui.mjs waits for the map (the storm included) itself.
    let api = demo.api.clone();
    let shots_dir = shots.to_string();
    tokio::task::spawn_blocking(move || {
        run_node("tests/ui.mjs", &[&api, &shots_dir]);
        run_node("tests/xss.mjs", &[&api, &hostile, &shots_dir]);
    })
    .await
    .unwrap();
    drop(demo);
}
