//! The service map of one time range as a petgraph graph, built from the
//! range's aggregates: nodes and edges with their counts and latency, focus
//! on a service within N hops, who is upstream and downstream of a node (and
//! which entry points reach it), and cycles.

use std::collections::{HashMap, HashSet, VecDeque};

use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;
use petgraph::Direction;

use crate::model::{Aggregate, EdgeType, GraphSubject, NodeType};

#[derive(Debug, Clone, PartialEq)]
pub struct MapNode {
    pub id: String,
    pub node_type: NodeType,
    /// The database or messaging system, when known.
    pub system: Option<String>,
    pub aggregate: Aggregate,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MapEdge {
    pub edge_type: EdgeType,
    pub aggregate: Aggregate,
}

#[derive(Debug, Default)]
pub struct ServiceMap {
    pub graph: DiGraph<MapNode, MapEdge>,
    by_id: HashMap<String, NodeIndex>,
}

/// Rows of one subject under different types (a node seen as a database
/// and as an external peer): summed, typed as the one with most requests.
struct Typed<T> {
    aggregate: Aggregate,
    best: (i64, T),
}

impl<T: Copy> Typed<T> {
    fn new(kind: T, aggregate: Aggregate) -> Self {
        Self {
            best: (aggregate.requests, kind),
            aggregate,
        }
    }

    fn add(&mut self, kind: T, aggregate: &Aggregate) {
        if aggregate.requests > self.best.0 {
            self.best = (aggregate.requests, kind);
        }
        self.aggregate.merge(aggregate);
    }
}

impl ServiceMap {
    /// Builds the map from a range's rows (as `TraceStore::graph` returns them).
    pub fn from_rows(rows: Vec<(GraphSubject, Aggregate)>) -> Self {
        let mut nodes: HashMap<String, Typed<(NodeType, usize)>> = HashMap::new();
        let mut systems: Vec<String> = Vec::new();
        let mut edges: HashMap<(String, String), Typed<EdgeType>> = HashMap::new();
        for (subject, aggregate) in rows {
            match subject {
                GraphSubject::Node {
                    id,
                    node_type,
                    system,
                } => {
                    systems.push(system);
                    let kind = (node_type, systems.len() - 1);
                    match nodes.get_mut(&id) {
                        Some(typed) => typed.add(kind, &aggregate),
                        None => {
                            nodes.insert(id, Typed::new(kind, aggregate));
                        }
                    }
                }
                GraphSubject::Edge {
                    source,
                    target,
                    edge_type,
                } => match edges.get_mut(&(source.clone(), target.clone())) {
                    Some(typed) => typed.add(edge_type, &aggregate),
                    None => {
                        edges.insert((source, target), Typed::new(edge_type, aggregate));
                    }
                },
            }
        }
        let mut map = ServiceMap::default();
        let mut sorted: Vec<_> = nodes.into_iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        for (id, typed) in sorted {
            let (node_type, system) = typed.best.1;
            let system = Some(std::mem::take(&mut systems[system])).filter(|s| !s.is_empty());
            map.add_node(id, node_type, system, typed.aggregate);
        }
        let mut sorted: Vec<_> = edges.into_iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        for ((source, target), typed) in sorted {
            // An edge's ends are nodes even when they handled nothing counted
            // (a caller whose own requests came in before the range).
            let [from, to] = [&source, &target].map(|id| match map.by_id.get(id.as_str()) {
                Some(&index) => index,
                None => {
                    let node_type = if id == super::edges::USER {
                        NodeType::Client
                    } else {
                        NodeType::Service
                    };
                    map.add_node(id.clone(), node_type, None, Aggregate::default())
                }
            });
            map.graph.add_edge(
                from,
                to,
                MapEdge {
                    edge_type: typed.best.1,
                    aggregate: typed.aggregate,
                },
            );
        }
        map
    }

    fn add_node(
        &mut self,
        id: String,
        node_type: NodeType,
        system: Option<String>,
        aggregate: Aggregate,
    ) -> NodeIndex {
        let index = self.graph.add_node(MapNode {
            id: id.clone(),
            node_type,
            system,
            aggregate,
        });
        self.by_id.insert(id, index);
        index
    }

    pub fn node(&self, id: &str) -> Option<NodeIndex> {
        self.by_id.get(id).copied()
    }

    /// The nodes within `depth` hops of `center`, either direction.
    pub fn within(&self, center: NodeIndex, depth: usize) -> HashSet<NodeIndex> {
        let mut seen = HashSet::from([center]);
        let mut queue = VecDeque::from([(center, 0)]);
        while let Some((node, hops)) = queue.pop_front() {
            if hops == depth {
                continue;
            }
            for next in self.graph.neighbors_undirected(node) {
                if seen.insert(next) {
                    queue.push_back((next, hops + 1));
                }
            }
        }
        seen
    }

    /// Every node reachable from `start` following edges one way, not `start`.
    fn reachable(&self, start: NodeIndex, direction: Direction) -> Vec<NodeIndex> {
        let mut seen = HashSet::from([start]);
        let mut stack = vec![start];
        let mut out = Vec::new();
        while let Some(node) = stack.pop() {
            for next in self.graph.neighbors_directed(node, direction) {
                if seen.insert(next) {
                    out.push(next);
                    stack.push(next);
                }
            }
        }
        out.sort_by(|a, b| self.graph[*a].id.cmp(&self.graph[*b].id));
        out
    }

    /// What `node` calls, directly or through others.
    pub fn downstream(&self, node: NodeIndex) -> Vec<NodeIndex> {
        self.reachable(node, Direction::Outgoing)
    }

    /// What calls `node`, directly or through others: who is hurt if it fails.
    pub fn upstream(&self, node: NodeIndex) -> Vec<NodeIndex> {
        self.reachable(node, Direction::Incoming)
    }

    /// The entry points whose requests reach `node`: the services clients
    /// call directly, among `node` and its upstream.
    pub fn entry_points(&self, node: NodeIndex) -> Vec<NodeIndex> {
        let called_by_client = |n: NodeIndex| {
            self.graph
                .edges_directed(n, Direction::Incoming)
                .any(|e| self.graph[e.source()].node_type == NodeType::Client)
        };
        std::iter::once(node)
            .chain(self.upstream(node))
            .filter(|&n| self.graph[n].node_type != NodeType::Client && called_by_client(n))
            .collect()
    }

    /// Groups of nodes that call each other in a loop (a node calling itself
    /// included), each sorted, the groups sorted.
    pub fn cycles(&self) -> Vec<Vec<String>> {
        let mut cycles: Vec<Vec<String>> = petgraph::algo::tarjan_scc(&self.graph)
            .into_iter()
            .filter(|scc| scc.len() > 1 || self.graph.contains_edge(scc[0], scc[0]))
            .map(|scc| {
                let mut ids: Vec<String> = scc.iter().map(|&n| self.graph[n].id.clone()).collect();
                ids.sort();
                ids
            })
            .collect();
        cycles.sort();
        cycles
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::CallClass;

    fn agg(requests: usize) -> Aggregate {
        let mut a = Aggregate::default();
        for _ in 0..requests {
            a.observe(CallClass::Ok, 1_000, false);
        }
        a
    }

    fn node(id: &str, node_type: NodeType, n: usize) -> (GraphSubject, Aggregate) {
        (
            GraphSubject::Node {
                id: id.into(),
                node_type,
                system: if node_type == NodeType::Database {
                    "postgresql".into()
                } else {
                    String::new()
                },
            },
            agg(n),
        )
    }

    fn edge(source: &str, target: &str, n: usize) -> (GraphSubject, Aggregate) {
        (
            GraphSubject::Edge {
                source: source.into(),
                target: target.into(),
                edge_type: EdgeType::Http,
            },
            agg(n),
        )
    }

    fn ids(map: &ServiceMap, nodes: impl IntoIterator<Item = NodeIndex>) -> Vec<String> {
        let mut out: Vec<String> = nodes.into_iter().map(|n| map.graph[n].id.clone()).collect();
        out.sort();
        out
    }

    fn bookstore() -> ServiceMap {
        ServiceMap::from_rows(vec![
            node("user", NodeType::Client, 10),
            node("gateway", NodeType::Service, 10),
            node("order", NodeType::Service, 6),
            node("payment", NodeType::Service, 4),
            node("orders-db", NodeType::Database, 3),
            node("orders-db", NodeType::External, 1),
            edge("user", "gateway", 10),
            edge("gateway", "order", 6),
            edge("order", "payment", 4),
            edge("payment", "order", 1),
            edge("order", "orders-db", 3),
            // A caller with no node row of its own in the range.
            edge("batch", "order", 2),
        ])
    }

    #[test]
    fn nodes_merge_by_id_and_edge_ends_are_nodes() {
        let map = bookstore();
        let db = &map.graph[map.node("orders-db").unwrap()];
        assert_eq!(db.node_type, NodeType::Database);
        assert_eq!(db.system.as_deref(), Some("postgresql"));
        assert_eq!(db.aggregate.requests, 4);
        let batch = &map.graph[map.node("batch").unwrap()];
        assert_eq!(
            (batch.node_type, batch.aggregate.requests),
            (NodeType::Service, 0)
        );
        assert_eq!(map.graph.edge_count(), 6);
    }

    #[test]
    fn focus_upstream_downstream_entry_points_and_cycles() {
        let map = bookstore();
        let order = map.node("order").unwrap();
        assert_eq!(
            ids(&map, map.within(order, 1)),
            ["batch", "gateway", "order", "orders-db", "payment"]
        );
        assert_eq!(
            ids(&map, map.within(map.node("orders-db").unwrap(), 1)),
            ["order", "orders-db"]
        );
        assert_eq!(ids(&map, map.downstream(order)), ["orders-db", "payment"]);
        assert_eq!(
            ids(&map, map.upstream(map.node("orders-db").unwrap())),
            ["batch", "gateway", "order", "payment", "user"]
        );
        assert_eq!(
            ids(&map, map.entry_points(map.node("orders-db").unwrap())),
            ["gateway"]
        );
        assert_eq!(
            map.cycles(),
            vec![vec!["order".to_string(), "payment".to_string()]]
        );
    }
}
