//! Findings: what a detector reports about one trace — a slow database call,
//! an N+1 loop, a retry storm — with the spans that prove it. Produced by
//! `analysis::detectors` at completion, stored with the trace's summary,
//! served by `/api/v1/findings` (API.md).

use super::{SpanId, TraceId};

/// What kind of problem a finding is (API.md's `kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FindingKind {
    SlowDb,
    NPlusOne,
    RetryStorm,
    SlowCall,
    SequentialCalls,
}

impl FindingKind {
    pub const ALL: [FindingKind; 5] = [
        FindingKind::SlowDb,
        FindingKind::NPlusOne,
        FindingKind::RetryStorm,
        FindingKind::SlowCall,
        FindingKind::SequentialCalls,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::SlowDb => "slow_db",
            FindingKind::NPlusOne => "n_plus_one",
            FindingKind::RetryStorm => "retry_storm",
            FindingKind::SlowCall => "slow_call",
            FindingKind::SequentialCalls => "sequential_calls",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        [Severity::Info, Severity::Warning, Severity::Critical]
            .into_iter()
            .find(|s| s.as_str() == name)
    }
}

/// One problem in one trace.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub kind: FindingKind,
    pub severity: Severity,
    pub trace_id: TraceId,
    /// The service (and its operation) where the problem is: the caller of
    /// the slow or repeated calls, the parent of an N+1 loop.
    pub service: String,
    pub operation: String,
    /// What was called: the database, peer or service node, as the map names it.
    pub target: String,
    /// The normalized statement, command or route (`analysis::fingerprint`).
    pub statement: Option<String>,
    /// The spans that show it.
    pub span_ids: Vec<SpanId>,
    /// Calls (N+1), attempts (retry storm), 1 for a single slow call.
    pub count: u32,
    /// Time the spans took together, and the longest of them (ns).
    pub total_duration_ns: u64,
    pub max_duration_ns: u64,
    /// Start of the first span (ns since the epoch).
    pub start_ns: u64,
    /// One sentence an engineer can act on.
    pub message: String,
    /// Figures particular to the kind, by name: `share_of_trace` (N+1),
    /// `amplification` and `backoff_ms_N` (retry storms), `saving_ms`
    /// (sequential calls), `threshold_ms` (slow calls).
    pub details: Vec<(String, f64)>,
}

impl Finding {
    /// A finding's id, the same in every answer that shows it: its trace,
    /// its kind and its first span (no two findings of one kind in a trace
    /// start at the same span).
    pub fn id(&self) -> String {
        match self.span_ids.first() {
            Some(span) => format!("{}-{}-{span}", self.trace_id, self.kind.as_str()),
            None => format!("{}-{}", self.trace_id, self.kind.as_str()),
        }
    }
}
