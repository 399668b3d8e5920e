//! The `graph` column family's values and buckets, engine-neutral: how an
//! aggregate is encoded, how stored aggregates merge (RocksDB's merge
//! operator calls `merge_values`), and which buckets of which level cover a
//! time range.

use std::collections::HashMap;

use prost::Message;

use super::codec::CodecError;
use super::keys::GRAPH_LEVELS;
use crate::model::{Aggregate, GraphSubject, Latency, LatencySum};

mod pb {
    pub use super::super::codec::pb::GraphAggregate;
}

/// Bins as (deltas of the bin values, counts).
fn encode_bins(latency: &Latency) -> (Vec<u64>, Vec<i64>) {
    let mut previous = 0;
    latency
        .bins()
        .iter()
        .map(|&(bin, n)| {
            let delta = bin - previous;
            previous = bin;
            (delta, n)
        })
        .unzip()
}

pub fn encode_aggregate(aggregate: &Aggregate) -> Vec<u8> {
    let (latency_bin_deltas, latency_counts) = encode_bins(&aggregate.latency);
    let (server_latency_bin_deltas, server_latency_counts) = encode_bins(&aggregate.server_latency);
    pb::GraphAggregate {
        requests: aggregate.requests,
        errors: aggregate.errors,
        faults: aggregate.faults,
        throttles: aggregate.throttles,
        retries: aggregate.retries,
        latency_bin_deltas,
        latency_counts,
        server_latency_bin_deltas,
        server_latency_counts,
    }
    .encode_to_vec()
}

/// One stored value, decoded (as `Summer` reads it).
pub fn decode_aggregate(bytes: &[u8]) -> Result<Aggregate, CodecError> {
    let mut sum = Summer::default();
    sum.add(bytes)?;
    Ok(sum.take())
}

/// Merges stored values (the existing one first, then the operands): the
/// sum of all of them. A value that does not decode is skipped and logged,
/// so one bad write never poisons a bucket.
pub fn merge_values<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut sum = Summer::default();
    for value in values {
        if let Err(error) = sum.add(value) {
            tracing::warn!(%error, "skipping an undecodable graph aggregate");
        }
    }
    encode_aggregate(&sum.take())
}

/// Reading a map is mostly this: bin deltas and counts are nearly all one byte.
#[inline(always)]
fn varint(bytes: &mut &[u8]) -> Result<u64, CodecError> {
    match bytes.split_first() {
        Some((&byte, rest)) if byte < 0x80 => {
            *bytes = rest;
            Ok(u64::from(byte))
        }
        _ => prost::encoding::decode_varint(bytes).map_err(CodecError::Decode),
    }
}

fn zigzag_decode(n: u64) -> i64 {
    ((n >> 1) as i64) ^ -((n & 1) as i64)
}

/// Adds stored values up without building an `Aggregate` for each: the
/// counts are summed as read and each value's bins, still encoded, are merged
/// into the running sum in one pass. Reading a map is mostly this.
#[derive(Debug, Default)]
pub struct Summer {
    counts: [i64; 5],
    latency: LatencySum,
    server_latency: LatencySum,
    scratch: Vec<(u64, i64)>,
}

impl Summer {
    /// Adds one stored value (`GraphAggregate`, as `encode_aggregate` writes it).
    pub fn add(&mut self, mut bytes: &[u8]) -> Result<(), CodecError> {
        let mut counts = [0i64; 5];
        let mut lists: [&[u8]; 4] = [&[]; 4];
        while !bytes.is_empty() {
            let key = varint(&mut bytes)?;
            let (field, wire) = (key >> 3, key & 7);
            match (field, wire) {
                (1..=5, 0) => counts[field as usize - 1] = zigzag_decode(varint(&mut bytes)?),
                (6..=9, 2) => {
                    let len = varint(&mut bytes)? as usize;
                    if len > bytes.len() {
                        return Err(CodecError::Malformed("graph aggregate field past its end"));
                    }
                    lists[field as usize - 6] = &bytes[..len];
                    bytes = &bytes[len..];
                }
                // Anything else (fields a later version adds): skipped.
                (_, 0) => {
                    varint(&mut bytes)?;
                }
                (_, 2) => {
                    let len = varint(&mut bytes)? as usize;
                    bytes = bytes
                        .get(len..)
                        .ok_or(CodecError::Malformed("graph aggregate field past its end"))?;
                }
                (_, 1) => {
                    bytes = bytes
                        .get(8..)
                        .ok_or(CodecError::Malformed("short fixed64"))?
                }
                (_, 5) => {
                    bytes = bytes
                        .get(4..)
                        .ok_or(CodecError::Malformed("short fixed32"))?
                }
                _ => {
                    return Err(CodecError::Malformed(
                        "unknown wire type in a graph aggregate",
                    ))
                }
            }
        }
        // Both lists decoded before either is added: a malformed value
        // leaves the sum untouched.
        self.scratch.clear();
        decode_pairs(lists[0], lists[1], &mut self.scratch)?;
        let split = self.scratch.len();
        decode_pairs(lists[2], lists[3], &mut self.scratch)?;
        for (at, &(bin, n)) in self.scratch.iter().enumerate() {
            if at < split {
                self.latency.add(bin, n);
            } else {
                self.server_latency.add(bin, n);
            }
        }
        for (total, n) in self.counts.iter_mut().zip(counts) {
            *total += n;
        }
        Ok(())
    }

    /// The sum so far; the summer is empty again after.
    pub fn take(&mut self) -> Aggregate {
        let [requests, errors, faults, throttles, retries] = std::mem::take(&mut self.counts);
        Aggregate {
            requests,
            errors,
            faults,
            throttles,
            retries,
            latency: self.latency.take(),
            server_latency: self.server_latency.take(),
        }
    }
}

/// Appends the (bin, count) pairs of one encoded list to `out`.
#[inline]
fn decode_pairs(
    mut deltas: &[u8],
    mut counts: &[u8],
    out: &mut Vec<(u64, i64)>,
) -> Result<(), CodecError> {
    let mut bin = 0u64;
    while !deltas.is_empty() {
        if counts.is_empty() {
            return Err(CodecError::Malformed(
                "latency bins and counts differ in length",
            ));
        }
        bin = bin.saturating_add(varint(&mut deltas)?);
        out.push((bin, zigzag_decode(varint(&mut counts)?)));
    }
    if !counts.is_empty() {
        return Err(CodecError::Malformed(
            "latency bins and counts differ in length",
        ));
    }
    Ok(())
}

/// The bucket (its first minute) of `level` that holds `minute`.
pub fn bucket_of(level: usize, minute: u32) -> u32 {
    minute - minute % GRAPH_LEVELS[level]
}

/// The fewest buckets that cover minutes `[from, to)` exactly: coarse ones
/// where the range spans them whole, finer ones at its ends.
pub fn plan(from: u32, to: u32) -> Vec<(usize, u32)> {
    let mut out = Vec::new();
    let mut at = from;
    while at < to {
        let level = (0..GRAPH_LEVELS.len())
            .rev()
            .find(|&l| {
                at.is_multiple_of(GRAPH_LEVELS[l])
                    && at as u64 + GRAPH_LEVELS[l] as u64 <= to as u64
            })
            .unwrap_or(0);
        out.push((level, at));
        at += GRAPH_LEVELS[level];
    }
    out
}

/// Minutes `[from, to)`.
pub type MinuteRange = (u32, u32);

/// How a range of minutes moved from `old` to `new` (overlapping): the
/// ranges it left (in `old`, not in `new`) and those it reached (in `new`,
/// not in `old`).
pub fn moved(old: (u32, u32), new: (u32, u32)) -> (Vec<MinuteRange>, Vec<MinuteRange>) {
    let part = |from: u32, to: u32| (from < to).then_some((from, to));
    let left = [part(old.0, new.0.min(old.1)), part(new.1.max(old.0), old.1)];
    let reached = [part(new.0, old.0.min(new.1)), part(old.1.max(new.0), new.1)];
    (
        left.into_iter().flatten().collect(),
        reached.into_iter().flatten().collect(),
    )
}

/// A range of minutes widened to whole buckets of the coarsest level that
/// still splits it into at least `MIN_BUCKETS_PER_RANGE`: the last hour reads
/// ten-minute buckets, the last day hours, a week days; so a map over any
/// range reads a handful of buckets per node and edge.
pub fn snap(from: u32, to: u32) -> (u32, u32) {
    let span = to.saturating_sub(from);
    let size = GRAPH_LEVELS
        .iter()
        .rev()
        .copied()
        .find(|&size| span / size >= MIN_BUCKETS_PER_RANGE)
        .unwrap_or(1);
    let from = from - from % size;
    let to = to.div_ceil(size).saturating_mul(size);
    (from, to)
}

/// See `snap`.
pub const MIN_BUCKETS_PER_RANGE: u32 = 6;

/// Minute `[from, to)` bounds of a µs range: whole minutes, the last one
/// included when the range ends inside it.
pub fn minutes_of(from_us: u64, to_us: u64) -> (u32, u32) {
    let minute = |us: u64| (us / 60_000_000).min(u32::MAX as u64 - 1) as u32;
    let from = minute(from_us);
    let to = if to_us.is_multiple_of(60_000_000) {
        minute(to_us)
    } else {
        minute(to_us) + 1
    };
    (from, to.max(from))
}

/// A µs range as the map reads it: whole minutes (`minutes_of`) widened to
/// whole buckets (`snap`), as µs.
pub fn snapped_range_us(from_us: u64, to_us: u64) -> (u64, u64) {
    let (from, to) = minutes_of(from_us, to_us);
    let (from, to) = snap(from, to);
    (u64::from(from) * 60_000_000, u64::from(to) * 60_000_000)
}

/// Aggregates being added up per subject while a range is read.
#[derive(Debug, Default)]
pub struct RangeSum {
    by_subject: HashMap<GraphSubject, Aggregate>,
}

impl RangeSum {
    pub fn add(&mut self, subject: GraphSubject, aggregate: &Aggregate) {
        self.by_subject.entry(subject).or_default().merge(aggregate);
    }

    /// The subjects that counted anything in the range, sorted.
    pub fn into_rows(self) -> Vec<(GraphSubject, Aggregate)> {
        let mut rows: Vec<_> = self
            .by_subject
            .into_iter()
            .filter(|(_, a)| a.requests > 0)
            .collect();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::CallClass;

    #[test]
    fn a_plan_covers_the_range_exactly_with_few_buckets() {
        for (from, to) in [
            (0, 0),
            (0, 1),
            (7, 133),
            (1_435, 4_400),
            (59, 60 * 24 * 7 + 61),
        ] {
            let plan = plan(from, to);
            let mut at = from;
            for &(level, bucket) in &plan {
                assert_eq!(bucket, at, "{from}..{to}: {plan:?}");
                assert_eq!(bucket_of(level, bucket), bucket);
                at += GRAPH_LEVELS[level];
            }
            assert_eq!(at, to.max(from));
        }
        // An hour at any minute: at most 9 + 5 + 9 buckets, not 60.
        assert!((0..60).all(|m| plan(m, m + 60).len() <= 23));
        // A week: under a hundred reads.
        assert!(plan(37, 37 + 7 * 1_440).len() < 100);
    }

    #[test]
    fn values_round_trip_and_merge_by_adding() {
        let mut a = Aggregate::default();
        a.observe(CallClass::Fault, 1_234, true);
        a.observe(CallClass::Ok, 99_000, false);
        a.server_latency.record(98_000);
        let mut b = Aggregate::default();
        b.observe(CallClass::Throttle, 1_234, false);
        assert_eq!(decode_aggregate(&encode_aggregate(&a)).unwrap(), a);
        let merged = decode_aggregate(&merge_values([
            encode_aggregate(&a).as_slice(),
            b"\xff\xff garbage",
            encode_aggregate(&b).as_slice(),
        ]))
        .unwrap();
        let mut expected = a.clone();
        expected.merge(&b);
        assert_eq!(merged, expected);
        assert_eq!(merged.requests, 3);
        assert_eq!(merged.latency.bins().iter().map(|b| b.1).sum::<i64>(), 3);
    }

    #[test]
    fn ranges_snap_to_a_few_buckets() {
        // Fifteen minutes: minutes, exactly.
        assert_eq!(snap(100, 115), (100, 115));
        // The last hour at 10:37: ten-minute buckets from 09:30 to 10:40.
        assert_eq!(snap(577, 637), (570, 640));
        assert_eq!(plan(570, 640).len(), 7);
        // A day: hours; a week: days.
        assert_eq!(snap(1_441, 2_881), (1_440, 2_940));
        assert!(plan(snap(37, 37 + 7 * 1_440).0, snap(37, 37 + 7 * 1_440).1).len() <= 8);
        // Aligned ranges are kept.
        assert_eq!(snap(600, 1_200), (600, 1_200));
    }

    #[test]
    fn a_moved_range_is_the_old_one_minus_what_it_left_plus_what_it_reached() {
        let minutes = |ranges: &[(u32, u32)]| -> Vec<u32> {
            ranges.iter().flat_map(|&(a, b)| a..b).collect()
        };
        for (old, new) in [
            ((570, 640), (580, 650)),
            ((580, 650), (570, 640)),
            ((0, 100), (10, 50)),
            ((10, 50), (0, 100)),
            ((5, 10), (5, 10)),
            ((0, 10), (9, 30)),
        ] {
            let (left, reached) = moved(old, new);
            let mut got: Vec<u32> = (old.0..old.1)
                .filter(|m| !minutes(&left).contains(m))
                .chain(minutes(&reached))
                .collect();
            got.sort_unstable();
            assert_eq!(
                got,
                (new.0..new.1).collect::<Vec<_>>(),
                "{old:?} -> {new:?}"
            );
            assert!(minutes(&left).iter().all(|m| (old.0..old.1).contains(m)));
            assert!(minutes(&reached)
                .iter()
                .all(|m| !(old.0..old.1).contains(m)));
        }
    }

    #[test]
    fn minutes_cover_a_partial_last_minute() {
        assert_eq!(minutes_of(0, 60_000_000), (0, 1));
        assert_eq!(minutes_of(0, 60_000_001), (0, 2));
        assert_eq!(minutes_of(90_000_000, 30_000_000), (1, 1));
    }
}
