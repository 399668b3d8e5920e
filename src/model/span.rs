//! The protocol-neutral span every receiver converts to and every later stage reads.
//!
//! Resource and instrumentation scope are shared (`Arc`) by all spans that came in
//! under them, so converting a request does not copy them per span, and the storage
//! codec writes each one once per chunk.

use std::sync::Arc;

use super::ids::{SpanId, TraceId};

/// The span kinds of OpenTelemetry, numbered as in OTLP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SpanKind {
    #[default]
    Unspecified = 0,
    Internal = 1,
    Server = 2,
    Client = 3,
    Producer = 4,
    Consumer = 5,
}

impl SpanKind {
    /// Maps an OTLP enum number; unknown numbers read as unspecified.
    pub fn from_otlp(value: i32) -> Self {
        match value {
            1 => Self::Internal,
            2 => Self::Server,
            3 => Self::Client,
            4 => Self::Producer,
            5 => Self::Consumer,
            _ => Self::Unspecified,
        }
    }

    /// Lowercase name used by the native API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified",
            Self::Internal => "internal",
            Self::Server => "server",
            Self::Client => "client",
            Self::Producer => "producer",
            Self::Consumer => "consumer",
        }
    }
}

/// Span status code, numbered as in OTLP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum StatusCode {
    #[default]
    Unset = 0,
    Ok = 1,
    Error = 2,
}

impl StatusCode {
    pub fn from_otlp(value: i32) -> Self {
        match value {
            1 => Self::Ok,
            2 => Self::Error,
            _ => Self::Unset,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unset => "unset",
            Self::Ok => "ok",
            Self::Error => "error",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Status {
    pub code: StatusCode,
    pub message: String,
}

/// A typed attribute value, as OTLP's `AnyValue`.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum AttrValue {
    #[default]
    Empty,
    String(String),
    Bool(bool),
    Int(i64),
    Double(f64),
    Bytes(Vec<u8>),
    Array(Vec<AttrValue>),
    Map(Vec<KeyValue>),
}

impl AttrValue {
    /// The value's string form, as a Jaeger tag filter compares it (`503` → `"503"`).
    pub fn to_string_form(&self) -> String {
        match self {
            Self::Empty => String::new(),
            Self::String(s) => s.clone(),
            Self::Bool(b) => b.to_string(),
            Self::Int(i) => i.to_string(),
            Self::Double(d) => d.to_string(),
            Self::Bytes(b) => hex::encode(b),
            Self::Array(_) | Self::Map(_) => self.to_json().to_string(),
        }
    }

    /// The value as JSON, keeping its type (string, number, bool, array, object).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            Self::Empty => Value::Null,
            Self::String(s) => Value::String(s.clone()),
            Self::Bool(b) => Value::Bool(*b),
            Self::Int(i) => Value::from(*i),
            // NaN and infinities have no JSON number; their text keeps them visible.
            Self::Double(d) => serde_json::Number::from_f64(*d)
                .map(Value::Number)
                .unwrap_or_else(|| Value::String(d.to_string())),
            Self::Bytes(b) => Value::String(hex::encode(b)),
            Self::Array(items) => Value::Array(items.iter().map(Self::to_json).collect()),
            Self::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|kv| (kv.key.clone(), kv.value.to_json()))
                    .collect(),
            ),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct KeyValue {
    pub key: String,
    pub value: AttrValue,
}

impl KeyValue {
    pub fn new(key: impl Into<String>, value: AttrValue) -> Self {
        Self {
            key: key.into(),
            value,
        }
    }
}

/// Looks an attribute up by key (first match, as OTLP keys are unique per list).
pub fn find_attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a AttrValue> {
    attrs.iter().find(|kv| kv.key == key).map(|kv| &kv.value)
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Event {
    pub time_ns: u64,
    pub name: String,
    pub attributes: Vec<KeyValue>,
    pub dropped_attributes: u32,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Link {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub trace_state: String,
    pub attributes: Vec<KeyValue>,
    pub flags: u32,
    pub dropped_attributes: u32,
}

/// The entity that produced the spans: its service name and resource attributes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Resource {
    /// `service.name`, or `unknown_service` when the SDK set none (the SDK default).
    pub service: String,
    pub attributes: Vec<KeyValue>,
}

/// The instrumentation library that recorded the spans.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Scope {
    pub name: String,
    pub version: String,
    pub attributes: Vec<KeyValue>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Span {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub parent_span_id: Option<SpanId>,
    pub name: String,
    pub kind: SpanKind,
    pub start_ns: u64,
    pub end_ns: u64,
    pub status: Status,
    pub attributes: Vec<KeyValue>,
    pub events: Vec<Event>,
    pub links: Vec<Link>,
    pub trace_state: String,
    pub flags: u32,
    pub dropped_attributes: u32,
    pub dropped_events: u32,
    pub dropped_links: u32,
    pub resource: Arc<Resource>,
    pub scope: Arc<Scope>,
}

impl Span {
    pub fn service(&self) -> &str {
        &self.resource.service
    }

    /// Duration in nanoseconds; a span that ends before it starts lasts zero.
    pub fn duration_ns(&self) -> u64 {
        self.end_ns.saturating_sub(self.start_ns)
    }

    pub fn attr(&self, key: &str) -> Option<&AttrValue> {
        find_attr(&self.attributes, key)
    }

    /// The memory the span holds, estimated (its resource and scope are shared
    /// and not counted), for the bound on open traces.
    pub fn memory_size(&self) -> usize {
        fn value(v: &AttrValue) -> usize {
            match v {
                AttrValue::String(s) => s.len(),
                AttrValue::Bytes(b) => b.len(),
                AttrValue::Array(items) => items.iter().map(|i| 32 + value(i)).sum(),
                AttrValue::Map(entries) => attrs(entries),
                _ => 0,
            }
        }
        fn attrs(list: &[KeyValue]) -> usize {
            list.iter()
                .map(|kv| std::mem::size_of::<KeyValue>() + kv.key.len() + value(&kv.value))
                .sum()
        }
        std::mem::size_of::<Span>()
            + self.name.len()
            + self.status.message.len()
            + self.trace_state.len()
            + attrs(&self.attributes)
            + self
                .events
                .iter()
                .map(|e| std::mem::size_of::<Event>() + e.name.len() + attrs(&e.attributes))
                .sum::<usize>()
            + self
                .links
                .iter()
                .map(|l| std::mem::size_of::<Link>() + l.trace_state.len() + attrs(&l.attributes))
                .sum::<usize>()
    }

    /// A span sent before it ended (an X-Ray `in_progress` segment).
    pub fn is_in_progress(&self) -> bool {
        matches!(
            self.attr(super::semconv::XRAY_IN_PROGRESS),
            Some(AttrValue::Bool(true))
        )
    }
}
