//! Credentials on the TCP ports (`[auth]`): bearer tokens on ingest (OTLP
//! gRPC and HTTP, Zipkin), bearer tokens or basic-auth users on the query
//! port. Checked from the `Authorization` header before a body is read, so a
//! client without credentials costs a header parse, not a decode.
//!
//! Every configured secret is compared, each in constant time, and the
//! verdicts are combined without branching: how long a refusal takes says
//! nothing about which secret, or how much of one, a guess matched.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use subtle::{Choice, ConstantTimeEq};

use crate::config::{AuthConfig, Secret};
use crate::telemetry::Telemetry;

/// What one port accepts.
#[derive(Debug, Default)]
pub struct Credentials {
    tokens: Vec<Secret>,
    /// `user:password`, as a basic-auth header carries it once decoded.
    users: Vec<Secret>,
}

impl Credentials {
    /// Ingest's credentials; `None` when no token is configured (open).
    pub fn ingest(config: &AuthConfig) -> Option<Arc<Self>> {
        Self::of(config.ingest_tokens.clone(), Vec::new())
    }

    /// The query port's; `None` when nothing is configured (open).
    pub fn query(config: &AuthConfig) -> Option<Arc<Self>> {
        let users = config
            .query_users
            .iter()
            .map(|u| Secret::new(format!("{}:{}", u.user, u.password.expose())))
            .collect();
        Self::of(config.query_tokens.clone(), users)
    }

    fn of(tokens: Vec<Secret>, users: Vec<Secret>) -> Option<Arc<Self>> {
        (!tokens.is_empty() || !users.is_empty()).then(|| Arc::new(Self { tokens, users }))
    }

    /// Whether an `Authorization` header value names a configured token or user.
    pub fn allows(&self, authorization: Option<&[u8]>) -> bool {
        let Some(value) = authorization else {
            return false;
        };
        let (scheme, rest) = match value.iter().position(|&b| b == b' ') {
            Some(at) => (&value[..at], trim(&value[at + 1..])),
            None => return false,
        };
        if scheme.eq_ignore_ascii_case(b"bearer") {
            any_equal(&self.tokens, rest)
        } else if scheme.eq_ignore_ascii_case(b"basic") {
            match base64::engine::general_purpose::STANDARD.decode(rest) {
                Ok(pair) => any_equal(&self.users, &pair),
                Err(_) => false,
            }
        } else {
            false
        }
    }

    /// Whether browsers should be asked for a user and password.
    fn has_users(&self) -> bool {
        !self.users.is_empty()
    }
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace());
    let end = bytes.iter().rposition(|b| !b.is_ascii_whitespace());
    match (start, end) {
        (Some(start), Some(end)) => &bytes[start..=end],
        _ => &[],
    }
}

/// Compares `given` with every secret, each in constant time for its length.
fn any_equal(secrets: &[Secret], given: &[u8]) -> bool {
    let mut found = Choice::from(0);
    for secret in secrets {
        found |= secret.expose().as_bytes().ct_eq(given);
    }
    found.into()
}

/// An axum layer's state: the port's credentials, and the paths open without.
#[derive(Clone)]
pub struct Gate {
    pub credentials: Arc<Credentials>,
    /// Paths answered without credentials (probes, when `open_probes`).
    pub open_paths: &'static [&'static str],
    /// Where refusals are counted (`tracemap_requests_rejected_total`).
    pub receiver: &'static str,
    pub telemetry: Arc<Telemetry>,
}

/// The probe paths, open by default (`auth.open_probes`).
pub const PROBES: &[&str] = &["/metrics", "/healthz", "/readyz"];

/// Passes a request on when it carries accepted credentials (or asks for an
/// open path); else 401 with `WWW-Authenticate`.
pub async fn require(State(gate): State<Gate>, request: Request, next: Next) -> Response {
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    if gate.open_paths.contains(&request.uri().path()) || gate.credentials.allows(authorization) {
        return next.run(request).await;
    }
    gate.telemetry
        .request_rejected(gate.receiver, "unauthenticated");
    let challenge = if gate.credentials.has_users() {
        "Basic realm=\"tracemap\", charset=\"UTF-8\""
    } else {
        "Bearer realm=\"tracemap\""
    };
    let mut response = (
        StatusCode::UNAUTHORIZED,
        axum::Json(serde_json::json!({"error": "missing or wrong credentials"})),
    )
        .into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    response
}

/// Wraps `router` in `gate` when credentials are configured.
pub fn guard(router: axum::Router, gate: Option<Gate>) -> axum::Router {
    match gate {
        Some(gate) => router.layer(axum::middleware::from_fn_with_state(gate, require)),
        None => router,
    }
}

/// The gRPC side: an interceptor refusing calls without an accepted token
/// with `UNAUTHENTICATED`, before the message is read.
#[derive(Clone)]
pub struct GrpcGate {
    pub credentials: Option<Arc<Credentials>>,
    pub telemetry: Arc<Telemetry>,
}

impl tonic::service::Interceptor for GrpcGate {
    fn call(&mut self, request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        let Some(credentials) = &self.credentials else {
            return Ok(request);
        };
        let authorization = request
            .metadata()
            .get("authorization")
            .map(|v| v.as_bytes());
        if credentials.allows(authorization) {
            Ok(request)
        } else {
            self.telemetry
                .request_rejected("otlp_grpc", "unauthenticated");
            Err(tonic::Status::unauthenticated(
                "missing or wrong bearer token (send `authorization: Bearer <token>`)",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BasicUser;

    fn config() -> AuthConfig {
        AuthConfig {
            ingest_tokens: vec![Secret::new("s3cret-ingest")],
            query_tokens: vec![Secret::new("q-token"), Secret::new("other")],
            query_users: vec![BasicUser {
                user: "ana".into(),
                password: Secret::new("pa:ss"),
            }],
            open_probes: true,
        }
    }

    fn basic(pair: &str) -> Vec<u8> {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
        .into_bytes()
    }

    #[test]
    fn bearer_tokens_and_basic_users_are_checked_exactly() {
        let ingest = Credentials::ingest(&config()).unwrap();
        assert!(ingest.allows(Some(b"Bearer s3cret-ingest")));
        assert!(ingest.allows(Some(b"bearer  s3cret-ingest ")));
        for wrong in [
            &b"Bearer s3cret-ingesT"[..],
            b"Bearer s3cret-inges",
            b"Bearer s3cret-ingest2",
            b"Bearer ",
            b"Bearer",
            b"s3cret-ingest",
            b"Token s3cret-ingest",
            b"Bearer q-token",
        ] {
            assert!(
                !ingest.allows(Some(wrong)),
                "{}",
                String::from_utf8_lossy(wrong)
            );
        }
        assert!(!ingest.allows(None));
        let query = Credentials::query(&config()).unwrap();
        assert!(query.allows(Some(b"Bearer other")));
        assert!(query.allows(Some(&basic("ana:pa:ss"))));
        assert!(!query.allows(Some(&basic("ana:pa:s"))));
        assert!(!query.allows(Some(&basic("ana"))));
        assert!(!query.allows(Some(b"Basic !!!not-base64")));
        assert!(!query.allows(Some(b"Bearer s3cret-ingest")));
    }

    #[test]
    fn nothing_configured_leaves_a_port_open() {
        assert!(Credentials::ingest(&AuthConfig::default()).is_none());
        assert!(Credentials::query(&AuthConfig::default()).is_none());
    }

    #[test]
    fn secrets_never_show_in_a_config_dump() {
        let dump = format!("{:?}", config());
        for secret in ["s3cret-ingest", "q-token", "pa:ss"] {
            assert!(!dump.contains(secret), "{dump}");
        }
        assert!(dump.contains("[redacted]") && dump.contains("ana"));
    }
}
