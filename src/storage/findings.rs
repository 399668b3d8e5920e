//! Findings in storage, engine-neutral: how one is encoded (`Finding` in
//! proto/), which stored findings a query wants, and the key each finding of
//! a completion batch gets.

use std::collections::HashMap;

use prost::Message;

use super::codec::CodecError;
use super::keys::FindingKey;
use crate::model::{Finding, FindingKind, Severity, SpanId, TraceId, TraceSummary};

mod pb {
    pub use super::super::codec::pb::{Finding, FindingDetail};
}

/// What `TraceStore::findings` returns: findings of traces that started in
/// `[from_us, to_us]`, newest trace first, each trace's in the order its
/// detectors reported them, at most `limit`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FindingQuery {
    pub from_us: u64,
    pub to_us: u64,
    pub kind: Option<FindingKind>,
    pub service: Option<String>,
    pub trace_id: Option<TraceId>,
    pub limit: usize,
}

impl FindingQuery {
    /// Whether a stored finding (its trace's start in µs) is wanted.
    pub fn wants(&self, start_us: u64, finding: &Finding) -> bool {
        (self.from_us..=self.to_us).contains(&start_us)
            && self.kind.is_none_or(|kind| finding.kind == kind)
            && self
                .service
                .as_deref()
                .is_none_or(|service| finding.service == service)
            && self.trace_id.is_none_or(|id| finding.trace_id == id)
    }
}

pub fn encode_finding(finding: &Finding) -> Vec<u8> {
    pb::Finding {
        kind: finding.kind.as_str().to_string(),
        severity: finding.severity.as_str().to_string(),
        service: finding.service.clone(),
        operation: finding.operation.clone(),
        target: finding.target.clone(),
        statement: finding.statement.clone(),
        span_ids: finding
            .span_ids
            .iter()
            .map(|id| u64::from_be_bytes(*id.as_bytes()))
            .collect(),
        count: finding.count,
        total_duration_ns: finding.total_duration_ns,
        max_duration_ns: finding.max_duration_ns,
        start_ns: finding.start_ns,
        message: finding.message.clone(),
        details: finding
            .details
            .iter()
            .map(|(name, value)| pb::FindingDetail {
                name: name.clone(),
                value: *value,
            })
            .collect(),
    }
    .encode_to_vec()
}

pub fn decode_finding(trace_id: TraceId, bytes: &[u8]) -> Result<Finding, CodecError> {
    let f = pb::Finding::decode(bytes)?;
    Ok(Finding {
        kind: FindingKind::parse(&f.kind).ok_or(CodecError::Malformed("unknown finding kind"))?,
        severity: Severity::parse(&f.severity)
            .ok_or(CodecError::Malformed("unknown finding severity"))?,
        trace_id,
        service: f.service,
        operation: f.operation,
        target: f.target,
        statement: f.statement,
        span_ids: f
            .span_ids
            .into_iter()
            .map(|id| SpanId(id.to_be_bytes()))
            .collect(),
        count: f.count,
        total_duration_ns: f.total_duration_ns,
        max_duration_ns: f.max_duration_ns,
        start_ns: f.start_ns,
        message: f.message,
        details: f.details.into_iter().map(|d| (d.name, d.value)).collect(),
    })
}

/// The findings of a completion batch with their keys: each trace's, in the
/// order given, numbered from 0 under its summary's start. Findings of a
/// trace with no summary in the batch are dropped; past `u16::MAX` a trace's
/// findings are cut (a summary's `finding_count` says how many were kept).
pub fn keyed<'a>(
    summaries: &[TraceSummary],
    findings: &'a [Finding],
) -> Vec<(FindingKey, &'a Finding)> {
    let starts: HashMap<TraceId, u64> = summaries
        .iter()
        .map(|s| (s.trace_id, s.start_ns / 1_000))
        .collect();
    let mut next: HashMap<TraceId, u16> = HashMap::new();
    findings
        .iter()
        .filter_map(|finding| {
            let start_us = *starts.get(&finding.trace_id)?;
            let n = next.entry(finding.trace_id).or_default();
            let key = FindingKey {
                start_us,
                trace_id: finding.trace_id,
                n: *n,
            };
            *n = n.checked_add(1)?;
            Some((key, finding))
        })
        .collect()
}

/// The keys a summary's completion wrote its findings under.
pub fn keys_of(summary: &TraceSummary) -> impl Iterator<Item = FindingKey> + '_ {
    (0..summary.finding_count.min(u32::from(u16::MAX)) as u16).map(|n| FindingKey {
        start_us: summary.start_ns / 1_000,
        trace_id: summary.trace_id,
        n,
    })
}

/// A finding for tests.
#[cfg(test)]
pub(crate) fn sample(trace: u8, kind: FindingKind, service: &str) -> Finding {
    Finding {
        kind,
        severity: Severity::Warning,
        trace_id: TraceId([trace; 16]),
        service: service.into(),
        operation: "GET /orders/{id}".into(),
        target: "postgresql".into(),
        statement: Some("SELECT * FROM items WHERE id = ?".into()),
        span_ids: vec![SpanId([1; 8]), SpanId([2; 8])],
        count: 2,
        total_duration_ns: 250_000_000,
        max_duration_ns: 150_000_000,
        start_ns: 1_764_316_800_000_000_000,
        message: "order runs it twice".into(),
        details: vec![("share_of_trace".into(), 0.61)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finding_round_trips() {
        let f = sample(3, FindingKind::NPlusOne, "order");
        assert_eq!(decode_finding(f.trace_id, &encode_finding(&f)).unwrap(), f);
        let mut bare = f.clone();
        bare.statement = None;
        bare.details.clear();
        assert_eq!(
            decode_finding(f.trace_id, &encode_finding(&bare)).unwrap(),
            bare
        );
        assert!(decode_finding(f.trace_id, b"\x0a\x03bad").is_err());
    }

    #[test]
    fn findings_are_numbered_per_trace_under_its_start() {
        let summary = |trace: u8, start_ns: u64| TraceSummary {
            trace_id: TraceId([trace; 16]),
            start_ns,
            ..TraceSummary::default()
        };
        let findings = [
            sample(1, FindingKind::SlowDb, "a"),
            sample(2, FindingKind::SlowDb, "b"),
            sample(1, FindingKind::NPlusOne, "a"),
            sample(9, FindingKind::SlowDb, "orphan"),
        ];
        let keyed = keyed(&[summary(1, 5_000), summary(2, 7_000)], &findings);
        let keys: Vec<_> = keyed
            .iter()
            .map(|(k, f)| (k.start_us, k.n, f.kind))
            .collect();
        assert_eq!(
            keys,
            [
                (5, 0, FindingKind::SlowDb),
                (7, 0, FindingKind::SlowDb),
                (5, 1, FindingKind::NPlusOne)
            ]
        );
        let mut stored = summary(1, 5_000);
        stored.finding_count = 2;
        assert_eq!(keys_of(&stored).map(|k| k.n).collect::<Vec<_>>(), [0, 1]);
    }
}
