//! Durable storage behind one interface, with a PostgreSQL and an embedded
//! SQLite implementation.
//!
//! The store owns the schema, the queue's claim/complete statements and the
//! fencing rules. It knows nothing of HTTP or WASM: callers hand it domain
//! types (`crate::model`) and get domain types back. Both implementations
//! pass the same behavioural tests (`tests/tests/store.rs`).

/// Column lists as macros, so queries built with `concat!` stay `&'static str`.
macro_rules! delivery_columns {
    () => {
        "d.id, d.event_id, d.subscription_id, \
                COALESCE(d.dest_url, s.url, '') AS url, \
        COALESCE(d.dest_method, 'POST') AS method, d.state, d.run, d.attempts, d.max_attempts, \
                d.next_attempt_at, d.last_status_code, d.last_error, d.created_at, d.updated_at, \
                d.delivered_at"
    };
}
macro_rules! attempt_columns {
    () => {
        "a.delivery_id, a.event_id, d.subscription_id, a.run, \
                a.attempt, a.url, a.status_code, a.error, a.duration_ms, a.response_body, a.created_at"
    };
}
macro_rules! claim_columns {
    () => {
        "d.id, d.run, d.attempts, d.max_attempts, d.subscription_id, \
                d.dest_url, d.dest_method, d.dest_headers, d.dest_secret, d.body, d.dest_type, \
                e.id AS e_id, e.kind AS e_kind, e.type AS e_type, e.source AS e_source, e.data AS e_data, \
                e.idempotency_key AS e_idempotency_key, e.created_at AS e_created_at, \
                s.id AS s_id, s.url AS s_url, s.event_types AS s_event_types, s.secret AS s_secret, \
                s.previous_secret AS s_previous_secret, \
                s.previous_secret_expires_at AS s_previous_secret_expires_at, s.headers AS s_headers, \
                s.rate_limit AS s_rate_limit, s.max_attempts AS s_max_attempts, \
                s.retry_initial_delay_ms AS s_retry_initial_delay_ms, \
                s.retry_multiplier AS s_retry_multiplier, s.retry_max_delay_ms AS s_retry_max_delay_ms, \
                s.timeout_ms AS s_timeout_ms, s.plugins AS s_plugins, s.status AS s_status, \
                s.created_at AS s_created_at, s.updated_at AS s_updated_at"
    };
}

mod postgres;
mod sqlite;
pub mod stats;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

pub use postgres::PgStore;
pub use sqlite::SqliteStore;

use crate::circuit::{CircuitPolicy, Tally};
use crate::config::Config;
use crate::model::{
    AttemptRecord, ClaimToken, ClaimedDelivery, Completion, DeadFilter, DeadLetter, DeadSelection,
    DeliveryRecord, Event, EventKind, InsertOutcome, Millis, NextState, RoutedEvent, Subscription,
};

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database cannot be reached or timed out: retry later (503).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A row with this key already exists (409).
    #[error("conflict: {0}")]
    Conflict(String),
    /// Subscriptions changed since the caller's snapshot: route again.
    #[error("subscriptions changed during ingest")]
    StaleSubscriptions,
    /// A deadlock or serialization failure: the same call may succeed if
    /// retried.
    #[error("database contention: {0}")]
    Contention(String),
    /// Anything else: a bug or a schema mismatch (500, logged).
    #[error("database error: {0}")]
    Other(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable(e.to_string()),
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Conflict(db.message().to_string())
            }
            sqlx::Error::Database(db) => {
                // Postgres shutting down, too many connections, read-only
                // failover: all transient. SQLite busy/locked likewise.
                let code = db.code().unwrap_or_default();
                if code == "40P01" || code == "40001" {
                    return StoreError::Contention(e.to_string());
                }
                if code.starts_with("57P")
                    || code.starts_with("08")
                    || code == "53300"
                    || code == "25006"
                    || code == "5"
                    || code == "6"
                    || code == "517"
                {
                    StoreError::Unavailable(e.to_string())
                } else {
                    StoreError::Other(e.to_string())
                }
            }
            _ => StoreError::Other(e.to_string()),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StoreError::Other(format!("migration failed: {e}"))
    }
}

/// A point-in-time list of subscriptions and the version it was read at.
#[derive(Debug, Clone, Default)]
pub struct SubscriptionSnapshot {
    pub version: i64,
    pub subscriptions: Arc<Vec<Subscription>>,
}

/// A page request: rows after `after` (an opaque cursor), at most `limit`.
#[derive(Debug, Clone)]
pub struct Page {
    pub after: Option<String>,
    pub limit: u32,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// `postgres` or `sqlite`.
    fn backend(&self) -> &'static str;

    /// Applies pending migrations.
    async fn migrate(&self) -> Result<()>;

    /// Whether the database answers and the schema is current.
    async fn ready(&self) -> Result<()>;
    /// A cheap round trip that does not wait for a pooled connection (the
    /// ingest gate's health check).
    async fn ping(&self) -> Result<()> {
        self.ready().await
    }

    // --- subscriptions -----------------------------------------------------

    async fn subscriptions(&self) -> Result<SubscriptionSnapshot>;
    async fn create_subscription(&self, sub: &Subscription) -> Result<()>;
    async fn get_subscription(&self, id: &str) -> Result<Option<Subscription>>;
    async fn list_subscriptions(&self, page: &Page) -> Result<Vec<Subscription>>;
    /// Replaces a subscription's fields; false when it does not exist.
    async fn update_subscription(&self, sub: &Subscription) -> Result<bool>;
    async fn delete_subscription(&self, id: &str) -> Result<bool>;

    // --- events and tasks ----------------------------------------------------

    /// Inserts events and their deliveries in one transaction, unless the
    /// subscriptions changed since `routed_at_version` was read, in which case
    /// nothing is written and `StaleSubscriptions` is returned. Duplicate ids
    /// or idempotency keys are not inserted; the stored event is returned.
    /// Wakes the queue's workers (here and on other nodes) on success.
    async fn insert_events(
        &self,
        events: &[RoutedEvent],
        routed_at_version: i64,
    ) -> Result<Vec<InsertOutcome>>;

    async fn get_event(&self, id: &str, kind: EventKind) -> Result<Option<Event>>;
    async fn event_deliveries(&self, event_id: &str) -> Result<Vec<DeliveryRecord>>;
    async fn event_attempts(&self, event_id: &str) -> Result<Vec<AttemptRecord>>;

    // --- the queue -----------------------------------------------------------

    /// Claims up to `limit` due deliveries for `node` under a lease of
    /// `lease`, incrementing each one's attempt number.
    async fn claim(&self, node: &str, limit: u32, lease: Duration) -> Result<Vec<ClaimedDelivery>>;

    /// Writes attempts and moves deliveries to their next state, all in one
    /// transaction. A completion whose token no longer matches the row (the
    /// lease expired and someone else claimed it) changes no state; its
    /// attempt is still recorded. In the same transaction it keeps each
    /// endpoint's circuit (`crate::circuit`): a retry of an endpoint whose
    /// circuit is open, or that is not active, is parked (`paused`); a 410
    /// disables the subscription. Returns how many deliveries changed state.
    async fn complete(&self, completions: &[Completion], policy: &CircuitPolicy) -> Result<u64>;

    /// Hands claimed deliveries back unattempted, each due again after its
    /// delay in milliseconds (0 at graceful shutdown; the wait for a
    /// rate-limit slot otherwise). No attempt is consumed.
    async fn release(&self, items: &[(ClaimToken, i64)]) -> Result<u64>;

    /// Records that `node` is alive and returns how many nodes were seen
    /// within `ttl` (at least 1: this one).
    async fn heartbeat(&self, node: &str, ttl: Duration) -> Result<u32>;

    /// Returns deliveries whose lease expired to the queue (or to dead when
    /// that was their last attempt). Returns how many.
    async fn reap_expired_leases(&self) -> Result<u64>;

    /// Deletes delivered deliveries (and their attempts) last updated before
    /// `before`, then events left with no deliveries that are older than it.
    async fn prune_delivered(&self, before: Millis) -> Result<u64>;

    /// Vacuums each of the store's tables holding at least `min_dead` dead
    /// row versions, unless another node is already at it; returns the
    /// tables vacuumed. Only PostgreSQL keeps dead versions (SQLite reuses
    /// a deleted row's space at once), so SQLite does nothing.
    async fn vacuum(&self, min_dead: u64) -> Result<Vec<String>> {
        let _ = min_dead;
        Ok(Vec::new())
    }

    // --- endpoints and dead letters -------------------------------------------

    /// Sets a subscription's status: `paused` and `disabled` park its
    /// waiting deliveries, `active` closes its circuit and unparks them.
    /// `None` when there is no such subscription.
    async fn set_status(
        &self,
        id: &str,
        status: &str,
        reason: Option<&str>,
    ) -> Result<Option<Subscription>>;

    /// Dead letters matching `filter`, by delivery id, after `after`.
    async fn dead_letters(
        &self,
        filter: &DeadFilter,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Vec<DeadLetter>>;

    /// Gives dead letters a fresh run of attempts (the old attempts stay,
    /// under the previous run number). Returns how many.
    async fn replay_dead(&self, selection: &DeadSelection) -> Result<u64>;

    /// Deletes dead letters and their attempts. Returns how many.
    async fn purge_dead(&self, selection: &DeadSelection) -> Result<u64>;

    /// Moves open circuits whose cooldown is over to half-open and lets one
    /// parked delivery of each through as the probe. Returns how many.
    async fn probe_open_circuits(&self) -> Result<u64>;

    /// Disables active subscriptions whose circuit opened before `before`.
    async fn auto_disable(&self, before: Millis) -> Result<u64>;

    /// How many deliveries are in each state, from the database (so every
    /// node reports the same).
    async fn delivery_counts(&self) -> Result<Vec<(String, i64)>>;

    /// Milliseconds until the earliest waiting delivery is due (negative when
    /// overdue), or `None` when nothing waits. Workers sleep that long.
    async fn next_due_in_ms(&self) -> Result<Option<i64>>;

    /// The figures behind `GET /admin/stats`; rates and latency cover the
    /// time since `since`.
    async fn stats(&self, since: Millis) -> Result<stats::StatsSnapshot>;

    /// Attempts with ids above `after`, oldest first, or the latest `limit`
    /// when `after` is `None`: the admin stream's live tail.
    async fn attempt_tail(&self, after: Option<i64>, limit: u32)
    -> Result<Vec<stats::AttemptTail>>;

    /// Records this node's plugin counters (absolute, since it started).
    async fn record_plugin_counters(
        &self,
        node: &str,
        counters: &[stats::PluginCounters],
    ) -> Result<()>;

    /// Notified when new work may be due: by this node's own writes and, on
    /// PostgreSQL, by every other node's (LISTEN/NOTIFY).
    fn work_signal(&self) -> Arc<tokio::sync::Notify>;
}

/// The reason recorded when a receiver answers 410 Gone.
pub(crate) const GONE: &str = "the receiver answered 410 Gone";

/// What each endpoint's completions in a batch add up to, by subscription id
/// (sorted, so row locks are always taken in the same order).
pub(crate) fn tallies(completions: &[Completion]) -> std::collections::BTreeMap<String, Tally> {
    let mut out: std::collections::BTreeMap<String, Tally> = Default::default();
    for c in completions {
        // Tasks have no endpoint to keep health for.
        if let Some(sub) = &c.attempt.subscription_id
            && c.reached_endpoint
        {
            out.entry(sub.clone()).or_default().record(
                matches!(c.next, NextState::Delivered),
                c.attempt.status_code,
            );
        }
    }
    out
}

/// The state a completion writes: a retry of a parked endpoint is parked.
pub(crate) fn final_state(
    c: &Completion,
    parked: &std::collections::HashSet<String>,
) -> (&'static str, i64) {
    match c.next {
        NextState::Delivered => ("delivered", 0),
        NextState::Dead => ("dead", 0),
        NextState::Dropped => ("dropped", 0),
        NextState::Retry { delay_ms } => {
            let sub = c.attempt.subscription_id.as_deref().unwrap_or("");
            if parked.contains(sub) {
                ("paused", delay_ms)
            } else {
                ("scheduled", delay_ms)
            }
        }
    }
}

/// The error left on a delivery whose worker vanished mid-attempt.
pub(crate) const LEASE_EXPIRED: &str =
    "lease expired: the worker holding this delivery stopped before recording the attempt";

/// Which of `events` were inserted, given the `(id, idempotency_key)` of
/// each row the database inserted. Matching on both matters: a row skipped
/// for its idempotency key may share its id with a later row that was
/// inserted. Later copies of an identical pair are duplicates.
pub(crate) fn first_occurrences(
    events: &[RoutedEvent],
    inserted: &[(String, Option<String>)],
) -> Vec<bool> {
    let mut pending: std::collections::HashSet<(&str, Option<&str>)> = inserted
        .iter()
        .map(|(id, key)| (id.as_str(), key.as_deref()))
        .collect();
    events
        .iter()
        .map(|e| pending.remove(&(e.event.id.as_str(), e.event.idempotency_key.as_deref())))
        .collect()
}

/// The outcome of one event given whether it was inserted and the stored
/// events its id or idempotency key collided with.
pub(crate) fn outcome_for(
    e: &RoutedEvent,
    inserted: bool,
    existing: &[Event],
) -> Result<InsertOutcome> {
    if inserted {
        return Ok(InsertOutcome::Inserted);
    }
    existing
        .iter()
        .find(|x| x.id == e.event.id)
        .or_else(|| {
            let key = e.event.idempotency_key.as_deref()?;
            existing
                .iter()
                .find(|x| x.idempotency_key.as_deref() == Some(key))
        })
        .cloned()
        .map(InsertOutcome::Duplicate)
        .ok_or_else(|| {
            StoreError::Conflict(format!(
                "event {} conflicts with a stored event",
                e.event.id
            ))
        })
}

/// Opens the store the configuration names and applies migrations.
pub async fn open(cfg: &Config) -> Result<Arc<dyn Store>> {
    let store: Arc<dyn Store> = if cfg.uses_postgres() {
        Arc::new(PgStore::connect(cfg).await?)
    } else {
        Arc::new(SqliteStore::open(cfg).await?)
    };
    store.migrate().await?;
    Ok(store)
}

/// Rows shared by both implementations' row mapping.
pub(crate) mod rows {
    use std::collections::BTreeMap;

    use crate::model::{
        AttemptRecord, DeliveryRecord, DeliveryState, Event, EventKind, Health, InlineDestination,
        RetryPolicy, Subscription,
    };

    #[derive(sqlx::FromRow)]
    pub struct SubscriptionRow {
        pub id: String,
        pub url: String,
        pub event_types: String,
        pub secret: String,
        pub previous_secret: Option<String>,
        pub previous_secret_expires_at: Option<i64>,
        pub headers: String,
        pub rate_limit: Option<i32>,
        pub max_attempts: i32,
        pub retry_initial_delay_ms: i64,
        pub retry_multiplier: f64,
        pub retry_max_delay_ms: i64,
        pub timeout_ms: i64,
        pub plugins: String,
        pub status: String,
        pub created_at: i64,
        pub updated_at: i64,
        pub circuit_state: String,
        pub consecutive_failures: i32,
        pub circuit_opened_at: Option<i64>,
        pub circuit_next_probe_at: Option<i64>,
        pub last_success_at: Option<i64>,
        pub disabled_reason: Option<String>,
    }

    impl From<SubscriptionRow> for Subscription {
        fn from(r: SubscriptionRow) -> Self {
            Subscription {
                id: r.id,
                url: r.url,
                event_types: serde_json::from_str(&r.event_types).unwrap_or_default(),
                secret: r.secret,
                previous_secret: r.previous_secret,
                previous_secret_expires_at: r.previous_secret_expires_at,
                headers: serde_json::from_str(&r.headers).unwrap_or_default(),
                rate_limit: r.rate_limit.map(|v| v as u32),
                max_attempts: r.max_attempts as u32,
                retry: RetryPolicy {
                    initial_delay_ms: r.retry_initial_delay_ms as u64,
                    multiplier: r.retry_multiplier,
                    max_delay_ms: r.retry_max_delay_ms as u64,
                },
                timeout_ms: r.timeout_ms as u64,
                plugins: serde_json::from_str(&r.plugins).unwrap_or_default(),
                status: r.status,
                created_at: r.created_at,
                updated_at: r.updated_at,
                health: Health {
                    circuit_state: r.circuit_state,
                    consecutive_failures: r.consecutive_failures,
                    circuit_opened_at: r.circuit_opened_at,
                    circuit_next_probe_at: r.circuit_next_probe_at,
                    last_success_at: r.last_success_at,
                    disabled_reason: r.disabled_reason,
                },
            }
        }
    }

    /// JSON columns of a subscription, in insert order.
    pub struct SubscriptionJson {
        pub event_types: String,
        pub headers: String,
        pub plugins: String,
    }

    pub fn subscription_json(s: &Subscription) -> SubscriptionJson {
        SubscriptionJson {
            event_types: serde_json::to_string(&s.event_types).expect("strings serialize"),
            headers: serde_json::to_string(&s.headers).expect("strings serialize"),
            plugins: serde_json::to_string(&s.plugins).expect("strings serialize"),
        }
    }

    #[derive(sqlx::FromRow)]
    pub struct EventRow {
        pub id: String,
        pub kind: String,
        #[sqlx(rename = "type")]
        pub event_type: String,
        pub source: Option<String>,
        pub data: String,
        pub idempotency_key: Option<String>,
        pub created_at: i64,
    }

    impl From<EventRow> for Event {
        fn from(r: EventRow) -> Self {
            Event {
                id: r.id,
                kind: if r.kind == "task" {
                    EventKind::Task
                } else {
                    EventKind::Event
                },
                event_type: r.event_type,
                source: r.source,
                data: r.data,
                idempotency_key: r.idempotency_key,
                created_at: r.created_at,
            }
        }
    }

    #[derive(sqlx::FromRow)]
    pub struct DeliveryRow {
        pub id: i64,
        pub event_id: String,
        pub subscription_id: Option<String>,
        pub url: String,
        pub method: String,
        pub state: String,
        pub run: i32,
        pub attempts: i32,
        pub max_attempts: i32,
        pub next_attempt_at: i64,
        pub last_status_code: Option<i32>,
        pub last_error: Option<String>,
        pub created_at: i64,
        pub updated_at: i64,
        pub delivered_at: Option<i64>,
    }

    impl From<DeliveryRow> for DeliveryRecord {
        fn from(r: DeliveryRow) -> Self {
            DeliveryRecord {
                id: r.id,
                event_id: r.event_id,
                subscription_id: r.subscription_id,
                url: r.url,
                method: r.method,
                state: r.state.parse().unwrap_or(DeliveryState::Pending),
                run: r.run,
                attempts: r.attempts,
                max_attempts: r.max_attempts,
                next_attempt_at: r.next_attempt_at,
                last_status_code: r.last_status_code,
                last_error: r.last_error,
                created_at: r.created_at,
                updated_at: r.updated_at,
                delivered_at: r.delivered_at,
            }
        }
    }

    /// A dead delivery with its event's type.
    #[derive(sqlx::FromRow)]
    pub struct DeadRow {
        #[sqlx(flatten)]
        pub delivery: DeliveryRow,
        pub event_type: String,
    }

    impl From<DeadRow> for crate::model::DeadLetter {
        fn from(r: DeadRow) -> Self {
            crate::model::DeadLetter {
                delivery: r.delivery.into(),
                event_type: r.event_type,
            }
        }
    }

    #[derive(sqlx::FromRow)]
    pub struct AttemptRow {
        pub delivery_id: i64,
        pub event_id: String,
        pub subscription_id: Option<String>,
        pub run: i32,
        pub attempt: i32,
        pub url: String,
        pub status_code: Option<i32>,
        pub error: Option<String>,
        pub duration_ms: i64,
        pub response_body: Option<String>,
        pub created_at: i64,
    }

    impl From<AttemptRow> for AttemptRecord {
        fn from(r: AttemptRow) -> Self {
            AttemptRecord {
                delivery_id: r.delivery_id,
                event_id: r.event_id,
                subscription_id: r.subscription_id,
                run: r.run,
                attempt: r.attempt,
                url: r.url,
                status_code: r.status_code,
                error: r.error,
                duration_ms: r.duration_ms,
                response_body: r.response_body,
                created_at: r.created_at,
            }
        }
    }

    /// The columns a claim returns: the delivery, its event, its live
    /// subscription (if any) and its inline destination.

    #[derive(sqlx::FromRow)]
    pub struct ClaimRow {
        pub id: i64,
        pub run: i32,
        pub attempts: i32,
        pub max_attempts: i32,
        pub subscription_id: Option<String>,
        pub dest_url: Option<String>,
        pub dest_method: Option<String>,
        pub dest_headers: Option<String>,
        pub dest_secret: Option<String>,
        pub body: Option<String>,
        pub dest_type: Option<String>,
        pub e_id: String,
        pub e_kind: String,
        pub e_type: String,
        pub e_source: Option<String>,
        pub e_data: String,
        pub e_idempotency_key: Option<String>,
        pub e_created_at: i64,
        pub s_id: Option<String>,
        pub s_url: Option<String>,
        pub s_event_types: Option<String>,
        pub s_secret: Option<String>,
        pub s_previous_secret: Option<String>,
        pub s_previous_secret_expires_at: Option<i64>,
        pub s_headers: Option<String>,
        pub s_rate_limit: Option<i32>,
        pub s_max_attempts: Option<i32>,
        pub s_retry_initial_delay_ms: Option<i64>,
        pub s_retry_multiplier: Option<f64>,
        pub s_retry_max_delay_ms: Option<i64>,
        pub s_timeout_ms: Option<i64>,
        pub s_plugins: Option<String>,
        pub s_status: Option<String>,
        pub s_created_at: Option<i64>,
        pub s_updated_at: Option<i64>,
    }

    impl From<ClaimRow> for crate::model::ClaimedDelivery {
        fn from(r: ClaimRow) -> Self {
            let event = Event::from(EventRow {
                id: r.e_id,
                kind: r.e_kind,
                event_type: r.e_type,
                source: r.e_source,
                data: r.e_data,
                idempotency_key: r.e_idempotency_key,
                created_at: r.e_created_at,
            });
            let subscription = r.s_id.map(|id| {
                Subscription::from(SubscriptionRow {
                    id,
                    url: r.s_url.unwrap_or_default(),
                    event_types: r.s_event_types.unwrap_or_default(),
                    secret: r.s_secret.unwrap_or_default(),
                    previous_secret: r.s_previous_secret,
                    previous_secret_expires_at: r.s_previous_secret_expires_at,
                    headers: r.s_headers.unwrap_or_default(),
                    rate_limit: r.s_rate_limit,
                    max_attempts: r.s_max_attempts.unwrap_or_default(),
                    retry_initial_delay_ms: r.s_retry_initial_delay_ms.unwrap_or_default(),
                    retry_multiplier: r.s_retry_multiplier.unwrap_or(1.0),
                    retry_max_delay_ms: r.s_retry_max_delay_ms.unwrap_or_default(),
                    timeout_ms: r.s_timeout_ms.unwrap_or_default(),
                    plugins: r.s_plugins.unwrap_or_default(),
                    status: r.s_status.unwrap_or_default(),
                    created_at: r.s_created_at.unwrap_or_default(),
                    updated_at: r.s_updated_at.unwrap_or_default(),
                    // A claim does not need the endpoint's health.
                    circuit_state: "closed".into(),
                    consecutive_failures: 0,
                    circuit_opened_at: None,
                    circuit_next_probe_at: None,
                    last_success_at: None,
                    disabled_reason: None,
                })
            });
            crate::model::ClaimedDelivery {
                id: r.id,
                run: r.run,
                attempt: r.attempts,
                max_attempts: r.max_attempts,
                event,
                subscription,
                subscription_id: r.subscription_id,
                inline: InlineDestination {
                    url: r.dest_url,
                    method: r.dest_method,
                    headers: r
                        .dest_headers
                        .and_then(|h| serde_json::from_str::<BTreeMap<String, String>>(&h).ok()),
                    secret: r.dest_secret,
                    body: r.body,
                    event_type: r.dest_type,
                },
            }
        }
    }
}
