//! Groups of spans that share a trace id.

use super::{Span, TraceId};
use std::borrow::Cow;

/// The spans of one trace that arrived in one request: the unit ingest writes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TraceChunk {
    pub trace_id: TraceId,
    pub spans: Vec<Span>,
}

/// Every span stored for one trace so far, each span once, in start order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Trace {
    pub trace_id: TraceId,
    pub spans: Vec<Span>,
    /// When the newest span of this trace was received (µs since the epoch).
    pub last_received_us: u64,
}

impl Trace {
    /// Start of the earliest span (ns), 0 for an empty trace.
    pub fn start_ns(&self) -> u64 {
        self.spans.iter().map(|s| s.start_ns).min().unwrap_or(0)
    }

    /// End of the latest span (ns), 0 for an empty trace.
    pub fn end_ns(&self) -> u64 {
        self.spans.iter().map(|s| s.end_ns).max().unwrap_or(0)
    }

    /// Gives each span without a service (an X-Ray independent subsegment)
    /// the service of its nearest ancestor that has one.
    pub fn inherit_services(&mut self) {
        if self.spans.iter().all(|s| !s.service().is_empty()) {
            return;
        }
        let index: std::collections::HashMap<_, _> = self
            .spans
            .iter()
            .enumerate()
            .map(|(i, s)| (s.span_id, i))
            .collect();
        for i in 0..self.spans.len() {
            if !self.spans[i].service().is_empty() {
                continue;
            }
            let mut parent = self.spans[i].parent_span_id;
            // Bounded by the span count, so a parent cycle cannot loop forever.
            for _ in 0..self.spans.len() {
                let Some(&at) = parent.as_ref().and_then(|p| index.get(p)) else {
                    break;
                };
                if !self.spans[at].service().is_empty() {
                    self.spans[i].resource = self.spans[at].resource.clone();
                    break;
                }
                parent = self.spans[at].parent_span_id;
            }
            // No ancestor with a service (it never arrived): say so, as SDKs do.
            if self.spans[i].service().is_empty() {
                let mut resource = (*self.spans[i].resource).clone();
                resource.service = super::semconv::UNKNOWN_SERVICE.to_string();
                self.spans[i].resource = std::sync::Arc::new(resource);
            }
        }
    }

    /// The root span: the earliest span without a parent, else the earliest span
    /// whose parent is not in the trace (the trace is still incomplete).
    pub fn root(&self) -> Option<&Span> {
        let without_parent = self
            .spans
            .iter()
            .filter(|s| s.parent_span_id.is_none())
            .min_by_key(|s| s.start_ns);
        without_parent.or_else(|| {
            let ids: std::collections::HashSet<_> = self.spans.iter().map(|s| s.span_id).collect();
            self.spans
                .iter()
                .filter(|s| s.parent_span_id.is_some_and(|p| !ids.contains(&p)))
                .min_by_key(|s| s.start_ns)
        })
    }
}

/// What a trace list shows about a trace, computed from its spans.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TraceSummary {
    pub trace_id: TraceId,
    pub root_service: String,
    pub root_operation: String,
    pub start_ns: u64,
    pub duration_ns: u64,
    pub span_count: usize,
    pub error_count: usize,
    /// Distinct services, sorted.
    pub services: Vec<String>,
    /// Distinct values of the correlation-id attributes, sorted.
    pub correlation_ids: Vec<String>,
    /// Distinct (service, operation) pairs of its spans, sorted.
    pub operations: Vec<(String, String)>,
    /// Distinct (key, value) pairs of the indexed attributes, sorted; values
    /// over `MAX_INDEXED_VALUE_BYTES` left out.
    pub attributes: Vec<(String, String)>,
    /// False while the trace may still receive spans.
    pub complete: bool,
    /// When the newest span this summary covers was received (µs).
    pub last_received_us: u64,
    /// The kinds of the trace's findings, distinct and sorted.
    pub finding_kinds: Vec<String>,
    /// How many findings its completion stored.
    pub finding_count: u32,
    /// The services of its findings, distinct and sorted.
    pub finding_services: Vec<String>,
}

/// Longest attribute value that is indexed.
pub const MAX_INDEXED_VALUE_BYTES: usize = 256;

/// The attribute keys a summary picks values of (`[index]` in the config).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SummaryKeys {
    /// Keys whose values are correlation ids.
    pub correlation: Vec<String>,
    /// Keys whose values are indexed for search.
    pub indexed: Vec<String>,
}

impl SummaryKeys {
    pub fn correlation(keys: &[&str]) -> Self {
        Self {
            correlation: keys.iter().map(|k| k.to_string()).collect(),
            indexed: Vec::new(),
        }
    }

    /// Whether a search for `key` = `value` is answered by the attribute
    /// index (and by the summary's `attributes`).
    pub fn indexes(&self, key: &str, value: &str) -> bool {
        value.len() <= MAX_INDEXED_VALUE_BYTES && self.indexed.iter().any(|k| k == key)
    }
}

/// Sorted and deduplicated. Not capped: a trace has at most one distinct
/// pair per span, so its index entries never outnumber its spans.
/// A value's string form, borrowed when it is a string.
fn string_form(value: &super::AttrValue) -> Cow<'_, str> {
    match value {
        super::AttrValue::String(s) => Cow::Borrowed(s),
        other => Cow::Owned(other.to_string_form()),
    }
}

impl TraceSummary {
    /// Summarises `trace`, picking up the values of `keys`.
    pub fn of(trace: &Trace, keys: &SummaryKeys, complete: bool) -> Self {
        // Borrowed while collecting: only the distinct values are copied.
        // Most attribute keys are not looked for: a mask of the wanted keys'
        // lengths turns them away before any string comparison.
        let lengths = |list: &[String]| {
            list.iter()
                .fold(0u128, |mask, key| mask | 1u128 << key.len().min(127))
        };
        let (correlation_lengths, indexed_lengths) =
            (lengths(&keys.correlation), lengths(&keys.indexed));
        let wanted = |mask: u128, list: &[String], key: &str| {
            mask & 1u128 << key.len().min(127) != 0 && list.iter().any(|k| k == key)
        };
        let root = trace.root();
        let start_ns = trace.start_ns();
        let mut services: Vec<&str> = trace.spans.iter().map(|s| s.service()).collect();
        services.sort_unstable();
        services.dedup();
        let mut correlation_ids: Vec<Cow<str>> = trace
            .spans
            .iter()
            .flat_map(|span| {
                span.attributes
                    .iter()
                    .filter(|kv| wanted(correlation_lengths, &keys.correlation, &kv.key))
                    .map(|kv| string_form(&kv.value))
            })
            .filter(|id| !id.is_empty())
            .collect();
        correlation_ids.sort_unstable();
        correlation_ids.dedup();
        let mut operations: Vec<(&str, &str)> = trace
            .spans
            .iter()
            .map(|s| (s.service(), s.name.as_str()))
            .collect();
        operations.sort_unstable();
        operations.dedup();
        let mut attributes: Vec<(&str, Cow<str>)> = if keys.indexed.is_empty() {
            Vec::new()
        } else {
            trace
                .spans
                .iter()
                .flat_map(|span| span.attributes.iter().chain(&span.resource.attributes))
                .filter(|kv| wanted(indexed_lengths, &keys.indexed, &kv.key))
                .map(|kv| (kv.key.as_str(), string_form(&kv.value)))
                .filter(|(k, v)| keys.indexes(k, v))
                .collect()
        };
        attributes.sort_unstable();
        attributes.dedup();
        let owned = |(a, b): (&str, Cow<str>)| (a.to_string(), b.into_owned());
        let services = services.into_iter().map(str::to_string).collect();
        let correlation_ids = correlation_ids.into_iter().map(Cow::into_owned).collect();
        let operations = operations
            .into_iter()
            .map(|(s, o)| (s.to_string(), o.to_string()))
            .collect();
        let attributes = attributes.into_iter().map(owned).collect();
        Self {
            trace_id: trace.trace_id,
            root_service: root.map(|s| s.service().to_string()).unwrap_or_default(),
            root_operation: root.map(|s| s.name.clone()).unwrap_or_default(),
            start_ns,
            duration_ns: trace.end_ns().saturating_sub(start_ns),
            span_count: trace.spans.len(),
            error_count: trace
                .spans
                .iter()
                .filter(|s| s.status.code == super::StatusCode::Error)
                .count(),
            services,
            correlation_ids,
            operations,
            attributes,
            complete,
            last_received_us: trace.last_received_us,
            finding_kinds: Vec::new(),
            finding_count: 0,
            finding_services: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::model::{AttrValue, KeyValue, Resource, SpanId, Status, StatusCode};

    fn span(id: u8, parent: Option<u8>, service: &str, start: u64, end: u64) -> Span {
        Span {
            trace_id: TraceId([1; 16]),
            span_id: SpanId([id; 8]),
            parent_span_id: parent.map(|p| SpanId([p; 8])),
            name: format!("op{id}"),
            start_ns: start,
            end_ns: end,
            resource: Arc::new(Resource {
                service: service.into(),
                attributes: vec![],
            }),
            ..Span::default()
        }
    }

    #[test]
    fn summary_of_a_small_trace() {
        let mut child = span(2, Some(1), "order", 20, 80);
        child.status = Status {
            code: StatusCode::Error,
            message: "boom".into(),
        };
        child.attributes = vec![KeyValue::new(
            "correlation_id",
            AttrValue::String("req_abc123".into()),
        )];
        let trace = Trace {
            trace_id: TraceId([1; 16]),
            spans: vec![span(1, None, "gateway", 10, 100), child],
            last_received_us: 0,
        };
        let summary =
            TraceSummary::of(&trace, &SummaryKeys::correlation(&["correlation_id"]), true);
        assert_eq!(summary.root_service, "gateway");
        assert_eq!(summary.root_operation, "op1");
        assert_eq!(summary.start_ns, 10);
        assert_eq!(summary.duration_ns, 90);
        assert_eq!(summary.span_count, 2);
        assert_eq!(summary.error_count, 1);
        assert_eq!(summary.services, vec!["gateway", "order"]);
        assert_eq!(summary.correlation_ids, vec!["req_abc123"]);
    }

    #[test]
    fn services_are_inherited_through_parents() {
        let mut orphan = span(3, Some(2), "", 30, 40);
        orphan.resource = Arc::new(Resource::default());
        let mut middle = span(2, Some(1), "", 20, 50);
        middle.resource = Arc::new(Resource::default());
        let mut trace = Trace {
            trace_id: TraceId([1; 16]),
            spans: vec![span(1, None, "search", 10, 100), middle, orphan],
            last_received_us: 0,
        };
        trace.inherit_services();
        assert!(trace.spans.iter().all(|s| s.service() == "search"));
    }

    #[test]
    fn root_of_an_incomplete_trace_is_its_earliest_orphan() {
        let trace = Trace {
            trace_id: TraceId([1; 16]),
            spans: vec![span(3, Some(9), "b", 50, 60), span(2, Some(8), "a", 10, 20)],
            last_received_us: 0,
        };
        assert_eq!(trace.root().unwrap().span_id, SpanId([2; 8]));
    }
}
