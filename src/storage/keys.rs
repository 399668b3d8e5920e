//! Every RocksDB key layout of tracemap, in one place.
//!
//! Keys are big-endian and fixed-width in scan order, so byte order is the order
//! we scan in. Each `encode_*` has its `decode_*`, and the tests pin the exact
//! bytes: a change here is a storage format change.
//!
//! | CF      | key                                                        | value |
//! |---------|------------------------------------------------------------|-------|
//! | `spans` | trace_id (16) · received_at_us (u64) · chunk_id (u64)       | `SpanChunk` (proto/), compressed by RocksDB |
//! | `traces`| trace_id (16)                                              | `TraceSummary` (proto/) |
//! | `index` | hour (u32) · tag (1) · hash (u64) · minute (u32) · seq (u64) | entries: start_us (u64) · trace_id (16) · duration_us (u64) · flags (1) |
//! | `open`  | received_at_us (u64) · sequence (u64)                      | trace ids (16 each) |
//! | `names` | service · 0x00 · operation · 0x00 · span kind (1)          | empty |
//! | `meta`  | name (ASCII)                                               | per key |
//! | `graph` | level (1) · bucket minute (u32) · subject (below)           | `GraphAggregate` (proto/), merged by RocksDB |
//! | `findings` | start_us (u64) · trace_id (16) · n (u16)                 | `Finding` (proto/) |
//!
//! `findings` are keyed by their trace's start, so a time range is one scan
//! (newest first in reverse) and retention one range delete; the summary
//! records how many its completion wrote, so a re-completion deletes exactly
//! those before writing its own. They are indexed (`index`, tag `Finding`)
//! by kind, so trace search by `finding=` reads no finding.
//!
//! `names` lists every (service, operation, kind) seen, for the service and
//! operation pickers; the service is a prefix, so one scan lists a service's
//! operations. Service and operation names may not contain a NUL byte; one that
//! does is cut at it.
//!
//! `index` entries are written once per completed trace (not per span) under
//! each value it is indexed by: a tag for what is indexed (all traces, service,
//! service + operation, correlation id, indexed attribute), a hash of the
//! value. Entries are kept in blocks, not one key each: a completion batch
//! writes one block per (value, minute of the traces' start), so a value shared
//! by the batch's traces (a service, an operation) costs one put for all of
//! them. Keys start with the hour of the start, the retention partition that
//! one range delete drops; within an hour, a reverse scan over one tag·hash
//! reads minutes newest first. Entries carry the duration and an error flag so
//! duration and error filters need no further read; hash collisions are
//! resolved by checking the summary. The summary records its block sequence
//! number, so a re-completion finds and removes its old entries.
//!
//! `open` is a journal of arrivals: every write of spans adds one entry, keyed
//! by its receive time and a sequence number, listing the traces it touched —
//! one put per request, however many traces it carries. A trace is open while
//! an entry names it with a receive time later than its summary's
//! `last_received_us`. Assembly deletes an entry, in the completion batch of the
//! last of its traces, once every trace it names has been completed past it; so
//! the journal holds about as many entries as there are requests whose traces
//! are still open, and recovery reads only those.
//! `graph` holds the service map's aggregates at four levels of bucket (one
//! minute, ten minutes, an hour, a day; `GRAPH_LEVELS`): every completion
//! merges its rows into the bucket of each level, so a range reads a few
//! coarse buckets and fine ones only at its ends. The subject is a node —
//! 0x00 · node type (1) · id · system — or an edge — 0x01 · edge type (1) ·
//! source · target — each name as a u16 length and its bytes (names longer
//! than `MAX_GRAPH_NAME` bytes are cut). Retention drops whole buckets.
//!
//! `spans` keys start with the trace id, so one prefix scan reads a whole trace,
//! with its chunks in the order they were received. `chunk_id` is a hash of the
//! chunk's span ids: two chunks of one trace received in the same microsecond
//! get distinct keys, and an identical retry in that microsecond overwrites.

use crate::model::{EdgeType, GraphSubject, NodeType, SpanId, TraceId};

pub const CF_SPANS: &str = "spans";
pub const CF_META: &str = "meta";
pub const CF_TRACES: &str = "traces";
pub const CF_INDEX: &str = "index";
pub const CF_OPEN: &str = "open";
pub const CF_NAMES: &str = "names";
pub const CF_GRAPH: &str = "graph";
pub const CF_FINDINGS: &str = "findings";
pub const CF_GRAPH_LOG: &str = "graph_log";

/// Every column family, for what applies to all of them (flush, sizes).
pub const ALL_CFS: [&str; 9] = [
    CF_SPANS,
    CF_TRACES,
    CF_INDEX,
    CF_OPEN,
    CF_NAMES,
    CF_META,
    CF_GRAPH,
    CF_FINDINGS,
    CF_GRAPH_LOG,
];

/// A `names` key: a service, one of its operations and the span kind.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OperationName {
    pub service: String,
    pub operation: String,
    /// `SpanKind` as its OTLP number.
    pub kind: u8,
}

fn until_nul(text: &str) -> &str {
    text.split('\0').next().unwrap_or("")
}

pub fn encode_name_key(name: &OperationName) -> Vec<u8> {
    let service = until_nul(&name.service);
    let operation = until_nul(&name.operation);
    let mut out = Vec::with_capacity(service.len() + operation.len() + 3);
    out.extend_from_slice(service.as_bytes());
    out.push(0);
    out.extend_from_slice(operation.as_bytes());
    out.push(0);
    out.push(name.kind);
    out
}

pub fn decode_name_key(bytes: &[u8]) -> Result<OperationName, KeyError> {
    let error = || KeyError {
        cf: CF_NAMES,
        len: bytes.len(),
    };
    let (&kind, rest) = bytes.split_last().ok_or_else(error)?;
    let rest = rest.strip_suffix(&[0]).ok_or_else(error)?;
    let split = rest.iter().position(|&b| b == 0).ok_or_else(error)?;
    let text = |b: &[u8]| String::from_utf8(b.to_vec()).map_err(|_| error());
    Ok(OperationName {
        service: text(&rest[..split])?,
        operation: text(&rest[split + 1..])?,
        kind,
    })
}

/// The prefix of every `names` key of `service`.
pub fn name_prefix(service: &str) -> Vec<u8> {
    let mut out = until_nul(service).as_bytes().to_vec();
    out.push(0);
    out
}

/// `meta` key holding the storage format version (u32 big-endian).
pub const META_FORMAT_VERSION: &[u8] = b"format_version";

pub const SPAN_KEY_LEN: usize = TraceId::LEN + 8 + 8;

/// A decoded `spans` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct SpanKey {
    pub trace_id: TraceId,
    pub received_at_us: u64,
    pub chunk_id: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed {cf} key of {len} bytes")]
pub struct KeyError {
    pub cf: &'static str,
    pub len: usize,
}

pub fn encode_span_key(key: &SpanKey) -> [u8; SPAN_KEY_LEN] {
    let mut out = [0u8; SPAN_KEY_LEN];
    out[..16].copy_from_slice(key.trace_id.as_bytes());
    out[16..24].copy_from_slice(&key.received_at_us.to_be_bytes());
    out[24..32].copy_from_slice(&key.chunk_id.to_be_bytes());
    out
}

pub fn decode_span_key(bytes: &[u8]) -> Result<SpanKey, KeyError> {
    let error = KeyError {
        cf: CF_SPANS,
        len: bytes.len(),
    };
    if bytes.len() != SPAN_KEY_LEN {
        return Err(error);
    }
    let mut trace_id = [0u8; 16];
    trace_id.copy_from_slice(&bytes[..16]);
    Ok(SpanKey {
        trace_id: TraceId(trace_id),
        received_at_us: u64::from_be_bytes(bytes[16..24].try_into().expect("8 bytes")),
        chunk_id: u64::from_be_bytes(bytes[24..32].try_into().expect("8 bytes")),
    })
}

/// The prefix shared by every `spans` key of one trace.
pub fn span_key_prefix(trace_id: &TraceId) -> [u8; TraceId::LEN] {
    trace_id.0
}

/// What an `index` entry indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum IndexTag {
    /// Every completed trace; the hash is of the empty string.
    All = 1,
    /// A service with a span in the trace.
    Service = 2,
    /// A correlation-id value found on a span of the trace.
    CorrelationId = 3,
    /// A (service, operation) pair of a span; the value is `pair_term`'s.
    Operation = 4,
    /// An indexed attribute's (key, value) on a span; the value is `pair_term`'s.
    Attribute = 5,
    /// A kind of finding in the trace (`slow_db`, `n_plus_one`, …).
    Finding = 6,
    /// A service one of the trace's findings is in.
    FindingService = 7,
}

/// The indexed value of a pair: both parts, NUL-separated.
pub fn pair_term(first: &str, second: &str) -> String {
    format!("{first}\0{second}")
}

pub const INDEX_FLAG_ERROR: u8 = 1;

/// An index entry: one trace under one indexed value (the memory store's key;
/// RocksDB keeps entries in blocks, below).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct IndexKey {
    pub tag: u8,
    pub hash: u64,
    pub start_us: u64,
    pub trace_id: TraceId,
}

/// The 64-bit hash of an indexed value (FNV-1a).
pub fn index_hash(value: &str) -> u64 {
    fnv1a(value.as_bytes().iter())
}

pub const MINUTE_US: u64 = 60_000_000;
pub const HOUR_US: u64 = 60 * MINUTE_US;
/// hour (u32) · tag (1) · hash (u64): the prefix a scan stays within.
pub const INDEX_PREFIX_LEN: usize = 4 + 1 + 8;
pub const INDEX_KEY_LEN: usize = INDEX_PREFIX_LEN + 4 + 8;
/// The key of an `index` block: the entries of one completion batch (`seq`)
/// under one indexed value whose traces started in one minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IndexBlockKey {
    /// Hours since the epoch of the traces' start: the retention partition.
    pub hour: u32,
    pub tag: u8,
    pub hash: u64,
    /// Minutes since the epoch of the traces' start.
    pub minute: u32,
    pub seq: u64,
}

/// The tag of index tables (below every indexed value's tag).
pub const INDEX_TABLE_TAG: u8 = 0;

impl IndexBlockKey {
    /// The key of completion batch `seq`'s table of the traces that started
    /// in `hour`: the traces that batch's blocks in that hour refer to by
    /// position. It sorts before every block of the hour and goes with them.
    pub fn table(hour: u32, seq: u64) -> Self {
        Self {
            hour,
            tag: INDEX_TABLE_TAG,
            hash: seq,
            minute: 0,
            seq: 0,
        }
    }

    /// The block an entry of a trace starting at `start_us` goes to.
    pub fn of(tag: u8, hash: u64, start_us: u64, seq: u64) -> Self {
        Self {
            hour: index_hour(start_us),
            tag,
            hash,
            minute: (start_us / MINUTE_US).min(u32::MAX as u64) as u32,
            seq,
        }
    }
}

/// The retention partition (hours since the epoch) of a start time.
pub fn index_hour(start_us: u64) -> u32 {
    (start_us / HOUR_US).min(u32::MAX as u64) as u32
}

pub fn index_prefix(hour: u32, tag: u8, hash: u64) -> [u8; INDEX_PREFIX_LEN] {
    let mut out = [0u8; INDEX_PREFIX_LEN];
    out[..4].copy_from_slice(&hour.to_be_bytes());
    out[4] = tag;
    out[5..13].copy_from_slice(&hash.to_be_bytes());
    out
}

pub fn encode_index_key(key: &IndexBlockKey) -> [u8; INDEX_KEY_LEN] {
    let mut out = [0u8; INDEX_KEY_LEN];
    out[..INDEX_PREFIX_LEN].copy_from_slice(&index_prefix(key.hour, key.tag, key.hash));
    out[13..17].copy_from_slice(&key.minute.to_be_bytes());
    out[17..25].copy_from_slice(&key.seq.to_be_bytes());
    out
}

pub fn decode_index_key(bytes: &[u8]) -> Result<IndexBlockKey, KeyError> {
    if bytes.len() != INDEX_KEY_LEN {
        return Err(KeyError {
            cf: CF_INDEX,
            len: bytes.len(),
        });
    }
    let u32_at = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    let u64_at = |at: usize| u64::from_be_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    Ok(IndexBlockKey {
        hour: u32_at(0),
        tag: bytes[4],
        hash: u64_at(5),
        minute: u32_at(13),
        seq: u64_at(17),
    })
}

/// An index table: per trace, in position order, trace_id (16) · varint µs
/// since `hour` began · varint (duration µs << 1 | error).
pub fn encode_index_table(hour: u32, hits: &[super::IndexHit]) -> Vec<u8> {
    let hour_us = u64::from(hour) * HOUR_US;
    let mut out = Vec::with_capacity(hits.len() * (TraceId::LEN + 8));
    for hit in hits {
        out.extend_from_slice(hit.trace_id.as_bytes());
        prost::encoding::encode_varint(hit.start_us.saturating_sub(hour_us), &mut out);
        let duration = hit.duration_us.min(u64::MAX >> 1);
        prost::encoding::encode_varint(duration << 1 | u64::from(hit.error), &mut out);
    }
    out
}

/// `None` when the value is not a whole number of well-formed entries.
pub fn decode_index_table(hour: u32, mut bytes: &[u8]) -> Option<Vec<super::IndexHit>> {
    let hour_us = u64::from(hour) * HOUR_US;
    let mut hits = Vec::with_capacity(bytes.len() / (TraceId::LEN + 6));
    while !bytes.is_empty() {
        let trace_id = TraceId(bytes.get(..TraceId::LEN)?.try_into().ok()?);
        bytes = &bytes[TraceId::LEN..];
        let offset = prost::encoding::decode_varint(&mut bytes).ok()?;
        let duration = prost::encoding::decode_varint(&mut bytes).ok()?;
        hits.push(super::IndexHit {
            trace_id,
            start_us: hour_us.checked_add(offset)?,
            duration_us: duration >> 1,
            error: duration & 1 != 0,
        });
    }
    Some(hits)
}

/// An index block: varint positions in its batch's table for the block's
/// hour, newest start first.
pub fn encode_index_block(positions: &[u32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(positions.len() * 2);
    for position in positions {
        prost::encoding::encode_varint(u64::from(*position), &mut out);
    }
    out
}

/// `None` when the value is not a whole number of varints below 2³².
pub fn decode_index_block(mut bytes: &[u8]) -> Option<Vec<u32>> {
    let mut positions = Vec::with_capacity(bytes.len());
    while !bytes.is_empty() {
        let position = prost::encoding::decode_varint(&mut bytes).ok()?;
        positions.push(u32::try_from(position).ok()?);
    }
    Some(positions)
}

/// `meta` key holding the last index block sequence number (u64 big-endian).
pub const META_INDEX_SEQ: &[u8] = b"index_seq";
/// `meta` key holding the retention cutoff (u64 µs big-endian): everything
/// older is gone from reads and deleted by compaction.
pub const META_RETENTION_CUTOFF: &[u8] = b"retention_cutoff_us";

/// The key of one `open` journal entry: when its request was received, and a
/// sequence number that tells apart requests received in the same microsecond.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JournalKey {
    pub received_at_us: u64,
    pub seq: u64,
}

pub const JOURNAL_KEY_LEN: usize = 16;

pub fn encode_journal_key(key: &JournalKey) -> [u8; JOURNAL_KEY_LEN] {
    let mut out = [0u8; JOURNAL_KEY_LEN];
    out[..8].copy_from_slice(&key.received_at_us.to_be_bytes());
    out[8..].copy_from_slice(&key.seq.to_be_bytes());
    out
}

pub fn decode_journal_key(bytes: &[u8]) -> Result<JournalKey, KeyError> {
    let bytes: &[u8; JOURNAL_KEY_LEN] = bytes.try_into().map_err(|_| KeyError {
        cf: CF_OPEN,
        len: bytes.len(),
    })?;
    Ok(JournalKey {
        received_at_us: u64::from_be_bytes(bytes[..8].try_into().expect("8 bytes")),
        seq: u64::from_be_bytes(bytes[8..].try_into().expect("8 bytes")),
    })
}

/// The key of one finding: its trace's start, the trace, its place among
/// the trace's findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FindingKey {
    pub start_us: u64,
    pub trace_id: TraceId,
    pub n: u16,
}

pub const FINDING_KEY_LEN: usize = 8 + TraceId::LEN + 2;

pub fn encode_finding_key(key: &FindingKey) -> [u8; FINDING_KEY_LEN] {
    let mut out = [0u8; FINDING_KEY_LEN];
    out[..8].copy_from_slice(&key.start_us.to_be_bytes());
    out[8..24].copy_from_slice(key.trace_id.as_bytes());
    out[24..].copy_from_slice(&key.n.to_be_bytes());
    out
}

pub fn decode_finding_key(bytes: &[u8]) -> Result<FindingKey, KeyError> {
    let bytes: &[u8; FINDING_KEY_LEN] = bytes.try_into().map_err(|_| KeyError {
        cf: CF_FINDINGS,
        len: bytes.len(),
    })?;
    Ok(FindingKey {
        start_us: u64::from_be_bytes(bytes[..8].try_into().expect("8 bytes")),
        trace_id: TraceId(bytes[8..24].try_into().expect("16 bytes")),
        n: u16::from_be_bytes(bytes[24..].try_into().expect("2 bytes")),
    })
}

/// A journal entry's value: the trace ids, concatenated.
pub fn encode_journal_value<'a>(trace_ids: impl ExactSizeIterator<Item = &'a TraceId>) -> Vec<u8> {
    let mut out = Vec::with_capacity(trace_ids.len() * TraceId::LEN);
    for trace_id in trace_ids {
        out.extend_from_slice(trace_id.as_bytes());
    }
    out
}

/// The trace ids of a journal entry; `None` when its length is not a multiple
/// of a trace id's.
pub fn decode_journal_value(bytes: &[u8]) -> Option<Vec<TraceId>> {
    if !bytes.len().is_multiple_of(TraceId::LEN) {
        return None;
    }
    Some(
        bytes
            .chunks_exact(TraceId::LEN)
            .map(|id| TraceId(id.try_into().expect("16 bytes")))
            .collect(),
    )
}

fn fnv1a<'a>(bytes: impl Iterator<Item = &'a u8>) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// A stable 64-bit id for a chunk, from its span ids (FNV-1a over the bytes).
pub fn chunk_id<'a>(span_ids: impl IntoIterator<Item = &'a SpanId>) -> u64 {
    fnv1a(span_ids.into_iter().flat_map(|id| id.as_bytes().iter()))
}

/// The bucket sizes of the `graph` levels, in minutes, finest first.
pub const GRAPH_LEVELS: [u32; 4] = [1, 10, 60, 1_440];

/// Longest node or service name kept in a `graph` key (bytes).
pub const MAX_GRAPH_NAME: usize = 512;

/// The prefix of every `graph` key of one bucket: level index · bucket start.
pub fn graph_bucket_prefix(level: usize, bucket_minute: u32) -> [u8; 5] {
    let mut out = [0; 5];
    out[0] = level as u8;
    out[1..].copy_from_slice(&bucket_minute.to_be_bytes());
    out
}

fn put_graph_name(out: &mut Vec<u8>, name: &str) {
    let mut end = name.len().min(MAX_GRAPH_NAME);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    out.extend_from_slice(&(end as u16).to_be_bytes());
    out.extend_from_slice(&name.as_bytes()[..end]);
}

/// The subject part of a `graph` key.
pub fn encode_graph_subject(out: &mut Vec<u8>, subject: &GraphSubject) {
    match subject {
        GraphSubject::Node {
            id,
            node_type,
            system,
        } => {
            out.extend_from_slice(&[0, *node_type as u8]);
            put_graph_name(out, id);
            put_graph_name(out, system);
        }
        GraphSubject::Edge {
            source,
            target,
            edge_type,
        } => {
            out.extend_from_slice(&[1, *edge_type as u8]);
            put_graph_name(out, source);
            put_graph_name(out, target);
        }
    }
}

pub fn encode_graph_key(level: usize, bucket_minute: u32, subject: &GraphSubject) -> Vec<u8> {
    let mut out = Vec::with_capacity(48);
    out.extend_from_slice(&graph_bucket_prefix(level, bucket_minute));
    encode_graph_subject(&mut out, subject);
    out
}

/// The subject of a `graph` key, from the bytes after its bucket prefix.
pub fn decode_graph_subject(bytes: &[u8]) -> Result<GraphSubject, KeyError> {
    let error = || KeyError {
        cf: CF_GRAPH,
        len: bytes.len(),
    };
    let mut rest = bytes.get(2..).ok_or_else(error)?;
    let mut name = || -> Result<String, KeyError> {
        let len = u16::from_be_bytes(
            rest.get(..2)
                .ok_or_else(error)?
                .try_into()
                .expect("2 bytes"),
        );
        let text = rest.get(2..2 + len as usize).ok_or_else(error)?;
        rest = &rest[2 + len as usize..];
        String::from_utf8(text.to_vec()).map_err(|_| error())
    };
    let (first, second) = (name()?, name()?);
    if !rest.is_empty() {
        return Err(error());
    }
    match (bytes[0], bytes[1]) {
        (0, t) => Ok(GraphSubject::Node {
            id: first,
            node_type: NodeType::from_u8(t).ok_or_else(error)?,
            system: second,
        }),
        (1, t) => Ok(GraphSubject::Edge {
            source: first,
            target: second,
            edge_type: EdgeType::from_u8(t).ok_or_else(error)?,
        }),
        _ => Err(error()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn span_key_golden_bytes() {
        let key = SpanKey {
            trace_id: "5759e988bd862e3fe1be46a994272793".parse().unwrap(),
            received_at_us: 0x0102_0304_0506_0708,
            chunk_id: 0xA1A2_A3A4_A5A6_A7A8,
        };
        let bytes = encode_span_key(&key);
        assert_eq!(
            hex::encode(bytes),
            "5759e988bd862e3fe1be46a994272793\
             0102030405060708\
             a1a2a3a4a5a6a7a8"
        );
        assert_eq!(decode_span_key(&bytes).unwrap(), key);
    }

    #[test]
    fn malformed_span_key_is_an_error() {
        assert_eq!(
            decode_span_key(&[0u8; 31]),
            Err(KeyError {
                cf: CF_SPANS,
                len: 31
            })
        );
    }

    #[test]
    fn chunk_id_golden() {
        let ids = [SpanId([1, 2, 3, 4, 5, 6, 7, 8])];
        assert_eq!(chunk_id(&ids), 0x7eb5_108b_368a_78ed);
        assert_ne!(
            chunk_id(&ids),
            chunk_id(&[SpanId([8, 7, 6, 5, 4, 3, 2, 1])])
        );
    }

    #[test]
    fn index_key_golden_bytes_and_entries() {
        let key = IndexBlockKey::of(
            IndexTag::Service as u8,
            index_hash("order-service"),
            3 * HOUR_US + 5 * MINUTE_US + 7,
            9,
        );
        assert_eq!((key.hour, key.minute), (3, 185));
        let bytes = encode_index_key(&key);
        assert_eq!(&bytes[..5], &[0, 0, 0, 3, 2]);
        assert_eq!(&bytes[13..], &[0, 0, 0, 185, 0, 0, 0, 0, 0, 0, 0, 9]);
        assert_eq!(decode_index_key(&bytes).unwrap(), key);
        assert!(decode_index_key(&bytes[1..]).is_err());
        let later = IndexBlockKey::of(key.tag, key.hash, 3 * HOUR_US + 6 * MINUTE_US, 0);
        assert!(
            encode_index_key(&later) > bytes,
            "minutes sort in time order"
        );
        assert_eq!(index_hash(""), 0xcbf2_9ce4_8422_2325);
        let entries = vec![
            super::super::IndexHit {
                trace_id: TraceId([1; 16]),
                start_us: 7,
                duration_us: 1234,
                error: true,
            },
            super::super::IndexHit {
                trace_id: TraceId([2; 16]),
                start_us: 5,
                duration_us: 0,
                error: false,
            },
        ];
        let table = encode_index_table(0, &entries);
        assert_eq!(table.len(), 2 * 16 + 1 + 2 + 1 + 1);
        assert_eq!(decode_index_table(0, &table).unwrap(), entries);
        assert!(decode_index_table(0, &table[1..]).is_none());
        // Start times are kept relative to the hour.
        let later: Vec<_> = entries
            .iter()
            .map(|e| super::super::IndexHit {
                start_us: e.start_us + 5 * HOUR_US,
                ..*e
            })
            .collect();
        let table = encode_index_table(5, &later);
        assert_eq!(decode_index_table(5, &table).unwrap(), later);
        let block = encode_index_block(&[0, 1, 300]);
        assert_eq!(block, [0, 1, 0xac, 0x02]);
        assert_eq!(decode_index_block(&block).unwrap(), [0, 1, 300]);
        assert!(decode_index_block(&[0x80]).is_none());
    }

    #[test]
    fn journal_keys_sort_by_time_then_sequence() {
        let key = JournalKey {
            received_at_us: 0x0102_0304_0506_0708,
            seq: 9,
        };
        let bytes = encode_journal_key(&key);
        assert_eq!(bytes, [1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0, 0, 0, 0, 9]);
        assert_eq!(decode_journal_key(&bytes).unwrap(), key);
        let later = JournalKey {
            received_at_us: key.received_at_us + 1,
            seq: 0,
        };
        assert!(encode_journal_key(&later) > bytes);
        assert!(decode_journal_key(&bytes[1..]).is_err());
        let ids = [TraceId([1; 16]), TraceId([2; 16])];
        let value = encode_journal_value(ids.iter());
        assert_eq!(value.len(), 32);
        assert_eq!(decode_journal_value(&value).unwrap(), ids);
        assert_eq!(decode_journal_value(&value[1..]), None);
    }

    #[test]
    fn name_keys_round_trip_and_group_by_service() {
        let name = OperationName {
            service: "order-service".into(),
            operation: "GET /orders/{id}".into(),
            kind: 2,
        };
        let bytes = encode_name_key(&name);
        assert_eq!(bytes, b"order-service\0GET /orders/{id}\0\x02");
        assert_eq!(decode_name_key(&bytes).unwrap(), name);
        assert!(bytes.starts_with(&name_prefix("order-service")));
        assert!(!encode_name_key(&OperationName {
            service: "order-service-v2".into(),
            operation: "x".into(),
            kind: 0
        })
        .starts_with(&name_prefix("order-service")));
        assert!(decode_name_key(b"no separators").is_err());
    }

    fn arb_key() -> impl Strategy<Value = SpanKey> {
        (any::<[u8; 16]>(), any::<u64>(), any::<u64>()).prop_map(|(t, r, c)| SpanKey {
            trace_id: TraceId(t),
            received_at_us: r,
            chunk_id: c,
        })
    }

    proptest! {
        #[test]
        fn span_key_round_trips(key in arb_key()) {
            prop_assert_eq!(decode_span_key(&encode_span_key(&key)).unwrap(), key);
        }

        #[test]
        fn span_key_bytes_sort_like_the_fields(a in arb_key(), b in arb_key()) {
            prop_assert_eq!(encode_span_key(&a).cmp(&encode_span_key(&b)), a.cmp(&b));
        }

        #[test]
        fn every_key_of_a_trace_starts_with_its_prefix(key in arb_key()) {
            let bytes = encode_span_key(&key);
            prop_assert!(bytes.starts_with(&span_key_prefix(&key.trace_id)));
        }
    }

    #[test]
    fn finding_key_golden_bytes_and_order() {
        let key = FindingKey {
            start_us: 0x0102_0304_0506_0708,
            trace_id: TraceId([0xaa; 16]),
            n: 0x0b0c,
        };
        let bytes = encode_finding_key(&key);
        assert_eq!(&bytes[..8], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(&bytes[8..24], &[0xaa; 16]);
        assert_eq!(&bytes[24..], &[0x0b, 0x0c]);
        assert_eq!(decode_finding_key(&bytes).unwrap(), key);
        assert!(decode_finding_key(&bytes[1..]).is_err());
        // Byte order is time order, then trace, then place.
        let later = FindingKey {
            start_us: key.start_us + 1,
            n: 0,
            ..key
        };
        assert!(encode_finding_key(&key) < encode_finding_key(&later));
        let next = FindingKey {
            n: key.n + 1,
            ..key
        };
        assert!(encode_finding_key(&key) < encode_finding_key(&next));
    }

    #[test]
    fn graph_key_golden_bytes() {
        let edge = GraphSubject::Edge {
            source: "ab".into(),
            target: "c".into(),
            edge_type: EdgeType::Database,
        };
        let key = encode_graph_key(2, 0x0102_0304, &edge);
        assert_eq!(hex::encode(&key), "0201020304010200026162000163");
        assert_eq!(decode_graph_subject(&key[5..]).unwrap(), edge);
        let node = GraphSubject::Node {
            id: "db".into(),
            node_type: NodeType::Database,
            system: "redis".into(),
        };
        let key = encode_graph_key(0, 7, &node);
        assert_eq!(decode_graph_subject(&key[5..]).unwrap(), node);
        assert!(decode_graph_subject(&key[5..key.len() - 1]).is_err());
        // Over-long names are cut on a character boundary.
        let long = GraphSubject::Edge {
            source: "é".repeat(MAX_GRAPH_NAME),
            target: String::new(),
            edge_type: EdgeType::Other,
        };
        let key = encode_graph_key(0, 0, &long);
        match decode_graph_subject(&key[5..]).unwrap() {
            GraphSubject::Edge { source, .. } => assert_eq!(source.len(), MAX_GRAPH_NAME),
            other => panic!("{other:?}"),
        }
    }
}
