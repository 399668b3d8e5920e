//! Every RocksDB key layout of tracemap, in one place.
//!
//! Keys are big-endian and fixed-width in scan order, so byte order is the order
//! we scan in. Each `encode_*` has its `decode_*`, and the tests pin the exact
//! bytes: a change here is a storage format change.
//!
//! | CF      | key                                                        | value |
//! |---------|------------------------------------------------------------|-------|
//! | `spans` | trace_id (16) · received_at_us (u64) · chunk_id (u64)       | `SpanChunk` (proto/), compressed by RocksDB |
//! | `meta`  | name (ASCII)                                               | per key |
//!
//! `spans` keys start with the trace id, so one prefix scan reads a whole trace,
//! with its chunks in the order they were received. `chunk_id` is a hash of the
//! chunk's span ids: two chunks of one trace received in the same microsecond
//! get distinct keys, and an identical retry in that microsecond overwrites.

use crate::model::{SpanId, TraceId};

pub const CF_SPANS: &str = "spans";
pub const CF_META: &str = "meta";

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

/// A stable 64-bit id for a chunk, from its span ids (FNV-1a over the bytes).
pub fn chunk_id<'a>(span_ids: impl IntoIterator<Item = &'a SpanId>) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for id in span_ids {
        for byte in id.as_bytes() {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
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
}
