//! The service map: `GET /api/v1/service-map` (API.md) and Jaeger's
//! `GET /api/dependencies`, both answered from the graph aggregates alone.

use std::collections::HashSet;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::Response;
use axum::Json;
use serde_json::{json, Value};

use super::error::ApiError;
use super::v1::time_range;
use super::ApiState;
use crate::analysis::graph::model::ServiceMap;
use crate::ingest::now_us;
use crate::model::{Aggregate, NodeType};
use crate::storage::graph;

const MINUTE_US: u64 = 60_000_000;

/// Most hops `depth` may ask for.
const MAX_DEPTH: usize = 20;

/// p50, p95 and p99 in ms, 0 when nothing was timed.
fn percentiles(aggregate: &Aggregate) -> [f64; 3] {
    match aggregate.latency.quantiles(&[0.5, 0.95, 0.99]) {
        Some(q) => [q[0] / 1e3, q[1] / 1e3, q[2] / 1e3],
        None => [0.0; 3],
    }
}

fn counts(aggregate: &Aggregate, seconds: f64) -> serde_json::Map<String, Value> {
    let [p50, p95, p99] = percentiles(aggregate);
    let mut out = serde_json::Map::new();
    out.insert("requests".into(), json!(aggregate.requests));
    out.insert("errors".into(), json!(aggregate.errors));
    out.insert("faults".into(), json!(aggregate.faults));
    out.insert("throttles".into(), json!(aggregate.throttles));
    out.insert("p50_ms".into(), json!(p50));
    out.insert("p95_ms".into(), json!(p95));
    out.insert("p99_ms".into(), json!(p99));
    out.insert(
        "rate_per_s".into(),
        json!(aggregate.requests as f64 / seconds.max(1e-3)),
    );
    out
}

/// `GET /api/v1/service-map?start=&end=|lookback=&service=&depth=`
pub async fn service_map(
    State(state): State<Arc<ApiState>>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    let (start_us, end_us) = time_range(&params)?;
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
    let (from, to) = graph::minutes_of(start_us, end_us);
    let (from, to) = graph::snap(from, to);
    let (start_us, end_us) = (from as u64 * MINUTE_US, to as u64 * MINUTE_US);
    let rows = state
        .blocking(move |store| store.graph(start_us, end_us))
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
                })));
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
    let nodes: Vec<Value> = map
        .graph
        .node_indices()
        .filter(|&n| shown(n))
        .map(|n| {
            let node = &map.graph[n];
            let mut out = counts(&node.aggregate, seconds);
            out.insert("id".into(), json!(node.id));
            out.insert("name".into(), json!(node.id));
            out.insert("type".into(), json!(node.node_type.as_str()));
            out.insert("system".into(), json!(node.system));
            Value::Object(out)
        })
        .collect();
    let edges: Vec<Value> = map
        .graph
        .edge_indices()
        .filter_map(|e| {
            let (source, target) = map.graph.edge_endpoints(e)?;
            (shown(source) && shown(target)).then(|| {
                let edge = &map.graph[e];
                let mut out = counts(&edge.aggregate, seconds);
                out.insert("source".into(), json!(map.graph[source].id));
                out.insert("target".into(), json!(map.graph[target].id));
                out.insert("type".into(), json!(edge.edge_type.as_str()));
                out.insert("retries".into(), json!(edge.aggregate.retries));
                out.insert("storm".into(), json!(false));
                Value::Object(out)
            })
        })
        .collect();
    let mut body = json!({
        "start_ms": start_us / 1_000,
        "end_ms": end_us / 1_000,
        "nodes": nodes,
        "edges": edges,
        "cycles": map.cycles(),
    });
    if focus.is_some() {
        body["focus"] = impact;
    }
    Ok(Json(body))
}

/// `GET /api/dependencies?endTs=<ms>&lookback=<ms>`: Jaeger's dependency
/// links, every edge of the map but those from the `user` client.
pub async fn dependencies(
    State(state): State<Arc<ApiState>>,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
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
    let range = ms("endTs", now_us() / 1_000).and_then(|end| {
        let lookback = ms("lookback", 86_400_000)?;
        Ok((end.saturating_sub(lookback) * 1_000, end * 1_000))
    });
    let (start_us, end_us) = match range {
        Ok(range) => range,
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
