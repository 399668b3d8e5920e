//! An in-memory `TraceStore` for unit tests. Not durable; never used by `serve`.

use std::collections::HashMap;
use std::sync::Mutex;

use super::{merge_chunks, StorageError, TraceStore};
use crate::model::{Span, Trace, TraceChunk, TraceId};

/// The chunks of one trace with the time each was received.
type Chunks = Vec<(u64, Vec<Span>)>;

#[derive(Default)]
pub struct MemoryStore {
    chunks: Mutex<HashMap<TraceId, Chunks>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }
}

impl TraceStore for MemoryStore {
    fn append(&self, received_at_us: u64, chunks: &[TraceChunk]) -> Result<(), StorageError> {
        let mut map = self.chunks.lock().expect("memory store lock");
        for chunk in chunks {
            let list = map.entry(chunk.trace_id).or_default();
            list.push((received_at_us, chunk.spans.clone()));
            // Keep receive order, as the RocksDB key order does.
            list.sort_by_key(|(at, _)| *at);
        }
        Ok(())
    }

    fn trace(&self, trace_id: TraceId) -> Result<Option<Trace>, StorageError> {
        let map = self.chunks.lock().expect("memory store lock");
        Ok(map
            .get(&trace_id)
            .and_then(|chunks| merge_chunks(trace_id, chunks.iter().cloned())))
    }

    fn flush(&self) -> Result<(), StorageError> {
        Ok(())
    }
}
