//! Service-graph aggregates: what the map is drawn from.
//!
//! Analysis turns each completed trace into observations (a call on an edge, a
//! request handled by a node) and adds them up per one-minute bucket and
//! subject into `Aggregate`s, which storage merges with what it holds. Every
//! field adds, so aggregates of any set of buckets merge in any order; counts
//! are signed so that a re-completed trace can take back what its earlier
//! version added.

use std::collections::HashMap;
use std::sync::LazyLock;

use hdrhistogram::Histogram;

/// What a node of the map stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NodeType {
    Service = 0,
    Database = 1,
    External = 2,
    Messaging = 3,
    Client = 4,
}

impl NodeType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Service => "service",
            Self::Database => "database",
            Self::External => "external",
            Self::Messaging => "messaging",
            Self::Client => "client",
        }
    }

    pub fn from_u8(value: u8) -> Option<Self> {
        Some(match value {
            0 => Self::Service,
            1 => Self::Database,
            2 => Self::External,
            3 => Self::Messaging,
            4 => Self::Client,
            _ => return None,
        })
    }
}

/// How a caller reaches its callee.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EdgeType {
    Http = 0,
    Rpc = 1,
    Database = 2,
    Messaging = 3,
    Other = 4,
}

impl EdgeType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Rpc => "rpc",
            Self::Database => "database",
            Self::Messaging => "messaging",
            Self::Other => "other",
        }
    }

    pub fn from_u8(value: u8) -> Option<Self> {
        Some(match value {
            0 => Self::Http,
            1 => Self::Rpc,
            2 => Self::Database,
            3 => Self::Messaging,
            4 => Self::Other,
            _ => return None,
        })
    }
}

/// How a call ended, as X-Ray's console counts calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallClass {
    Ok,
    /// A client error: 4xx other than 429, or X-Ray `error`.
    Error,
    /// A server error: 5xx, X-Ray `fault`, or an error status without a code.
    Fault,
    /// 429, X-Ray `throttle`, or gRPC `RESOURCE_EXHAUSTED`.
    Throttle,
}

/// What one row of aggregates counts: a node or an edge.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GraphSubject {
    /// `system` is the database or messaging system, empty when none.
    Node {
        id: String,
        node_type: NodeType,
        system: String,
    },
    Edge {
        source: String,
        target: String,
        edge_type: EdgeType,
    },
}

/// Latency bins: the buckets of an HDR histogram with two significant digits
/// (at most 1 % relative error) over 1 µs to one day, kept sparse (only the
/// bins with counts), so a minute of a quiet edge costs a few bytes and
/// merging is adding counts of equal bins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Latency {
    /// (bin: the lowest value it holds, in µs; count), sorted by bin.
    bins: Vec<(u64, i64)>,
}

/// Largest latency kept apart (µs); longer ones count as this.
pub const MAX_LATENCY_US: u64 = 86_400 * 1_000_000;

/// The precision of the latency bins: quantiles are within 1 % of the truth.
pub const LATENCY_SIGNIFICANT_DIGITS: u8 = 2;

/// The histogram whose buckets the bins are, used for its bucket arithmetic.
static LAYOUT: LazyLock<Histogram<u64>> = LazyLock::new(|| {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, LATENCY_SIGNIFICANT_DIGITS)
        .expect("valid histogram bounds")
});

impl Latency {
    /// The bin a latency falls in.
    pub fn bin_of(latency_us: u64) -> u64 {
        LAYOUT.lowest_equivalent(latency_us.clamp(1, MAX_LATENCY_US))
    }

    /// Bins in any order, equal ones added up; each must be the lowest
    /// value of its bucket.
    pub fn from_bins(mut bins: Vec<(u64, i64)>) -> Self {
        bins.sort_unstable_by_key(|(bin, _)| *bin);
        let mut latency = Self::default();
        latency.merge_sorted(&bins);
        latency
    }

    pub fn bins(&self) -> &[(u64, i64)] {
        &self.bins
    }

    pub fn is_empty(&self) -> bool {
        self.bins.is_empty()
    }

    pub fn record(&mut self, latency_us: u64) {
        self.record_n(Self::bin_of(latency_us), 1);
    }

    fn record_n(&mut self, bin: u64, count: i64) {
        match self.bins.binary_search_by_key(&bin, |(b, _)| *b) {
            Ok(at) => {
                self.bins[at].1 += count;
                if self.bins[at].1 == 0 {
                    self.bins.remove(at);
                }
            }
            Err(at) if count != 0 => self.bins.insert(at, (bin, count)),
            Err(_) => {}
        }
    }

    /// Adds the other's counts to this one's.
    pub fn merge(&mut self, other: &Latency) {
        self.merge_sorted(&other.bins);
    }

    fn merge_sorted(&mut self, other: &[(u64, i64)]) {
        if other.is_empty() {
            return;
        }
        // A few bins into many (a new row into a kept sum): in place.
        if other.len() <= 8 && other.len() * 8 <= self.bins.len() {
            for &(bin, n) in other {
                self.record_n(bin, n);
            }
            return;
        }
        // Equal bins within `other` add up too (`out.last_mut()` below).
        let mut out = Vec::with_capacity(self.bins.len() + other.len());
        let (mut a, mut b) = (self.bins.iter().peekable(), other.iter().peekable());
        loop {
            let next = match (a.peek(), b.peek()) {
                (Some(x), Some(y)) if x.0 == y.0 => {
                    let sum = (x.0, x.1 + y.1);
                    a.next();
                    b.next();
                    sum
                }
                (Some(x), Some(y)) if x.0 < y.0 => *a.next().expect("peeked"),
                (Some(_), Some(_)) | (None, Some(_)) => *b.next().expect("peeked"),
                (Some(_), None) => *a.next().expect("peeked"),
                (None, None) => break,
            };
            match out.last_mut() {
                Some((bin, n)) if *bin == next.0 => *n += next.1,
                _ => out.push(next),
            }
        }
        out.retain(|(_, n)| *n != 0);
        self.bins = out;
    }

    /// The same bins with their counts negated: merging it takes these back.
    pub fn negated(&self) -> Latency {
        Latency {
            bins: self.bins.iter().map(|&(bin, n)| (bin, -n)).collect(),
        }
    }

    /// The latencies (µs) at the quantiles `qs` (0..=1), each within 1 % of
    /// the true value; `None` when nothing was recorded. Ranks as
    /// `hdrhistogram` ranks them; each answer is the highest value of its
    /// bucket, as `Histogram::value_at_quantile` gives it.
    pub fn quantiles(&self, qs: &[f64]) -> Option<Vec<f64>> {
        let total: u64 = self.bins.iter().map(|&(_, n)| n.max(0) as u64).sum();
        if total == 0 {
            return None;
        }
        // Every rank found in one walk over the bins, the lowest first.
        let mut wanted: Vec<(u64, usize)> = qs
            .iter()
            .map(|&q| ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).clamp(1, total))
            .zip(0..)
            .collect();
        wanted.sort_unstable();
        let mut out = vec![0.0; qs.len()];
        let mut wanted = wanted.into_iter().peekable();
        let mut seen = 0;
        for &(bin, n) in &self.bins {
            seen += n.max(0) as u64;
            while let Some((_, at)) = wanted.next_if(|&(rank, _)| rank <= seen) {
                out[at] = if qs[at] <= 0.0 {
                    bin as f64
                } else {
                    LAYOUT.highest_equivalent(bin) as f64
                };
            }
        }
        Some(out)
    }
}

/// Half the sub-buckets of an HDR bucket at `LATENCY_SIGNIFICANT_DIGITS`
/// (sub-buckets: 2^ceil(log2(2·10^digits))): the first bucket holds values
/// below twice this one by one, each later one twice as wide as the one before.
const HALF_SUB_BUCKETS: u64 = {
    let mut n = 1u64;
    let want = 2 * 10u64.pow(LATENCY_SIGNIFICANT_DIGITS as u32);
    while n < want {
        n *= 2;
    }
    n / 2
};

/// The dense position of a bin (the lowest value of an HDR bucket), in value
/// order, as `hdrhistogram` numbers its counts.
#[inline]
fn bin_index(bin: u64) -> usize {
    // The bucket's width is 2^shift: 1 below 2·HALF, doubling with each
    // power of two above (`tests::bin_index_follows_hdrhistogram`).
    let top_bit = 63 - u64::from(bin.max(1).leading_zeros());
    let shift = top_bit.saturating_sub(u64::from(HALF_SUB_BUCKETS.trailing_zeros()));
    (shift * HALF_SUB_BUCKETS + (bin >> shift)) as usize
}

/// The bin at a dense position (the inverse of `bin_index`).
fn bin_at(index: usize) -> u64 {
    let index = index as u64;
    if index < 2 * HALF_SUB_BUCKETS {
        return index;
    }
    let shift = index / HALF_SUB_BUCKETS - 1;
    (index - shift * HALF_SUB_BUCKETS) << shift
}

/// Sums many bin lists at once: counts land in a dense array by bin, so
/// adding a list is one pass over it, however many were added before.
/// Reading a map sums thousands of lists per node or edge this way.
#[derive(Debug, Clone)]
pub struct LatencySum {
    counts: Vec<i64>,
    /// The positions touched since the last `take`: `[low, high)`.
    low: usize,
    high: usize,
}

impl Default for LatencySum {
    fn default() -> Self {
        Self {
            counts: vec![0; bin_index(Latency::bin_of(MAX_LATENCY_US)) + 1],
            low: usize::MAX,
            high: 0,
        }
    }
}

impl LatencySum {
    /// Adds `count` to `bin`, which must be a bin (`Latency::bin_of`).
    pub fn add(&mut self, bin: u64, count: i64) {
        let index = bin_index(bin.clamp(1, MAX_LATENCY_US)).min(self.counts.len() - 1);
        self.counts[index] += count;
        self.low = self.low.min(index);
        self.high = self.high.max(index + 1);
    }

    /// The sum so far, as sparse bins; empty again after.
    pub fn take(&mut self) -> Latency {
        let mut bins = Vec::new();
        for index in self.low..self.high {
            let n = std::mem::take(&mut self.counts[index]);
            if n != 0 {
                bins.push((bin_at(index), n));
            }
        }
        self.low = usize::MAX;
        self.high = 0;
        Latency { bins }
    }
}

/// Calls (or requests) over one bucket, by class, with their latency.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Aggregate {
    pub requests: i64,
    pub errors: i64,
    pub faults: i64,
    pub throttles: i64,
    pub retries: i64,
    /// The caller's view: client-side durations (server side when no client span).
    pub latency: Latency,
    /// On an edge whose callee is traced too: the server side's durations.
    pub server_latency: Latency,
}

impl Aggregate {
    /// One call or request.
    pub fn observe(&mut self, class: CallClass, latency_us: u64, retry: bool) {
        self.requests += 1;
        match class {
            CallClass::Ok => {}
            CallClass::Error => self.errors += 1,
            CallClass::Fault => self.faults += 1,
            CallClass::Throttle => self.throttles += 1,
        }
        self.retries += retry as i64;
        self.latency.record(latency_us);
    }

    pub fn merge(&mut self, other: &Aggregate) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.faults += other.faults;
        self.throttles += other.throttles;
        self.retries += other.retries;
        self.latency.merge(&other.latency);
        self.server_latency.merge(&other.server_latency);
    }

    pub fn negated(&self) -> Aggregate {
        Aggregate {
            requests: -self.requests,
            errors: -self.errors,
            faults: -self.faults,
            throttles: -self.throttles,
            retries: -self.retries,
            latency: self.latency.negated(),
            server_latency: self.server_latency.negated(),
        }
    }

    /// Nothing counted (a row a re-completion took back whole).
    pub fn is_zero(&self) -> bool {
        self.requests == 0
            && self.errors == 0
            && self.faults == 0
            && self.throttles == 0
            && self.retries == 0
            && self.latency.is_empty()
            && self.server_latency.is_empty()
    }
}

/// One minute of one subject: the unit analysis hands storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphRow {
    /// Minutes since the epoch.
    pub minute: u32,
    pub subject: GraphSubject,
    pub aggregate: Aggregate,
}

/// Rows being added up for one write.
#[derive(Debug, Default)]
pub struct GraphBatch {
    rows: HashMap<(u32, GraphSubject), Aggregate, foldhash::fast::RandomState>,
}

impl GraphBatch {
    pub fn add(&mut self, minute: u32, subject: GraphSubject, aggregate: &Aggregate) {
        self.rows
            .entry((minute, subject))
            .or_default()
            .merge(aggregate);
    }

    pub fn observe(
        &mut self,
        minute: u32,
        subject: GraphSubject,
        class: CallClass,
        latency_us: u64,
        retry: bool,
        server_latency_us: Option<u64>,
    ) {
        let aggregate = self.rows.entry((minute, subject)).or_default();
        aggregate.observe(class, latency_us, retry);
        if let Some(us) = server_latency_us {
            aggregate.server_latency.record(us);
        }
    }

    /// Takes back what `other` added.
    pub fn subtract(&mut self, other: GraphBatch) {
        for ((minute, subject), aggregate) in other.rows {
            self.add(minute, subject, &aggregate.negated());
        }
    }

    /// The rows that count something, sorted by minute and subject.
    pub fn into_rows(self) -> Vec<GraphRow> {
        let mut rows: Vec<GraphRow> = self
            .rows
            .into_iter()
            .filter(|(_, aggregate)| !aggregate.is_zero())
            .map(|((minute, subject), aggregate)| GraphRow {
                minute,
                subject,
                aggregate,
            })
            .collect();
        rows.sort_by(|a, b| (a.minute, &a.subject).cmp(&(b.minute, &b.subject)));
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bin_index_follows_hdrhistogram() {
        let mut value = 1u64;
        while value <= MAX_LATENCY_US {
            for v in [
                value,
                value + 1,
                value * 3 / 2,
                value.saturating_sub(1).max(1),
            ] {
                let shift = u64::from(LAYOUT.equivalent_range(v).trailing_zeros());
                let expected = (shift * HALF_SUB_BUCKETS + (v >> shift)) as usize;
                assert_eq!(bin_index(v), expected, "{v}");
            }
            value = value * 2 + 1;
        }
        for v in 1..5_000 {
            let shift = u64::from(LAYOUT.equivalent_range(v).trailing_zeros());
            assert_eq!(
                bin_index(v),
                (shift * HALF_SUB_BUCKETS + (v >> shift)) as usize
            );
        }
    }
    use proptest::prelude::*;

    #[test]
    fn quantiles_are_within_one_percent() {
        let mut latency = Latency::default();
        let values: Vec<u64> = (1..=10_000).map(|i| i * 37 % 100_003 + 1).collect();
        for &v in &values {
            latency.record(v);
        }
        let mut sorted = values.clone();
        sorted.sort_unstable();
        for q in [0.5, 0.95, 0.99] {
            let truth = sorted[((sorted.len() as f64 * q).ceil() as usize) - 1] as f64;
            let got = latency.quantiles(&[q]).unwrap()[0];
            assert!(
                (got - truth).abs() <= truth * 0.01 + 1.0,
                "q{q}: {got} vs {truth}"
            );
        }
    }

    proptest! {
        /// Dense positions follow value order and map back to the same bin.
        #[test]
        fn bin_positions_round_trip(a in 1u64..MAX_LATENCY_US, b in 1u64..MAX_LATENCY_US) {
            let (a, b) = (Latency::bin_of(a), Latency::bin_of(b));
            prop_assert_eq!(bin_at(bin_index(a)), a);
            prop_assert_eq!(a.cmp(&b), bin_index(a).cmp(&bin_index(b)));
        }

        /// A dense sum equals merging the lists one by one.
        #[test]
        fn a_dense_sum_equals_merging(lists in proptest::collection::vec(
            proptest::collection::vec((1u64..10_000_000, -3i64..4), 0..40), 0..6)
        ) {
            let mut merged = Latency::default();
            let mut sum = LatencySum::default();
            for list in &lists {
                let bins: Vec<(u64, i64)> =
                    list.iter().map(|&(v, n)| (Latency::bin_of(v), n)).collect();
                merged.merge(&Latency::from_bins(bins.clone()));
                for (bin, n) in bins {
                    sum.add(bin, n);
                }
            }
            prop_assert_eq!(sum.take(), merged);
            prop_assert!(sum.take().is_empty());
        }

        /// The quantiles are the ones `hdrhistogram` itself gives.
        #[test]
        fn quantiles_match_the_crates(values in proptest::collection::vec(1u64..100_000_000, 1..300)) {
            let mut latency = Latency::default();
            let mut histogram = LAYOUT.clone();
            for &v in &values {
                latency.record(v);
                histogram.record(v).unwrap();
            }
            let qs = [0.0, 0.5, 0.95, 0.99, 1.0];
            let got = latency.quantiles(&qs).unwrap();
            for (q, got) in qs.iter().zip(got) {
                prop_assert_eq!(got, histogram.value_at_quantile(*q) as f64, "q{}", q);
            }
        }

        /// Merging is adding: any split of the same values merges to the
        /// whole, and taking a part back leaves the rest.
        #[test]
        fn merge_adds_and_negation_takes_back(
            a in proptest::collection::vec(0u64..10_000_000, 0..50),
            b in proptest::collection::vec(0u64..10_000_000, 0..50),
        ) {
            let of = |values: &[u64]| {
                let mut agg = Aggregate::default();
                for &v in values {
                    agg.observe(CallClass::Fault, v, v % 2 == 0);
                }
                agg
            };
            let whole = of(&[a.clone(), b.clone()].concat());
            let mut merged = of(&a);
            merged.merge(&of(&b));
            prop_assert_eq!(&merged, &whole);
            merged.merge(&of(&b).negated());
            prop_assert_eq!(merged, of(&a));
        }
    }
}
