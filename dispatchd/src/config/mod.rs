//! Configuration: built-in defaults, then `dispatch.toml`, then environment.
//!
//! Loaded and validated once at start-up; the rest of the daemon receives an
//! `Arc<Config>` and never reads the environment itself. Every error names
//! the key that is wrong, so an operator can fix it without reading code.
//! The documented defaults live in the repository's `dispatch.toml`, which
//! must stay in step with the `Default` impls in `sections` (a test checks
//! that). `validate` holds the checks, `env` the environment provider,
//! `plugins` the `[plugins.NAME]` entries.

mod env;
mod plugins;
mod sections;
#[cfg(test)]
mod tests;
mod validate;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

pub use plugins::{PluginConfig, settings_text};
pub use sections::*;

use crate::model::RetryPolicy;
use env::{EnvFrom, flatten_figment_error};

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub api: ApiConfig,
    pub admin: AdminConfig,
    pub metrics: MetricsConfig,
    pub queue: QueueConfig,
    pub delivery: DeliveryConfig,
    pub tasks: TasksConfig,
    pub retention: RetentionConfig,
    pub circuit: CircuitConfig,
    pub ssrf: SsrfConfig,
    pub shutdown: ShutdownConfig,
    pub log: LogConfig,
    pub plugin_host: PluginHostConfig,
    /// WASM plugins by name (`[plugins.NAME]`).
    pub plugins: BTreeMap<String, PluginConfig>,
    /// Dev mode (`--dev`): never read from files or the environment.
    #[serde(skip)]
    pub dev: bool,
}

/// A setting that stops start-up; the message names the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file given with `--config` does not exist.
    #[error("config file {0} not found")]
    Missing(PathBuf),
    /// A value has the wrong type or an unknown key was given.
    #[error("invalid configuration: {0}")]
    Parse(String),
    /// A value is out of range or inconsistent with another.
    #[error("invalid configuration: {key}: {message}")]
    Invalid { key: &'static str, message: String },
    /// A plugin's settings are wrong.
    #[error("invalid configuration: plugins.{name}: {message}")]
    Plugin { name: String, message: String },
}

impl Config {
    /// Layers defaults, the optional file and the environment, then checks
    /// the result.
    pub fn load(
        file: Option<&Path>,
        env: &[(String, String)],
        dev: bool,
    ) -> Result<Self, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.is_file() {
                return Err(ConfigError::Missing(path.to_path_buf()));
            }
            fig = fig.merge(Toml::file_exact(path));
        }
        // Explicit environment (not process-global) so tests can pass their own.
        let lookup = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        if let Some(url) = lookup("DATABASE_URL") {
            fig = fig.merge(Serialized::default("database.url", url));
        }
        if let Some(addr) = lookup("ADDR") {
            fig = fig.merge(Serialized::default("server.addr", addr));
        }
        // `DISPATCH_QUEUE__LEASE_SECS=30` sets `queue.lease_secs`.
        fig = fig.merge(EnvFrom { vars: env.to_vec() });
        let mut cfg: Config = fig
            .extract()
            .map_err(|e| ConfigError::Parse(flatten_figment_error(e)))?;
        cfg.dev = dev;
        cfg.validate()?;
        Ok(cfg)
    }

    /// The settings of `dispatchd --dev`: embedded SQLite unless a database
    /// URL is given, loopback only, no API auth.
    pub fn into_dev(mut self) -> Self {
        self.dev = true;
        self
    }

    /// The socket address to bind. Dev mode forces loopback.
    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        let raw = self.server.addr.trim();
        let parsed = if let Some(port) = raw.strip_prefix(':') {
            port.parse::<u16>()
                .ok()
                .map(|p| SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), p))
        } else if let Some(port) = raw.strip_prefix("localhost:") {
            port.parse::<u16>()
                .ok()
                .map(|p| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), p))
        } else {
            raw.parse::<SocketAddr>().ok()
        };
        let addr = parsed.ok_or_else(|| ConfigError::Invalid {
            key: "server.addr",
            message: format!("{raw:?} is not host:port or :port"),
        })?;
        if self.dev && !addr.ip().is_loopback() {
            return Ok(SocketAddr::new(
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                addr.port(),
            ));
        }
        Ok(addr)
    }

    /// Longest per-delivery timeout a subscription may ask for: 60 s, and
    /// always ending well before the lease does, or another node could take
    /// the delivery while it is still being sent.
    pub fn max_timeout_ms(&self) -> u64 {
        self.queue
            .lease_secs
            .saturating_mul(1000)
            .saturating_sub(1000)
            .min(60_000)
    }

    /// How old a heartbeat makes its node dead.
    pub fn node_timeout(&self) -> Duration {
        Duration::from_secs(self.queue.node_timeout_secs)
    }

    pub fn lease(&self) -> Duration {
        Duration::from_secs(self.queue.lease_secs)
    }

    fn ssrf_allow(&self) -> Result<Vec<ipnet::IpNet>, ConfigError> {
        self.ssrf
            .allow_cidrs
            .iter()
            .map(|c| {
                c.parse::<ipnet::IpNet>()
                    .or_else(|_| c.parse::<IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| ConfigError::Invalid {
                        key: "ssrf.allow_cidrs",
                        message: format!("{c:?} is not a CIDR range like 10.0.0.0/8"),
                    })
            })
            .collect()
    }

    /// The destination guard: the allowlist, plus loopback in dev mode.
    pub fn ssrf_guard(&self) -> crate::ssrf::Guard {
        crate::ssrf::Guard::new(self.ssrf_allow().unwrap_or_default(), self.dev)
    }

    pub fn circuit_policy(&self) -> crate::circuit::CircuitPolicy {
        crate::circuit::CircuitPolicy {
            failure_threshold: self.circuit.failure_threshold,
            cooldown_ms: (self.circuit.cooldown_secs * 1000) as i64,
        }
    }

    pub fn uses_postgres(&self) -> bool {
        !self.database.url.is_empty()
    }

    pub fn default_retry(&self) -> RetryPolicy {
        self.delivery.retry.into()
    }
}

impl From<RetryConfig> for RetryPolicy {
    fn from(r: RetryConfig) -> Self {
        RetryPolicy {
            initial_delay_ms: r.initial_delay_ms,
            multiplier: r.multiplier,
            max_delay_ms: r.max_delay_ms,
        }
    }
}
