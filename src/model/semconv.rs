//! Semantic-convention attribute names, read in one place.
//!
//! Later stages ask this module for a span's database system, status code or peer
//! and it knows both the current names and the older ones SDKs still send.

use std::borrow::Cow;

use super::{AttrValue, Span};

/// Resource attribute naming the service that produced a span.
pub const SERVICE_NAME: &str = "service.name";

/// The service name OpenTelemetry SDKs use when none is configured.
pub const UNKNOWN_SERVICE: &str = "unknown_service";

pub const PEER_SERVICE: &str = "peer.service";
/// The other end of a connection (older name `net.peer.ip`).
pub const NETWORK_PEER_ADDRESS: &str = "network.peer.address";
pub const NETWORK_PEER_PORT: &str = "network.peer.port";
/// This end of a connection (older names `net.host.ip`, `net.host.port`).
pub const NETWORK_LOCAL_ADDRESS: &str = "network.local.address";
pub const NETWORK_LOCAL_PORT: &str = "network.local.port";
pub const SERVER_ADDRESS: &str = "server.address";
pub const HTTP_REQUEST_METHOD: &str = "http.request.method";
pub const HTTP_RESPONSE_STATUS_CODE: &str = "http.response.status_code";
pub const DB_SYSTEM_NAME: &str = "db.system.name";
pub const DB_NAMESPACE: &str = "db.namespace";
pub const DB_QUERY_TEXT: &str = "db.query.text";

/// X-Ray's classification flags, kept on the span for the service map.
pub const XRAY_FAULT: &str = "aws.xray.fault";
pub const XRAY_ERROR: &str = "aws.xray.error";
pub const XRAY_THROTTLE: &str = "aws.xray.throttle";
/// The segment field `aws.retries`, named as the Collector's X-Ray receiver names it.
pub const XRAY_RETRIES: &str = "aws.xray.retries";
/// Set on an X-Ray segment sent before it ended; its complete copy replaces it.
pub const XRAY_IN_PROGRESS: &str = "aws.xray.in_progress";

/// Older names SDKs still send for the same things.
pub const HTTP_STATUS_CODE_OLD: &str = "http.status_code";
pub const HTTP_METHOD_OLD: &str = "http.method";
pub const NET_PEER_NAME_OLD: &str = "net.peer.name";
pub const DB_NAME_OLD: &str = "db.name";
pub const DB_SYSTEM_OLD: &str = "db.system";
pub const DB_STATEMENT_OLD: &str = "db.statement";
pub const MESSAGING_SYSTEM: &str = "messaging.system";
pub const RPC_SYSTEM: &str = "rpc.system";
pub const RPC_SERVICE: &str = "rpc.service";
pub const RPC_METHOD: &str = "rpc.method";
pub const RPC_GRPC_STATUS_CODE: &str = "rpc.grpc.status_code";
/// How many times an HTTP client sent this request before (OpenTelemetry).
pub const HTTP_REQUEST_RESEND_COUNT: &str = "http.request.resend_count";
/// Where an HTTP client span says what it called, most specific first.
pub const HTTP_URL_KEYS: [&str; 6] = [
    "url.full",
    "http.url",
    "http.route",
    "url.template",
    "url.path",
    "http.target",
];
/// gRPC's attempt attribute (gRFC A72) and a dotted spelling of it.
pub const GRPC_PREVIOUS_ATTEMPTS: &[&str] =
    &["previous-rpc-attempts", "rpc.grpc.previous_rpc_attempts"];

/// Where semconv reads attributes from: a span (a scan of its attributes per
/// key) or its `Facts` (every key semconv knows found in one scan).
pub trait Attributes<'a>: Copy {
    fn get(self, key: &str) -> Option<&'a AttrValue>;
}

impl<'a> Attributes<'a> for &'a Span {
    fn get(self, key: &str) -> Option<&'a AttrValue> {
        self.attr(key)
    }
}

/// Every attribute key `Facts` looks up in one scan: those the functions
/// below read, and those the detectors read for templates.
const KEYS: [&str; 33] = [
    PEER_SERVICE,
    SERVER_ADDRESS,
    NET_PEER_NAME_OLD,
    DB_NAMESPACE,
    DB_NAME_OLD,
    DB_SYSTEM_NAME,
    DB_SYSTEM_OLD,
    DB_QUERY_TEXT,
    DB_STATEMENT_OLD,
    RPC_SYSTEM,
    RPC_SERVICE,
    RPC_METHOD,
    RPC_GRPC_STATUS_CODE,
    MESSAGING_SYSTEM,
    HTTP_RESPONSE_STATUS_CODE,
    HTTP_STATUS_CODE_OLD,
    HTTP_REQUEST_METHOD,
    HTTP_METHOD_OLD,
    HTTP_REQUEST_RESEND_COUNT,
    XRAY_THROTTLE,
    XRAY_FAULT,
    XRAY_ERROR,
    XRAY_RETRIES,
    GRPC_PREVIOUS_ATTEMPTS[0],
    GRPC_PREVIOUS_ATTEMPTS[1],
    HTTP_URL_KEYS[0],
    HTTP_URL_KEYS[1],
    HTTP_URL_KEYS[2],
    HTTP_URL_KEYS[3],
    HTTP_URL_KEYS[4],
    HTTP_URL_KEYS[5],
    NETWORK_PEER_ADDRESS,
    NETWORK_PEER_PORT,
];

/// Where a key may sit in `KEYS`: a table of 128 buckets of two, by a hash
/// of the key's length and two of its bytes, built (and checked to fit) at
/// compile time. Each entry is a position in `KEYS` plus one; 0 is empty.
const BUCKETS: [[u8; 2]; 128] = {
    let mut table = [[0u8; 2]; 128];
    let mut i = 0;
    while i < KEYS.len() {
        let bucket = &mut table[bucket(KEYS[i].as_bytes())];
        if bucket[0] == 0 {
            bucket[0] = i as u8 + 1;
        } else if bucket[1] == 0 {
            bucket[1] = i as u8 + 1;
        } else {
            panic!("three semconv keys in one bucket: change `bucket`");
        }
        i += 1;
    }
    table
};

#[inline(always)]
const fn bucket(key: &[u8]) -> usize {
    if key.is_empty() {
        return 0;
    }
    (key.len() * 7 + key[key.len() - 1] as usize * 3 + key[key.len() / 2] as usize) % 128
}

/// `key`'s position in `KEYS`: a bucket and at most two comparisons.
#[inline(always)]
fn slot(key: &str) -> Option<usize> {
    BUCKETS[bucket(key.as_bytes())]
        .iter()
        .take_while(|&&at| at != 0)
        .map(|&at| usize::from(at - 1))
        .find(|&at| KEYS[at] == key)
}

/// A span's attributes under the keys semconv knows, found in one scan, for
/// code that asks many questions of the same span (the service graph, the
/// detectors). Each key holds its first occurrence, as `Span::attr` finds it.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    pub span: &'a Span,
    /// Per key in `KEYS`, its attribute's position plus one (0: absent), or
    /// `None` for a span with more attributes than a byte counts, which is
    /// asked by scanning.
    at: Option<[u8; KEYS.len()]>,
}

impl<'a> Facts<'a> {
    pub fn of(span: &'a Span) -> Self {
        if span.attributes.len() >= usize::from(u8::MAX) {
            return Self { span, at: None };
        }
        let mut at = [0u8; KEYS.len()];
        for (n, kv) in span.attributes.iter().enumerate() {
            if let Some(i) = slot(&kv.key) {
                if at[i] == 0 {
                    at[i] = n as u8 + 1;
                }
            }
        }
        Self { span, at: Some(at) }
    }
}

impl<'a> Attributes<'a> for &Facts<'a> {
    fn get(self, key: &str) -> Option<&'a AttrValue> {
        match (self.at, slot(key)) {
            (Some(at), Some(i)) => {
                let n = at[i].checked_sub(1)?;
                Some(&self.span.attributes[usize::from(n)].value)
            }
            _ => self.span.attr(key),
        }
    }
}

/// The first of `keys` the span has, as a string (numbers in their text form).
fn first_string<'a>(span: impl Attributes<'a>, keys: &[&str]) -> Option<Cow<'a, str>> {
    keys.iter().find_map(|key| match span.get(key)? {
        AttrValue::String(s) if !s.is_empty() => Some(Cow::Borrowed(s.as_str())),
        AttrValue::String(_) | AttrValue::Empty => None,
        other => Some(Cow::Owned(other.to_string_form())),
    })
}

/// The first of `keys` the span has as a non-empty string.
pub fn string_attr<'a>(span: impl Attributes<'a>, keys: &[&str]) -> Option<&'a str> {
    keys.iter().find_map(|key| match span.get(key)? {
        AttrValue::String(s) if !s.is_empty() => Some(s.as_str()),
        _ => None,
    })
}

/// An integer attribute, also when sent as a numeric string.
fn int_attr<'a>(span: impl Attributes<'a>, key: &str) -> Option<i64> {
    match span.get(key)? {
        AttrValue::Int(i) => Some(*i),
        AttrValue::Double(d) => Some(*d as i64),
        AttrValue::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn flag<'a>(span: impl Attributes<'a>, key: &str) -> bool {
    matches!(span.get(key), Some(AttrValue::Bool(true)))
}

/// The HTTP response status code (`http.response.status_code`, older `http.status_code`).
pub fn http_status<'a>(span: impl Attributes<'a>) -> Option<i64> {
    int_attr(span, HTTP_RESPONSE_STATUS_CODE).or_else(|| int_attr(span, HTTP_STATUS_CODE_OLD))
}

/// The gRPC status code, when the span is a gRPC call.
pub fn grpc_status<'a>(span: impl Attributes<'a>) -> Option<i64> {
    int_attr(span, RPC_GRPC_STATUS_CODE)
}

pub fn is_http<'a>(span: impl Attributes<'a>) -> bool {
    span.get(HTTP_REQUEST_METHOD).is_some()
        || span.get(HTTP_METHOD_OLD).is_some()
        || http_status(span).is_some()
}

pub fn rpc_system<'a>(span: impl Attributes<'a>) -> Option<Cow<'a, str>> {
    first_string(span, &[RPC_SYSTEM])
}

/// The database system (`db.system.name`, older `db.system`); an AWS SDK
/// call to DynamoDB (as X-Ray's `aws` subsegments record it) is `dynamodb`.
pub fn db_system<'a>(span: impl Attributes<'a>) -> Option<Cow<'a, str>> {
    first_string(span, &[DB_SYSTEM_NAME, DB_SYSTEM_OLD]).or_else(|| {
        let aws = rpc_system(span).is_some_and(|s| s == "aws-api");
        let dynamo =
            first_string(span, &[RPC_SERVICE]).is_some_and(|s| s.eq_ignore_ascii_case("dynamodb"));
        (aws && dynamo).then_some(Cow::Borrowed("dynamodb"))
    })
}

pub fn messaging_system<'a>(span: impl Attributes<'a>) -> Option<Cow<'a, str>> {
    first_string(span, &[MESSAGING_SYSTEM])
}

/// The name of the peer a client span called, by API.md's precedence:
/// `peer.service`, `server.address` (older `net.peer.name`), `db.namespace`
/// (older `db.name`), then the database system.
pub fn peer_name<'a>(span: impl Attributes<'a>) -> Option<Cow<'a, str>> {
    first_string(
        span,
        &[
            PEER_SERVICE,
            SERVER_ADDRESS,
            NET_PEER_NAME_OLD,
            DB_NAMESPACE,
            DB_NAME_OLD,
        ],
    )
    .or_else(|| db_system(span))
}

/// X-Ray's own classification flags, when the span came from X-Ray.
pub fn xray_throttle<'a>(span: impl Attributes<'a>) -> bool {
    flag(span, XRAY_THROTTLE)
}

pub fn xray_fault<'a>(span: impl Attributes<'a>) -> bool {
    flag(span, XRAY_FAULT)
}

pub fn xray_error<'a>(span: impl Attributes<'a>) -> bool {
    flag(span, XRAY_ERROR)
}

/// Whether the span says it is a retry: a positive resend count, X-Ray retries,
/// or gRPC previous attempts.
pub fn retry_marker<'a>(span: impl Attributes<'a>) -> bool {
    [HTTP_REQUEST_RESEND_COUNT, XRAY_RETRIES]
        .iter()
        .chain(GRPC_PREVIOUS_ATTEMPTS)
        .any(|key| int_attr(span, key).is_some_and(|n| n > 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::KeyValue;
    use proptest::prelude::*;

    fn value() -> impl Strategy<Value = AttrValue> {
        prop_oneof![
            Just(AttrValue::Empty),
            Just(AttrValue::String(String::new())),
            "[a-z0-9 ]{0,6}".prop_map(AttrValue::String),
            (-3i64..600).prop_map(AttrValue::Int),
            any::<bool>().prop_map(AttrValue::Bool),
            (-2.0f64..600.0).prop_map(AttrValue::Double),
        ]
    }

    #[test]
    fn every_key_has_its_own_slot() {
        for (i, key) in KEYS.iter().enumerate() {
            assert_eq!(slot(key), Some(i), "{key}");
        }
        assert_eq!(slot("db.systen"), None);
        assert_eq!(slot(""), None);
    }

    /// A span with more attributes than `Facts` counts in a byte is asked
    /// by scanning, and answers the same.
    #[test]
    fn many_attributes_are_scanned() {
        let mut attributes: Vec<KeyValue> = (0..300)
            .map(|n| KeyValue::new(format!("filler.{n}"), AttrValue::Int(n)))
            .collect();
        attributes.push(KeyValue::new(HTTP_STATUS_CODE_OLD, AttrValue::Int(503)));
        let span = Span {
            attributes,
            ..Span::default()
        };
        let facts = Facts::of(&span);
        assert_eq!(http_status(&facts), Some(503));
        assert_eq!((&facts).get("filler.299"), Some(&AttrValue::Int(299)));
    }

    proptest! {
        /// Every question answers the same from `Facts` as from the span,
        /// whatever the keys, their values and their repeats.
        #[test]
        fn facts_answer_as_the_span_does(
            attrs in proptest::collection::vec(
                (proptest::sample::select(KEYS.to_vec()), value()),
                0..24,
            ),
            other in "[a-z.]{1,12}",
        ) {
            let mut attributes: Vec<KeyValue> =
                attrs.into_iter().map(|(k, v)| KeyValue::new(k, v)).collect();
            attributes.push(KeyValue::new(other.clone(), AttrValue::Int(1)));
            let span = Span { attributes, ..Span::default() };
            let facts = Facts::of(&span);
            let f = &facts;
            prop_assert_eq!(http_status(&span), http_status(f));
            prop_assert_eq!(grpc_status(&span), grpc_status(f));
            prop_assert_eq!(is_http(&span), is_http(f));
            prop_assert_eq!(rpc_system(&span), rpc_system(f));
            prop_assert_eq!(db_system(&span), db_system(f));
            prop_assert_eq!(messaging_system(&span), messaging_system(f));
            prop_assert_eq!(peer_name(&span), peer_name(f));
            prop_assert_eq!(xray_throttle(&span), xray_throttle(f));
            prop_assert_eq!(xray_fault(&span), xray_fault(f));
            prop_assert_eq!(xray_error(&span), xray_error(f));
            prop_assert_eq!(retry_marker(&span), retry_marker(f));
            prop_assert_eq!(
                string_attr(&span, &HTTP_URL_KEYS),
                string_attr(f, &HTTP_URL_KEYS)
            );
            for key in KEYS.iter().copied().chain([other.as_str(), "absent"]) {
                prop_assert_eq!(span.attr(key), f.get(key), "{}", key);
            }
        }
    }
}
