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
pub const RPC_GRPC_STATUS_CODE: &str = "rpc.grpc.status_code";
/// How many times an HTTP client sent this request before (OpenTelemetry).
pub const HTTP_REQUEST_RESEND_COUNT: &str = "http.request.resend_count";
/// gRPC's attempt attribute (gRFC A72) and a dotted spelling of it.
pub const GRPC_PREVIOUS_ATTEMPTS: &[&str] =
    &["previous-rpc-attempts", "rpc.grpc.previous_rpc_attempts"];

/// The first of `keys` the span has, as a string (numbers in their text form).
fn first_string<'a>(span: &'a Span, keys: &[&str]) -> Option<Cow<'a, str>> {
    keys.iter().find_map(|key| match span.attr(key)? {
        AttrValue::String(s) if !s.is_empty() => Some(Cow::Borrowed(s.as_str())),
        AttrValue::String(_) | AttrValue::Empty => None,
        other => Some(Cow::Owned(other.to_string_form())),
    })
}

/// An integer attribute, also when sent as a numeric string.
fn int_attr(span: &Span, key: &str) -> Option<i64> {
    match span.attr(key)? {
        AttrValue::Int(i) => Some(*i),
        AttrValue::Double(d) => Some(*d as i64),
        AttrValue::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn flag(span: &Span, key: &str) -> bool {
    matches!(span.attr(key), Some(AttrValue::Bool(true)))
}

/// The HTTP response status code (`http.response.status_code`, older `http.status_code`).
pub fn http_status(span: &Span) -> Option<i64> {
    int_attr(span, HTTP_RESPONSE_STATUS_CODE).or_else(|| int_attr(span, HTTP_STATUS_CODE_OLD))
}

/// The gRPC status code, when the span is a gRPC call.
pub fn grpc_status(span: &Span) -> Option<i64> {
    int_attr(span, RPC_GRPC_STATUS_CODE)
}

pub fn is_http(span: &Span) -> bool {
    span.attr(HTTP_REQUEST_METHOD).is_some()
        || span.attr(HTTP_METHOD_OLD).is_some()
        || http_status(span).is_some()
}

pub fn rpc_system(span: &Span) -> Option<Cow<'_, str>> {
    first_string(span, &[RPC_SYSTEM])
}

/// The database system (`db.system.name`, older `db.system`); an AWS SDK
/// call to DynamoDB (as X-Ray's `aws` subsegments record it) is `dynamodb`.
pub fn db_system(span: &Span) -> Option<Cow<'_, str>> {
    first_string(span, &[DB_SYSTEM_NAME, DB_SYSTEM_OLD]).or_else(|| {
        let aws = rpc_system(span).is_some_and(|s| s == "aws-api");
        let dynamo =
            first_string(span, &[RPC_SERVICE]).is_some_and(|s| s.eq_ignore_ascii_case("dynamodb"));
        (aws && dynamo).then_some(Cow::Borrowed("dynamodb"))
    })
}

pub fn messaging_system(span: &Span) -> Option<Cow<'_, str>> {
    first_string(span, &[MESSAGING_SYSTEM])
}

/// The name of the peer a client span called, by API.md's precedence:
/// `peer.service`, `server.address` (older `net.peer.name`), `db.namespace`
/// (older `db.name`), then the database system.
pub fn peer_name(span: &Span) -> Option<Cow<'_, str>> {
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
pub fn xray_throttle(span: &Span) -> bool {
    flag(span, XRAY_THROTTLE)
}

pub fn xray_fault(span: &Span) -> bool {
    flag(span, XRAY_FAULT)
}

pub fn xray_error(span: &Span) -> bool {
    flag(span, XRAY_ERROR)
}

/// Whether the span says it is a retry: a positive resend count, X-Ray retries,
/// or gRPC previous attempts.
pub fn retry_marker(span: &Span) -> bool {
    [HTTP_REQUEST_RESEND_COUNT, XRAY_RETRIES]
        .iter()
        .chain(GRPC_PREVIOUS_ATTEMPTS)
        .any(|key| int_attr(span, key).is_some_and(|n| n > 0))
}
