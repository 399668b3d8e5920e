//! Every setting of tracemap, with its default, in one place.
//!
//! Settings come from a TOML file (`--config`), then CLI flags override the few
//! that have one. `Config::validate` runs once at start; nothing else in the crate
//! reads the environment or a file for settings.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

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
    pub limits: Limits,
    pub storage: StorageConfig,
    pub assembly: AssemblyConfig,
    pub index: IndexConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./tracemap-data"),
            bind: IpAddr::from([127, 0, 0, 1]),
            otlp_grpc_port: 4317,
            otlp_http_port: 4318,
            http_port: 16686,
            limits: Limits::default(),
            storage: StorageConfig::default(),
            assembly: AssemblyConfig::default(),
            index: IndexConfig::default(),
        }
    }
}

/// Limits on what a client may send.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest OTLP request accepted, in bytes, measured after decompression.
    pub max_message_bytes: usize,
    /// Bytes of requests being decoded and written at once; beyond it requests
    /// are refused with a retryable status rather than queued.
    pub max_inflight_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_bytes: 16 << 20,
            max_inflight_bytes: 256 << 20,
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
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            ack_mode: AckMode::Wal,
            block_cache_mb: 64,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AssemblyConfig {
    /// A trace is complete when no span has arrived for this long.
    #[serde(with = "humantime_serde")]
    pub trace_idle: Duration,
}

impl Default for AssemblyConfig {
    fn default() -> Self {
        Self {
            trace_idle: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IndexConfig {
    /// Attribute keys whose values are correlation ids (X-Ray annotations included).
    pub correlation_keys: Vec<String>,
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

    /// Checks settings that the types alone cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |setting, reason: &str| {
            Err(ConfigError::Invalid {
                setting,
                reason: reason.to_string(),
            })
        };
        if self.limits.max_message_bytes == 0 {
            return invalid("limits.max_message_bytes", "must be above zero");
        }
        if self.limits.max_inflight_bytes < self.limits.max_message_bytes {
            return invalid(
                "limits.max_inflight_bytes",
                "must be at least limits.max_message_bytes, or no request of the largest size could ever be accepted",
            );
        }
        if self.assembly.trace_idle.is_zero() {
            return invalid("assembly.trace_idle", "must be above zero");
        }
        let ports = [self.otlp_grpc_port, self.otlp_http_port, self.http_port];
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
    fn defaults_follow_the_api_contract() {
        let config = Config::default();
        assert_eq!(config.otlp_grpc_port, 4317);
        assert_eq!(config.otlp_http_port, 4318);
        assert_eq!(config.http_port, 16686);
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

    #[test]
    fn unknown_settings_are_an_error() {
        let error = Config::from_toml("htp_port = 9000\n").unwrap_err();
        assert!(error.to_string().contains("htp_port"), "{error}");
    }

    #[test]
    fn clashing_ports_are_refused() {
        let config = Config {
            http_port: 4317,
            ..Config::default()
        };
        assert!(config.validate().is_err());
    }
}
