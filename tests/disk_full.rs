//! The disk filling up, for real: the data directory on a 256 MiB tmpfs
//! mounted by the test (it runs as root here, as CI does), filled while
//! spans arrive — by the spans and by another writer, as on a shared volume
//! — until less than `min_free_disk_mb` is left. Ingest is refused with the
//! retryable statuses, readiness says why, every span acknowledged before is
//! still there; when the other writer's file goes, ingest resumes by itself.
//! (RocksDB preallocates its write-ahead log: a fresh store takes about
//! 70 MiB of the filesystem before its first write.)

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{get_json, otlp_request, otlp_span, TestServer};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use prost::Message;

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(mib: u64) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("running mount");
        assert!(
            status.success(),
            "mounting a tmpfs failed ({status}): this test needs root, as CI has"
        );
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

fn free_mib(path: &Path) -> u64 {
    let output = Command::new("df")
        .args(["--output=avail", "-B1M"])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .nth(1)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Fills the filesystem until `leave` MiB are free.
fn fill(path: &Path, leave: u64) -> PathBuf {
    let filler = path.join("filler");
    let mib = free_mib(path).saturating_sub(leave);
    let block = vec![1u8; 1 << 20];
    let mut file = std::fs::File::create(&filler).unwrap();
    for _ in 0..mib {
        std::io::Write::write_all(&mut file, &block).unwrap();
    }
    file.sync_all().unwrap();
    filler
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_retryably_and_recovers_when_space_returns() {
    let tmpfs = Tmpfs::mount(256);
    let data_dir = tmpfs.path().join("data");
    let server = TestServer::start_with(|config| {
        config.data_dir = data_dir.clone();
        config.storage.min_free_disk_mb = 24;
        // Small memtables: the WAL and flushes are what fills the disk.
        config.storage.block_cache_mb = 8;
    })
    .await;
    let mut grpc = TraceServiceClient::connect(server.grpc_url.clone())
        .await
        .unwrap();
    let export = |n: u64| {
        let spans = (0..50)
            .map(|i| {
                let mut span = otlp_span([n as u8 + 1; 16], n * 1_000 + i + 1, None, "write");
                // Random text: it does not compress away.
                let payload: String = (0..2_000)
                    .map(|_| char::from(b'a' + rand::random::<u8>() % 26))
                    .collect();
                span.attributes
                    .push(common::string_attr("payload", &payload));
                span
            })
            .collect();
        otlp_request("filler", spans)
    };

    // Room for a few more MiB above the reserve; send until refused.
    let filler = fill(tmpfs.path(), 24 + 6);
    // The other writer: 1 MiB every 100 ms.
    let growing = filler.clone();
    let other_writer = std::thread::spawn(move || {
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&growing)
            .unwrap();
        let block = vec![2u8; 1 << 20];
        for _ in 0..40 {
            if std::io::Write::write_all(&mut file, &block).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let mut acknowledged = Vec::new();
    let started = Instant::now();
    let refusal = loop {
        let n = acknowledged.len() as u64;
        match grpc.export(export(n)).await {
            Ok(_) => acknowledged.push(n),
            Err(status) => break status,
        }
        assert!(started.elapsed() < Duration::from_secs(30), "never refused");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(refusal.code(), tonic::Code::Unavailable, "{refusal:?}");
    assert!(refusal.message().contains("disk"), "{refusal:?}");
    assert!(
        !acknowledged.is_empty(),
        "refused before anything was written"
    );
    other_writer.join().unwrap();

    // HTTP says 503 with Retry-After; readiness says why.
    let http = reqwest::Client::new();
    let response = http
        .post(&server.otlp_http_url)
        .header("content-type", "application/x-protobuf")
        .body(export(999).encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    let ready = http
        .get(format!("{}/readyz", server.api_url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    assert!(ready.text().await.unwrap().contains("disk almost full"));

    // Everything acknowledged is readable.
    for n in &acknowledged {
        let id = hex::encode([*n as u8 + 1; 16]);
        let (status, trace) = get_json(&format!("{}/api/v1/traces/{id}", server.api_url)).await;
        assert_eq!(status, 200, "{id}");
        assert_eq!(trace["spans"].as_array().unwrap().len(), 50, "{id}");
    }

    // Space returns: ingest and readiness come back by themselves.
    std::fs::remove_file(&filler).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let ready = http
            .get(format!("{}/readyz", server.api_url))
            .send()
            .await
            .unwrap();
        if ready.status() == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "still not ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    grpc.export(export(200)).await.unwrap();
    let (_, metrics) = common::get_text(&format!("{}/metrics", server.api_url)).await;
    assert!(
        common::metric(
            &metrics,
            "tracemap_requests_rejected_total{receiver=\"otlp_grpc\",reason=\"disk_full\"}"
        ) >= Some(1.0),
        "{metrics}"
    );
    server.stop().await;
}
