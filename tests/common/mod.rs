//! Shared test harness: the real server, in-process on free ports or as a child
//! process of the built binary, plus small HTTP and OTLP helpers.
#![allow(dead_code)]

pub mod grpc;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use tokio_util::sync::CancellationToken;
use tracemap::app::{self, Running};
use tracemap::config::Config;

/// The defaults on OS-chosen ports with data in `data_dir`, as the
/// in-process test servers run.
pub fn test_config(data_dir: &Path) -> Config {
    let mut config = Config {
        data_dir: data_dir.to_path_buf(),
        otlp_grpc_port: 0,
        otlp_http_port: 0,
        http_port: 0,
        xray_port: 0,
        zipkin_port: 0,
        ..Config::default()
    };
    // A shared test machine's disk may run low; only the disk test wants
    // the free-space reserve.
    config.storage.min_free_disk_mb = 0;
    config
}

/// A server running inside the test process.
pub struct TestServer {
    pub grpc_url: String,
    pub otlp_http_url: String,
    pub api_url: String,
    /// X-Ray daemon address: UDP segments, TCP sampling.
    pub xray_addr: std::net::SocketAddr,
    pub zipkin_url: String,
    pub data_dir: tempfile::TempDir,
    token: CancellationToken,
    running: Option<Running>,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let data_dir = tempfile::tempdir().unwrap();
        let mut config = test_config(data_dir.path());
        adjust(&mut config);
        let token = CancellationToken::new();
        let running = app::start(config, token.clone()).await.unwrap();
        Self {
            grpc_url: format!("http://{}", running.otlp_grpc_addr),
            otlp_http_url: format!("http://{}/v1/traces", running.otlp_http_addr),
            api_url: format!("http://{}", running.http_addr),
            xray_addr: running.xray_addr,
            zipkin_url: format!("http://{}/api/v2/spans", running.zipkin_addr),
            data_dir,
            token,
            running: Some(running),
        }
    }

    pub async fn stop(mut self) {
        self.token.cancel();
        self.running.take().unwrap().wait().await.unwrap();
    }
}

/// GETs a URL and returns the status and the JSON body (Null when not JSON).
pub async fn get_json(url: &str) -> (u16, serde_json::Value) {
    let response = reqwest::get(url).await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
    )
}

/// One stored span, read back through the native API; panics when absent.
pub async fn stored_span(api_url: &str, trace_id: &str, span_id: &str) -> serde_json::Value {
    let (status, body) = get_json(&format!("{api_url}/api/v1/traces/{trace_id}")).await;
    assert_eq!(status, 200, "{body}");
    body["spans"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["span_id"] == span_id)
        .cloned()
        .unwrap_or_else(|| panic!("span {span_id} missing from {body}"))
}

/// Polls `url` (JSON, answering 200) until `ready` says it holds what the
/// test sent; fails the test after 60 s.
pub async fn poll_json(url: &str, ready: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = get_json(url).await;
        assert_eq!(status, 200, "{url}: {body}");
        if ready(&body) {
            return body;
        }
        assert!(Instant::now() < deadline, "{url} never got there: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn get_text(url: &str) -> (u16, String) {
    let response = reqwest::get(url).await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// The value of one metric line (exact name and labels) from a `/metrics` text.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

pub fn string_attr(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        key_strindex: 0,
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
    }
}

pub fn int_attr(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.into(),
        key_strindex: 0,
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(value)),
        }),
    }
}

/// A span of about 700 encoded bytes, as the benchmarks use.
pub fn otlp_span(trace_id: [u8; 16], span_id: u64, parent: Option<u64>, name: &str) -> Span {
    Span {
        trace_id: trace_id.to_vec(),
        span_id: span_id.to_be_bytes().to_vec(),
        parent_span_id: parent.map(|p| p.to_be_bytes().to_vec()).unwrap_or_default(),
        name: name.into(),
        kind: 2,
        start_time_unix_nano: 1_700_000_000_000_000_000 + span_id,
        end_time_unix_nano: 1_700_000_000_005_000_000 + span_id,
        attributes: vec![
            string_attr("http.request.method", "GET"),
            int_attr("http.response.status_code", 200),
            string_attr("correlation_id", &format!("req_{span_id}")),
        ],
        ..Span::default()
    }
}

pub fn otlp_request(service: &str, spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![string_attr("service.name", service)],
                ..Resource::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    }
}

/// The Python with the OpenTelemetry and X-Ray SDKs: `$TRACEMAP_PYTHON`, else
/// the venv `scripts/setup.sh` makes.
pub fn python() -> PathBuf {
    if let Some(path) = std::env::var_os("TRACEMAP_PYTHON") {
        return PathBuf::from(path);
    }
    let home = std::env::var_os("HOME").expect("HOME is set");
    let venv = PathBuf::from(home).join(".cache/tracemap/venv/bin/python");
    assert!(
        venv.exists(),
        "no Python with the OpenTelemetry SDK: run scripts/setup.sh or set TRACEMAP_PYTHON"
    );
    venv
}

/// Runs a script from `tests/python/` with `args`; panics with its stderr on failure.
pub async fn run_python(script: &str, args: Vec<String>) -> String {
    let path = format!("{}/tests/python/{script}", env!("CARGO_MANIFEST_DIR"));
    let output = tokio::task::spawn_blocking(move || {
        Command::new(python())
            .arg(path)
            .args(args)
            .output()
            .expect("running a Python test client")
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "python client failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The `tracemap serve` binary as a child process, on fixed free ports.
pub struct ServerProcess {
    pub child: Child,
    pub grpc_port: u16,
    pub otlp_http_port: u16,
    pub http_port: u16,
    pub data_dir: PathBuf,
}

impl ServerProcess {
    pub fn spawn(data_dir: &Path) -> Self {
        Self::spawn_on(data_dir, free_port(), free_port(), free_port())
    }

    pub fn spawn_on(data_dir: &Path, grpc_port: u16, otlp_http_port: u16, http_port: u16) -> Self {
        Self::spawn_with(data_dir, (grpc_port, otlp_http_port, http_port), &[])
    }

    /// Spawns with extra command-line arguments (a `--config` file, say).
    pub fn spawn_with(data_dir: &Path, ports: (u16, u16, u16), extra: &[&str]) -> Self {
        let (grpc_port, otlp_http_port, http_port) = ports;
        let child = Command::new(env!("CARGO_BIN_EXE_tracemap"))
            .args(["serve", "--data-dir"])
            .arg(data_dir)
            .args(["--otlp-grpc-port", &grpc_port.to_string()])
            .args(["--otlp-http-port", &otlp_http_port.to_string()])
            .args(["--http-port", &http_port.to_string()])
            // Port 0: the server binds what the OS gives it, with no window for
            // another process to take a port picked here first.
            .args(["--xray-port", "0"])
            .args(["--zipkin-port", "0"])
            .args(extra)
            .env("TRACEMAP_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting the tracemap binary");
        let server = Self {
            child,
            grpc_port,
            otlp_http_port,
            http_port,
            data_dir: data_dir.to_path_buf(),
        };
        server.wait_ready();
        server
    }

    pub fn api_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    pub fn grpc_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.grpc_port)
    }

    pub fn otlp_http_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1/traces", self.otlp_http_port)
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let address = format!("127.0.0.1:{}", self.http_port);
        while Instant::now() < deadline {
            if let Ok(mut stream) = std::net::TcpStream::connect(&address) {
                use std::io::{Read, Write};
                let _ = stream.write_all(b"GET /readyz HTTP/1.0\r\n\r\n");
                let mut reply = String::new();
                let _ = stream.read_to_string(&mut reply);
                if reply.starts_with("HTTP/1.0 200") || reply.starts_with("HTTP/1.1 200") {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("tracemap did not become ready on {address}");
    }

    /// Peak resident memory of the process so far, in bytes.
    pub fn peak_rss_bytes(&self) -> u64 {
        tracemap::loadgen::proc::status_bytes(self.child.id(), "VmHWM:").unwrap()
    }

    pub fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, then waits for a clean exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        self.child.wait().unwrap()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Rust OpenTelemetry SDK tracer provider for `service` that records into
/// memory, as an instrumented service's SDK would before exporting.
pub fn sdk_provider(
    service: &str,
) -> (
    opentelemetry_sdk::trace::SdkTracerProvider,
    opentelemetry_sdk::trace::InMemorySpanExporter,
) {
    let memory = opentelemetry_sdk::trace::InMemorySpanExporter::default();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_simple_exporter(memory.clone())
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(service.to_string())
                .build(),
        )
        .build();
    (provider, memory)
}
