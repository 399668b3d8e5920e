//! What to fix: `GET /api/v1/findings` (each finding, newest trace first)
//! and `GET /api/v1/findings/groups` (the same grouped across traces by
//! kind, service, target and statement, worst first), as API.md defines them.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::error::{parse_trace_id, ApiError};
use super::v1::time_range;
use super::ApiState;
use crate::model::{Finding, FindingKind};
use crate::storage::FindingQuery;

/// Findings a group answer is computed from, at most (the newest).
const GROUP_SCAN: usize = 100_000;

/// Example traces a group names, at most.
const EXAMPLES: usize = 5;

/// Group answers computed at once, at most: each holds up to `GROUP_SCAN`
/// findings in memory while it groups them; more wait their turn.
const CONCURRENT_GROUPINGS: usize = 2;

static GROUPINGS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(CONCURRENT_GROUPINGS);

/// One finding as the API shows it.
#[derive(Serialize)]
pub struct FindingOut<'a> {
    id: String,
    kind: &'static str,
    severity: &'static str,
    trace_id: String,
    service: &'a str,
    operation: &'a str,
    target: &'a str,
    statement: Option<&'a str>,
    span_ids: Vec<String>,
    count: u32,
    total_duration_ms: f64,
    max_duration_ms: f64,
    start_us: u64,
    message: &'a str,
    details: HashMap<&'a str, f64>,
}

impl<'a> FindingOut<'a> {
    pub fn of(finding: &'a Finding) -> Self {
        FindingOut {
            id: finding.id(),
            kind: finding.kind.as_str(),
            severity: finding.severity.as_str(),
            trace_id: finding.trace_id.to_string(),
            service: &finding.service,
            operation: &finding.operation,
            target: &finding.target,
            statement: finding.statement.as_deref(),
            span_ids: finding.span_ids.iter().map(|id| id.to_string()).collect(),
            count: finding.count,
            total_duration_ms: finding.total_duration_ns as f64 / 1e6,
            max_duration_ms: finding.max_duration_ns as f64 / 1e6,
            start_us: finding.start_ns / 1_000,
            message: &finding.message,
            details: finding
                .details
                .iter()
                .map(|(name, value)| (name.as_str(), *value))
                .collect(),
        }
    }

    pub fn list(findings: &'a [Finding]) -> Vec<Self> {
        findings.iter().map(FindingOut::of).collect()
    }
}

/// The filters both endpoints take.
pub(crate) fn query(
    params: &[(String, String)],
    default_limit: usize,
) -> Result<FindingQuery, ApiError> {
    let bad = |message: String| ApiError::BadRequest(message);
    let get = |key: &str| {
        params
            .iter()
            .find(|(k, v)| k == key && !v.is_empty())
            .map(|(_, v)| v.as_str())
    };
    let kind = get("kind")
        .map(|v| {
            FindingKind::parse(v).ok_or_else(|| {
                let known: Vec<_> = FindingKind::ALL.iter().map(|k| k.as_str()).collect();
                bad(format!("kind: {v:?} is not one of {}", known.join(", ")))
            })
        })
        .transpose()?;
    let limit = match get("limit") {
        None => default_limit,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=10_000).contains(n))
            .ok_or_else(|| bad(format!("limit: {v:?} is not a number from 1 to 10000")))?,
    };
    let (from_us, to_us) = time_range(params)?;
    Ok(FindingQuery {
        from_us,
        to_us,
        kind,
        service: get("service").map(str::to_string),
        trace_id: get("trace_id").map(parse_trace_id).transpose()?,
        limit,
    })
}

fn json<T: Serialize>(body: &T) -> Result<Response, ApiError> {
    let body = sonic_rs::to_vec(body).map_err(|e| ApiError::Internal(format!("encoding: {e}")))?;
    Ok(([(http::header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// `GET /api/v1/findings?kind=&service=&trace_id=&start=&end=|lookback=&limit=`
pub async fn findings(
    State(state): State<Arc<ApiState>>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let query = query(&params, 100)?;
    let found = state.blocking(move |store| store.findings(&query)).await?;
    #[derive(Serialize)]
    struct Out<'a> {
        findings: Vec<FindingOut<'a>>,
    }
    json(&Out {
        findings: FindingOut::list(&found),
    })
}

/// Findings of one kind, service, target and statement across traces.
#[derive(Serialize)]
struct Group {
    kind: &'static str,
    service: String,
    target: String,
    statement: Option<String>,
    occurrences: usize,
    traces: usize,
    /// Of the occurrences' total durations.
    p95_ms: f64,
    total_ms: f64,
    last_seen_us: u64,
    example_trace_ids: Vec<String>,
}

/// Groups findings (newest first) by kind, service, target and statement,
/// worst first: the most total time spent across occurrences.
fn groups(findings: &[Finding], limit: usize) -> Vec<Group> {
    type Key<'a> = (FindingKind, &'a str, &'a str, Option<&'a str>);
    let mut by_key: HashMap<Key, Vec<&Finding>> = HashMap::new();
    for f in findings {
        let key = (
            f.kind,
            f.service.as_str(),
            f.target.as_str(),
            f.statement.as_deref(),
        );
        by_key.entry(key).or_default().push(f);
    }
    let mut out: Vec<Group> = by_key
        .into_iter()
        .map(|((kind, service, target, statement), members)| {
            let mut durations: Vec<u64> = members.iter().map(|f| f.total_duration_ns).collect();
            durations.sort_unstable();
            let rank = ((durations.len() as f64 * 0.95).ceil() as usize).clamp(1, durations.len());
            let traces: HashSet<_> = members.iter().map(|f| f.trace_id).collect();
            // The slowest occurrences are the best examples.
            let mut examples = members.clone();
            examples.sort_by_key(|f| std::cmp::Reverse(f.total_duration_ns));
            let mut example_trace_ids: Vec<String> = Vec::new();
            for f in examples {
                let id = f.trace_id.to_string();
                if !example_trace_ids.contains(&id) {
                    example_trace_ids.push(id);
                }
                if example_trace_ids.len() == EXAMPLES {
                    break;
                }
            }
            Group {
                kind: kind.as_str(),
                service: service.to_string(),
                target: target.to_string(),
                statement: statement.map(str::to_string),
                occurrences: members.len(),
                traces: traces.len(),
                p95_ms: durations[rank - 1] as f64 / 1e6,
                total_ms: durations.iter().map(|&d| d as f64).sum::<f64>() / 1e6,
                last_seen_us: members
                    .iter()
                    .map(|f| f.start_ns / 1_000)
                    .max()
                    .unwrap_or(0),
                example_trace_ids,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.total_ms
            .total_cmp(&a.total_ms)
            .then_with(|| b.occurrences.cmp(&a.occurrences))
            .then_with(|| (a.kind, &a.service, &a.target).cmp(&(b.kind, &b.service, &b.target)))
    });
    out.truncate(limit);
    out
}

/// `GET /api/v1/findings/groups`, the same filters: the list a team works through.
pub async fn finding_groups(
    State(state): State<Arc<ApiState>>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let mut query = query(&params, 100)?;
    let limit = query.limit;
    query.limit = GROUP_SCAN;
    let _turn = GROUPINGS
        .acquire()
        .await
        .map_err(|e| ApiError::Internal(format!("grouping findings: {e}")))?;
    let found = state.blocking(move |store| store.findings(&query)).await?;
    #[derive(Serialize)]
    struct Out {
        groups: Vec<Group>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        warnings: Vec<String>,
    }
    let mut warnings = Vec::new();
    if found.len() >= GROUP_SCAN {
        warnings.push(format!(
            "grouped the newest {GROUP_SCAN} findings of the range only; narrow it for the rest"
        ));
    }
    json(&Out {
        groups: groups(&found, limit),
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::findings::sample;

    #[test]
    fn groups_come_worst_first_with_their_slowest_traces() {
        let mut findings = Vec::new();
        for trace in 1..=8u8 {
            let mut f = sample(trace, FindingKind::NPlusOne, "order");
            f.total_duration_ns = u64::from(trace) * 10_000_000;
            findings.push(f);
        }
        let mut big = sample(20, FindingKind::SlowDb, "catalog");
        big.total_duration_ns = 2_000_000_000;
        findings.push(big);
        let groups = groups(&findings, 10);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].kind, "slow_db", "2 s beats 8 × ≤80 ms");
        let n1 = &groups[1];
        assert_eq!((n1.occurrences, n1.traces), (8, 8));
        assert_eq!(n1.p95_ms, 80.0);
        assert_eq!(n1.total_ms, 360.0);
        assert_eq!(n1.example_trace_ids.len(), EXAMPLES);
        assert_eq!(
            n1.example_trace_ids[0],
            crate::model::TraceId([8; 16]).to_string()
        );
        assert_eq!(super::groups(&findings, 1).len(), 1);
    }
}
