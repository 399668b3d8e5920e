//! Retry storms on the map, engine-neutral: an edge storms over a range when, in some
//! one-minute bucket of it, its retries are at least `min_retries` and at
//! least `ratio` of its calls (API.md). The aggregates answer that without
//! reading every minute: a bucket with fewer retries than the minimum holds
//! no storming minute, so only buckets that could are opened, level by
//! level, down to minutes — for an edge with few retries, no read at all.

use super::keys::GRAPH_LEVELS;
use crate::model::Aggregate;

/// When an edge's minute is a storm (`[detectors]` `storm_min_retries`,
/// `storm_retry_ratio`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StormRule {
    pub min_retries: i64,
    pub ratio: f64,
}

impl Default for StormRule {
    fn default() -> Self {
        Self {
            min_retries: 10,
            ratio: 0.1,
        }
    }
}

/// Reads one subject's aggregate in each of the given `(level, first minute)` buckets.
pub type BucketReader<'a, E> = dyn FnMut(&[(usize, u32)]) -> Result<Vec<Aggregate>, E> + 'a;

impl StormRule {
    /// Whether a bucket may hold a storming minute: it has the retries.
    pub fn may_storm(&self, aggregate: &Aggregate) -> bool {
        aggregate.retries >= self.min_retries
    }

    /// Whether one minute's aggregate is a storm.
    pub fn storms(&self, minute: &Aggregate) -> bool {
        self.may_storm(minute)
            && minute.retries as f64 >= self.ratio * minute.requests.max(1) as f64
    }

    /// The minutes of `buckets` (a range's plan: `(level, first minute)`)
    /// in which one subject storms, reading its buckets with `read`: only
    /// buckets with enough retries are opened, down to minutes.
    pub fn storming_minutes<E>(
        &self,
        buckets: &[(usize, u32)],
        read: &mut BucketReader<'_, E>,
    ) -> Result<Vec<u32>, E> {
        let mut minutes = Vec::new();
        let mut pending: Vec<Vec<(usize, u32)>> = vec![buckets.to_vec()];
        while let Some(level_buckets) = pending.pop() {
            let values = read(&level_buckets)?;
            let mut open = Vec::new();
            for (&(level, bucket), value) in level_buckets.iter().zip(&values) {
                if level == 0 {
                    if self.storms(value) {
                        minutes.push(bucket);
                    }
                } else if self.may_storm(value) {
                    let size = GRAPH_LEVELS[level - 1];
                    open.extend(
                        (0..GRAPH_LEVELS[level] / size).map(|n| (level - 1, bucket + n * size)),
                    );
                }
            }
            if !open.is_empty() {
                pending.push(open);
            }
        }
        minutes.sort_unstable();
        Ok(minutes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::CallClass;
    use crate::storage::graph::plan;
    use std::cell::Cell;
    use std::collections::HashMap;

    /// Minutes → (calls, retries); a bucket sums its minutes.
    fn reader<'a>(
        minutes: &'a HashMap<u32, (i64, i64)>,
        reads: &'a Cell<usize>,
    ) -> impl FnMut(&[(usize, u32)]) -> Result<Vec<Aggregate>, ()> + 'a {
        move |buckets| {
            reads.set(reads.get() + buckets.len());
            Ok(buckets
                .iter()
                .map(|&(level, bucket)| {
                    let mut sum = Aggregate::default();
                    for m in bucket..bucket + GRAPH_LEVELS[level] {
                        if let Some(&(calls, retries)) = minutes.get(&m) {
                            for n in 0..calls {
                                sum.observe(CallClass::Ok, 1_000, n < retries);
                            }
                        }
                    }
                    sum
                })
                .collect())
        }
    }

    fn storming(minutes: &[(u32, i64, i64)], from: u32, to: u32) -> (Vec<u32>, usize) {
        let minutes: HashMap<_, _> = minutes.iter().map(|&(m, c, r)| (m, (c, r))).collect();
        let reads = Cell::new(0);
        let found = StormRule::default()
            .storming_minutes(&plan(from, to), &mut reader(&minutes, &reads))
            .unwrap();
        (found, reads.get())
    }

    #[test]
    fn a_minute_with_ten_retries_in_a_tenth_of_its_calls_storms() {
        assert_eq!(storming(&[(125, 100, 10)], 60, 180).0, [125]);
        assert_eq!(
            storming(&[(61, 10, 10), (125, 100, 10), (179, 50, 40)], 60, 180).0,
            [61, 125, 179]
        );
        // Nine retries: not enough, however high the share.
        assert!(storming(&[(125, 9, 9)], 60, 180).0.is_empty());
        // Ten retries in 101 calls: under a tenth.
        assert!(storming(&[(125, 101, 10)], 60, 180).0.is_empty());
        // Many retries over the hour, never ten in one minute: no storm.
        let spread: Vec<_> = (60..120).map(|m| (m, 20, 5)).collect();
        assert!(storming(&spread, 60, 180).0.is_empty());
        // Outside the range: not its business.
        assert!(storming(&[(200, 100, 50)], 60, 180).0.is_empty());
    }

    #[test]
    fn quiet_buckets_are_not_opened() {
        // A week with no retries: the plan's buckets, nothing below.
        let (found, reads) = storming(&[(3_000, 100, 0)], 0, 7 * 1_440);
        assert!(found.is_empty());
        assert_eq!(reads, plan(0, 7 * 1_440).len());
        // One storming minute in a week: a day, its hours, ten-minute
        // buckets, minutes — a few dozen reads, not ten thousand.
        let (found, reads) = storming(&[(3_005, 100, 30)], 0, 7 * 1_440);
        assert_eq!(found, [3_005]);
        assert!(reads < 100, "{reads} reads");
    }
}
