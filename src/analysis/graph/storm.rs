//! Retry storms on the map: an edge storms over a range when, in some
//! one-minute bucket of it, its retries are at least `min_retries` and at
//! least `ratio` of its calls (API.md). The aggregates answer that without
//! reading every minute: a bucket with fewer retries than the minimum holds
//! no storming minute, so only buckets that could are opened, level by
//! level, down to minutes — for an edge with few retries, no read at all.

use crate::model::Aggregate;
use crate::storage::keys::GRAPH_LEVELS;

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

/// Bucket reads one map answer spends looking for storms, at most.
pub const MAX_STORM_READS: usize = 4_096;

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

    /// Whether some minute of `buckets` (a range's plan: `(level, first
    /// minute)`) storms, reading one subject's buckets with `read`.
    /// `None` when `budget` bucket reads ran out before an answer.
    pub fn storming<E>(
        &self,
        buckets: &[(usize, u32)],
        read: &mut BucketReader<'_, E>,
        budget: &mut usize,
    ) -> Result<Option<bool>, E> {
        let mut pending: Vec<Vec<(usize, u32)>> = vec![buckets.to_vec()];
        while let Some(level_buckets) = pending.pop() {
            if level_buckets.len() > *budget {
                return Ok(None);
            }
            *budget -= level_buckets.len();
            let values = read(&level_buckets)?;
            // Depth first, earliest bucket first: children are pushed last to first.
            let mut open = Vec::new();
            for (&(level, bucket), value) in level_buckets.iter().zip(&values) {
                if level == 0 {
                    if self.storms(value) {
                        return Ok(Some(true));
                    }
                } else if self.may_storm(value) {
                    let size = GRAPH_LEVELS[level - 1];
                    let children: Vec<_> = (0..GRAPH_LEVELS[level] / size)
                        .map(|n| (level - 1, bucket + n * size))
                        .collect();
                    open.push(children);
                }
            }
            pending.extend(open.into_iter().rev());
        }
        Ok(Some(false))
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

    fn storming(minutes: &[(u32, i64, i64)], from: u32, to: u32) -> (Option<bool>, usize) {
        let minutes: HashMap<_, _> = minutes.iter().map(|&(m, c, r)| (m, (c, r))).collect();
        let reads = Cell::new(0);
        let mut budget = MAX_STORM_READS;
        let answer = StormRule::default()
            .storming(&plan(from, to), &mut reader(&minutes, &reads), &mut budget)
            .unwrap();
        (answer, reads.get())
    }

    #[test]
    fn a_minute_with_ten_retries_in_a_tenth_of_its_calls_storms() {
        assert_eq!(storming(&[(125, 100, 10)], 60, 180).0, Some(true));
        // Nine retries: not enough, however high the share.
        assert_eq!(storming(&[(125, 9, 9)], 60, 180).0, Some(false));
        // Ten retries in 101 calls: under a tenth.
        assert_eq!(storming(&[(125, 101, 10)], 60, 180).0, Some(false));
        // Many retries over the hour, never ten in one minute: no storm.
        let spread: Vec<_> = (60..120).map(|m| (m, 20, 5)).collect();
        assert_eq!(storming(&spread, 60, 180).0, Some(false));
        // Outside the range: not its business.
        assert_eq!(storming(&[(200, 100, 50)], 60, 180).0, Some(false));
    }

    #[test]
    fn quiet_buckets_are_not_opened() {
        // A week with no retries: the plan's buckets, nothing below.
        let (answer, reads) = storming(&[(3_000, 100, 0)], 0, 7 * 1_440);
        assert_eq!(answer, Some(false));
        assert_eq!(reads, plan(0, 7 * 1_440).len());
        // One storming minute in a week: a day, its hours, ten-minute
        // buckets, minutes — a few dozen reads, not ten thousand.
        let (answer, reads) = storming(&[(3_005, 100, 30)], 0, 7 * 1_440);
        assert_eq!(answer, Some(true));
        assert!(reads < 100, "{reads} reads");
    }

    #[test]
    fn a_spent_budget_says_so() {
        let minutes: HashMap<_, _> = (0..1_440)
            .map(|m| (m, (100, 10 - (m % 2) as i64 * 2)))
            .collect();
        let reads = Cell::new(0);
        let mut budget = 10;
        let answer = StormRule::default()
            .storming(&plan(0, 1_440), &mut reader(&minutes, &reads), &mut budget)
            .unwrap();
        assert_eq!(answer, None);
    }
}
