//! The sections of `dispatch.toml`, one struct each, with the documented
//! defaults (`dispatch.toml` must match them; `config/tests` checks).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::secret::Secret;

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
    pub url: Secret,
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
    pub keys: Vec<Secret>,
    /// Secrets for DispatchGO-style request signing (`X-HMAC-Signature`).
    pub hmac_secrets: Vec<Secret>,
    /// Largest accepted request body; larger ones are answered 413.
    pub max_body_bytes: usize,
    /// Most events in one `POST /events/batch`.
    pub max_batch_events: usize,
    /// Refuse (422) an event whose type is not in the event-type catalogue.
    pub require_known_event_types: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Bearer tokens for the admin API (`/admin/...`), separate from the
    /// producers' keys. Without any, the admin API answers 401 (except in
    /// dev mode, where it is open).
    pub tokens: Vec<Secret>,
}

/// `/metrics`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// When set, `/metrics` wants `Authorization: Bearer <token>`.
    pub token: Secret,
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
    /// Deliveries this node has free send slots for are created already
    /// leased to it and sent from memory after the commit, skipping the
    /// claim (the others are claimed as usual). Off: every delivery is
    /// claimed.
    pub lease_at_ingest: bool,
    /// A node whose heartbeat is older than this is dead: any live node
    /// hands its leased deliveries back to the queue at once, without using
    /// up an attempt. Each node beats every third of it.
    pub node_timeout_secs: u64,
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
    /// An HTTP CONNECT proxy every delivery goes out through (empty: none),
    /// so egress leaves from addresses the platform team pins. Trusted:
    /// its own address is not checked by the SSRF guard; the destination
    /// still is, by dispatchd, before the proxy is asked.
    pub proxy_url: String,
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
            url: Secret::default(),
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
            require_known_event_types: false,
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
            lease_at_ingest: true,
            node_timeout_secs: 5,
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
            proxy_url: String::new(),
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
