//! The cardinality guard: caps on the distinct services (and virtual nodes),
//! operations and edges the map and the metrics keep apart. Past a cap, new
//! names count under `OVERFLOW` and the overflow counter says so, so a flood
//! of random service names costs a bounded number of rows and series.
//!
//! The names admitted are forgotten every `window`, so names that stopped
//! appearing make room for new ones.

use std::time::{Duration, Instant};

// Looked up for every call of every trace: a fast hasher, seeded per map
// (`foldhash`), since the names come from clients.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
type HashSet<T> = std::collections::HashSet<T, foldhash::fast::RandomState>;

/// What names past a cap count as.
pub const OVERFLOW: &str = "__overflow__";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GraphLimits {
    /// Distinct nodes: services and virtual nodes.
    pub max_nodes: usize,
    /// Distinct (service, operation) pairs in span metrics.
    pub max_operations: usize,
    /// Distinct (source, target) pairs.
    pub max_edges: usize,
    /// How long admitted names are remembered.
    pub window: Duration,
}

impl Default for GraphLimits {
    fn default() -> Self {
        Self {
            max_nodes: 1_000,
            max_operations: 5_000,
            max_edges: 10_000,
            window: Duration::from_secs(3_600),
        }
    }
}

/// What the guard folded into the overflow bucket.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Overflowed {
    pub nodes: u64,
    pub operations: u64,
    pub edges: u64,
}

/// Names admitted under a cap: a set of names, or of pairs kept as a map
/// from first to second names; a lookup that hits allocates nothing.
#[derive(Debug, Default)]
struct Admitted {
    pairs: HashMap<String, HashSet<String>>,
    len: usize,
}

impl Admitted {
    fn admit(&mut self, first: &str, second: &str, cap: usize, overflowed: &mut u64) -> bool {
        if self.pairs.get(first).is_some_and(|s| s.contains(second)) {
            return true;
        }
        if self.len >= cap {
            *overflowed += 1;
            return false;
        }
        self.len += 1;
        match self.pairs.get_mut(first) {
            Some(set) => set.insert(second.to_string()),
            None => {
                let mut set = HashSet::default();
                set.insert(second.to_string());
                self.pairs.insert(first.to_string(), set).is_none()
            }
        };
        true
    }

    fn clear(&mut self) {
        self.pairs.clear();
        self.len = 0;
    }
}

#[derive(Debug)]
pub struct Guard {
    limits: GraphLimits,
    since: Instant,
    nodes: Admitted,
    operations: Admitted,
    edges: Admitted,
    pub overflowed: Overflowed,
}

impl Guard {
    pub fn new(limits: GraphLimits) -> Self {
        Self {
            limits,
            since: Instant::now(),
            nodes: Admitted::default(),
            operations: Admitted::default(),
            edges: Admitted::default(),
            overflowed: Overflowed::default(),
        }
    }

    /// Forgets the admitted names once a `window` has passed; called once
    /// per trace or batch of spans (not per name: reading the clock costs).
    pub fn roll(&mut self) {
        if self.since.elapsed() >= self.limits.window {
            self.since = Instant::now();
            self.nodes.clear();
            self.operations.clear();
            self.edges.clear();
        }
    }

    /// The name a node is kept under: its own, or `OVERFLOW`.
    pub fn node<'a>(&mut self, id: &'a str) -> &'a str {
        let cap = self.limits.max_nodes;
        if id == OVERFLOW || self.nodes.admit(id, "", cap, &mut self.overflowed.nodes) {
            id
        } else {
            OVERFLOW
        }
    }

    /// The names an edge is kept under: both nodes guarded, then the pair.
    pub fn edge<'a>(&mut self, source: &'a str, target: &'a str) -> (&'a str, &'a str) {
        let (source, target) = (self.node(source), self.node(target));
        let cap = self.limits.max_edges;
        if self
            .edges
            .admit(source, target, cap, &mut self.overflowed.edges)
        {
            (source, target)
        } else {
            (OVERFLOW, OVERFLOW)
        }
    }

    /// The names a span's (service, operation) are kept under.
    pub fn operation<'a>(&mut self, service: &'a str, operation: &'a str) -> (&'a str, &'a str) {
        let service = self.node(service);
        let cap = self.limits.max_operations;
        if self
            .operations
            .admit(service, operation, cap, &mut self.overflowed.operations)
        {
            (service, operation)
        } else {
            (service, OVERFLOW)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_a_cap_names_overflow_and_are_counted() {
        let mut guard = Guard::new(GraphLimits {
            max_nodes: 3,
            max_operations: 2,
            max_edges: 1,
            window: Duration::from_secs(3_600),
        });
        assert_eq!(guard.node("a"), "a");
        assert_eq!(guard.node("b"), "b");
        assert_eq!(guard.node("a"), "a");
        assert_eq!(guard.node("c"), "c");
        assert_eq!(guard.node("d"), OVERFLOW);
        assert_eq!(guard.edge("a", "b"), ("a", "b"));
        assert_eq!(guard.edge("a", "c"), (OVERFLOW, OVERFLOW));
        assert_eq!(guard.edge("a", "b"), ("a", "b"));
        assert_eq!(guard.operation("a", "GET"), ("a", "GET"));
        assert_eq!(guard.operation("a", "POST"), ("a", "POST"));
        assert_eq!(guard.operation("a", "PUT"), ("a", OVERFLOW));
        assert_eq!(
            guard.overflowed,
            Overflowed {
                nodes: 1,
                operations: 1,
                edges: 1
            }
        );
    }

    #[test]
    fn names_are_forgotten_after_the_window() {
        let mut guard = Guard::new(GraphLimits {
            max_nodes: 1,
            window: Duration::ZERO,
            ..GraphLimits::default()
        });
        assert_eq!(guard.node("a"), "a");
        // Within a window (between rolls) the cap holds...
        assert_eq!(guard.node("b"), OVERFLOW);
        // ...and the next one starts empty.
        guard.roll();
        assert_eq!(guard.node("b"), "b");
    }
}
