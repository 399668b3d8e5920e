//! Ingest: group a decoded batch by trace and write it durably before the ack.
//!
//! Receivers reserve room in the in-flight byte budget *before* they decode a
//! request; when the budget is spent the request is refused with a retryable
//! status instead of being queued, so memory stays bounded under overload.
//! `write` returns only after the storage batch is durable.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

use crate::assembly::Arrival;
use crate::model::{Span, TraceChunk, TraceId};
use crate::storage::{StorageError, TraceStore};
use crate::telemetry::Telemetry;

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

pub struct Ingest {
    store: Arc<dyn TraceStore>,
    budget: Arc<Semaphore>,
    telemetry: Arc<Telemetry>,
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
            arrivals: None,
            disk: None,
        }
    }

    /// Refuses spans while `disk` is below its reserve.
    pub fn with_disk(mut self, disk: Arc<crate::storage::disk::DiskSpace>) -> Self {
        self.disk = Some(disk);
        self
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

    /// Writes the spans of one request in one batch; durable when `Ok`.
    pub async fn write(&self, spans: Vec<Span>) -> Result<(), IngestError> {
        if spans.is_empty() {
            return Ok(());
        }
        let count = spans.len() as u64;
        let chunks = group_by_trace(spans);
        let received_at_us = now_us();
        let store = self.store.clone();
        let result = tokio::task::spawn_blocking(move || {
            store
                .append(received_at_us, &chunks)
                .map(|journal| (journal, chunks))
        })
        .await
        .map_err(|_| IngestError::WriterStopped)?;
        match result {
            Ok((journal, chunks)) => {
                self.telemetry.spans_stored(count);
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
                Ok(())
            }
            Err(error) => {
                self.telemetry.store_error();
                Err(error.into())
            }
        }
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
        ingest.write(vec![span(1, 1), span(1, 2)]).await.unwrap();
        let trace = store.trace(TraceId([1; 16])).unwrap().unwrap();
        assert_eq!(trace.spans.len(), 2);
    }
}
