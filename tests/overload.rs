//! Overload: the real RocksDB behind a deliberately slow store (every write
//! waits 40 ms), a 2 MiB in-flight budget, the process's address space
//! capped (RLIMIT_AS, as `prlimit` sets it) at 1 GiB over what it uses when
//! the flood starts, and 12 clients sending 256 KiB requests as fast as they
//! are acknowledged, each retrying refused ones when `RetryInfo` says. The budget holds (the in-flight gauge never passes
//! it; memory stays bounded), refusals are the retryable `UNAVAILABLE` with
//! `RetryInfo`, and every acknowledged span is stored.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{otlp_request, otlp_span, string_attr};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use tokio_util::sync::CancellationToken;
use tracemap::model::{
    Aggregate, Finding, GraphRow, GraphSubject, Trace, TraceChunk, TraceId, TraceSummary,
};
use tracemap::storage::{
    storm, FindingQuery, IndexTag, JournalKey, OpenTrace, OperationName, StorageError, TraceStore,
};

const BUDGET: usize = 2 << 20;
const CLIENTS: u64 = 12;
const REQUESTS_PER_CLIENT: u64 = 12;
const SPANS_PER_REQUEST: u64 = 300;

/// The real store, with every write slowed down.
struct SlowStore {
    inner: Arc<dyn TraceStore>,
    delay: Duration,
}

impl TraceStore for SlowStore {
    fn append(
        &self,
        received_at_us: u64,
        chunks: &[TraceChunk],
    ) -> Result<JournalKey, StorageError> {
        std::thread::sleep(self.delay);
        self.inner.append(received_at_us, chunks)
    }
    fn trace(&self, id: TraceId) -> Result<Option<Trace>, StorageError> {
        self.inner.trace(id)
    }
    fn trace_received_by(&self, id: TraceId, until_us: u64) -> Result<Option<Trace>, StorageError> {
        self.inner.trace_received_by(id, until_us)
    }
    fn flush(&self) -> Result<(), StorageError> {
        self.inner.flush()
    }
    fn open_traces(&self) -> Result<Vec<OpenTrace>, StorageError> {
        self.inner.open_traces()
    }
    fn is_open(&self, id: TraceId) -> Result<bool, StorageError> {
        self.inner.is_open(id)
    }
    fn was_completed(&self, id: TraceId) -> Result<bool, StorageError> {
        self.inner.was_completed(id)
    }
    fn complete(
        &self,
        summaries: &[TraceSummary],
        new_names: &[OperationName],
        settled: &[JournalKey],
        graph: &[GraphRow],
        findings: &[Finding],
    ) -> Result<(), StorageError> {
        self.inner
            .complete(summaries, new_names, settled, graph, findings)
    }
    fn findings(&self, query: &FindingQuery) -> Result<Vec<Finding>, StorageError> {
        self.inner.findings(query)
    }
    fn graph(
        &self,
        from_us: u64,
        to_us: u64,
    ) -> Result<Vec<(GraphSubject, Aggregate)>, StorageError> {
        self.inner.graph(from_us, to_us)
    }
    fn graph_storms(
        &self,
        from_us: u64,
        to_us: u64,
        rule: storm::StormRule,
    ) -> Result<HashSet<GraphSubject>, StorageError> {
        self.inner.graph_storms(from_us, to_us, rule)
    }
    fn expire_graph(&self, before_us: u64) -> Result<(), StorageError> {
        self.inner.expire_graph(before_us)
    }
    fn settle(&self, settled: &[JournalKey]) -> Result<(), StorageError> {
        self.inner.settle(settled)
    }
    fn expire(&self, before_us: u64) -> Result<(), StorageError> {
        self.inner.expire(before_us)
    }
    fn disk_bytes(&self) -> Result<u64, StorageError> {
        self.inner.disk_bytes()
    }
    fn oldest_partition_us(&self) -> Result<Option<u64>, StorageError> {
        self.inner.oldest_partition_us()
    }
    fn compact(&self) -> Result<(), StorageError> {
        self.inner.compact()
    }
    fn names(&self, service: Option<&str>) -> Result<Vec<OperationName>, StorageError> {
        self.inner.names(service)
    }
    fn summary(&self, id: TraceId) -> Result<Option<TraceSummary>, StorageError> {
        self.inner.summary(id)
    }
    fn scan_index(
        &self,
        tag: IndexTag,
        value: &str,
        from_us: u64,
        to_us: u64,
        limit: usize,
    ) -> Result<Vec<tracemap::storage::IndexHit>, StorageError> {
        self.inner.scan_index(tag, value, from_us, to_us, limit)
    }
}

fn status_bytes(field: &str) -> u64 {
    tracemap::loadgen::proc::status_bytes(std::process::id(), field).unwrap()
}

fn rss_bytes() -> u64 {
    status_bytes("VmRSS:")
}

/// Caps the process's address space (`prlimit`'s RLIMIT_AS) at what it
/// uses now plus `headroom`: past it, allocations fail and the test dies.
fn cap_memory(headroom: u64) -> u64 {
    let cap = status_bytes("VmSize:") + headroom;
    let limit = libc::rlimit {
        rlim_cur: cap,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: a valid rlimit for this process.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &limit) }, 0);
    cap
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_store_turns_a_flood_into_retries_not_memory_and_loses_nothing() {
    let data = tempfile::tempdir().unwrap();
    let mut config = common::test_config(data.path());
    config.limits.max_inflight_bytes = BUDGET;
    config.limits.max_message_bytes = 1 << 20;
    config.storage.min_free_disk_mb = 0;
    config.assembly.trace_idle = Duration::from_millis(200);
    let shutdown = CancellationToken::new();
    let running = tracemap::app::start_with(config, shutdown.clone(), |store| {
        Arc::new(SlowStore {
            inner: store,
            delay: Duration::from_millis(40),
        })
    })
    .await
    .unwrap();
    let grpc = format!("http://{}", running.otlp_grpc_addr);
    let api = format!("http://{}", running.http_addr);
    let rss_before = rss_bytes();
    let cap = cap_memory(1 << 30);

    // The in-flight gauge, sampled while the flood runs.
    let done = CancellationToken::new();
    let peak_inflight = Arc::new(AtomicU64::new(0));
    let peak_rss = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (done, peak_inflight, peak_rss, api) = (
            done.clone(),
            peak_inflight.clone(),
            peak_rss.clone(),
            api.clone(),
        );
        tokio::spawn(async move {
            while !done.is_cancelled() {
                let metrics = reqwest::get(format!("{api}/metrics"))
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap();
                let inflight = common::metric(&metrics, "tracemap_ingest_inflight_bytes")
                    .unwrap_or(0.0) as u64;
                peak_inflight.fetch_max(inflight, Ordering::Relaxed);
                peak_rss.fetch_max(rss_bytes(), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };

    let refusals = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let (grpc, refusals) = (grpc.clone(), refusals.clone());
            tokio::spawn(async move {
                let mut exporter = TraceServiceClient::connect(grpc).await.unwrap();
                for request in 0..REQUESTS_PER_CLIENT {
                    let mut trace = [0x0f; 16];
                    trace[0] = client as u8;
                    trace[1] = request as u8;
                    let spans: Vec<_> = (0..SPANS_PER_REQUEST)
                        .map(|s| {
                            let mut span = otlp_span(trace, s + 1, None, "flood");
                            span.attributes
                                .push(string_attr("payload", &"z".repeat(800)));
                            span
                        })
                        .collect();
                    loop {
                        match exporter.export(otlp_request("flood", spans.clone())).await {
                            Ok(_) => break,
                            Err(status) => {
                                assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
                                assert!(
                                    String::from_utf8_lossy(status.details()).contains("RetryInfo"),
                                    "{status:?}"
                                );
                                refusals.fetch_add(1, Ordering::Relaxed);
                                tokio::time::sleep(Duration::from_millis(20)).await;
                            }
                        }
                    }
                }
            })
        })
        .collect();
    for client in clients {
        client.await.unwrap();
    }
    done.cancel();
    sampler.await.unwrap();

    let refusals = refusals.load(Ordering::Relaxed);
    assert!(refusals > 0, "the flood never met the budget");
    let peak_inflight = peak_inflight.load(Ordering::Relaxed);
    assert!(peak_inflight <= BUDGET as u64, "in flight {peak_inflight}");
    let grown = peak_rss.load(Ordering::Relaxed).saturating_sub(rss_before);
    assert!(grown < 400 << 20, "RSS grew {} MiB", grown >> 20);

    // Every acknowledged request is there, whole.
    for client in 0..CLIENTS {
        for request in 0..REQUESTS_PER_CLIENT {
            let mut trace = [0x0f; 16];
            trace[0] = client as u8;
            trace[1] = request as u8;
            let (status, body) =
                common::get_json(&format!("{api}/api/v1/traces/{}", hex::encode(trace))).await;
            assert_eq!(status, 200);
            assert_eq!(
                body["spans"].as_array().unwrap().len() as u64,
                SPANS_PER_REQUEST
            );
        }
    }
    eprintln!(
        "{refusals} refusals; in flight at most {} KiB of {} KiB; RSS grew {} MiB; address space capped at {} MiB, peak {} MiB",
        peak_inflight >> 10,
        BUDGET >> 10,
        grown >> 20,
        cap >> 20,
        status_bytes("VmPeak:") >> 20
    );
    shutdown.cancel();
    running.wait().await.unwrap();
}
