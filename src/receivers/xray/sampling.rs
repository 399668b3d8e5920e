//! The X-Ray daemon's sampling proxy on TCP (same port as the UDP listener):
//! `POST /GetSamplingRules` and `POST /SamplingTargets`, answered locally from
//! the configured rules so the SDKs' centralized sampler works without AWS.
//!
//! Shapes follow the X-Ray API the SDKs call through the daemon: rule records
//! with `Version: 1`, `ResourceARN: "*"` and no attributes (what the SDKs
//! accept), epoch-second timestamps, and a target per reported rule that keeps
//! its fixed rate and grants its reservoir for the next interval.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::config::SamplingRule;

/// How often the SDKs should come back for targets, in seconds.
const TARGET_INTERVAL_S: u64 = 10;

struct Rules {
    rules: Vec<SamplingRule>,
    /// When the rules were loaded (epoch seconds): their creation and last change.
    loaded_at: f64,
}

pub fn router(rules: Vec<SamplingRule>) -> Router {
    let loaded_at = epoch_seconds();
    Router::new()
        .route("/GetSamplingRules", post(get_sampling_rules))
        .route("/SamplingTargets", post(sampling_targets))
        .with_state(Arc::new(Rules { rules, loaded_at }))
}

fn epoch_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

async fn get_sampling_rules(State(state): State<Arc<Rules>>) -> Json<Value> {
    let records: Vec<Value> = state
        .rules
        .iter()
        .map(|rule| {
            json!({
                "SamplingRule": {
                    "RuleName": rule.name,
                    "RuleARN": format!("arn:aws:xray:local:000000000000:sampling-rule/{}", rule.name),
                    "ResourceARN": "*",
                    "Priority": rule.priority,
                    "FixedRate": rule.fixed_rate,
                    "ReservoirSize": rule.reservoir_size,
                    "ServiceName": rule.service_name,
                    "ServiceType": rule.service_type,
                    "Host": rule.host,
                    "HTTPMethod": rule.http_method,
                    "URLPath": rule.url_path,
                    "Version": 1,
                    "Attributes": {}
                },
                "CreatedAt": state.loaded_at,
                "ModifiedAt": state.loaded_at,
            })
        })
        .collect();
    Json(json!({"SamplingRuleRecords": records, "NextToken": null}))
}

#[derive(Deserialize)]
struct TargetsRequest {
    #[serde(rename = "SamplingStatisticsDocuments", default)]
    documents: Vec<StatisticsDocument>,
}

#[derive(Deserialize)]
struct StatisticsDocument {
    #[serde(rename = "RuleName")]
    rule_name: String,
}

async fn sampling_targets(State(state): State<Arc<Rules>>, body: axum::body::Bytes) -> Response {
    let request: TargetsRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(error) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"__type": "InvalidRequestException", "message": error.to_string()})),
            )
                .into_response()
        }
    };
    let now = epoch_seconds();
    let mut targets = Vec::new();
    let mut unprocessed = Vec::new();
    for document in request.documents {
        match state.rules.iter().find(|r| r.name == document.rule_name) {
            Some(rule) => targets.push(json!({
                "RuleName": rule.name,
                "FixedRate": rule.fixed_rate,
                "ReservoirQuota": rule.reservoir_size,
                "ReservoirQuotaTTL": now + TARGET_INTERVAL_S as f64,
                "Interval": TARGET_INTERVAL_S,
            })),
            None => unprocessed.push(json!({
                "RuleName": document.rule_name,
                "ErrorCode": "400",
                "Message": "no sampling rule of this name is configured",
            })),
        }
    }
    Json(json!({
        "SamplingTargetDocuments": targets,
        "LastRuleModification": state.loaded_at,
        "UnprocessedStatistics": unprocessed,
    }))
    .into_response()
}
