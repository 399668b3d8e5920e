//! The service map: `GET /api/v1/service-map` (API.md) and Jaeger's
//! `GET /api/dependencies`, both answered from the graph aggregates alone.

use std::collections::HashSet;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::{json, Value};

use super::error::ApiError;
use super::v1::time_range;
use super::ApiState;
use crate::analysis::graph::model::ServiceMap;
use crate::ingest::now_us;
use crate::model::{Aggregate, GraphSubject, NodeType};
use crate::storage::graph;

/// Most hops `depth` may ask for.
const MAX_DEPTH: usize = 20;

/// A node's or an edge's numbers, as both carry them.
#[derive(Serialize)]
struct Health {
    requests: i64,
    errors: i64,
    faults: i64,
    throttles: i64,
    p50_ms: f64,
    p95_ms: f64,
    p99_ms: f64,
    rate_per_s: f64,
}

impl Health {
    fn of(aggregate: &Aggregate, seconds: f64) -> Self {
        let [p50_ms, p95_ms, p99_ms] = match aggregate.latency.quantiles(&[0.5, 0.95, 0.99]) {
            Some(q) => [q[0] / 1e3, q[1] / 1e3, q[2] / 1e3],
            None => [0.0; 3],
        };
        Health {
            requests: aggregate.requests,
            errors: aggregate.errors,
            faults: aggregate.faults,
            throttles: aggregate.throttles,
            p50_ms,
            p95_ms,
            p99_ms,
            rate_per_s: aggregate.requests as f64 / seconds.max(1e-3),
        }
    }
}

#[derive(Serialize)]
struct NodeOut<'a> {
    id: &'a str,
    name: &'a str,
    #[serde(rename = "type")]
    node_type: &'static str,
    system: &'a Option<String>,
    #[serde(flatten)]
    health: Health,
}

#[derive(Serialize)]
struct EdgeOut<'a> {
    source: &'a str,
    target: &'a str,
    #[serde(rename = "type")]
    edge_type: &'static str,
    retries: i64,
    storm: bool,
    #[serde(flatten)]
    health: Health,
}

#[derive(Serialize)]
struct MapOut<'a> {
    start_ms: u64,
    end_ms: u64,
    nodes: Vec<NodeOut<'a>>,
    edges: Vec<EdgeOut<'a>>,
    cycles: Vec<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    focus: Option<Value>,
}

/// `GET /api/v1/service-map?start=&end=|lookback=&service=&depth=`
pub async fn service_map(
    State(state): State<Arc<ApiState>>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let (start_us, end_us) = time_range(&params)?;
    let start_us = state.graph_kept_from(start_us);
    let get = |key: &str| {
        params
            .iter()
            .find(|(k, v)| k == key && !v.is_empty())
            .map(|(_, v)| v.as_str())
    };
    let focus = get("service").map(str::to_string);
    let depth = match get("depth") {
        None => 1,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|d| *d <= MAX_DEPTH)
            .ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "depth: {v:?} is not a number from 0 to {MAX_DEPTH}"
                ))
            })?,
    };
    // Widened to whole buckets of a resolution that suits the range; the
    // answer says which range it covers.
    let (start_us, end_us) = graph::snapped_range_us(start_us, end_us);
    let rule = state.storm;
    let (rows, storms) = state
        .blocking(move |store| {
            let rows = store.graph(start_us, end_us)?;
            let storms: HashSet<(String, String)> = store
                .graph_storms(start_us, end_us, rule)?
                .into_iter()
                .filter_map(|subject| match subject {
                    GraphSubject::Edge { source, target, .. } => Some((source, target)),
                    GraphSubject::Node { .. } => None,
                })
                .collect();
            Ok((rows, storms))
        })
        .await?;
    let map = ServiceMap::from_rows(rows);
    // Rates over the part of the range that has passed.
    let seconds = (end_us.min(now_us()).saturating_sub(start_us) as f64 / 1e6).max(1.0);
    let (keep, impact) = match &focus {
        None => (None, Value::Null),
        Some(service) => {
            let Some(center) = map.node(service) else {
                return Ok(Json(json!({
                    "start_ms": start_us / 1_000, "end_ms": end_us / 1_000,
                    "nodes": [], "edges": [], "cycles": [],
                    "focus": {"service": service, "upstream": [], "downstream": [], "entry_points": []},
                }))
                .into_response());
            };
            let names = |nodes: Vec<petgraph::graph::NodeIndex>| -> Vec<String> {
                nodes.into_iter().map(|n| map.graph[n].id.clone()).collect()
            };
            let impact = json!({
                "service": service,
                "upstream": names(map.upstream(center)),
                "downstream": names(map.downstream(center)),
                "entry_points": names(map.entry_points(center)),
            });
            (Some(map.within(center, depth)), impact)
        }
    };
    let shown =
        |n: petgraph::graph::NodeIndex| keep.as_ref().is_none_or(|k: &HashSet<_>| k.contains(&n));
    let nodes = map
        .graph
        .node_indices()
        .filter(|&n| shown(n))
        .map(|n| {
            let node = &map.graph[n];
            NodeOut {
                id: &node.id,
                name: &node.id,
                node_type: node.node_type.as_str(),
                system: &node.system,
                health: Health::of(&node.aggregate, seconds),
            }
        })
        .collect();
    let edges = map
        .graph
        .edge_indices()
        .filter_map(|e| {
            let (source, target) = map.graph.edge_endpoints(e)?;
            (shown(source) && shown(target)).then(|| {
                let edge = &map.graph[e];
                EdgeOut {
                    source: &map.graph[source].id,
                    target: &map.graph[target].id,
                    edge_type: edge.edge_type.as_str(),
                    retries: edge.aggregate.retries,
                    storm: !storms.is_empty()
                        && storms.contains(&(
                            map.graph[source].id.clone(),
                            map.graph[target].id.clone(),
                        )),
                    health: Health::of(&edge.aggregate, seconds),
                }
            })
        })
        .collect();
    let out = MapOut {
        start_ms: start_us / 1_000,
        end_ms: end_us / 1_000,
        nodes,
        edges,
        cycles: map.cycles(),
        focus: focus.is_some().then_some(impact),
    };
    let body =
        sonic_rs::to_vec(&out).map_err(|e| ApiError::Internal(format!("encoding the map: {e}")))?;
    Ok(([(http::header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// `GET /api/dependencies?endTs=<ms>&lookback=<ms>`: Jaeger's dependency
/// links, every edge of the map but those from the `user` client.
pub async fn dependencies(
    State(state): State<Arc<ApiState>>,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let (start_us, end_us) = match dependencies_range(&params) {
        Ok((start_us, end_us)) => (state.graph_kept_from(start_us), end_us),
        Err(error) => return super::jaeger::error_envelope(error),
    };
    let rows = match state
        .blocking(move |store| store.graph(start_us, end_us))
        .await
    {
        Ok(rows) => rows,
        Err(error) => return super::jaeger::error_envelope(error),
    };
    let map = ServiceMap::from_rows(rows);
    let links: Vec<Value> = map
        .graph
        .edge_indices()
        .filter_map(|e| {
            let (source, target) = map.graph.edge_endpoints(e)?;
            let (parent, child) = (&map.graph[source], &map.graph[target]);
            (parent.node_type != NodeType::Client).then(|| {
                json!({
                    "parent": parent.id,
                    "child": child.id,
                    "callCount": map.graph[e].aggregate.requests,
                })
            })
        })
        .collect();
    super::jaeger::ok(links)
}

/// The µs range of a dependencies request: `lookback` ms (default a day)
/// before `endTs` ms (default now).
pub(crate) fn dependencies_range(params: &[(String, String)]) -> Result<(u64, u64), ApiError> {
    let get = |key: &str| {
        params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    let ms = |key: &str, default: u64| -> Result<u64, ApiError> {
        match get(key) {
            None | Some("") => Ok(default),
            Some(v) => v
                .parse::<u64>()
                .map_err(|_| ApiError::BadRequest(format!("{key}: {v:?} is not a number of ms"))),
        }
    };
    let end = ms("endTs", now_us() / 1_000)?;
    let lookback = ms("lookback", 86_400_000)?;
    // Saturating: an `endTs` past what µs can hold overflowed (found by fuzzing).
    let us = |ms: u64| ms.saturating_mul(1_000);
    Ok((us(end.saturating_sub(lookback)), us(end)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `query_params` fuzz target: an `endTs` past what µs can
    /// hold overflowed (a panic in debug builds, a wrapped range in release).
    #[test]
    fn a_dependencies_range_past_u64_micros_saturates() {
        let params = |end: &str, lookback: &str| {
            vec![
                ("endTs".to_string(), end.to_string()),
                ("lookback".to_string(), lookback.to_string()),
            ]
        };
        assert_eq!(
            dependencies_range(&params("176431680016800000", "3600000")).unwrap(),
            (u64::MAX, u64::MAX)
        );
        assert_eq!(
            dependencies_range(&params("1764316800000", "3600000")).unwrap(),
            (1_764_313_200_000_000, 1_764_316_800_000_000)
        );
        assert!(dependencies_range(&params("soon", "")).is_err());
    }
}
