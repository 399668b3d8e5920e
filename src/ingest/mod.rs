//! Ingest: group a decoded batch by trace and write it durably before the ack.
//!
//! Receivers reserve room in the in-flight byte budget *before* they decode a
//! request; when the budget is spent the request is refused with a retryable
//! status instead of being queued, so memory stays bounded under overload.
//! `write` returns only after the storage batch is durable.
//!
//! Ingest is where every receiver's spans meet, so the limits on what a client
//! may send are enforced here, once for all of them: per span
//! (`span_limits.rs`: attributes, value length, events, links — cut and
//! counted) and per trace (`trace_limit.rs`: spans beyond
//! `max_spans_per_trace` refused and reported back for partial success).

mod span_limits;
mod trace_limit;

pub use span_limits::{SpanLimits, TrimTally, Trimmed, TRUNCATED_KEY};
pub use trace_limit::{Admission, TraceSpanCounts};

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

use crate::assembly::Arrival;
use crate::model::{Span, TraceChunk, TraceId};
use crate::storage::{StorageError, TraceStore};
use crate::telemetry::Telemetry;

/// `limits.max_spans_per_trace` by default (the config's default).
pub const DEFAULT_MAX_SPANS_PER_TRACE: u32 = 50_000;

/// The budget is kept in KiB so a u32 permit count covers terabytes.
const BUDGET_UNIT: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("tracemap is at its in-flight limit; retry later")]
    Overloaded,
    #[error("storage write failed: {0}")]
    Storage(#[from] StorageError),
    #[error("storage writer stopped")]
    WriterStopped,
    #[error("the disk is almost full ({free_mib} MiB free, {reserve_mib} MiB kept in reserve); retry later")]
    DiskFull { free_mib: u64, reserve_mib: u64 },
}

/// Room reserved in the in-flight budget; released when dropped.
pub struct Reservation {
    _permit: OwnedSemaphorePermit,
    bytes: i64,
    telemetry: Arc<Telemetry>,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.telemetry.inflight_bytes_changed(-self.bytes);
    }
}

/// The `reason` label of spans refused over `max_spans_per_trace`.
pub const SPANS_PER_TRACE: &str = "spans_per_trace";

/// What a write stored and what it refused.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Written {
    /// Spans durably stored.
    pub stored: u64,
    /// Spans refused because their trace is at `max_spans_per_trace`.
    pub refused: u64,
    /// Why, for the client (`partial_success.error_message`), when any were.
    pub refusal: Option<String>,
}

pub struct Ingest {
    store: Arc<dyn TraceStore>,
    budget: Arc<Semaphore>,
    telemetry: Arc<Telemetry>,
    span_limits: SpanLimits,
    span_counts: Arc<TraceSpanCounts>,
    /// Where durable writes are reported for assembly, when it runs.
    arrivals: Option<mpsc::Sender<Vec<Arrival>>>,
    /// The data directory's free space: no room, no new spans.
    disk: Option<Arc<crate::storage::disk::DiskSpace>>,
}

impl Ingest {
    pub fn new(
        store: Arc<dyn TraceStore>,
        max_inflight_bytes: usize,
        telemetry: Arc<Telemetry>,
    ) -> Self {
        let units = (max_inflight_bytes / BUDGET_UNIT).clamp(1, Semaphore::MAX_PERMITS);
        Self {
            store,
            budget: Arc::new(Semaphore::new(units)),
            telemetry,
            span_limits: SpanLimits::default(),
            span_counts: Arc::new(TraceSpanCounts::new(DEFAULT_MAX_SPANS_PER_TRACE)),
            arrivals: None,
            disk: None,
        }
    }

    /// Refuses spans while `disk` is below its reserve.
    pub fn with_disk(mut self, disk: Arc<crate::storage::disk::DiskSpace>) -> Self {
        self.disk = Some(disk);
        self
    }

    /// Enforces `span_limits` on every span and counts spans per trace in
    /// `span_counts` (share it with assembly, which retires the counts of
    /// completed traces). Without this, the defaults apply.
    pub fn with_limits(
        mut self,
        span_limits: SpanLimits,
        span_counts: Arc<TraceSpanCounts>,
    ) -> Self {
        self.span_limits = span_limits;
        self.span_counts = span_counts;
        self
    }

    /// The per-trace span counts, for assembly to retire.
    pub fn span_counts(&self) -> Arc<TraceSpanCounts> {
        self.span_counts.clone()
    }

    /// Reports every durable write to assembly. The channel is bounded: when
    /// assembly falls behind, acknowledgements wait and the in-flight budget
    /// fills, so clients are told to retry rather than memory growing.
    pub fn with_assembly(mut self, arrivals: mpsc::Sender<Vec<Arrival>>) -> Self {
        self.arrivals = Some(arrivals);
        self
    }

    /// Reserves room for a request of `bytes` (its decoded wire size), or
    /// refuses at once when the budget is spent.
    pub fn reserve(&self, bytes: usize) -> Result<Reservation, IngestError> {
        if let Some(disk) = self.disk.as_ref().filter(|d| d.is_full()) {
            return Err(IngestError::DiskFull {
                free_mib: disk.free_bytes() >> 20,
                reserve_mib: disk.reserve_bytes() >> 20,
            });
        }
        let units = bytes.div_ceil(BUDGET_UNIT).max(1);
        let units = u32::try_from(units).map_err(|_| IngestError::Overloaded)?;
        let permit = self
            .budget
            .clone()
            .try_acquire_many_owned(units)
            .map_err(|_| IngestError::Overloaded)?;
        self.telemetry.inflight_bytes_changed(bytes as i64);
        Ok(Reservation {
            _permit: permit,
            bytes: bytes as i64,
            telemetry: self.telemetry.clone(),
        })
    }

    /// Brings the spans of one request within the limits and writes them in
    /// one batch; durable when `Ok`. Spans of a trace at `max_spans_per_trace`
    /// are refused (`Written::refused`); cuts and refusals are counted under
    /// `receiver` once the write succeeded (a failed write is sent again).
    pub async fn write(
        &self,
        receiver: &'static str,
        mut spans: Vec<Span>,
    ) -> Result<Written, IngestError> {
        if spans.is_empty() {
            return Ok(Written::default());
        }
        let mut trims = TrimTally::default();
        for span in &mut spans {
            trims.add(self.span_limits.enforce(span));
        }
        let mut chunks = group_by_trace(spans);
        let received_at_us = now_us();
        let store = self.store.clone();
        let counts = self.span_counts.clone();
        let result = tokio::task::spawn_blocking(move || {
            // Traces not counted yet are new or completed before: a completed
            // one starts from the spans it holds.
            let mut stored = HashMap::new();
            for trace_id in counts.unknown(&chunks) {
                if let Some(summary) = store.summary(trace_id)? {
                    stored.insert(
                        trace_id,
                        u32::try_from(summary.span_count).unwrap_or(u32::MAX),
                    );
                }
            }
            let admission = counts.admit(received_at_us, &mut chunks, &stored);
            if chunks.is_empty() {
                return Ok((None, chunks, admission));
            }
            match store.append(received_at_us, &chunks) {
                Ok(journal) => Ok((Some(journal), chunks, admission)),
                Err(error) => {
                    counts.release(&admission);
                    Err(error)
                }
            }
        })
        .await
        .map_err(|_| IngestError::WriterStopped)?;
        let (journal, chunks, admission) = match result {
            Ok(written) => written,
            Err(error) => {
                self.telemetry.store_error();
                return Err(error.into());
            }
        };
        for (reason, count) in trims.by_reason() {
            if count > 0 {
                self.telemetry.spans_truncated(receiver, reason, count);
            }
        }
        let refusal = admission.first_full.map(|trace_id| {
            self.telemetry
                .spans_rejected(receiver, SPANS_PER_TRACE, admission.refused);
            format!(
                "{} span(s) refused: trace {trace_id} reached limits.max_spans_per_trace ({})",
                admission.refused,
                self.span_counts.max_spans()
            )
        });
        let stored: u64 = chunks.iter().map(|c| c.spans.len() as u64).sum();
        let written = Written {
            stored,
            refused: admission.refused,
            refusal,
        };
        let Some(journal) = journal else {
            return Ok(written);
        };
        self.telemetry.spans_stored(stored);
        if let Some(assembly) = &self.arrivals {
            // Assembly completes the traces from these spans, without
            // reading back what was just written.
            let arrivals = chunks
                .into_iter()
                .map(|chunk| Arrival {
                    trace_id: chunk.trace_id,
                    received_at_us,
                    journal,
                    spans: chunk.spans,
                })
                .collect();
            // The write is durable and in the `open` journal, so a
            // stopped assembly (shutdown) loses nothing: it recovers.
            let _ = assembly.send(arrivals).await;
        }
        Ok(written)
    }
}

/// Splits a batch into one chunk per trace, keeping the spans' order.
pub fn group_by_trace(spans: Vec<Span>) -> Vec<TraceChunk> {
    let mut index: HashMap<TraceId, usize> = HashMap::new();
    let mut chunks: Vec<TraceChunk> = Vec::new();
    for span in spans {
        let at = *index.entry(span.trace_id).or_insert_with(|| {
            chunks.push(TraceChunk {
                trace_id: span.trace_id,
                spans: Vec::new(),
            });
            chunks.len() - 1
        });
        chunks[at].spans.push(span);
    }
    chunks
}

pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SpanId;
    use crate::storage::memory::MemoryStore;

    fn span(trace: u8, id: u8) -> Span {
        Span {
            trace_id: TraceId([trace; 16]),
            span_id: SpanId([id; 8]),
            ..Span::default()
        }
    }

    #[test]
    fn groups_by_trace_in_arrival_order() {
        let chunks = group_by_trace(vec![span(1, 1), span(2, 2), span(1, 3)]);
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks[0].trace_id, TraceId([1; 16]));
        let ids: Vec<_> = chunks[0].spans.iter().map(|s| s.span_id).collect();
        assert_eq!(ids, vec![SpanId([1; 8]), SpanId([3; 8])]);
        assert_eq!(chunks[1].spans.len(), 1);
    }

    #[test]
    fn budget_refuses_when_spent_and_recovers_when_released() {
        let telemetry = Arc::new(Telemetry::new());
        let ingest = Ingest::new(Arc::new(MemoryStore::new()), 10 * 1024, telemetry);
        let first = ingest.reserve(8 * 1024).unwrap();
        assert!(matches!(
            ingest.reserve(4 * 1024),
            Err(IngestError::Overloaded)
        ));
        drop(first);
        ingest.reserve(4 * 1024).unwrap();
    }

    #[tokio::test]
    async fn written_spans_are_readable() {
        let store = Arc::new(MemoryStore::new());
        let ingest = Ingest::new(store.clone(), 1 << 20, Arc::new(Telemetry::new()));
        let written = ingest
            .write("test", vec![span(1, 1), span(1, 2)])
            .await
            .unwrap();
        assert_eq!(written.stored, 2);
        let trace = store.trace(TraceId([1; 16])).unwrap().unwrap();
        assert_eq!(trace.spans.len(), 2);
    }

    #[tokio::test]
    async fn limits_apply_to_every_write_and_are_counted() {
        let telemetry = Arc::new(Telemetry::new());
        let store = Arc::new(MemoryStore::new());
        let limits = SpanLimits {
            max_attributes: 2,
            ..SpanLimits::default()
        };
        let ingest = Ingest::new(store.clone(), 1 << 20, telemetry.clone())
            .with_limits(limits, Arc::new(TraceSpanCounts::new(3)));
        let wide = Span {
            attributes: (0..5)
                .map(|i| {
                    crate::model::KeyValue::new(format!("k{i}"), crate::model::AttrValue::Int(i))
                })
                .collect(),
            ..span(1, 1)
        };
        let written = ingest
            .write("otlp_grpc", vec![wide, span(1, 2), span(2, 1)])
            .await
            .unwrap();
        assert_eq!((written.stored, written.refused), (3, 0));
        let written = ingest
            .write("otlp_grpc", vec![span(1, 3), span(1, 4), span(2, 2)])
            .await
            .unwrap();
        assert_eq!((written.stored, written.refused), (2, 1));
        let refusal = written.refusal.unwrap();
        assert!(
            refusal.contains("1 span(s) refused")
                && refusal.contains(&TraceId([1; 16]).to_string())
                && refusal.contains("max_spans_per_trace (3)"),
            "{refusal}"
        );
        let trace = store.trace(TraceId([1; 16])).unwrap().unwrap();
        assert_eq!(trace.spans.len(), 3);
        let kept = trace
            .spans
            .iter()
            .find(|s| s.span_id == SpanId([1; 8]))
            .unwrap();
        assert_eq!((kept.attributes.len(), kept.dropped_attributes), (2, 3));
        let text = telemetry.encode();
        for series in [
            "tracemap_spans_truncated_total{receiver=\"otlp_grpc\",reason=\"attributes\"} 1",
            "tracemap_spans_rejected_total{receiver=\"otlp_grpc\",reason=\"spans_per_trace\"} 1",
            "tracemap_spans_stored_total 5",
        ] {
            assert!(text.contains(series), "{series} missing from {text}");
        }
    }

    /// A trace completed before starts from the spans its summary counted,
    /// read from storage: a late burst cannot add another full trace's worth.
    #[tokio::test]
    async fn a_completed_trace_counts_what_storage_holds() {
        let store = Arc::new(MemoryStore::new());
        let counts = Arc::new(TraceSpanCounts::new(4));
        let ingest = Ingest::new(store.clone(), 1 << 20, Arc::new(Telemetry::new()))
            .with_limits(SpanLimits::default(), counts.clone());
        ingest
            .write("test", vec![span(1, 1), span(1, 2), span(1, 3)])
            .await
            .unwrap();
        let trace = store.trace(TraceId([1; 16])).unwrap().unwrap();
        let summary = crate::model::TraceSummary::of(&trace, &Default::default(), true);
        store.complete(&[summary], &[], &[], &[], &[]).unwrap();
        counts.retire(TraceId([1; 16]), u64::MAX);
        assert!(counts.is_empty());
        let written = ingest
            .write("test", vec![span(1, 4), span(1, 5)])
            .await
            .unwrap();
        assert_eq!((written.stored, written.refused), (1, 1));
    }
}
