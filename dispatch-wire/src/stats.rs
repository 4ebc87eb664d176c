//! The operator's live picture: the `/admin/stats` snapshot and the
//! attempts `/admin/stream` tails. Counted from the database rather than
//! from any node's memory, so whichever node answers, the numbers agree.

use serde::{Deserialize, Serialize};

/// `GET /admin/stats`: a snapshot counted from the database, so every node
/// answers the same.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AdminStats {
    /// When the snapshot was taken (RFC 3339).
    pub generated_at: String,
    /// `postgres` or `sqlite`.
    pub backend: String,
    /// Deliveries in each state.
    pub deliveries: DeliveryCounts,
    /// Milliseconds the oldest pending delivery has waited; absent when none
    /// is pending.
    pub oldest_pending_age_ms: Option<i64>,
    /// Mean per-second rates over the last minute.
    pub rates: Rates,
    /// The last minute, one point per whole second, oldest first.
    pub throughput: Vec<ThroughputPoint>,
    /// Ingest to delivery, for deliveries that succeeded in the last minute.
    pub latency_ms: LatencyStats,
    /// Every subscription's health and backlog.
    pub endpoints: Vec<EndpointStats>,
    /// Every plugin's calls, summed over the nodes.
    pub plugins: Vec<PluginStats>,
    /// The nodes sharing the database.
    pub nodes: Vec<NodeView>,
    /// Ordered keys (`ordering_on_dead: block`) stopped by a dead head
    /// until it is replayed or purged.
    #[serde(default)]
    pub blocked_keys: i64,
}

/// Deliveries per state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeliveryCounts {
    /// Due now, waiting for a worker.
    pub pending: i64,
    /// Being attempted.
    pub in_flight: i64,
    /// Waiting for a retry.
    pub scheduled: i64,
    /// Delivered (until retention prunes them).
    pub delivered: i64,
    /// Out of attempts: the dead letters.
    pub dead: i64,
    /// Parked: the endpoint is paused or disabled, or its circuit open.
    pub paused: i64,
    /// Dropped by a plugin.
    pub dropped: i64,
    /// Ordered: waiting for the delivery before them in their key.
    #[serde(default)]
    pub held: i64,
}

/// Events ingested, and attempts that delivered or failed, per second.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Rates {
    /// The window the means are taken over, in seconds.
    pub window_secs: u32,
    /// Events accepted per second.
    pub ingested_per_sec: f64,
    /// Successful attempts per second.
    pub delivered_per_sec: f64,
    /// Failed attempts per second.
    pub failed_per_sec: f64,
}

/// One second of traffic.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ThroughputPoint {
    /// Unix seconds.
    pub at: i64,
    /// Events accepted in that second.
    pub ingested: i64,
    /// Successful attempts in that second.
    pub delivered: i64,
    /// Failed attempts in that second.
    pub failed: i64,
}

/// Latency percentiles in milliseconds, over at most the latest 10,000
/// samples of the window; absent when there are none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LatencyStats {
    /// How many deliveries the percentiles are taken over.
    pub samples: u64,
    /// Median.
    pub p50: Option<i64>,
    /// 95th percentile.
    pub p95: Option<i64>,
    /// 99th percentile.
    pub p99: Option<i64>,
}

/// One endpoint (subscription): its health, circuit and backlog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EndpointStats {
    /// The subscription's id.
    pub subscription_id: String,
    /// The tenant that owns it; absent for a global subscription.
    #[serde(default)]
    pub tenant_id: Option<String>,
    /// The endpoint URL.
    pub url: String,
    /// Whether it receives deliveries.
    pub status: crate::SubscriptionStatus,
    /// Its circuit breaker.
    pub circuit_state: crate::CircuitState,
    /// Failed attempts in a row.
    pub consecutive_failures: i32,
    /// Requests per second; absent when unlimited.
    pub rate_limit: Option<i32>,
    /// The latest successful delivery (RFC 3339).
    pub last_success_at: Option<String>,
    /// Why it is disabled, when it is.
    pub disabled_reason: Option<String>,
    /// `healthy`, `failing`, `open`, `paused`, `disabled` or `idle`.
    pub health: String,
    /// Waiting deliveries: pending, scheduled and in flight.
    pub backlog: i64,
    /// Parked deliveries, waiting for the endpoint to come back.
    pub paused: i64,
    /// Dead letters.
    pub dead: i64,
    /// Attempts in the last minute.
    pub delivered_last_minute: i64,
    /// Failed attempts in the last minute.
    pub failed_last_minute: i64,
}

/// One plugin's calls across every node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PluginStats {
    /// The plugin's configured name.
    pub name: String,
    /// Calls, failed ones included.
    pub invocations: i64,
    /// Calls that failed.
    pub errors: i64,
    /// Mean time per call, in microseconds.
    pub mean_us: f64,
}

/// A dispatchd node sharing the database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NodeView {
    /// The node's id.
    pub id: String,
    /// When the node started (RFC 3339).
    pub started_at: String,
    /// When the node last checked in (RFC 3339).
    pub last_seen: String,
    /// Seen within three sweep intervals.
    pub live: bool,
}

/// One attempt, as `GET /admin/stream` sends it (`event: attempt`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AttemptEvent {
    /// The attempt's id; later attempts have higher ids.
    pub id: i64,
    /// The delivery it belongs to.
    pub delivery_id: i64,
    /// The event delivered.
    pub event_id: String,
    /// The event's type.
    pub event_type: String,
    /// The delivery's subscription; absent for a task.
    pub subscription_id: Option<String>,
    /// Replay run, from 1.
    pub run: i32,
    /// The attempt's number within its run, from 1.
    pub attempt: i32,
    /// The URL the request went to.
    pub url: String,
    /// The receiver's HTTP status; absent when no answer came.
    pub status_code: Option<i32>,
    /// Why the attempt failed, when it did.
    pub error: Option<String>,
    /// How long the attempt took, in milliseconds.
    pub duration_ms: i64,
    /// RFC 3339.
    pub at: String,
    /// A 2xx answer.
    pub ok: bool,
}
