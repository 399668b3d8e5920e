//! `GET /api/v1/service-map/detail`: what the map's side panel shows for one
//! node (`node=<id>`) or one edge (`source=<id>&target=<id>`) over a range —
//! its latency distribution, from the same aggregates as the map, and its top
//! operations, from a sample of the range's newest traces through it.
//!
//! The aggregates are kept per node and edge, not per operation (an
//! operation dimension would multiply the rows every completion writes), so
//! operations are counted over at most `SAMPLE_TRACES` traces; the answer
//! says how many (`sampled_traces`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::Json;
use serde_json::{json, Value};

use super::error::ApiError;
use super::v1::time_range;
use super::ApiState;
use crate::analysis::detectors::TraceView;
use crate::analysis::graph::edges::{classify, USER};
use crate::analysis::graph::model::ServiceMap;
use crate::model::{Aggregate, CallClass, Latency, NodeType, Span, SpanKind, Trace};
use crate::storage::{graph, IndexTag};

/// Most traces read to count operations.
const SAMPLE_TRACES: usize = 100;

/// Most operations listed.
const TOP_OPERATIONS: usize = 10;

/// Upper bounds (ms) of the distribution's buckets: 1-2-5 steps, then the rest.
const BUCKETS_MS: [f64; 17] = [
    1.0,
    2.0,
    5.0,
    10.0,
    20.0,
    50.0,
    100.0,
    200.0,
    500.0,
    1e3,
    2e3,
    5e3,
    1e4,
    2e4,
    5e4,
    1e5,
    f64::INFINITY,
];

/// What the panel asks about.
#[derive(Clone)]
enum Subject {
    Node(String),
    Edge { source: String, target: String },
}

/// `GET /api/v1/service-map/detail?node=<id>|source=<id>&target=<id>` plus
/// the map's time range parameters.
pub async fn detail(
    State(state): State<Arc<ApiState>>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    let get = |key: &str| {
        params
            .iter()
            .find(|(k, v)| k == key && !v.is_empty())
            .map(|(_, v)| v.clone())
    };
    let subject = match (get("node"), get("source"), get("target")) {
        (Some(node), None, None) => Subject::Node(node),
        (None, Some(source), Some(target)) => Subject::Edge { source, target },
        _ => {
            return Err(ApiError::BadRequest(
                "give node=<id>, or source=<id> and target=<id>".into(),
            ))
        }
    };
    let (start_us, end_us) = time_range(&params)?;
    let start_us = state.graph_kept_from(start_us);
    let (start_us, end_us) = graph::snapped_range_us(start_us, end_us);
    let asked = subject.clone();
    let (aggregate, operations, sampled) = state
        .blocking(move |store| {
            let map = ServiceMap::from_rows(store.graph(start_us, end_us)?);
            let Some((aggregate, services)) = find(&map, &asked) else {
                return Ok(None);
            };
            let mut counter = Operations::default();
            let mut sampled = 0;
            for service in services {
                let hits = store.scan_index(
                    IndexTag::Service,
                    &service,
                    start_us,
                    end_us,
                    SAMPLE_TRACES - sampled,
                )?;
                for hit in hits {
                    if let Some(trace) = store.trace(hit.trace_id)? {
                        sampled += 1;
                        counter.count(&trace, &asked, &map);
                    }
                }
                if sampled >= SAMPLE_TRACES {
                    break;
                }
            }
            Ok(Some((aggregate, counter.top(), sampled)))
        })
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(match &subject {
                Subject::Node(id) => format!("no node {id:?} in the range"),
                Subject::Edge { source, target } => {
                    format!("no edge {source:?} -> {target:?} in the range")
                }
            })
        })?;
    Ok(Json(json!({
        "start_ms": start_us / 1_000,
        "end_ms": end_us / 1_000,
        "requests": aggregate.requests,
        "latency": distribution(&aggregate.latency),
        "operations": operations,
        "sampled_traces": sampled,
    })))
}

/// The subject's aggregate, and the services whose traces show its calls.
fn find(map: &ServiceMap, subject: &Subject) -> Option<(Aggregate, Vec<String>)> {
    match subject {
        Subject::Node(id) => {
            let at = map.node(id)?;
            let node = &map.graph[at];
            let services = match node.node_type {
                NodeType::Service => vec![node.id.clone()],
                // A virtual node's calls are in its callers' traces.
                _ => map
                    .graph
                    .neighbors_directed(at, petgraph::Direction::Incoming)
                    .map(|n| map.graph[n].id.clone())
                    .collect(),
            };
            Some((node.aggregate.clone(), services))
        }
        Subject::Edge { source, target } => {
            let edge = map.graph.find_edge(map.node(source)?, map.node(target)?)?;
            let traced = if source == USER { target } else { source };
            Some((map.graph[edge].aggregate.clone(), vec![traced.clone()]))
        }
    }
}

/// A histogram of the latency bins in `BUCKETS_MS`, empty buckets past the
/// last count left out.
fn distribution(latency: &Latency) -> Vec<Value> {
    let mut counts = [0i64; BUCKETS_MS.len()];
    for &(bin_us, n) in latency.bins() {
        let ms = bin_us as f64 / 1e3;
        let at = BUCKETS_MS
            .iter()
            .position(|&le| ms < le)
            .unwrap_or(BUCKETS_MS.len() - 1);
        counts[at] += n;
    }
    let last = counts.iter().rposition(|&n| n > 0).map_or(0, |at| at + 1);
    BUCKETS_MS[..last]
        .iter()
        .zip(counts)
        .map(|(&le, count)| {
            let le_ms = if le.is_finite() {
                json!(le)
            } else {
                json!(null)
            };
            json!({"le_ms": le_ms, "count": count})
        })
        .collect()
}

/// Operations counted over the sampled traces: a service's requests by span
/// name, a virtual node's or edge's calls by statement or route.
#[derive(Default)]
struct Operations {
    by_name: HashMap<String, OperationStats>,
}

#[derive(Default)]
struct OperationStats {
    requests: i64,
    errors: i64,
    faults: i64,
    throttles: i64,
    latency: Latency,
}

fn enters_service(view: &TraceView<'_>, at: usize) -> bool {
    let span = &view.spans[at];
    matches!(span.kind, SpanKind::Server | SpanKind::Consumer)
        || view.parent[at].is_none_or(|p| view.spans[p].service() != span.service())
}

impl Operations {
    fn count(&mut self, trace: &Trace, subject: &Subject, map: &ServiceMap) {
        let view = TraceView::new(trace);
        let is_service = |id: &str| {
            map.node(id)
                .is_some_and(|n| map.graph[n].node_type == NodeType::Service)
        };
        match subject {
            Subject::Node(id) if is_service(id) => {
                for at in 0..view.spans.len() {
                    let span = &view.spans[at];
                    if span.service() == id && enters_service(&view, at) {
                        self.add(span.name.clone(), span, None);
                    }
                }
            }
            Subject::Edge { source, target } if is_service(target) => {
                // Requests the target handled for the source (for `user`: roots).
                for at in 0..view.spans.len() {
                    let span = &view.spans[at];
                    if span.service() != target || !enters_service(&view, at) {
                        continue;
                    }
                    let caller = view.parent[at].map(|p| view.spans[p].service());
                    if caller.unwrap_or(USER) == source {
                        let client = view.parent[at]
                            .map(|p| &view.spans[p])
                            .filter(|p| matches!(p.kind, SpanKind::Client | SpanKind::Producer));
                        match client {
                            Some(client) => self.add(span.name.clone(), client, Some(span)),
                            None => self.add(span.name.clone(), span, None),
                        }
                    }
                }
            }
            Subject::Node(target) | Subject::Edge { target, .. } => {
                let source = match subject {
                    Subject::Edge { source, .. } => Some(source.as_str()),
                    Subject::Node(_) => None,
                };
                for call in &view.calls {
                    if call.target != *target
                        || source.is_some_and(|s| view.caller_of(call).service() != s)
                    {
                        continue;
                    }
                    let span = &view.spans[call.span];
                    let name = call.template.clone().unwrap_or_else(|| span.name.clone());
                    self.add(name, span, None);
                }
            }
        }
    }

    fn add(&mut self, name: String, client: &Span, server: Option<&Span>) {
        let stats = self.by_name.entry(name).or_default();
        stats.requests += 1;
        match classify(client, server) {
            CallClass::Ok => {}
            CallClass::Error => stats.errors += 1,
            CallClass::Fault => stats.faults += 1,
            CallClass::Throttle => stats.throttles += 1,
        }
        stats.latency.record(client.duration_ns() / 1_000);
    }

    /// The most requested operations first.
    fn top(self) -> Vec<Value> {
        let mut all: Vec<_> = self.by_name.into_iter().collect();
        all.sort_by(|a, b| b.1.requests.cmp(&a.1.requests).then(a.0.cmp(&b.0)));
        all.into_iter()
            .take(TOP_OPERATIONS)
            .map(|(name, stats)| {
                let q = stats
                    .latency
                    .quantiles(&[0.5, 0.95])
                    .unwrap_or(vec![0.0; 2]);
                json!({
                    "name": name,
                    "requests": stats.requests,
                    "errors": stats.errors,
                    "faults": stats.faults,
                    "throttles": stats.throttles,
                    "p50_ms": q[0] / 1e3,
                    "p95_ms": q[1] / 1e3,
                })
            })
            .collect()
    }
}
