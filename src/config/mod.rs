//! Every setting of tracemap, with its default, in one place.
//!
//! Settings come from a TOML file (`--config`), then CLI flags override the few
//! that have one. `Config::validate` runs once at start; nothing else in the crate
//! reads the environment or a file for settings.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

mod limits;

pub use limits::Limits;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("in {path}: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("invalid setting {setting}: {reason}")]
    Invalid {
        setting: &'static str,
        reason: String,
    },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Directory of the embedded RocksDB.
    pub data_dir: PathBuf,
    /// Address every listener binds to.
    pub bind: IpAddr,
    /// OTLP/gRPC listener port (0 picks a free one).
    pub otlp_grpc_port: u16,
    /// OTLP/HTTP listener port (0 picks a free one).
    pub otlp_http_port: u16,
    /// Query API, metrics and web UI port (0 picks a free one).
    pub http_port: u16,
    /// X-Ray daemon port: segments on UDP, sampling API on TCP (0 picks a free one).
    pub xray_port: u16,
    /// Zipkin v2 receiver port, `POST /api/v2/spans` (0 picks a free one).
    pub zipkin_port: u16,
    pub limits: Limits,
    pub storage: StorageConfig,
    pub assembly: AssemblyConfig,
    pub index: IndexConfig,
    pub graph: GraphConfig,
    pub xray: XrayConfig,
    pub detectors: DetectorsConfig,
    pub auth: AuthConfig,
    pub tls: TlsConfig,
    pub query: QueryConfig,
    pub connections: ConnectionsConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./tracemap-data"),
            bind: IpAddr::from([127, 0, 0, 1]),
            otlp_grpc_port: 4317,
            otlp_http_port: 4318,
            http_port: 16686,
            xray_port: 2000,
            zipkin_port: 9411,
            limits: Limits::default(),
            storage: StorageConfig::default(),
            assembly: AssemblyConfig::default(),
            index: IndexConfig::default(),
            graph: GraphConfig::default(),
            xray: XrayConfig::default(),
            detectors: DetectorsConfig::default(),
            auth: AuthConfig::default(),
            tls: TlsConfig::default(),
            query: QueryConfig::default(),
            connections: ConnectionsConfig::default(),
        }
    }
}

/// When a write is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AckMode {
    /// After the write-ahead log has the batch: survives a process crash.
    #[default]
    Wal,
    /// After the write-ahead log is fsynced: survives a power loss too.
    Fsync,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    pub ack_mode: AckMode,
    /// RocksDB block cache, in MiB.
    pub block_cache_mb: usize,
    /// Data received longer ago than this is deleted.
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
    /// How often retention (and the disk cap) is applied.
    #[serde(with = "humantime_serde")]
    pub retention_check_interval: Duration,
    /// When above zero, the oldest hours of data are deleted early while the
    /// store takes more than this many MiB on disk.
    pub max_disk_mb: u64,
    /// Spans are refused (retryably) while the data directory's filesystem
    /// has less than this many MiB free, and accepted again once it has
    /// (`storage::disk`); 0 turns the check off.
    pub min_free_disk_mb: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            ack_mode: AckMode::Wal,
            block_cache_mb: 64,
            retention: Duration::from_secs(72 * 3600),
            retention_check_interval: Duration::from_secs(60),
            max_disk_mb: 0,
            min_free_disk_mb: 256,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AssemblyConfig {
    /// A trace is complete when no span has arrived for this long.
    #[serde(with = "humantime_serde")]
    pub trace_idle: Duration,
    /// A trace is complete this long after its first span, even if spans keep coming.
    #[serde(with = "humantime_serde")]
    pub trace_max_age: Duration,
    /// Most traces open at once; beyond it the oldest is completed early.
    pub max_open_traces: usize,
    /// Most estimated bytes of open traces; beyond it the oldest is completed early.
    pub max_open_bytes: usize,
}

impl Default for AssemblyConfig {
    fn default() -> Self {
        Self {
            trace_idle: Duration::from_secs(10),
            trace_max_age: Duration::from_secs(300),
            max_open_traces: 200_000,
            max_open_bytes: 256 << 20,
        }
    }
}

/// `[detectors]`: the thresholds of what is worth fixing (API.md's defaults).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectorsConfig {
    /// A database call this long or longer is a `slow_db` finding.
    #[serde(with = "humantime_serde")]
    pub slow_db_threshold: Duration,
    /// Calls with one template under one parent, one after another, that
    /// make an `n_plus_one` finding.
    pub n_plus_one_min: usize,
    /// Attempts of one logical call that make a `retry_storm` finding.
    pub retry_min_attempts: usize,
    /// A non-database client call this long or longer is a `slow_call`...
    #[serde(with = "humantime_serde")]
    pub slow_call_threshold: Duration,
    /// ...unless its target (as the map names it) has its own threshold here,
    /// e.g. `{ "api.stripe.com" = "2s" }`.
    pub slow_call_targets: std::collections::HashMap<String, humantime_serde::Serde<Duration>>,
    /// `sequential_calls` are reported when running them in parallel would
    /// save at least this much.
    #[serde(with = "humantime_serde")]
    pub sequential_min_saving: Duration,
    /// A map edge storms when, in some minute, its retries are at least
    /// `storm_min_retries` and at least this share of its calls.
    pub storm_retry_ratio: f64,
    pub storm_min_retries: u64,
}

impl Default for DetectorsConfig {
    fn default() -> Self {
        let d = crate::analysis::detectors::DetectorConfig::default();
        Self {
            slow_db_threshold: d.slow_db_threshold,
            n_plus_one_min: d.n_plus_one_min,
            retry_min_attempts: d.retry_min_attempts,
            slow_call_threshold: d.slow_call_threshold,
            slow_call_targets: Default::default(),
            sequential_min_saving: d.sequential_min_saving,
            storm_retry_ratio: 0.1,
            storm_min_retries: 10,
        }
    }
}

impl DetectorsConfig {
    pub fn detector_config(&self) -> crate::analysis::detectors::DetectorConfig {
        crate::analysis::detectors::DetectorConfig {
            slow_db_threshold: self.slow_db_threshold,
            n_plus_one_min: self.n_plus_one_min,
            retry_min_attempts: self.retry_min_attempts,
            slow_call_threshold: self.slow_call_threshold,
            slow_call_targets: self
                .slow_call_targets
                .iter()
                .map(|(target, threshold)| (target.clone(), **threshold))
                .collect(),
            sequential_min_saving: self.sequential_min_saving,
        }
    }
}

/// `[graph]`: the service map's aggregates and their cardinality caps.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GraphConfig {
    /// How long graph aggregates are kept (longer than spans: they are small).
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
    /// Most distinct nodes (services and virtual nodes) kept apart per hour.
    pub max_nodes: usize,
    /// Most distinct edges kept apart per hour.
    pub max_edges: usize,
    /// Most distinct (service, operation) pairs in span metrics per hour.
    pub max_operations: usize,
}

impl Default for GraphConfig {
    fn default() -> Self {
        let limits = crate::analysis::GraphLimits::default();
        Self {
            retention: Duration::from_secs(30 * 86_400),
            max_nodes: limits.max_nodes,
            max_edges: limits.max_edges,
            max_operations: limits.max_operations,
        }
    }
}

impl GraphConfig {
    pub fn limits(&self) -> crate::analysis::GraphLimits {
        crate::analysis::GraphLimits {
            max_nodes: self.max_nodes,
            max_edges: self.max_edges,
            max_operations: self.max_operations,
            ..crate::analysis::GraphLimits::default()
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IndexConfig {
    /// Attribute keys whose values are correlation ids (X-Ray annotations included).
    pub correlation_keys: Vec<String>,
    /// Attribute keys (span or resource) whose values are indexed, so
    /// `attr=key:value` and Jaeger tag searches on them need no scan.
    pub attributes: Vec<String>,
}

impl IndexConfig {
    pub fn summary_keys(&self) -> crate::model::SummaryKeys {
        crate::model::SummaryKeys {
            correlation: self.correlation_keys.clone(),
            indexed: self.attributes.clone(),
        }
    }
}

impl Default for IndexConfig {
    fn default() -> Self {
        let keys = [
            "correlation_id",
            "correlationId",
            "correlation.id",
            "x-correlation-id",
            "http.request.header.x-correlation-id",
            "request_id",
            "requestId",
            "http.request.header.x-request-id",
        ];
        Self {
            correlation_keys: keys.iter().map(|k| k.to_string()).collect(),
            attributes: vec!["http.route".into(), "enduser.id".into()],
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct XrayConfig {
    /// UDP receive buffer asked of the kernel, in bytes.
    pub receive_buffer_bytes: usize,
    /// Deepest subsegment nesting accepted; deeper documents are dropped.
    pub max_segment_depth: usize,
    /// Rules served to the X-Ray SDKs' centralized sampler, in priority order.
    pub sampling_rules: Vec<SamplingRule>,
}

impl Default for XrayConfig {
    fn default() -> Self {
        Self {
            receive_buffer_bytes: 8 << 20,
            max_segment_depth: 32,
            sampling_rules: vec![SamplingRule::default()],
        }
    }
}

/// Bounds on the HTTP listeners' connections (`[connections]`; `serve`):
/// what keeps a slow or hostile client from holding a port. The gRPC
/// listener takes `max_concurrent_streams` and `max_header_bytes` too.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConnectionsConfig {
    /// Open connections per listener; past it, new ones wait to be accepted.
    pub max_per_listener: usize,
    /// HTTP/1: a request's headers must arrive within this.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// A connection with no bytes moving either way this long is closed.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// HTTP/2 streams one connection may have open at once.
    pub max_concurrent_streams: u32,
    /// Largest request header block, HTTP/1 and HTTP/2.
    pub max_header_bytes: usize,
}

impl Default for ConnectionsConfig {
    fn default() -> Self {
        Self {
            max_per_listener: 4096,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(120),
            max_concurrent_streams: 256,
            max_header_bytes: 64 << 10,
        }
    }
}

/// What one query may cost (`[query]`): searches that reach a bound answer
/// with what they found and say so in `warnings`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueryConfig {
    /// Longest a trace search (native or Jaeger) looks before answering.
    #[serde(with = "humantime_serde")]
    pub max_search_time: Duration,
    /// Most spans one Jaeger search answer carries (it returns whole traces).
    pub max_response_spans: usize,
    /// Searches running at once; more wait up to 2 s, then get 503.
    pub max_concurrent_searches: usize,
}

impl Default for QueryConfig {
    fn default() -> Self {
        Self {
            max_search_time: Duration::from_secs(3),
            max_response_spans: 200_000,
            max_concurrent_searches: 4,
        }
    }
}

/// A password or token: compared in constant time (`security::auth`) and
/// never printed — `Debug` shows `[redacted]`, so a config dump or a log
/// line holding the config leaks nothing.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Who may send spans and who may read them (`[auth]`). Nothing configured:
/// anyone who can reach the ports, which bind to 127.0.0.1 unless `bind`
/// says otherwise.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Bearer tokens accepted on OTLP/gRPC, OTLP/HTTP and Zipkin
    /// (`Authorization: Bearer <token>`, as the SDKs' `OTEL_EXPORTER_OTLP_HEADERS`
    /// sends it). X-Ray's UDP protocol has no credentials: bind its port to a
    /// trusted interface.
    pub ingest_tokens: Vec<Secret>,
    /// Bearer tokens accepted on the query port (APIs and web UI).
    pub query_tokens: Vec<Secret>,
    /// Basic-auth users accepted on the query port; a browser asks for them,
    /// so the web UI works with these (and Grafana's data source sends them).
    pub query_users: Vec<BasicUser>,
    /// `/metrics`, `/healthz` and `/readyz` answer without credentials, so
    /// scrapers and probes keep working.
    pub open_probes: bool,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            ingest_tokens: Vec::new(),
            query_tokens: Vec::new(),
            query_users: Vec::new(),
            open_probes: true,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicUser {
    pub user: String,
    pub password: Secret,
}

/// TLS on every TCP listener (`[tls]`): both files or neither. PEM: the
/// certificate chain, leaf first, and its private key (PKCS#8, PKCS#1 or SEC1).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
}

/// One X-Ray sampling rule, as the X-Ray API defines it. The default records
/// every request.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SamplingRule {
    pub name: String,
    /// Lower numbers are matched first.
    pub priority: i64,
    /// Share of requests sampled beyond the reservoir, 0 to 1.
    pub fixed_rate: f64,
    /// Requests per second sampled before the fixed rate applies.
    pub reservoir_size: i64,
    pub service_name: String,
    pub service_type: String,
    pub host: String,
    pub http_method: String,
    pub url_path: String,
}

impl Default for SamplingRule {
    fn default() -> Self {
        Self {
            name: "Default".into(),
            priority: 10000,
            fixed_rate: 1.0,
            reservoir_size: 1,
            service_name: "*".into(),
            service_type: "*".into(),
            host: "*".into(),
            http_method: "*".into(),
            url_path: "*".into(),
        }
    }
}

impl Config {
    /// Reads a TOML config file; settings it leaves out keep their defaults.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text).map_err(|source| ConfigError::Parse {
            path: path.to_path_buf(),
            source: Box::new(source),
        })
    }

    pub fn from_toml(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }

    /// Whether the TOML file at `path` sets the setting at `key` (a table
    /// path, `["assembly", "trace_idle"]`): for a command whose defaults
    /// differ from tracemap's (`tracemap demo`) and must not override what
    /// the user wrote.
    pub fn file_sets(path: &Path, key: &[&str]) -> Result<bool, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let table: toml::Table = toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_path_buf(),
            source: Box::new(source),
        })?;
        let mut at = Some(&table);
        let (last, tables) = key.split_last().expect("a key has at least one part");
        for part in tables {
            at = at
                .and_then(|t| t.get(*part))
                .and_then(toml::Value::as_table);
        }
        Ok(at.is_some_and(|t| t.contains_key(*last)))
    }

    /// Checks settings that the types alone cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |setting, reason: &str| {
            Err(ConfigError::Invalid {
                setting,
                reason: reason.to_string(),
            })
        };
        self.limits.validate()?;
        if self.assembly.trace_idle.is_zero() {
            return invalid("assembly.trace_idle", "must be above zero");
        }
        if self.detectors.n_plus_one_min < 2 || self.detectors.retry_min_attempts < 2 {
            return invalid(
                "detectors.n_plus_one_min",
                "n_plus_one_min and retry_min_attempts must be at least 2",
            );
        }
        if self.detectors.storm_min_retries == 0 {
            return invalid(
                "detectors.storm_min_retries",
                "must be at least 1 (0 would look into every minute of every edge)",
            );
        }
        if !(self.detectors.storm_retry_ratio > 0.0 && self.detectors.storm_retry_ratio <= 1.0) {
            return invalid(
                "detectors.storm_retry_ratio",
                "must be above 0 and at most 1",
            );
        }
        if self.assembly.trace_max_age < self.assembly.trace_idle {
            return invalid(
                "assembly.trace_max_age",
                "must be at least assembly.trace_idle",
            );
        }
        if self.storage.retention.is_zero() || self.storage.retention_check_interval.is_zero() {
            return invalid(
                "storage.retention",
                "retention and retention_check_interval must be above zero",
            );
        }
        if self.graph.retention.is_zero() {
            return invalid("graph.retention", "must be above zero");
        }
        if self.graph.max_nodes == 0 || self.graph.max_edges == 0 || self.graph.max_operations == 0
        {
            return invalid(
                "graph",
                "max_nodes, max_edges and max_operations must be above zero",
            );
        }
        if self.assembly.max_open_traces == 0 {
            return invalid("assembly.max_open_traces", "must be above zero");
        }
        for (i, rule) in self.xray.sampling_rules.iter().enumerate() {
            if rule.name.is_empty() {
                return invalid("xray.sampling_rules", "every rule needs a name");
            }
            if !(0.0..=1.0).contains(&rule.fixed_rate) {
                return invalid(
                    "xray.sampling_rules",
                    &format!("rule {:?}: fixed_rate must be between 0 and 1", rule.name),
                );
            }
            if rule.reservoir_size < 0 {
                return invalid(
                    "xray.sampling_rules",
                    &format!("rule {:?}: reservoir_size must not be negative", rule.name),
                );
            }
            if self.xray.sampling_rules[..i]
                .iter()
                .any(|r| r.name == rule.name)
            {
                return invalid(
                    "xray.sampling_rules",
                    &format!("rule name {:?} is used twice", rule.name),
                );
            }
        }
        if self.xray.max_segment_depth == 0 {
            return invalid("xray.max_segment_depth", "must be above zero");
        }
        let tokens = self
            .auth
            .ingest_tokens
            .iter()
            .chain(&self.auth.query_tokens);
        if tokens.clone().any(|t| t.expose().is_empty()) {
            return invalid("auth", "a token must not be empty");
        }
        if tokens
            .clone()
            .any(|t| !t.expose().bytes().all(|b| b.is_ascii_graphic()))
        {
            return invalid("auth", "a token must be visible ASCII, without spaces");
        }
        for user in &self.auth.query_users {
            if user.user.is_empty() || user.user.contains(':') || user.password.expose().is_empty()
            {
                return invalid(
                    "auth.query_users",
                    "every user needs a name without ':' and a password",
                );
            }
        }
        if self.query.max_search_time.is_zero()
            || self.query.max_response_spans == 0
            || self.query.max_concurrent_searches == 0
        {
            return invalid(
                "query",
                "max_search_time, max_response_spans and max_concurrent_searches must be above zero",
            );
        }
        let c = &self.connections;
        if c.max_per_listener == 0
            || c.header_read_timeout.is_zero()
            || c.idle_timeout.is_zero()
            || c.max_concurrent_streams == 0
            || !(1024..=16 << 20).contains(&c.max_header_bytes)
        {
            return invalid(
                "connections",
                "limits and timeouts must be above zero, max_header_bytes from 1024 to 16 MiB",
            );
        }
        if self.tls.cert_file.is_some() != self.tls.key_file.is_some() {
            return invalid("tls", "give both cert_file and key_file, or neither");
        }
        // The X-Ray port is TCP and UDP; it only clashes with the TCP listeners.
        let ports = [
            self.otlp_grpc_port,
            self.otlp_http_port,
            self.http_port,
            self.xray_port,
            self.zipkin_port,
        ];
        for (i, a) in ports.iter().enumerate() {
            if *a != 0 && ports[i + 1..].contains(a) {
                return invalid("ports", &format!("port {a} is given to two listeners"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_sets_tells_what_a_file_wrote() {
        let dir = std::env::temp_dir().join(format!("tracemap-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("sets.toml");
        std::fs::write(
            &path,
            "data_dir = \"/x\"\n[assembly]\ntrace_idle = \"30s\"\n",
        )
        .unwrap();
        assert!(Config::file_sets(&path, &["assembly", "trace_idle"]).unwrap());
        assert!(Config::file_sets(&path, &["data_dir"]).unwrap());
        assert!(!Config::file_sets(&path, &["assembly", "trace_max_age"]).unwrap());
        assert!(!Config::file_sets(&path, &["graph", "retention"]).unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn defaults_follow_the_api_contract() {
        let config = Config::default();
        assert_eq!(config.otlp_grpc_port, 4317);
        assert_eq!(config.otlp_http_port, 4318);
        assert_eq!(config.http_port, 16686);
        assert_eq!(config.xray_port, 2000);
        assert_eq!(config.zipkin_port, 9411);
        assert_eq!(config.xray.sampling_rules[0].fixed_rate, 1.0);
        assert_eq!(config.bind.to_string(), "127.0.0.1");
        assert_eq!(config.data_dir, PathBuf::from("./tracemap-data"));
        config.validate().unwrap();
    }

    #[test]
    fn file_overrides_and_keeps_defaults() {
        let config = Config::from_toml(
            "http_port = 9000\n[storage]\nack_mode = \"fsync\"\n[assembly]\ntrace_idle = \"30s\"\n",
        )
        .unwrap();
        assert_eq!(config.http_port, 9000);
        assert_eq!(config.otlp_grpc_port, 4317);
        assert_eq!(config.storage.ack_mode, AckMode::Fsync);
        assert_eq!(config.assembly.trace_idle, Duration::from_secs(30));
    }

    /// The README's settings block is every setting with its default: it
    /// parses, and says what the code does.
    #[test]
    fn the_readme_lists_the_defaults() {
        let readme = include_str!("../../README.md");
        let block = readme
            .split("```toml\n")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .expect("a toml block in the README");
        let listed = Config::from_toml(block).unwrap();
        let defaults = Config::default();
        assert_eq!(format!("{listed:?}"), format!("{defaults:?}"));
        let mut configured = Config::from_toml(
            "[detectors]\nslow_call_targets = { \"api.stripe.com\" = \"2s\" }\nn_plus_one_min = 8\n",
        )
        .unwrap();
        let detectors = configured.detectors.detector_config();
        assert_eq!(
            detectors.slow_call_targets["api.stripe.com"],
            Duration::from_secs(2)
        );
        assert_eq!(detectors.n_plus_one_min, 8);
        configured.detectors.storm_retry_ratio = 0.0;
        assert!(configured.validate().is_err());
    }

    #[test]
    fn unknown_settings_are_an_error() {
        let error = Config::from_toml("htp_port = 9000\n").unwrap_err();
        assert!(error.to_string().contains("htp_port"), "{error}");
    }

    #[test]
    fn sampling_rules_are_validated() {
        let config =
            Config::from_toml("[[xray.sampling_rules]]\nname = \"checkout\"\nfixed_rate = 1.5\n")
                .unwrap();
        assert!(config.validate().is_err());
        let config = Config::from_toml(
            "[[xray.sampling_rules]]\nname = \"checkout\"\nfixed_rate = 0.1\nservice_name = \"order-service\"\n",
        )
        .unwrap();
        config.validate().unwrap();
        assert_eq!(config.xray.sampling_rules[0].priority, 10000);
    }

    #[test]
    fn clashing_ports_are_refused() {
        let config = Config {
            http_port: 4317,
            ..Config::default()
        };
        assert!(config.validate().is_err());
        let config = Config::from_toml("zipkin_port = 16686\n").unwrap();
        assert!(config.validate().is_err());
        let config = Config::from_toml("zipkin_port = 9412\n").unwrap();
        assert_eq!(config.zipkin_port, 9412);
        config.validate().unwrap();
    }
}
