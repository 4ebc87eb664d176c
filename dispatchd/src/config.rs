//! Configuration: built-in defaults, then `dispatch.toml`, then environment.
//!
//! Loaded and validated once at start-up; the rest of the daemon receives an
//! `Arc<Config>` and never reads the environment itself. Every error names
//! the key that is wrong, so an operator can fix it without reading code.
//! The documented defaults live in the repository's `dispatch.toml`, which
//! must stay in step with the `Default` impls here (a test checks that).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

use crate::model::RetryPolicy;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub api: ApiConfig,
    pub admin: AdminConfig,
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

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// `host:port`, or `:port` for every interface (env `ADDR`).
    pub addr: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `postgres://…` for PostgreSQL; empty for the embedded SQLite store
    /// (env `DATABASE_URL`).
    pub url: String,
    /// File of the embedded SQLite store, created when missing.
    pub sqlite_path: PathBuf,
    pub max_connections: u32,
    /// How long a request waits for a database connection before it is
    /// answered 503.
    pub acquire_timeout_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Bearer keys accepted on the public API.
    pub keys: Vec<String>,
    /// Secrets for DispatchGO-style request signing (`X-HMAC-Signature`).
    pub hmac_secrets: Vec<String>,
    /// Largest accepted request body; larger ones are answered 413.
    pub max_body_bytes: usize,
    /// Most events in one `POST /events/batch`.
    pub max_batch_events: usize,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Bearer tokens for the admin API (`/admin/...`), separate from the
    /// producers' keys. Without any, the admin API answers 401 (except in
    /// dev mode, where it is open).
    pub tokens: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// How long a claimed delivery belongs to its worker; after that another
    /// node may take it. Must exceed every delivery timeout.
    pub lease_secs: u64,
    /// Fallback poll when no wake-up arrives.
    pub poll_interval_ms: u64,
    /// Most deliveries claimed in one statement.
    pub claim_batch: u32,
    /// Most HTTP requests in flight at once on this node.
    pub max_in_flight: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// Default per-request timeout (subscriptions may set their own).
    pub timeout_ms: u64,
    /// Default attempts per delivery, the first included.
    pub max_attempts: u32,
    pub retry: RetryConfig,
    /// Most of a receiver's answer that is read.
    pub max_response_bytes: usize,
    /// How much of that is stored with the attempt.
    pub stored_response_bytes: usize,
    /// Longest `Retry-After` honoured.
    pub retry_after_max_secs: u64,
    /// How long a rotated-out secret keeps signing alongside the new one.
    pub secret_rotation_grace_secs: u64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    pub initial_delay_ms: u64,
    pub multiplier: f64,
    pub max_delay_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TasksConfig {
    /// Retries after the first attempt (DispatchGO: 5).
    pub max_retries: u32,
    pub retry: RetryConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Delivered deliveries (and their attempts) older than this are pruned.
    pub delivered_hours: u64,
    /// How often the pruner and the lease reaper run.
    pub sweep_interval_secs: u64,
    /// PostgreSQL: vacuum a dispatch table once it holds this many dead
    /// rows (0: leave it to autovacuum).
    pub vacuum_dead_rows: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CircuitConfig {
    /// Consecutive failed attempts that open an endpoint's circuit.
    pub failure_threshold: u32,
    /// How long an open circuit waits before one probe delivery is let
    /// through.
    pub cooldown_secs: u64,
    /// An endpoint whose circuit has stayed open this long is disabled
    /// (0: never).
    pub auto_disable_after_hours: u64,
}

impl Default for CircuitConfig {
    fn default() -> Self {
        Self {
            failure_threshold: 10,
            cooldown_secs: 30,
            auto_disable_after_hours: 72,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SsrfConfig {
    /// CIDR ranges that may be delivered to although they are internal
    /// (loopback, private, …), e.g. `["10.1.0.0/16"]`. `--dev` adds loopback.
    pub allow_cidrs: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ShutdownConfig {
    /// How long in-flight deliveries may run after SIGTERM before they are
    /// handed back to the queue.
    pub grace_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: String,
    /// A tracing filter, e.g. `info` or `dispatchd=debug`.
    pub level: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PluginHostConfig {
    /// Where compiled plugins are cached by content hash. Trusted: only
    /// dispatchd may write there.
    pub cache_dir: PathBuf,
    /// Threads that run plugin calls (0: one per core).
    pub threads: usize,
    /// How often plugin files are checked for changes, which reloads them
    /// (0: only `POST /admin/plugins/reload`).
    pub watch_interval_ms: u64,
    /// Router plugins, run in this order at fan-out.
    pub routers: Vec<String>,
}

impl Default for PluginHostConfig {
    fn default() -> Self {
        Self {
            cache_dir: PathBuf::from(".dispatch-cache"),
            threads: 0,
            watch_interval_ms: 1000,
            routers: Vec::new(),
        }
    }
}

/// One plugin (`[plugins.NAME]`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    /// The component file (`.wasm`).
    pub path: PathBuf,
    /// Fuel per call (about one unit per wasm instruction).
    #[serde(default = "PluginConfig::default_fuel")]
    pub fuel: u64,
    /// Wall-clock limit per call.
    #[serde(default = "PluginConfig::default_timeout_ms")]
    pub timeout_ms: u64,
    /// Limit of each linear memory (a component usually has one).
    #[serde(default = "PluginConfig::default_memory_mb")]
    pub memory_mb: u64,
    /// Wasm stack limit.
    #[serde(default = "PluginConfig::default_stack_kb")]
    pub stack_kb: u64,
    /// Reuse instances between calls (for guests with a costly start-up,
    /// such as JavaScript and Python); an instance that traps is dropped.
    #[serde(default)]
    pub warm: bool,
    /// Values the plugin reads with `setting(key)`: strings as they are,
    /// anything else as JSON.
    #[serde(default)]
    pub settings: BTreeMap<String, serde_json::Value>,
}

impl PluginConfig {
    fn default_fuel() -> u64 {
        100_000_000
    }
    fn default_timeout_ms() -> u64 {
        100
    }
    fn default_memory_mb() -> u64 {
        64
    }
    fn default_stack_kb() -> u64 {
        512
    }

    /// A plugin at `path` with every limit at its default.
    pub fn at(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            fuel: Self::default_fuel(),
            timeout_ms: Self::default_timeout_ms(),
            memory_mb: Self::default_memory_mb(),
            stack_kb: Self::default_stack_kb(),
            warm: false,
            settings: BTreeMap::new(),
        }
    }

    /// The settings as the plugin sees them.
    pub fn settings_text(&self) -> BTreeMap<String, String> {
        self.settings
            .iter()
            .map(|(k, v)| {
                let text = match v {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), text)
            })
            .collect()
    }

    fn check(&self, name: &str) -> Result<(), ConfigError> {
        let bad = |message: &str| ConfigError::Plugin {
            name: name.to_string(),
            message: message.to_string(),
        };
        if crate::validate::id("name", name).is_err() {
            return Err(bad(
                "plugin names may use letters, digits, '.', '_', '-' and ':' (at most 255)",
            ));
        }
        if self.path.as_os_str().is_empty() {
            return Err(bad("path must name a .wasm component"));
        }
        if self.fuel == 0 {
            return Err(bad("fuel must be at least 1"));
        }
        if !(1..=60_000).contains(&self.timeout_ms) {
            return Err(bad("timeout_ms must be between 1 and 60000"));
        }
        if !(1..=4096).contains(&self.memory_mb) {
            return Err(bad("memory_mb must be between 1 and 4096"));
        }
        if !(16..=4096).contains(&self.stack_kb) {
            return Err(bad("stack_kb must be between 16 and 4096"));
        }
        Ok(())
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            addr: ":8080".into(),
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            sqlite_path: PathBuf::from("dispatch.db"),
            max_connections: 16,
            acquire_timeout_ms: 3000,
        }
    }
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            keys: Vec::new(),
            hmac_secrets: Vec::new(),
            max_body_bytes: 5 * 1024 * 1024,
            max_batch_events: 1000,
        }
    }
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            lease_secs: 90,
            poll_interval_ms: 1000,
            claim_batch: 100,
            max_in_flight: 256,
        }
    }
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            timeout_ms: 30_000,
            max_attempts: 10,
            retry: RetryConfig::default(),
            max_response_bytes: 64 * 1024,
            stored_response_bytes: 4096,
            retry_after_max_secs: 3600,
            secret_rotation_grace_secs: 24 * 3600,
        }
    }
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            initial_delay_ms: 1000,
            multiplier: 2.0,
            max_delay_ms: 3_600_000,
        }
    }
}

impl Default for TasksConfig {
    fn default() -> Self {
        Self {
            max_retries: 5,
            retry: RetryConfig {
                initial_delay_ms: 2000,
                multiplier: 2.0,
                max_delay_ms: 3_600_000,
            },
        }
    }
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            delivered_hours: 72,
            sweep_interval_secs: 10,
            vacuum_dead_rows: 100_000,
        }
    }
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        Self { grace_secs: 20 }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: "text".into(),
            level: "info".into(),
        }
    }
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

    /// Checks ranges and cross-field rules. Runs at load and after `into_dev`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        fn bad(key: &'static str, message: impl Into<String>) -> ConfigError {
            ConfigError::Invalid {
                key,
                message: message.into(),
            }
        }
        self.listen_addr()?;
        let url = &self.database.url;
        if !url.is_empty() && !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
            return Err(bad(
                "database.url",
                "must start with postgres:// (or be empty for the embedded SQLite store)",
            ));
        }
        if url.is_empty() && self.database.sqlite_path.as_os_str().is_empty() {
            return Err(bad("database.sqlite_path", "must not be empty"));
        }
        if !(1..=1000).contains(&self.database.max_connections) {
            return Err(bad(
                "database.max_connections",
                "must be between 1 and 1000",
            ));
        }
        if self.database.acquire_timeout_ms == 0 {
            return Err(bad("database.acquire_timeout_ms", "must be at least 1"));
        }
        if !self.dev && self.api.keys.is_empty() && self.api.hmac_secrets.is_empty() {
            return Err(bad(
                "api.keys",
                "no API keys configured: set api.keys (or DISPATCH_API__KEYS='[\"key\"]') \
                 or api.hmac_secrets, or run `dispatchd --dev` for a local unauthenticated instance",
            ));
        }
        if self.api.keys.iter().any(|k| k.len() < 16) {
            return Err(bad("api.keys", "every key must be at least 16 characters"));
        }
        if self.api.hmac_secrets.iter().any(|k| k.len() < 16) {
            return Err(bad(
                "api.hmac_secrets",
                "every secret must be at least 16 characters",
            ));
        }
        if self.admin.tokens.iter().any(|k| k.len() < 16) {
            return Err(bad(
                "admin.tokens",
                "every token must be at least 16 characters",
            ));
        }
        if self.api.max_body_bytes < 1024 {
            return Err(bad("api.max_body_bytes", "must be at least 1024"));
        }
        if !(1..=10_000).contains(&self.api.max_batch_events) {
            return Err(bad("api.max_batch_events", "must be between 1 and 10000"));
        }
        if self.queue.lease_secs < 2 {
            return Err(bad("queue.lease_secs", "must be at least 2"));
        }
        if !(10..=60_000).contains(&self.queue.poll_interval_ms) {
            return Err(bad(
                "queue.poll_interval_ms",
                "must be between 10 and 60000",
            ));
        }
        if !(1..=1000).contains(&self.queue.claim_batch) {
            return Err(bad("queue.claim_batch", "must be between 1 and 1000"));
        }
        if !(1..=10_000).contains(&self.queue.max_in_flight) {
            return Err(bad("queue.max_in_flight", "must be between 1 and 10000"));
        }
        if self.delivery.timeout_ms == 0 || self.delivery.timeout_ms > self.max_timeout_ms() {
            return Err(bad(
                "delivery.timeout_ms",
                format!(
                    "must be between 1 and {} (60 s, and queue.lease_secs minus 1 s)",
                    self.max_timeout_ms()
                ),
            ));
        }
        if !(1..=100).contains(&self.delivery.max_attempts) {
            return Err(bad("delivery.max_attempts", "must be between 1 and 100"));
        }
        check_retry(&self.delivery.retry, "delivery.retry")?;
        check_retry(&self.tasks.retry, "tasks.retry")?;
        if self.tasks.max_retries > 99 {
            return Err(bad("tasks.max_retries", "must be at most 99"));
        }
        if self.delivery.max_response_bytes == 0 {
            return Err(bad("delivery.max_response_bytes", "must be at least 1"));
        }
        if self.delivery.stored_response_bytes > self.delivery.max_response_bytes {
            return Err(bad(
                "delivery.stored_response_bytes",
                "must not exceed delivery.max_response_bytes",
            ));
        }
        if self.retention.sweep_interval_secs == 0 {
            return Err(bad("retention.sweep_interval_secs", "must be at least 1"));
        }
        self.ssrf_allow()?;
        if !(1..=1000).contains(&self.circuit.failure_threshold) {
            return Err(bad(
                "circuit.failure_threshold",
                "must be between 1 and 1000",
            ));
        }
        if self.circuit.cooldown_secs == 0 {
            return Err(bad("circuit.cooldown_secs", "must be at least 1"));
        }
        for (name, p) in &self.plugins {
            p.check(name)?;
        }
        if self.plugin_host.threads > 256 {
            return Err(bad("plugin_host.threads", "must be at most 256"));
        }
        if let Some(r) = self
            .plugin_host
            .routers
            .iter()
            .find(|r| !self.plugins.contains_key(*r))
        {
            return Err(bad(
                "plugin_host.routers",
                format!("names {r:?}, which is not declared under [plugins]"),
            ));
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            return Err(bad("log.format", "must be \"text\" or \"json\""));
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return Err(bad("log.level", "is not a valid tracing filter"));
        }
        Ok(())
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

fn check_retry(r: &RetryConfig, key: &'static str) -> Result<(), ConfigError> {
    let invalid = |message: &str| ConfigError::Invalid {
        key,
        message: message.to_string(),
    };
    if r.initial_delay_ms == 0 {
        return Err(invalid("initial_delay_ms must be at least 1"));
    }
    if !(1.0..=100.0).contains(&r.multiplier) {
        return Err(invalid("multiplier must be between 1 and 100"));
    }
    if r.max_delay_ms < r.initial_delay_ms {
        return Err(invalid("max_delay_ms must be at least initial_delay_ms"));
    }
    Ok(())
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

/// figment reports the key and where the value came from; keep all of it on
/// one line.
fn flatten_figment_error(e: figment::Error) -> String {
    e.into_iter()
        .map(|e| {
            let key = if e.path.is_empty() {
                String::new()
            } else {
                format!("{}: ", e.path.join("."))
            };
            // Never echo a value that may be a credential.
            let path: Vec<&str> = e.path.iter().map(String::as_str).collect();
            let sensitive = matches!(
                path.as_slice(),
                ["api", "keys" | "hmac_secrets", ..]
                    | ["admin", "tokens", ..]
                    | ["database", "url", ..]
            );
            let kind = match &e.kind {
                figment::error::Kind::InvalidType(_, expected)
                | figment::error::Kind::InvalidValue(_, expected)
                    if sensitive =>
                {
                    format!("invalid value (not shown: it may be a secret), expected {expected}")
                }
                other => other.to_string(),
            };
            let origin = match e.metadata.as_ref() {
                Some(m) => match m.source.as_ref() {
                    Some(src) => format!(" (from {} {src})", m.name),
                    None => format!(" (from {})", m.name),
                },
                None => String::new(),
            };
            format!("{key}{kind}{origin}")
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// An `Env` provider that reads from an explicit list instead of the process
/// environment.
struct EnvFrom {
    vars: Vec<(String, String)>,
}

impl figment::Provider for EnvFrom {
    fn metadata(&self) -> figment::Metadata {
        figment::Metadata::named("environment variable")
    }

    fn data(
        &self,
    ) -> Result<figment::value::Map<figment::Profile, figment::value::Dict>, figment::Error> {
        let mut dict = figment::value::Dict::new();
        for (k, v) in &self.vars {
            let Some(rest) = k.strip_prefix("DISPATCH_") else {
                continue;
            };
            if rest == "CONFIG" {
                continue;
            }
            let key = rest.to_ascii_lowercase().replace("__", ".");
            let value: figment::value::Value = v
                .parse()
                .unwrap_or_else(|_| figment::value::Value::from(v.clone()));
            let nested = figment::util::nest(&key, value);
            if let figment::value::Value::Dict(_, d) = nested {
                for (dk, dv) in d {
                    merge_dict(&mut dict, dk, dv);
                }
            }
        }
        Ok(figment::Profile::Default.collect(dict))
    }
}

fn merge_dict(dict: &mut figment::value::Dict, key: String, value: figment::value::Value) {
    use figment::value::Value;
    match (dict.get_mut(&key), value) {
        (Some(Value::Dict(_, existing)), Value::Dict(_, incoming)) => {
            for (k, v) in incoming {
                merge_dict(existing, k, v);
            }
        }
        (_, v) => {
            dict.insert(key, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn documented_file_matches_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../dispatch.toml");
        let from_file = Config::load(
            Some(&path),
            &env(&[("DISPATCH_API__KEYS", "[\"0123456789abcdef\"]")]),
            false,
        )
        .expect("dispatch.toml loads");
        let mut expected = Config::default();
        expected.api.keys = vec!["0123456789abcdef".into()];
        assert_eq!(from_file, expected);
    }

    #[test]
    fn refuses_to_start_without_keys_unless_dev() {
        let err = Config::load(None, &[], false).unwrap_err().to_string();
        assert!(err.contains("api.keys") && err.contains("--dev"), "{err}");
        let dev = Config::default().into_dev();
        dev.validate().unwrap();
    }

    #[test]
    fn env_overrides_and_names_bad_keys() {
        let cfg = Config::load(
            None,
            &env(&[
                ("DATABASE_URL", "postgres://u@h/db"),
                ("ADDR", ":9000"),
                ("DISPATCH_QUEUE__CLAIM_BATCH", "50"),
                ("DISPATCH_API__KEYS", "[\"0123456789abcdef\"]"),
            ]),
            false,
        )
        .unwrap();
        assert_eq!(cfg.database.url, "postgres://u@h/db");
        assert_eq!(cfg.listen_addr().unwrap().port(), 9000);
        assert_eq!(cfg.queue.claim_batch, 50);

        let err = Config::load(
            None,
            &env(&[
                ("DISPATCH_API__KEYS", "[\"0123456789abcdef\"]"),
                ("DISPATCH_QUEUE__CLAIM_BATCH", "lots"),
            ]),
            false,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("queue.claim_batch"), "{err}");

        let err = Config::load(
            None,
            &env(&[
                ("DISPATCH_API__KEYS", "[\"0123456789abcdef\"]"),
                ("DISPATCH_QUEUE__CLAIM_BATCH", "0"),
            ]),
            false,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("queue.claim_batch"), "{err}");

        let err = Config::load(
            None,
            &env(&[
                ("DISPATCH_API__KEYS", "[\"0123456789abcdef\"]"),
                ("DISPATCH_QUEUE__LEESE_SECS", "5"),
            ]),
            false,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("leese_secs"), "{err}");
    }

    #[test]
    fn errors_never_echo_secrets() {
        // Brackets forgotten: a string where a list is expected.
        let err = Config::load(
            None,
            &env(&[("DISPATCH_API__KEYS", "super-secret-producer-key")]),
            false,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("api.keys"), "{err}");
        assert!(!err.contains("super-secret-producer-key"), "{err}");
    }

    #[test]
    fn bad_file_value_names_key_and_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.toml");
        std::fs::write(&path, "[delivery]\ntimeout_ms = \"soon\"\n").unwrap();
        let err = Config::load(Some(&path), &[], false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("delivery.timeout_ms"), "{err}");
        let err = Config::load(Some(&dir.path().join("nope.toml")), &[], false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not found"), "{err}");
    }

    #[test]
    fn dev_mode_binds_loopback() {
        let mut cfg = Config::default().into_dev();
        cfg.server.addr = "0.0.0.0:8080".into();
        assert!(cfg.listen_addr().unwrap().ip().is_loopback());
    }
}
