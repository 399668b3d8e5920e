//! Damaged storage, on the real binary: a write-ahead log torn mid-record by
//! a crash starts cleanly; a corrupted table file is reported — readiness
//! false, or the process stopping, with a message naming `tracemap repair` —
//! and the repair recovers what can be read.

mod common;

use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, get_json, otlp_request, otlp_span, ServerProcess};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;

const TRACES: u8 = 100;

async fn send_traces(server: &ServerProcess, traces: std::ops::Range<u8>) {
    let mut client = TraceServiceClient::connect(server.grpc_url())
        .await
        .unwrap();
    for t in traces {
        let spans = (0..20)
            .map(|s| {
                let mut span = otlp_span([t + 1; 16], s + 1, None, "stored");
                span.attributes.push(common::string_attr(
                    "payload",
                    &format!("{t}-{s}-{}", "x".repeat(500)),
                ));
                span
            })
            .collect();
        client.export(otlp_request("faults", spans)).await.unwrap();
    }
}

fn files(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == extension))
        .collect();
    found.sort_by_key(|p| std::fs::metadata(p).unwrap().len());
    found
}

async fn readable_traces(api: &str) -> usize {
    let mut readable = 0;
    for t in 0..TRACES {
        let id = hex::encode([t + 1; 16]);
        let (status, _) = get_json(&format!("{api}/api/v1/traces/{id}")).await;
        readable += usize::from(status == 200);
    }
    readable
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_write_ahead_log_tail_starts_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::spawn(dir.path());
    send_traces(&server, 0..TRACES).await;
    server.kill9();
    // The crash tore the last record: cut the log mid-record.
    let log = files(dir.path(), "log").pop().expect("a write-ahead log");
    let length = std::fs::metadata(&log).unwrap().len();
    assert!(length > 100, "{length}");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(length - 37)
        .unwrap();
    let server = ServerProcess::spawn(dir.path());
    // All but the torn request are there.
    let readable = readable_traces(&server.api_url()).await;
    assert!(readable >= TRACES as usize - 1, "{readable}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_table_fails_readiness_and_repair_recovers() {
    let dir = tempfile::tempdir().unwrap();
    // Two halves, each ended by a clean stop that flushes it into table
    // files of its own: damage to one half's spans leaves the other's.
    for half in [0..TRACES / 2, TRACES / 2..TRACES] {
        let mut server = ServerProcess::spawn(dir.path());
        send_traces(&server, half).await;
        assert!(server.terminate().success());
    }
    let table = files(dir.path(), "sst").pop().expect("a table file");
    let length = std::fs::metadata(&table).unwrap().len();
    {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .open(&table)
            .unwrap();
        file.seek(SeekFrom::Start(length / 3)).unwrap();
        file.write_all(&vec![0xA5; 4096]).unwrap();
    }

    // Started again, it finds the damage one way or the other: the check
    // after start turns readiness false, or recovery reads the damaged block
    // first and the process stops. Either way it names the way out.
    let http_port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tracemap"))
        .args(["serve", "--data-dir"])
        .arg(dir.path())
        .args(["--otlp-grpc-port", &free_port().to_string()])
        .args(["--otlp-http-port", &free_port().to_string()])
        .args(["--http-port", &http_port.to_string()])
        .args(["--xray-port", "0", "--zipkin-port", "0"])
        .env("TRACEMAP_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let readyz = format!("http://127.0.0.1:{http_port}/readyz");
    let deadline = Instant::now() + Duration::from_secs(30);
    let message = loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
            assert!(!status.success(), "{stderr}");
            break stderr;
        }
        if let Ok(response) = reqwest::get(&readyz).await {
            if response.status() == 503 {
                let text = response.text().await.unwrap();
                if text.contains("storage check failed") {
                    child.kill().unwrap();
                    child.wait().unwrap();
                    break text;
                }
            }
        }
        assert!(Instant::now() < deadline, "the damage was never reported");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(message.contains("tracemap repair --data-dir"), "{message}");
    assert!(message.to_lowercase().contains("corrupt"), "{message}");

    // `tracemap repair` keeps what can be read; the store is ready again.
    let repaired = Command::new(env!("CARGO_BIN_EXE_tracemap"))
        .args(["repair", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&repaired.stdout);
    assert!(
        repaired.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&repaired.stderr)
    );
    assert!(said.contains("repaired:"), "{said}");
    let server = ServerProcess::spawn(dir.path());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, _) = get_json(&format!("{}/readyz", server.api_url())).await;
    assert_eq!(status, 200);
    let readable = readable_traces(&server.api_url()).await;
    assert!(
        (TRACES as usize / 2..TRACES as usize).contains(&readable),
        "{readable} readable: the undamaged half should be"
    );
    eprintln!("{readable} of {TRACES} traces readable after the repair");
}
