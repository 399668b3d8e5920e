//! The benchmark suite (issue 8): the in-process figures, every ratio taken in
//! one run on the load generator's corpus (about 700 encoded bytes and 13
//! attributes per span, traces of 5–50 spans over 20 services, a third of them
//! PostgreSQL client spans), requests in time order over ten minutes.
//!
//! Five ways to take a request, interleaved block by block so the machine's
//! noise falls on all of them alike:
//! - `decode`: prost decode of the request, nothing else;
//! - `end to end`: decode, convert, limits, group, write, assemble, index,
//!   and the graph and every detector, completed in batches of 256 traces as
//!   the assembly task does (what a stored, indexed and analysed span costs);
//! - `analysis off`: the same without the graph and the detectors;
//! - `raw replay`: the write batches `end to end` committed in its last block,
//!   replayed as they are into a second store of the same layout;
//! - `X-Ray`: the same spans as X-Ray segment datagrams (the load generator's
//!   X-Ray mode), parsed, converted and then taken as `end to end` takes them.
//!
//! Then, apart: the memory a span held for assembly costs, and the bytes on
//! disk per span after compaction and RocksDB's write amplification.
//!
//! Run: `benches/run.sh` (this bench and the server-level figures) or
//! `cargo bench --bench suite`; `TRACEMAP_SUITE_REQUESTS` sets the corpus size
//! (512 spans per request). Under `cargo test --benches` it runs small: the
//! CI smoke run.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use tracemap::analysis::detectors::DetectorConfig;
use tracemap::analysis::graph::{GraphAnalysis, GraphMetrics};
use tracemap::analysis::{Analyzer, FindingMetrics, GraphLimits};
use tracemap::assembly::{prepare, Analysis, NoAnalysis};
use tracemap::ingest::{group_by_trace, now_us};
use tracemap::receivers::otlp::convert::convert_request;
use tracemap::storage::rocks::RocksOptions;
use tracemap::storage::TraceStore;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod corpus;

use corpus::pipeline::Pipeline;

/// Blocks per way of ingesting.
const ROUNDS: usize = 10;
/// X-Ray datagrams the UDP listener takes in one batch.
const XRAY_BATCH: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    Decode,
    EndToEnd,
    AnalysisOff,
    Raw,
    Xray,
}

const WAYS: [Way; 5] = [
    Way::Decode,
    Way::EndToEnd,
    Way::AnalysisOff,
    Way::Raw,
    Way::Xray,
];

/// Spans taken, wall time and process CPU time (all threads, RocksDB's
/// background work included) of one way.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    spans: usize,
    wall: Duration,
    cpu: Duration,
}

impl Tally {
    fn rate(&self) -> f64 {
        self.spans as f64 / self.wall.as_secs_f64()
    }

    fn per_cpu_second(&self) -> f64 {
        self.spans as f64 / self.cpu.as_secs_f64()
    }
}

/// One request of the corpus in both encodings.
struct Request {
    otlp: Vec<u8>,
    xray: Vec<Vec<u8>>,
    spans: usize,
}

fn quick() -> bool {
    // `cargo test --benches` passes no `--bench` flag.
    !std::env::args().any(|a| a == "--bench")
}

fn corpus(requests: u64) -> Vec<Request> {
    corpus::in_time_order(requests)
        .map(|request| Request {
            otlp: request.encode_to_vec(),
            xray: tracemap::loadgen::xray::datagrams(&request)
                .iter()
                .map(|d| d.as_bytes().to_vec())
                .collect(),
            spans: corpus::Shape::default().spans_per_request,
        })
        .collect()
}

fn cpu_time() -> Duration {
    // SAFETY: getrusage fills the struct it is given and reads nothing else.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1_000);
    time(usage.ru_utime) + time(usage.ru_stime)
}

fn rss_bytes() -> u64 {
    tracemap::loadgen::proc::rss_bytes(std::process::id()).expect("VmRSS")
}

fn analyzer() -> Analyzer {
    Analyzer::new(
        GraphAnalysis::new(GraphLimits::default(), GraphMetrics::default()),
        &DetectorConfig::default(),
        FindingMetrics::default(),
    )
}

/// The five ways, interleaved: block `n` of the corpus goes to `WAYS[n % 5]`.
fn ratios(corpus: &[Request]) -> [Tally; 5] {
    let analysis = analyzer();
    let end_to_end = &mut Pipeline::new();
    let analysis_off = &mut Pipeline::new();
    let raw = Pipeline::new();
    let xray = &mut Pipeline::new();
    end_to_end.store.record_writes();
    let mut recorded: (Vec<Vec<u8>>, usize) = (Vec::new(), 0);
    let mut tallies = [Tally::default(); 5];
    let blocks = corpus.chunks(corpus.len().div_ceil(ROUNDS * WAYS.len()).max(1));
    for (n, block) in blocks.enumerate() {
        let way = WAYS[n % WAYS.len()];
        let (wall, cpu) = (Instant::now(), cpu_time());
        let spans = match way {
            Way::Decode => block
                .iter()
                .map(|r| {
                    let request = ExportTraceServiceRequest::decode(&r.otlp[..]).expect("decodes");
                    std::hint::black_box(request);
                    r.spans
                })
                .sum(),
            Way::EndToEnd => {
                let analysis: &dyn Analysis = &analysis;
                let spans = block
                    .iter()
                    .map(|r| end_to_end.ingest(&r.otlp, Some(analysis)))
                    .sum();
                end_to_end.complete(analysis);
                recorded = (end_to_end.store.take_recorded(), spans);
                spans
            }
            Way::AnalysisOff => {
                let spans = block
                    .iter()
                    .map(|r| analysis_off.ingest(&r.otlp, Some(&NoAnalysis)))
                    .sum();
                analysis_off.complete(&NoAnalysis);
                spans
            }
            Way::Raw => {
                let (batches, spans) = std::mem::take(&mut recorded);
                for batch in &batches {
                    raw.store.replay(batch).expect("replay");
                }
                spans
            }
            Way::Xray => {
                let analysis: &dyn Analysis = &analysis;
                let datagrams: Vec<Vec<u8>> =
                    block.iter().flat_map(|r| r.xray.iter().cloned()).collect();
                // The copy above is the receive buffer; it is not timed.
                let (wall, cpu) = (Instant::now(), cpu_time());
                let spans: usize = datagrams
                    .chunks(XRAY_BATCH)
                    .map(|batch| xray.ingest_xray(batch, Some(analysis)))
                    .sum();
                xray.complete(analysis);
                tallies[4].spans += spans;
                tallies[4].wall += wall.elapsed();
                tallies[4].cpu += cpu_time() - cpu;
                continue;
            }
        };
        let tally = &mut tallies[n % WAYS.len()];
        tally.spans += spans;
        tally.wall += wall.elapsed();
        tally.cpu += cpu_time() - cpu;
    }
    for (way, tally) in WAYS.iter().zip(&tallies) {
        assert!(tally.spans > 0, "{way:?} took no span");
    }
    tallies
}

/// RSS growth per span held for assembly, in bytes: requests decoded,
/// converted, grouped and each trace's first chunk prepared as the assembly
/// task prepares it, and kept.
fn buffered(corpus: &[Request]) -> f64 {
    let keys = tracemap::config::IndexConfig::default().summary_keys();
    let known = Mutex::new(HashSet::new());
    let before = rss_bytes();
    let mut held = Vec::new();
    let mut spans = 0;
    for request in corpus {
        let decoded = ExportTraceServiceRequest::decode(&request.otlp[..]).expect("decodes");
        for chunk in group_by_trace(convert_request(decoded).spans) {
            spans += chunk.spans.len();
            held.push(prepare(
                chunk.trace_id,
                now_us(),
                chunk.spans,
                &keys,
                &known,
            ));
        }
    }
    let grown = rss_bytes().saturating_sub(before);
    assert!(!held.is_empty());
    grown as f64 / spans as f64
}

struct Disk {
    spans: usize,
    bytes_per_span: f64,
    by_family: Vec<(&'static str, u64)>,
    amplification: f64,
    counters: tracemap::storage::rocks::WriteCounters,
    /// Process CPU per span taking the corpus end to end until RocksDB's
    /// own compactions are done: the write path with its background work.
    cpu_us_per_span: f64,
}

/// Bytes on disk per span after compaction, and write amplification: the
/// whole corpus taken end to end into a store keeping RocksDB's statistics.
fn disk(corpus: &[Request]) -> Disk {
    let analysis = analyzer();
    let mut pipeline = Pipeline::with_options(&RocksOptions {
        statistics: true,
        ..RocksOptions::default()
    });
    let cpu = cpu_time();
    let spans = corpus
        .iter()
        .map(|r| pipeline.ingest(&r.otlp, Some(&analysis)))
        .sum();
    pipeline.complete(&analysis);
    let store = &pipeline.store;
    // Amplification as the store runs: flushed, its own compactions done.
    store
        .wait_for_compactions(Duration::from_secs(600))
        .expect("compactions");
    let counters = store.write_counters().expect("statistics are on");
    let cpu = cpu_time() - cpu;
    // Size as it ends up: everything compacted into the bottom level.
    store.compact().expect("compact");
    store
        .wait_for_compactions(Duration::from_secs(600))
        .expect("compactions");
    let by_family = store.disk_bytes_by_family().expect("sizes");
    let total: u64 = by_family.iter().map(|(_, b)| b).sum();
    Disk {
        spans,
        bytes_per_span: total as f64 / spans as f64,
        by_family,
        amplification: counters.amplification(),
        counters,
        cpu_us_per_span: cpu.as_secs_f64() * 1e6 / spans as f64,
    }
}

fn main() {
    // As the server runs (`main.rs`).
    tracemap::app::no_huge_pages();
    let quick = quick();
    let requests = std::env::var("TRACEMAP_SUITE_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 25 } else { 1_500 });
    let corpus = corpus(requests);
    let spans: usize = corpus.iter().map(|r| r.spans).sum();
    let otlp_bytes = corpus.iter().map(|r| r.otlp.len()).sum::<usize>() as f64 / spans as f64;
    let xray_bytes = corpus
        .iter()
        .flat_map(|r| r.xray.iter().map(Vec::len))
        .sum::<usize>() as f64
        / spans as f64;
    eprintln!(
        "corpus: {requests} requests, {spans} spans; {otlp_bytes:.0} OTLP bytes per span, {xray_bytes:.0} X-Ray datagram bytes per span"
    );

    if std::env::var("TRACEMAP_SUITE_ONLY").as_deref() == Ok("disk") {
        let disk = disk(&corpus);
        print_disk(&disk);
        return;
    }
    let held_requests = if quick { 10 } else { 200 };
    let held = buffered(&corpus[..held_requests.min(corpus.len())]);
    let tallies = ratios(&corpus);
    let disk = disk(&corpus);

    let [decode, end_to_end, off, raw, xray] = tallies;
    println!("| way | spans | spans/s | spans per CPU-second |");
    println!("|---|---:|---:|---:|");
    for (way, t) in WAYS.iter().zip(&tallies) {
        println!(
            "| {way:?} | {} | {:.0} | {:.0} |",
            t.spans,
            t.rate(),
            t.per_cpu_second()
        );
    }
    println!();
    println!("| figure | measured | target |");
    println!("|---|---:|---:|");
    let ratio = |name: &str, value: f64, target: &str| {
        println!("| {name} | {value:.2} | {target} |");
    };
    ratio(
        "R1 end to end ÷ decode",
        end_to_end.rate() / decode.rate(),
        "≥ 0.35",
    );
    ratio(
        "R2 end to end ÷ raw RocksDB replay",
        end_to_end.rate() / raw.rate(),
        "≥ 0.65",
    );
    ratio(
        "R4 analysis on ÷ off",
        end_to_end.rate() / off.rate(),
        "≥ 0.9",
    );
    ratio(
        "R5 X-Ray ÷ OTLP, spans per CPU-second",
        xray.per_cpu_second() / end_to_end.per_cpu_second(),
        "≥ 0.6",
    );
    ratio(
        "R8 RSS per held span ÷ encoded span",
        held / otlp_bytes,
        "≤ 1.5",
    );
    println!(
        "| disk bytes per span, compacted, indexes included ({} spans) | {:.1} | ≤ 80 |",
        disk.spans, disk.bytes_per_span
    );
    println!(
        "| write amplification (WAL + flush + compaction ÷ bytes written) | {:.2} | — |",
        disk.amplification
    );
    println!();
    println!(
        "RSS per held span: {held:.0} bytes; X-Ray path {:.0} spans/s wall",
        xray.rate()
    );
    print_disk(&disk);
}

fn print_disk(disk: &Disk) {
    let families: Vec<String> = disk
        .by_family
        .iter()
        .filter(|(_, b)| *b > 0)
        .map(|(cf, b)| format!("{cf} {:.1}", *b as f64 / disk.spans as f64))
        .collect();
    println!(
        "disk bytes per span: {:.1}; by column family: {}",
        disk.bytes_per_span,
        families.join(", ")
    );
    println!(
        "write amplification {:.2}: {:?}",
        disk.amplification, disk.counters
    );
    println!(
        "CPU per span end to end, flushes and compactions included: {:.1} µs",
        disk.cpu_us_per_span
    );
}
