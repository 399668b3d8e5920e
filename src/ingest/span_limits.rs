//! Per-span limits, enforced by ingest on the spans of every receiver before
//! they are written: how many attributes, events and links a span keeps and
//! how long an attribute value may be.
//!
//! The rules are the OpenTelemetry SDK's span limits, applied again at the
//! backend because not every client runs an SDK that applies them (X-Ray and
//! Zipkin reporters, hand-written exporters, a loop that adds an attribute per
//! iteration):
//! - attributes, events and links beyond their limit are dropped, the first
//!   ones kept (what arrived first is what the SDK would have kept), and the
//!   span's (or the event's or link's) OTLP `dropped_*_count` grows by as many;
//!   the attribute limit applies to each event's and link's attributes too,
//!   as the SDK's event and link attribute limits default to the same 128;
//! - a string value longer than `max_attribute_value_bytes` is cut at the last
//!   UTF-8 character boundary within the limit, as is every string inside an
//!   array or map value, and a bytes value is cut at the limit. Truncated
//!   values are not dropped, so the `dropped_*` counts cannot say it; instead
//!   the span gets one attribute, `tracemap.truncated`, an array naming each
//!   truncated value: `key` for a span attribute, `events[i].key` and
//!   `links[i].key` for those of the i-th kept event or link. The marker
//!   counts against `max_attributes_per_span` like any attribute: when the
//!   span is at the limit, its last attribute makes room (and is counted as
//!   dropped), so a span never holds more than the limit and enforcing the
//!   limits twice changes nothing the second time.
//!
//! The common span is within every limit, and `enforce` then costs one pass
//! of length checks and no writes (`within`).

use crate::model::{AttrValue, KeyValue, Span};

/// The attribute tracemap adds to a span whose values it truncated.
pub const TRUNCATED_KEY: &str = "tracemap.truncated";

/// The per-span limits (`[limits]` in the config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanLimits {
    pub max_attributes: usize,
    pub max_value_bytes: usize,
    pub max_events: usize,
    pub max_links: usize,
}

impl Default for SpanLimits {
    fn default() -> Self {
        Self {
            max_attributes: 128,
            max_value_bytes: 4096,
            max_events: 128,
            max_links: 128,
        }
    }
}

/// Which limits one span was over, one flag per `reason` label of
/// `tracemap_spans_truncated_total`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Trimmed {
    pub attributes: bool,
    pub attribute_value: bool,
    pub events: bool,
    pub links: bool,
}

/// Spans trimmed over a batch, per reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrimTally {
    pub attributes: u64,
    pub attribute_value: u64,
    pub events: u64,
    pub links: u64,
}

impl TrimTally {
    pub fn add(&mut self, trimmed: Trimmed) {
        self.attributes += u64::from(trimmed.attributes);
        self.attribute_value += u64::from(trimmed.attribute_value);
        self.events += u64::from(trimmed.events);
        self.links += u64::from(trimmed.links);
    }

    /// The counts by their `reason` label.
    pub fn by_reason(&self) -> [(&'static str, u64); 4] {
        [
            ("attributes", self.attributes),
            ("attribute_value", self.attribute_value),
            ("events", self.events),
            ("links", self.links),
        ]
    }
}

impl SpanLimits {
    /// Brings `span` within the limits (see the module doc); says what it cut.
    pub fn enforce(&self, span: &mut Span) -> Trimmed {
        if self.within(span) {
            return Trimmed::default();
        }
        let mut trimmed = Trimmed::default();
        let mut dropped = drop_excess(&mut span.attributes, self.max_attributes);
        // Names of truncated values: the span's own, then its events' and links'.
        let mut own: Vec<String> = Vec::new();
        let mut last_truncated = false;
        for kv in &mut span.attributes {
            last_truncated = truncate_value(&mut kv.value, self.max_value_bytes);
            if last_truncated {
                own.push(kv.key.clone());
            }
        }
        let mut nested: Vec<String> = Vec::new();
        let events = drop_excess(&mut span.events, self.max_events);
        span.dropped_events = span.dropped_events.saturating_add(events);
        trimmed.events = events > 0;
        for (i, event) in span.events.iter_mut().enumerate() {
            let cut = drop_excess(&mut event.attributes, self.max_attributes);
            event.dropped_attributes = event.dropped_attributes.saturating_add(cut);
            trimmed.attributes |= cut > 0;
            for kv in &mut event.attributes {
                if truncate_value(&mut kv.value, self.max_value_bytes) {
                    nested.push(format!("events[{i}].{}", kv.key));
                }
            }
        }
        let links = drop_excess(&mut span.links, self.max_links);
        span.dropped_links = span.dropped_links.saturating_add(links);
        trimmed.links = links > 0;
        for (i, link) in span.links.iter_mut().enumerate() {
            let cut = drop_excess(&mut link.attributes, self.max_attributes);
            link.dropped_attributes = link.dropped_attributes.saturating_add(cut);
            trimmed.attributes |= cut > 0;
            for kv in &mut link.attributes {
                if truncate_value(&mut kv.value, self.max_value_bytes) {
                    nested.push(format!("links[{i}].{}", kv.key));
                }
            }
        }
        let has_marker = span.attributes.iter().any(|kv| kv.key == TRUNCATED_KEY);
        if (!own.is_empty() || !nested.is_empty())
            && !has_marker
            && span.attributes.len() >= self.max_attributes
        {
            // The marker takes the last attribute's place.
            span.attributes.pop();
            dropped += 1;
            if last_truncated {
                own.pop();
            }
        }
        span.dropped_attributes = span.dropped_attributes.saturating_add(dropped);
        trimmed.attributes |= dropped > 0;
        if !own.is_empty() || !nested.is_empty() {
            trimmed.attribute_value = true;
            own.append(&mut nested);
            self.mark(span, own);
        }
        trimmed
    }

    /// Whether `span` is within every limit: the one pass the common span costs.
    pub fn within(&self, span: &Span) -> bool {
        let attrs_within = |attrs: &[KeyValue]| {
            attrs.len() <= self.max_attributes
                && attrs
                    .iter()
                    .all(|kv| value_within(&kv.value, self.max_value_bytes))
        };
        span.events.len() <= self.max_events
            && span.links.len() <= self.max_links
            && attrs_within(&span.attributes)
            && span.events.iter().all(|e| attrs_within(&e.attributes))
            && span.links.iter().all(|l| attrs_within(&l.attributes))
    }

    /// Adds (or, when the client sent one, replaces) the `tracemap.truncated`
    /// marker. Its names are cut to the value limit too: a key may be as long
    /// as the client likes.
    fn mark(&self, span: &mut Span, mut names: Vec<String>) {
        for name in &mut names {
            truncate_str(name, self.max_value_bytes);
        }
        let value = AttrValue::Array(names.into_iter().map(AttrValue::String).collect());
        match span
            .attributes
            .iter_mut()
            .find(|kv| kv.key == TRUNCATED_KEY)
        {
            Some(kv) => kv.value = value,
            None => span.attributes.push(KeyValue::new(TRUNCATED_KEY, value)),
        }
    }
}

fn value_within(value: &AttrValue, max_bytes: usize) -> bool {
    match value {
        AttrValue::String(s) => s.len() <= max_bytes,
        AttrValue::Bytes(b) => b.len() <= max_bytes,
        AttrValue::Array(items) => items.iter().all(|v| value_within(v, max_bytes)),
        AttrValue::Map(entries) => entries.iter().all(|kv| value_within(&kv.value, max_bytes)),
        AttrValue::Empty | AttrValue::Bool(_) | AttrValue::Int(_) | AttrValue::Double(_) => true,
    }
}

/// Keeps the first `max` items; returns how many were dropped. The memory of
/// the dropped ones is given back, not just hidden.
fn drop_excess<T>(items: &mut Vec<T>, max: usize) -> u32 {
    if items.len() <= max {
        return 0;
    }
    let dropped = items.len() - max;
    items.truncate(max);
    items.shrink_to_fit();
    u32::try_from(dropped).unwrap_or(u32::MAX)
}

/// Cuts every string and bytes value in `value` (nested ones included) to
/// `max_bytes`; returns whether anything was cut. Nesting depth is bounded by
/// the decoders (prost and serde_json refuse deeper documents).
fn truncate_value(value: &mut AttrValue, max_bytes: usize) -> bool {
    match value {
        AttrValue::String(s) => truncate_str(s, max_bytes),
        AttrValue::Bytes(b) if b.len() > max_bytes => {
            b.truncate(max_bytes);
            b.shrink_to_fit();
            true
        }
        AttrValue::Array(items) => items
            .iter_mut()
            .fold(false, |cut, v| truncate_value(v, max_bytes) | cut),
        AttrValue::Map(entries) => entries.iter_mut().fold(false, |cut, kv| {
            truncate_value(&mut kv.value, max_bytes) | cut
        }),
        _ => false,
    }
}

/// Cuts `s` to at most `max_bytes` at a character boundary, so it stays
/// valid UTF-8 (a 4-byte character straddling the limit goes whole).
fn truncate_str(s: &mut String, max_bytes: usize) -> bool {
    if s.len() <= max_bytes {
        return false;
    }
    let mut end = max_bytes;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s.shrink_to_fit();
    true
}

#[cfg(test)]
#[path = "span_limits_tests.rs"]
mod tests;
