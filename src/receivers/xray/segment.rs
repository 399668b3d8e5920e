//! The X-Ray daemon wire format: a JSON header line, a newline, then one
//! segment or independent subsegment document.
//!
//! These serde types mirror the X-Ray segment document and never leave the
//! X-Ray receiver; `convert.rs` turns them into `model::Span`. Every field is
//! optional here so a document missing one is reported precisely by `convert`
//! instead of failing as unreadable JSON.

use serde::Deserialize;
use serde_json::{Map, Value};

/// Largest datagram the X-Ray daemon protocol allows.
pub const MAX_DATAGRAM_BYTES: usize = 64 * 1024;

/// Why a datagram was dropped; the `reason` label on the drop counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// No header line, or one that is not `{"format": "json", "version": 1}`.
    BadHeader,
    /// The document is not JSON.
    BadJson,
    /// The document ends early (cut off in transit or by the sender).
    Truncated,
    /// Over 64 KiB.
    Oversized,
    /// Nested deeper than the parser or `max_segment_depth` allows.
    TooDeep,
    /// A trace, segment or parent id that is missing or malformed.
    InvalidId,
    /// JSON of the wrong shape, or a required field (name, start_time) missing.
    BadDocument,
    /// Ingest had no room; the datagram could not be kept.
    Overloaded,
}

impl DropReason {
    pub fn label(self) -> &'static str {
        match self {
            Self::BadHeader => "bad_header",
            Self::BadJson => "bad_json",
            Self::Truncated => "truncated",
            Self::Oversized => "oversized",
            Self::TooDeep => "too_deep",
            Self::InvalidId => "invalid_id",
            Self::BadDocument => "bad_document",
            Self::Overloaded => "overloaded",
        }
    }
}

#[derive(Debug, Deserialize)]
struct Header {
    format: String,
    version: i64,
}

/// A segment, an embedded subsegment or an independent subsegment.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Segment {
    pub name: Option<String>,
    pub id: Option<String>,
    pub trace_id: Option<String>,
    pub parent_id: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub start_time: Option<f64>,
    pub end_time: Option<f64>,
    #[serde(deserialize_with = "lenient_bool")]
    pub in_progress: bool,
    pub namespace: Option<String>,
    #[serde(deserialize_with = "lenient_bool")]
    pub fault: bool,
    #[serde(deserialize_with = "lenient_bool")]
    pub error: bool,
    #[serde(deserialize_with = "lenient_bool")]
    pub throttle: bool,
    pub http: Option<Http>,
    pub aws: Option<Map<String, Value>>,
    pub sql: Option<Sql>,
    pub annotations: Option<Map<String, Value>>,
    pub metadata: Option<Map<String, Value>>,
    /// Read leniently by `convert`: a cause of an unknown shape is ignored
    /// rather than costing the whole document.
    pub cause: Option<Value>,
    pub subsegments: Vec<Segment>,
    pub precursor_ids: Vec<String>,
    pub service: Option<ServiceInfo>,
    pub user: Option<String>,
    pub origin: Option<String>,
    pub resource_arn: Option<String>,
}

impl Segment {
    /// An independent subsegment: sent on its own, attached to its parent by id.
    pub fn is_independent_subsegment(&self) -> bool {
        self.kind.as_deref() == Some("subsegment")
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ServiceInfo {
    pub version: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Http {
    pub request: Option<HttpRequest>,
    pub response: Option<HttpResponse>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct HttpRequest {
    pub method: Option<String>,
    pub url: Option<String>,
    pub user_agent: Option<String>,
    pub client_ip: Option<String>,
    pub x_forwarded_for: Option<bool>,
    pub traced: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct HttpResponse {
    #[serde(deserialize_with = "lenient_int")]
    pub status: Option<i64>,
    pub content_length: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Sql {
    pub url: Option<String>,
    pub connection_string: Option<String>,
    pub sanitized_query: Option<String>,
    pub database_type: Option<String>,
    pub database_version: Option<String>,
    pub driver_version: Option<String>,
    pub user: Option<String>,
    pub preparation: Option<String>,
}

/// Either the exceptions themselves or the id of an exception recorded on
/// another subsegment.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Cause {
    Reference(String),
    Detail(CauseDetail),
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CauseDetail {
    pub working_directory: Option<String>,
    pub exceptions: Vec<Exception>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Exception {
    pub id: Option<String>,
    pub message: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub remote: Option<bool>,
    pub stack: Vec<StackFrame>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct StackFrame {
    pub path: Option<String>,
    pub line: Option<i64>,
    pub label: Option<String>,
}

/// `true`/`false`, and `null` or anything else as false: SDKs differ.
fn lenient_bool<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    Ok(matches!(
        Value::deserialize(deserializer)?,
        Value::Bool(true)
    ))
}

/// A number, or a number in a string; anything else as absent.
fn lenient_int<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    Ok(match Value::deserialize(deserializer)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
}

/// Splits and parses one datagram. Never panics, whatever the bytes.
pub fn parse_datagram(datagram: &[u8]) -> Result<Segment, DropReason> {
    if datagram.len() > MAX_DATAGRAM_BYTES {
        return Err(DropReason::Oversized);
    }
    let newline = datagram
        .iter()
        .position(|&b| b == b'\n')
        .ok_or(DropReason::BadHeader)?;
    let header: Header =
        serde_json::from_slice(&datagram[..newline]).map_err(|_| DropReason::BadHeader)?;
    if header.format != "json" || header.version != 1 {
        return Err(DropReason::BadHeader);
    }
    serde_json::from_slice(&datagram[newline + 1..]).map_err(|error| {
        use serde_json::error::Category;
        match error.classify() {
            Category::Eof => DropReason::Truncated,
            Category::Syntax if error.to_string().contains("recursion limit") => {
                DropReason::TooDeep
            }
            Category::Syntax | Category::Io => DropReason::BadJson,
            Category::Data => DropReason::BadDocument,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const HEADER: &str = "{\"format\": \"json\", \"version\": 1}\n";

    fn datagram(body: &str) -> Vec<u8> {
        format!("{HEADER}{body}").into_bytes()
    }

    #[test]
    fn header_spacing_does_not_matter() {
        let body = r#"{"name":"a","id":"70de5b6f19ff9a0a","trace_id":"1-581cf771-a006649127e371903a2de979","start_time":1.0}"#;
        for header in [
            "{\"format\":\"json\",\"version\":1}",
            "{ \"version\": 1, \"format\": \"json\" }",
        ] {
            let bytes = format!("{header}\n{body}").into_bytes();
            assert_eq!(parse_datagram(&bytes).unwrap().name.as_deref(), Some("a"));
        }
    }

    #[test]
    fn each_bad_datagram_has_its_reason() {
        let cases: Vec<(Vec<u8>, DropReason)> = vec![
            (b"no newline at all".to_vec(), DropReason::BadHeader),
            (
                b"{\"format\": \"xml\", \"version\": 1}\n{}".to_vec(),
                DropReason::BadHeader,
            ),
            (
                b"{\"format\": \"json\", \"version\": 2}\n{}".to_vec(),
                DropReason::BadHeader,
            ),
            (datagram("{\"name\": \"a\", oops}"), DropReason::BadJson),
            (
                datagram("{\"name\": \"a\", \"id\": \"70de"),
                DropReason::Truncated,
            ),
            (
                datagram(&format!("{{\"metadata\": {{\"x\": {}}}}}", "[".repeat(200))),
                DropReason::TooDeep,
            ),
            (datagram("{\"name\": 5}"), DropReason::BadDocument),
            (vec![b' '; MAX_DATAGRAM_BYTES + 1], DropReason::Oversized),
        ];
        for (bytes, reason) in cases {
            assert_eq!(
                parse_datagram(&bytes).err(),
                Some(reason),
                "{}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(60)])
            );
        }
    }

    #[test]
    fn cause_is_an_id_or_exceptions() {
        let cause = |body: &str| -> Option<Cause> {
            serde_json::from_value(parse_datagram(&datagram(body)).unwrap().cause?).ok()
        };
        assert!(matches!(
            cause(r#"{"cause": "4fe1e1f1c3f1b2a3"}"#),
            Some(Cause::Reference(_))
        ));
        match cause(
            r#"{"cause": {"working_directory": "/app", "exceptions": [{"id": "1", "message": "boom", "type": "ValueError", "stack": [{"path": "a.py", "line": 3, "label": "f"}]}]}}"#,
        ) {
            Some(Cause::Detail(d)) => assert_eq!(d.exceptions[0].stack[0].line, Some(3)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn odd_flag_and_status_values_do_not_cost_the_document() {
        let segment = parse_datagram(&datagram(
            r#"{"fault": null, "error": "yes", "throttle": true, "http": {"response": {"status": "503"}}, "cause": {"exceptions": 7}}"#,
        ))
        .unwrap();
        assert!(!segment.fault && !segment.error && segment.throttle);
        assert_eq!(segment.http.unwrap().response.unwrap().status, Some(503));
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_datagram(&bytes);
            let mut with_header = HEADER.as_bytes().to_vec();
            with_header.extend_from_slice(&bytes);
            let _ = parse_datagram(&with_header);
        }

        #[test]
        fn mutated_segments_never_panic(
            cut in 0usize..400,
            flips in proptest::collection::vec((0usize..400, any::<u8>()), 0..8),
        ) {
            let mut bytes = datagram(r#"{"name":"search","id":"70de5b6f19ff9a0a","trace_id":"1-581cf771-a006649127e371903a2de979","start_time":1478293361.271,"end_time":1478293361.449,"http":{"request":{"method":"GET","url":"http://x/"},"response":{"status":200}},"subsegments":[{"name":"es","id":"70de5b6f19ff9a0b","start_time":1478293361.3,"end_time":1478293361.4,"namespace":"remote","subsegments":[{"name":"x","id":"70de5b6f19ff9a0c","start_time":1478293361.31}]}]}"#);
            for (at, byte) in flips {
                let at = at % bytes.len();
                bytes[at] = byte;
            }
            bytes.truncate(cut.max(1).min(bytes.len()));
            if let Ok(segment) = parse_datagram(&bytes) {
                let _ = crate::receivers::xray::convert::convert_segment(segment, 32);
            }
        }
    }
}
