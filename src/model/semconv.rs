//! Semantic-convention attribute names, read in one place.
//!
//! Later stages ask this module for a span's database system, status code or peer
//! and it knows both the current names and the older ones SDKs still send.

/// Resource attribute naming the service that produced a span.
pub const SERVICE_NAME: &str = "service.name";

/// The service name OpenTelemetry SDKs use when none is configured.
pub const UNKNOWN_SERVICE: &str = "unknown_service";
