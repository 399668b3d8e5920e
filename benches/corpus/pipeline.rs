//! The ingest path as the server runs it, driven in process on a fresh
//! RocksDB store: decode, convert, group by trace and write one request; with
//! assembly, each trace's first chunk prepared on arrival and the traces
//! completed in batches of `BATCH` (the assembly task's `MAX_BATCH`), one
//! write per batch.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use tracemap::assembly::{complete_traces, prepare, Analysis, Pending};
use tracemap::ingest::{group_by_trace, now_us, SpanLimits};
use tracemap::model::{Span, SummaryKeys};
use tracemap::receivers::otlp::convert::convert_request;
use tracemap::receivers::xray::convert::convert_segment;
use tracemap::receivers::xray::segment::parse_datagram;
use tracemap::storage::rocks::{RocksOptions, RocksStore};
use tracemap::storage::{JournalKey, OperationName, TraceStore};

/// Traces completed in one batch, at most (as `MAX_BATCH`).
pub const BATCH: usize = 256;

pub struct Pipeline {
    pub store: Arc<RocksStore>,
    _dir: tempfile::TempDir,
    pub keys: SummaryKeys,
    limits: SpanLimits,
    known: Mutex<HashSet<OperationName>>,
    /// Traces waiting for completion, and the journal entries they settle.
    pending: Vec<Pending>,
    journal: Vec<JournalKey>,
}

impl Pipeline {
    pub fn new() -> Self {
        Self::with_options(&RocksOptions::default())
    }

    pub fn with_options(options: &RocksOptions) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Arc::new(RocksStore::open(dir.path(), options).expect("open"));
        Self {
            store,
            _dir: dir,
            keys: tracemap::config::IndexConfig::default().summary_keys(),
            limits: SpanLimits::default(),
            known: Mutex::new(HashSet::new()),
            pending: Vec::new(),
            journal: Vec::new(),
        }
    }

    /// Ingests one encoded request and returns its span count: written only
    /// (`None`), or also handed to assembly, completed with `analysis` once
    /// a batch is full.
    pub fn ingest(&mut self, payload: &[u8], analysis: Option<&dyn Analysis>) -> usize {
        let request = ExportTraceServiceRequest::decode(payload).expect("corpus decodes");
        self.ingest_spans(convert_request(request).spans, analysis)
    }

    /// Ingests X-Ray datagrams as the UDP listener does: parsed, converted and
    /// written as one batch.
    pub fn ingest_xray(&mut self, datagrams: &[Vec<u8>], analysis: Option<&dyn Analysis>) -> usize {
        let mut spans = Vec::new();
        for datagram in datagrams {
            let segment = parse_datagram(datagram).expect("corpus datagram parses");
            spans.extend(convert_segment(segment, 32).expect("corpus segment converts"));
        }
        self.ingest_spans(spans, analysis)
    }

    /// Ingests converted spans: limits enforced, grouped by trace, written,
    /// and handed to assembly when `analysis` is given.
    pub fn ingest_spans(&mut self, mut spans: Vec<Span>, analysis: Option<&dyn Analysis>) -> usize {
        for span in &mut spans {
            self.limits.enforce(span);
        }
        let chunks = group_by_trace(spans);
        let spans = chunks.iter().map(|c| c.spans.len()).sum();
        let received_at_us = now_us();
        let journal = self.store.append(received_at_us, &chunks).expect("append");
        let Some(analysis) = analysis else {
            return spans;
        };
        let all: Vec<&Span> = chunks.iter().flat_map(|c| &c.spans).collect();
        analysis.arrived(&all);
        for chunk in chunks {
            self.pending.push(prepare(
                chunk.trace_id,
                received_at_us,
                chunk.spans,
                &self.keys,
                &self.known,
            ));
        }
        self.journal.push(journal);
        if self.pending.len() >= BATCH {
            self.complete(analysis);
        }
        spans
    }

    /// Completes every trace waiting, in one batch.
    pub fn complete(&mut self, analysis: &dyn Analysis) {
        let pending = std::mem::take(&mut self.pending);
        let settled = std::mem::take(&mut self.journal);
        complete_traces(
            self.store.as_ref(),
            pending,
            &self.keys,
            &self.known,
            &settled,
            analysis,
        )
        .expect("complete");
    }
}

/// Spans/s of two ways to ingest, `(first, second)`: the payloads are cut
/// into 40 blocks that alternate between them, so the machine's noise falls on
/// both alike. `block(payloads, second)` ingests one block, finishing inside
/// the timing, and returns its spans.
pub fn interleaved_rates(
    payloads: &[Vec<u8>],
    mut block: impl FnMut(&[Vec<u8>], bool) -> usize,
) -> (f64, f64) {
    let mut time = [Duration::ZERO; 2];
    let mut spans = [0usize; 2];
    for (n, payloads) in payloads.chunks(payloads.len().div_ceil(40)).enumerate() {
        let side = n % 2;
        let started = Instant::now();
        spans[side] += block(payloads, side == 1);
        time[side] += started.elapsed();
    }
    let rate = |side: usize| spans[side] as f64 / time[side].as_secs_f64();
    (rate(0), rate(1))
}
