//! Semantic-convention attribute names, read in one place.
//!
//! Later stages ask this module for a span's database system, status code or peer
//! and it knows both the current names and the older ones SDKs still send.

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
