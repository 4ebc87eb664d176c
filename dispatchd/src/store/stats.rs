//! What `GET /admin/stats` and `GET /admin/stream` read: counted from the
//! database, so every node reports the same figures.
//!
//! The SQL is the same for both stores (`$n` placeholders work in SQLite
//! too), so it lives here once, and `read_stats!` runs it on either pool;
//! state names are decoded to their enums after the read, a corrupt one
//! being an error like any corrupt row.

use super::Result;
use super::rows::corrupt;
use crate::model::{CircuitState, DeliveryState, Millis, SubscriptionStatus};

/// Raw figures, shaped for the API by `api::stats`.
#[derive(Debug, Clone, Default)]
pub struct StatsSnapshot {
    /// Deliveries per state.
    pub counts: Vec<(DeliveryState, i64)>,
    /// `next_attempt_at` of the oldest pending delivery.
    pub oldest_pending_at: Option<Millis>,
    /// (unix second, events ingested).
    pub ingested: Vec<(i64, i64)>,
    /// (unix second, 2xx attempts, all attempts).
    pub attempts: Vec<(i64, i64, i64)>,
    /// Ingest-to-delivery milliseconds of the latest deliveries in the window.
    pub latencies: Vec<i64>,
    pub endpoints: Vec<EndpointRow>,
    /// (subscription, state, count) for every state but delivered/dropped.
    pub backlog: Vec<(String, DeliveryState, i64)>,
    /// (subscription, 2xx attempts, all attempts) in the window.
    pub recent: Vec<(String, i64, i64)>,
    /// (plugin, invocations, errors, total µs), summed over nodes.
    pub plugins: Vec<(String, i64, i64, i64)>,
    /// (node, started_at, last_seen).
    pub nodes: Vec<(String, Millis, Millis)>,
    /// Ordered keys stopped by a dead head (`ordering_on_dead: block`).
    pub blocked_keys: i64,
}

/// One endpoint's health, as the snapshot lists it.
#[derive(Debug, Clone)]
pub struct EndpointRow {
    pub id: String,
    pub tenant_id: Option<String>,
    pub url: String,
    pub status: SubscriptionStatus,
    pub circuit_state: CircuitState,
    pub consecutive_failures: i32,
    pub rate_limit: Option<i32>,
    pub last_success_at: Option<Millis>,
    pub disabled_reason: Option<String>,
}

/// `EndpointRow` as read, before its names are decoded.
#[derive(sqlx::FromRow)]
pub(crate) struct RawEndpoint {
    pub id: String,
    pub tenant_id: Option<String>,
    pub url: String,
    pub status: String,
    pub circuit_state: String,
    pub consecutive_failures: i32,
    pub rate_limit: Option<i32>,
    pub last_success_at: Option<Millis>,
    pub disabled_reason: Option<String>,
}

impl TryFrom<RawEndpoint> for EndpointRow {
    type Error = super::StoreError;
    fn try_from(r: RawEndpoint) -> Result<Self> {
        Ok(EndpointRow {
            status: r
                .status
                .parse()
                .map_err(|e| corrupt("subscriptions", &r.id, "status", e))?,
            circuit_state: r
                .circuit_state
                .parse()
                .map_err(|e| corrupt("subscriptions", &r.id, "circuit_state", e))?,
            id: r.id,
            tenant_id: r.tenant_id,
            url: r.url,
            consecutive_failures: r.consecutive_failures,
            rate_limit: r.rate_limit,
            last_success_at: r.last_success_at,
            disabled_reason: r.disabled_reason,
        })
    }
}

/// Decodes `(state, count)` rows.
pub(crate) fn decode_counts(rows: Vec<(String, i64)>) -> Result<Vec<(DeliveryState, i64)>> {
    rows.into_iter()
        .map(|(state, n)| {
            let s = state
                .parse()
                .map_err(|e| corrupt("deliveries", "(counted)", "state", e))?;
            Ok((s, n))
        })
        .collect()
}

/// Decodes `(subscription, state, count)` rows.
pub(crate) fn decode_backlog(
    rows: Vec<(String, String, i64)>,
) -> Result<Vec<(String, DeliveryState, i64)>> {
    rows.into_iter()
        .map(|(sub, state, n)| {
            let s = state
                .parse()
                .map_err(|e| corrupt("deliveries", format!("(of {sub})"), "state", e))?;
            Ok((sub, s, n))
        })
        .collect()
}

/// One attempt for the live tail.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AttemptTail {
    pub id: i64,
    pub delivery_id: i64,
    pub event_id: String,
    pub event_type: String,
    pub subscription_id: Option<String>,
    pub run: i32,
    pub attempt: i32,
    pub url: String,
    pub status_code: Option<i32>,
    pub error: Option<String>,
    pub duration_ms: i64,
    pub created_at: Millis,
}

/// A node's absolute plugin counters, reported once a second.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginCounters {
    pub name: String,
    pub invocations: i64,
    pub errors: i64,
    pub total_us: i64,
}

/// Most endpoints one snapshot lists.
pub const MAX_ENDPOINTS: i64 = 500;
/// Most latency samples one snapshot reads.
pub const MAX_LATENCY_SAMPLES: i64 = 10_000;
/// How far back the tail looks for successes on delivery rows.
pub(crate) const TAIL_OK_MS: i64 = 5_000;
/// The same, for the first read (the latest attempts).
pub(crate) const TAIL_FIRST_MS: i64 = 60_000;

/// Ordered keys stopped by a dead head.
pub(crate) const BLOCKED_KEYS: &str =
    "SELECT COUNT(*) FROM ordering_keys WHERE blocked_by IS NOT NULL";

/// Deliveries per state, on either store. Each branch repeats one partial
/// index's condition word for word (SQLite uses a partial index only
/// then), so counting never reads the table itself, which holds every
/// retained delivered row.
pub(crate) const COUNT_BY_STATE: &str = "SELECT state, COUNT(*) FROM deliveries \
        WHERE state IN ('pending', 'scheduled') GROUP BY state \
     UNION ALL SELECT state, COUNT(*) FROM deliveries \
        WHERE state = 'in_flight' GROUP BY state \
     UNION ALL SELECT state, COUNT(*) FROM deliveries \
        WHERE state = 'paused' GROUP BY state \
     UNION ALL SELECT state, COUNT(*) FROM deliveries \
        WHERE state = 'dead' GROUP BY state \
     UNION ALL SELECT state, COUNT(*) FROM deliveries \
        WHERE state IN ('delivered', 'dropped') GROUP BY state \
     UNION ALL SELECT state, COUNT(*) FROM deliveries WHERE ordering_key IS NOT NULL \
        AND state = 'held' GROUP BY state";

/// Runs the stats queries on `$pool` (a `&Pool` of either store).
macro_rules! read_stats {
    ($pool:expr, $since:expr) => {{
        use $crate::store::stats as st;
        let pool = $pool;
        let since: i64 = $since;
        let counts: Vec<(String, i64)> = sqlx::query_as(st::COUNT_BY_STATE).fetch_all(pool).await?;
        let oldest_pending_at: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(next_attempt_at) FROM deliveries \
                 WHERE state IN ('pending', 'scheduled') AND state = 'pending'",
        )
        .fetch_one(pool)
        .await?;
        let ingested: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT created_at / 1000 AS s, COUNT(*) FROM events \
             WHERE created_at >= $1 GROUP BY created_at / 1000",
        )
        .bind(since)
        .fetch_all(pool)
        .await?;
        let attempts: Vec<(i64, i64, i64)> = sqlx::query_as(
            "SELECT s, CAST(SUM(ok) AS BIGINT), CAST(SUM(n) AS BIGINT) FROM ( \
                SELECT created_at / 1000 AS s, \
                    SUM(CASE WHEN status_code BETWEEN 200 AND 299 THEN 1 ELSE 0 END) AS ok, \
                    COUNT(*) AS n \
                FROM attempts WHERE created_at >= $1 GROUP BY created_at / 1000 \
                UNION ALL SELECT ok_at / 1000, \
                    SUM(CASE WHEN last_status_code BETWEEN 200 AND 299 THEN 1 ELSE 0 END), \
                    COUNT(*) \
                FROM deliveries WHERE state IN ('delivered', 'dropped') AND state = 'delivered' \
                    AND updated_at >= $1 AND ok_at >= $1 GROUP BY ok_at / 1000 \
             ) AS x GROUP BY s",
        )
        .bind(since)
        .fetch_all(pool)
        .await?;
        let latencies: Vec<i64> = sqlx::query_scalar(
            "SELECT delivered_at - created_at FROM deliveries \
             WHERE state IN ('delivered', 'dropped') AND state = 'delivered' \
               AND updated_at >= $1 AND delivered_at IS NOT NULL \
             ORDER BY updated_at DESC LIMIT $2",
        )
        .bind(since)
        .bind(st::MAX_LATENCY_SAMPLES)
        .fetch_all(pool)
        .await?;
        let endpoints: Vec<st::RawEndpoint> = sqlx::query_as(
            "SELECT id, tenant_id, url, status, circuit_state, consecutive_failures, rate_limit, \
                    last_success_at, disabled_reason \
             FROM subscriptions ORDER BY id LIMIT $1",
        )
        .bind(st::MAX_ENDPOINTS)
        .fetch_all(pool)
        .await?;
        let backlog: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT subscription_id, state, COUNT(*) FROM deliveries \
                WHERE state IN ('pending', 'scheduled') AND subscription_id IS NOT NULL \
                GROUP BY subscription_id, state \
             UNION ALL SELECT subscription_id, state, COUNT(*) FROM deliveries \
                WHERE state = 'in_flight' AND subscription_id IS NOT NULL \
                GROUP BY subscription_id, state \
             UNION ALL SELECT subscription_id, state, COUNT(*) FROM deliveries \
                WHERE state = 'paused' AND subscription_id IS NOT NULL \
                GROUP BY subscription_id, state \
             UNION ALL SELECT subscription_id, state, COUNT(*) FROM deliveries \
                WHERE state = 'dead' AND subscription_id IS NOT NULL \
                GROUP BY subscription_id, state \
             UNION ALL SELECT subscription_id, state, COUNT(*) FROM deliveries \
                WHERE ordering_key IS NOT NULL AND state = 'held' \
                GROUP BY subscription_id, state",
        )
        .fetch_all(pool)
        .await?;
        let recent: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT sid, CAST(SUM(ok) AS BIGINT), CAST(SUM(n) AS BIGINT) FROM ( \
                SELECT d.subscription_id AS sid, \
                    SUM(CASE WHEN a.status_code BETWEEN 200 AND 299 THEN 1 ELSE 0 END) AS ok, \
                    COUNT(*) AS n \
                FROM attempts a JOIN deliveries d ON d.id = a.delivery_id \
                WHERE a.created_at >= $1 AND d.subscription_id IS NOT NULL \
                GROUP BY d.subscription_id \
                UNION ALL SELECT subscription_id, \
                    SUM(CASE WHEN last_status_code BETWEEN 200 AND 299 THEN 1 ELSE 0 END), \
                    COUNT(*) \
                FROM deliveries WHERE state IN ('delivered', 'dropped') AND state = 'delivered' \
                    AND updated_at >= $1 AND ok_at >= $1 AND subscription_id IS NOT NULL \
                GROUP BY subscription_id \
             ) AS x GROUP BY sid",
        )
        .bind(since)
        .fetch_all(pool)
        .await?;
        let plugins: Vec<(String, i64, i64, i64)> = sqlx::query_as(
            "SELECT name, CAST(SUM(invocations) AS BIGINT), CAST(SUM(errors) AS BIGINT), \
                    CAST(SUM(total_us) AS BIGINT) \
             FROM plugin_stats GROUP BY name ORDER BY name",
        )
        .fetch_all(pool)
        .await?;
        let blocked_keys: i64 = sqlx::query_scalar(st::BLOCKED_KEYS).fetch_one(pool).await?;
        let nodes: Vec<(String, i64, i64)> =
            sqlx::query_as("SELECT id, started_at, last_seen FROM nodes ORDER BY id")
                .fetch_all(pool)
                .await?;
        $crate::store::Result::Ok(st::StatsSnapshot {
            counts: st::decode_counts(counts)?,
            oldest_pending_at,
            ingested,
            attempts,
            latencies,
            endpoints: $crate::store::rows::all(endpoints)?,
            backlog: st::decode_backlog(backlog)?,
            recent,
            plugins,
            nodes,
            blocked_keys,
        })
    }};
}

/// Reads attempts after `$after` (or the latest `$limit` when `None`):
/// rows of `attempts`, and the successful ones written on their delivery
/// rows, looked for among the deliveries finished in the last `TAIL_OK_MS`
/// (`TAIL_FIRST_MS` for the first read). The hub reads every second, so
/// the window only drops what a reader that paused for that long skips.
macro_rules! read_attempt_tail {
    ($pool:expr, $after:expr, $limit:expr) => {{
        let after: Option<i64> = $after;
        let limit: i64 = i64::from($limit);
        let now = $crate::model::now_ms();
        let mut rows: Vec<$crate::store::stats::AttemptTail> = match after {
            Some(after) => {
                sqlx::query_as(concat!(
                    "SELECT * FROM (",
                    $crate::store::stats::tail_select!(),
                    " WHERE a.id > $1 UNION ALL ",
                    $crate::store::stats::tail_ok_select!(),
                    " AND d.updated_at >= $3 AND d.ok_id > $1) AS t ORDER BY id LIMIT $2"
                ))
                .bind(after)
                .bind(limit)
                .bind(now - $crate::store::stats::TAIL_OK_MS)
                .fetch_all($pool)
                .await?
            }
            None => {
                sqlx::query_as(concat!(
                    "SELECT * FROM (SELECT * FROM (",
                    $crate::store::stats::tail_select!(),
                    " ORDER BY a.id DESC LIMIT $1) AS x UNION ALL SELECT * FROM (",
                    $crate::store::stats::tail_ok_select!(),
                    " AND d.updated_at >= $2 ORDER BY d.ok_id DESC LIMIT $1) AS y) AS t \
                     ORDER BY id DESC LIMIT $1"
                ))
                .bind(limit)
                .bind(now - $crate::store::stats::TAIL_FIRST_MS)
                .fetch_all($pool)
                .await?
            }
        };
        rows.sort_by_key(|r| r.id);
        $crate::store::Result::Ok(rows)
    }};
}

macro_rules! tail_select {
    () => {
        "SELECT a.id, a.delivery_id, a.event_id, e.type AS event_type, d.subscription_id, \
                a.run, a.attempt, a.url, a.status_code, a.error, a.duration_ms, a.created_at \
         FROM attempts a JOIN deliveries d ON d.id = a.delivery_id \
              JOIN events e ON e.id = a.event_id"
    };
}

/// The successful attempts written on delivery rows, for the tail; the
/// caller adds a bound on `d.updated_at` (`deliveries_done`'s column).
macro_rules! tail_ok_select {
    () => {
        "SELECT d.ok_id AS id, d.id AS delivery_id, d.event_id, e.type AS event_type, \
                d.subscription_id, d.run, d.attempts AS attempt, d.ok_url AS url, \
                d.last_status_code AS status_code, d.last_error AS error, \
                d.ok_duration_ms AS duration_ms, d.ok_at AS created_at \
         FROM deliveries d JOIN events e ON e.id = d.event_id \
         WHERE d.state IN ('delivered', 'dropped') AND d.state = 'delivered' \
           AND d.ok_id IS NOT NULL"
    };
}

/// Upserts a node's plugin counters on `$pool`.
macro_rules! write_plugin_counters {
    ($pool:expr, $node:expr, $rows:expr, $now:expr) => {{
        for r in $rows {
            sqlx::query($crate::store::sql::PLUGIN_COUNTERS)
                .bind($node)
                .bind(&r.name)
                .bind(r.invocations)
                .bind(r.errors)
                .bind(r.total_us)
                .bind($now)
                .execute($pool)
                .await?;
        }
        $crate::store::Result::Ok(())
    }};
}

/// The figures of `/admin/stats`, `/admin/stream` and `/metrics`, read from
/// the database so every node reports the same; the same SQL on both
/// stores.
#[async_trait::async_trait]
pub trait StatsStore: super::Backend {
    /// How many deliveries are in each state.
    async fn delivery_counts(&self) -> Result<Vec<(DeliveryState, i64)>> {
        let found = on!(self.reads(), |p| sqlx::query_as(COUNT_BY_STATE)
            .fetch_all(p)
            .await?);
        decode_counts(found)
    }

    /// The figures behind `GET /admin/stats`; rates and latency cover the
    /// time since `since`.
    async fn stats(&self, since: Millis) -> Result<StatsSnapshot> {
        on!(self.reads(), |p| read_stats!(p, since))
    }

    /// Attempts with ids above `after`, oldest first, or the latest `limit`
    /// when `after` is `None`: the admin stream's live tail.
    async fn attempt_tail(&self, after: Option<i64>, limit: u32) -> Result<Vec<AttemptTail>> {
        on!(self.reads(), |p| read_attempt_tail!(p, after, limit))
    }

    /// Records this node's plugin counters (absolute, since it started).
    async fn record_plugin_counters(&self, node: &str, counters: &[PluginCounters]) -> Result<()> {
        let now = crate::model::now_ms();
        on!(self.writes(), |p| write_plugin_counters!(
            p, node, counters, now
        ))
    }
}

use {tail_ok_select, tail_select};
