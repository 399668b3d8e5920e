//! `[limits]`: what a client may send, each limit with its default and the
//! validation that refuses zero or absurd values. How each is enforced is in
//! `ingest` (one place for every receiver).

use serde::Deserialize;

use super::ConfigError;

/// Limits on what a client may send. The per-span ones are the OpenTelemetry
/// SDK's span limits with its defaults, enforced again here for clients that do
/// not apply them; see `ingest` for how each is enforced and counted.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest OTLP or Zipkin request accepted, in bytes, measured after decompression.
    pub max_message_bytes: usize,
    /// Bytes of requests being decoded and written at once; beyond it requests
    /// are refused with a retryable status rather than queued.
    pub max_inflight_bytes: usize,
    /// Spans one trace may hold; spans beyond it are refused (OTLP partial
    /// success), so one runaway loop cannot make a trace no one can open.
    pub max_spans_per_trace: u32,
    /// Attributes a span (and each of its events and links) keeps; the rest
    /// are dropped and counted in its `dropped_attributes_count`.
    pub max_attributes_per_span: usize,
    /// Longest string (or bytes) attribute value, in bytes; longer ones are
    /// cut at a UTF-8 character boundary and named in `tracemap.truncated`.
    pub max_attribute_value_bytes: usize,
    /// Events a span keeps; the rest are dropped and counted.
    pub max_events_per_span: usize,
    /// Links a span keeps; the rest are dropped and counted.
    pub max_links_per_span: usize,
}

/// Above these a limit protects nothing: the config is probably wrong (an
/// extra digit, a byte count where a count was meant).
const MAX_SPANS_PER_TRACE: u32 = 10_000_000;
const MAX_PER_SPAN: usize = 1_000_000;
const MAX_VALUE_BYTES: usize = 256 << 20;

impl Default for Limits {
    fn default() -> Self {
        let span = crate::ingest::SpanLimits::default();
        Self {
            max_message_bytes: 16 << 20,
            max_inflight_bytes: 256 << 20,
            max_spans_per_trace: crate::ingest::DEFAULT_MAX_SPANS_PER_TRACE,
            max_attributes_per_span: span.max_attributes,
            max_attribute_value_bytes: span.max_value_bytes,
            max_events_per_span: span.max_events,
            max_links_per_span: span.max_links,
        }
    }
}

impl Limits {
    pub fn span_limits(&self) -> crate::ingest::SpanLimits {
        crate::ingest::SpanLimits {
            max_attributes: self.max_attributes_per_span,
            max_value_bytes: self.max_attribute_value_bytes,
            max_events: self.max_events_per_span,
            max_links: self.max_links_per_span,
        }
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |setting, reason: String| Err(ConfigError::Invalid { setting, reason });
        if self.max_message_bytes == 0 {
            return invalid("limits.max_message_bytes", "must be above zero".into());
        }
        if self.max_inflight_bytes < self.max_message_bytes {
            return invalid(
                "limits.max_inflight_bytes",
                "must be at least limits.max_message_bytes, or no request of the largest size could ever be accepted".into(),
            );
        }
        if !(1..=MAX_SPANS_PER_TRACE).contains(&self.max_spans_per_trace) {
            return invalid(
                "limits.max_spans_per_trace",
                format!("must be between 1 and {MAX_SPANS_PER_TRACE} (a trace is read whole into memory)"),
            );
        }
        for (setting, value) in [
            (
                "limits.max_attributes_per_span",
                self.max_attributes_per_span,
            ),
            ("limits.max_events_per_span", self.max_events_per_span),
            ("limits.max_links_per_span", self.max_links_per_span),
        ] {
            if !(1..=MAX_PER_SPAN).contains(&value) {
                return invalid(setting, format!("must be between 1 and {MAX_PER_SPAN}"));
            }
        }
        if !(1..=MAX_VALUE_BYTES).contains(&self.max_attribute_value_bytes) {
            return invalid(
                "limits.max_attribute_value_bytes",
                format!("must be between 1 and {MAX_VALUE_BYTES}"),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::Config;

    #[test]
    fn limits_of_zero_or_absurd_size_are_refused() {
        for (toml, setting) in [
            ("max_spans_per_trace = 0", "limits.max_spans_per_trace"),
            (
                "max_spans_per_trace = 4000000000",
                "limits.max_spans_per_trace",
            ),
            (
                "max_attributes_per_span = 0",
                "limits.max_attributes_per_span",
            ),
            ("max_events_per_span = 0", "limits.max_events_per_span"),
            ("max_links_per_span = 50000000", "limits.max_links_per_span"),
            (
                "max_attribute_value_bytes = 0",
                "limits.max_attribute_value_bytes",
            ),
            (
                "max_attribute_value_bytes = 300000000",
                "limits.max_attribute_value_bytes",
            ),
        ] {
            let config = Config::from_toml(&format!("[limits]\n{toml}\n")).unwrap();
            let error = config.validate().unwrap_err().to_string();
            assert!(error.contains(setting), "{toml}: {error}");
        }
        let config = Config::from_toml(
            "[limits]\nmax_spans_per_trace = 10\nmax_attribute_value_bytes = 1\nmax_links_per_span = 1\n",
        )
        .unwrap();
        config.validate().unwrap();
        let limits = config.limits.span_limits();
        assert_eq!((limits.max_value_bytes, limits.max_links), (1, 1));
        assert_eq!(limits.max_attributes, 128);
    }
}
