//! `Config::validate`: ranges and cross-field rules, each error naming its
//! key. Runs at load and after `into_dev`.

use super::{Config, ConfigError, RetryConfig};

impl Config {
    /// Checks ranges and cross-field rules. Runs at load and after `into_dev`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        fn bad(key: &'static str, message: impl Into<String>) -> ConfigError {
            ConfigError::Invalid {
                key,
                message: message.into(),
            }
        }
        self.listen_addr()?;
        let url = self.database.url.expose();
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
        if !self.delivery.proxy_url.is_empty() {
            crate::validate::url("delivery.proxy_url", &self.delivery.proxy_url)
                .map_err(|e| bad("delivery.proxy_url", e))?;
        }
        if self.queue.lease_secs < 2 {
            return Err(bad("queue.lease_secs", "must be at least 2"));
        }
        if !self.metrics.token.is_empty() && self.metrics.token.len() < 16 {
            return Err(bad("metrics.token", "must be at least 16 characters"));
        }
        if !(1..=3600).contains(&self.queue.node_timeout_secs) {
            return Err(bad("queue.node_timeout_secs", "must be between 1 and 3600"));
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
