//! SQL that both dialects run as it is: `$n` placeholders work in SQLite
//! too, casts are written `CAST(x AS T)`, and the clock is always a bound
//! parameter (PostgreSQL's callers read `dispatch_now_ms()` first, so every
//! node keeps the database's time). Statements on the hot path, and those
//! where PostgreSQL needs arrays (`unnest`, `ANY`) or row locks and SQLite
//! `json_each`, stay in each backend.
//!
//! Column lists and shared fragments are macros so statements built with
//! `concat!` stay `&'static str`.

/// A delivery as `DeliveryRow` reads it (`d` joined with `s`).
macro_rules! delivery_columns {
    () => {
        "d.id, d.event_id, d.subscription_id, COALESCE(d.dest_url, s.url, '') AS url, \
         COALESCE(d.dest_method, 'POST') AS method, d.state, d.run, d.attempts, d.max_attempts, \
         d.next_attempt_at, d.last_status_code, d.last_error, d.created_at, d.updated_at, \
         d.delivered_at"
    };
}

/// An attempt as `AttemptRow` reads it (`a` joined with `d`).
macro_rules! attempt_columns {
    () => {
        "a.delivery_id, a.event_id, d.subscription_id, a.run, a.attempt, a.url, a.status_code, \
         a.error, a.duration_ms, a.response_body, a.created_at"
    };
}

/// A claimed delivery as `ClaimRow` reads it (`d`, `e`, `s`).
macro_rules! claim_columns {
    () => {
        "d.id, d.run, d.attempts, d.claims, d.max_attempts, d.subscription_id, \
         d.dest_url, d.dest_method, d.dest_headers, d.dest_secret, d.body, d.dest_type, \
         e.id AS e_id, e.kind AS e_kind, e.type AS e_type, e.source AS e_source, e.data AS e_data, \
         e.idempotency_key AS e_idempotency_key, e.created_at AS e_created_at, \
         e.tenant_id AS e_tenant_id, e.channels AS e_channels, \
         e.ordering_key AS e_ordering_key, \
         s.id AS s_id, s.url AS s_url, s.event_types AS s_event_types, s.secret AS s_secret, \
         s.previous_secret AS s_previous_secret, \
         s.previous_secret_expires_at AS s_previous_secret_expires_at, s.headers AS s_headers, \
         s.rate_limit AS s_rate_limit, s.max_attempts AS s_max_attempts, \
         s.retry_initial_delay_ms AS s_retry_initial_delay_ms, \
         s.retry_multiplier AS s_retry_multiplier, s.retry_max_delay_ms AS s_retry_max_delay_ms, \
         s.timeout_ms AS s_timeout_ms, s.plugins AS s_plugins, s.status AS s_status, \
         s.created_at AS s_created_at, s.updated_at AS s_updated_at, s.egress AS s_egress"
    };
}

/// The dead letters a filter selects ($1 subscription, $2 event type, $3
/// since, $4 until, $5 tenant): shared by list, replay and purge.
macro_rules! dead_filter {
    () => {
        concat!(
            "d.state = 'dead' \
             AND (CAST($1 AS TEXT) IS NULL OR d.subscription_id = $1) \
             AND (CAST($2 AS TEXT) IS NULL OR EXISTS (SELECT 1 FROM events e2 \
                  WHERE e2.id = d.event_id AND e2.type = $2)) \
             AND (CAST($3 AS BIGINT) IS NULL OR d.updated_at >= $3) \
             AND (CAST($4 AS BIGINT) IS NULL OR d.updated_at < $4) AND ",
            of_tenant!("$5")
        )
    };
}

/// Delivery `d` is of an event of tenant `$n` (any delivery when `$n` is
/// NULL).
macro_rules! of_tenant {
    ($n:literal) => {
        concat!(
            "(CAST(",
            $n,
            " AS TEXT) IS NULL OR EXISTS (SELECT 1 FROM events e3 \
             WHERE e3.id = d.event_id AND e3.tenant_id = ",
            $n,
            "))"
        )
    };
}

/// The start of a replay (`$now` names the placeholder of the time): a
/// fresh run, attempts from 1 again, parked if its endpoint is parked (a
/// task, or a delivery whose subscription was deleted, goes back to the
/// queue, where the pipeline ends it). The caller appends which rows.
macro_rules! replay_set {
    ($now:literal) => {
        concat!(
            "UPDATE deliveries AS d SET run = d.run + 1, attempts = 0, \
                state = CASE WHEN NOT EXISTS (SELECT 1 FROM subscriptions s \
                        WHERE s.id = d.subscription_id AND (s.status <> 'active' \
                        OR s.circuit_state <> 'closed')) \
                    THEN 'pending' ELSE 'paused' END, \
                lease_expires_at = NULL, leased_by = NULL, last_status_code = NULL, \
                last_error = NULL, delivered_at = NULL, next_attempt_at = ",
            $now,
            ", updated_at = ",
            $now,
            " WHERE "
        )
    };
}

/// What a completion's update returns per changed row: its id, and
/// whether it was ordered and is now finished (its line must go on).
/// `$d` qualifies the columns (PostgreSQL's update joins rows that have
/// an `id` and a `state` too).
macro_rules! exited {
    ($d:literal) => {
        concat!(
            " RETURNING ",
            $d,
            "id, (",
            $d,
            "ordering_key IS NOT NULL AND ",
            $d,
            "state IN ('delivered', 'dropped', 'dead')) AS exited"
        )
    };
}

/// What a replay returns: per row, its id when it is ordered (its key's
/// line must take it back), NULL otherwise.
macro_rules! replayed {
    () => {
        " RETURNING CASE WHEN ordering_key IS NOT NULL THEN id END"
    };
}

/// The circuit columns `rows::EndpointRow` reads (the caller adds FROM and
/// WHERE).
macro_rules! endpoint_columns {
    () => {
        "SELECT id, circuit_state, consecutive_failures, circuit_opened_at, \
         circuit_next_probe_at, status, last_success_at"
    };
}

/// PostgreSQL only: wraps `DELETE FROM deliveries d WHERE ...` so the deleted deliveries'
/// attempts go in the same statement (the schema has no cascading foreign
/// key: see migrations/postgres/0006_lean_queue.sql). The statement returns
/// the number of deliveries deleted.
macro_rules! delete_with_attempts {
    ($($delete:expr),+ $(,)?) => {
        concat!(
            "WITH gone AS (",
            $($delete),+,
            " RETURNING d.id), gone_attempts AS (DELETE FROM attempts \
             WHERE delivery_id IN (SELECT id FROM gone)) SELECT COUNT(*) FROM gone"
        )
    };
}

/// Binds a subscription's columns as $1..$22 in `INSERT_SUBSCRIPTION`'s
/// order (`UPDATE_SUBSCRIPTION` uses the same numbers).
macro_rules! bind_subscription {
    ($query:expr, $s:expr, $json:expr) => {{
        let s: &$crate::model::Subscription = $s;
        let j: &$crate::store::sql::SubscriptionJson = $json;
        $query
            .bind(&s.id)
            .bind(&s.url)
            .bind(&j.event_types)
            .bind(s.secret.expose())
            .bind(
                s.previous_secret
                    .as_ref()
                    .map($crate::model::Secret::expose),
            )
            .bind(s.previous_secret_expires_at)
            .bind(&j.headers)
            .bind(j.rate_limit)
            .bind(j.max_attempts)
            .bind(j.retry_initial_delay_ms)
            .bind(s.retry.multiplier)
            .bind(j.retry_max_delay_ms)
            .bind(j.timeout_ms)
            .bind(&j.plugins)
            .bind(s.status.as_str())
            .bind(s.created_at)
            .bind(s.updated_at)
            .bind(&s.tenant_id)
            .bind(&j.channels)
            .bind(s.ordering.as_str())
            .bind(s.ordering_on_dead.as_str())
            .bind(&j.egress)
    }};
}

use super::Result;
use super::rows::{bigint, int, to_json};
use crate::model::Subscription;

/// A subscription's columns that need converting before they are bound.
pub(crate) struct SubscriptionJson {
    pub event_types: String,
    pub headers: String,
    pub plugins: String,
    pub channels: Option<String>,
    pub rate_limit: Option<i32>,
    pub max_attempts: i32,
    pub retry_initial_delay_ms: i64,
    pub retry_max_delay_ms: i64,
    pub timeout_ms: i64,
    pub egress: Option<String>,
}

impl SubscriptionJson {
    pub(crate) fn of(s: &Subscription) -> Result<Self> {
        Ok(Self {
            event_types: to_json(&s.event_types),
            headers: to_json(&s.headers),
            plugins: to_json(&s.plugins),
            channels: s.channels.as_ref().map(to_json),
            rate_limit: s.rate_limit.map(|r| int(r, "rate_limit")).transpose()?,
            max_attempts: int(s.max_attempts, "max_attempts")?,
            retry_initial_delay_ms: bigint(s.retry.initial_delay_ms, "retry.initial_delay_ms")?,
            retry_max_delay_ms: bigint(s.retry.max_delay_ms, "retry.max_delay_ms")?,
            timeout_ms: bigint(s.timeout_ms, "timeout_ms")?,
            egress: super::egress::column(&s.egress),
        })
    }
}

pub(crate) const INSERT_SUBSCRIPTION: &str = "INSERT INTO subscriptions (id, url, event_types, \
     secret, previous_secret, previous_secret_expires_at, headers, rate_limit, max_attempts, \
     retry_initial_delay_ms, retry_multiplier, retry_max_delay_ms, timeout_ms, plugins, status, \
     created_at, updated_at, tenant_id, channels, ordering, ordering_on_dead, egress) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, \
     $19, $20, $21, $22)";

/// `created_at` ($16) never changes; it is compared with itself so both
/// statements bind the same list.
pub(crate) const UPDATE_SUBSCRIPTION: &str = "UPDATE subscriptions SET url = $2, \
     event_types = $3, secret = $4, previous_secret = $5, previous_secret_expires_at = $6, \
     headers = $7, rate_limit = $8, max_attempts = $9, retry_initial_delay_ms = $10, \
     retry_multiplier = $11, retry_max_delay_ms = $12, timeout_ms = $13, plugins = $14, \
     status = $15, updated_at = $17, tenant_id = $18, channels = $19, ordering = $20, \
     ordering_on_dead = $21, egress = $22 \
     WHERE id = $1 AND $16 = $16";

pub(crate) const DELETE_SUBSCRIPTION: &str = "DELETE FROM subscriptions WHERE id = $1";

pub(crate) const SUBSCRIPTION: &str = "SELECT * FROM subscriptions WHERE id = $1";

pub(crate) const ALL_SUBSCRIPTIONS: &str = "SELECT * FROM subscriptions ORDER BY id";

/// A page after $1 of at most $2; only tenant $3's when $3 is set.
pub(crate) const LIST_SUBSCRIPTIONS: &str = "SELECT * FROM subscriptions \
     WHERE (CAST($1 AS TEXT) IS NULL OR id > $1) \
       AND (CAST($3 AS TEXT) IS NULL OR tenant_id = $3) ORDER BY id LIMIT $2";

pub(crate) const VERSION: &str =
    "SELECT value FROM dispatch_meta WHERE key = 'subscriptions_version'";

/// The first statement of every subscription change: on PostgreSQL it takes
/// the version row's lock before anything else, ordering the change against
/// in-flight ingests (which hold the row `FOR SHARE`); on SQLite the single
/// writer orders them anyway.
pub(crate) const BUMP_VERSION: &str =
    "UPDATE dispatch_meta SET value = value + 1 WHERE key = 'subscriptions_version'";

/// $1 id, $2 status, $3 reason, $4 whether it becomes active (then its
/// circuit closes), $5 now.
pub(crate) const SET_STATUS: &str = "UPDATE subscriptions SET status = $2, \
     disabled_reason = $3, \
     circuit_state = CASE WHEN $4 THEN 'closed' ELSE circuit_state END, \
     consecutive_failures = CASE WHEN $4 THEN 0 ELSE consecutive_failures END, \
     circuit_opened_at = CASE WHEN $4 THEN NULL ELSE circuit_opened_at END, \
     circuit_next_probe_at = CASE WHEN $4 THEN NULL ELSE circuit_next_probe_at END, \
     updated_at = $5 WHERE id = $1";

/// Parks subscription $1's waiting deliveries ($2 = now).
pub(crate) const PARK: &str = "UPDATE deliveries SET state = 'paused', updated_at = $2 \
     WHERE subscription_id = $1 AND state IN ('pending', 'scheduled')";

/// Returns subscription $1's parked deliveries to the queue, due now ($2).
pub(crate) const UNPARK: &str = "UPDATE deliveries \
     SET state = CASE WHEN attempts = 0 THEN 'pending' ELSE 'scheduled' END, \
     next_attempt_at = $2, updated_at = $2 \
     WHERE subscription_id = $1 AND state = 'paused'";

/// Disables active subscriptions whose circuit opened before $1; $2 is the
/// reason.
pub(crate) const AUTO_DISABLE: &str = "UPDATE subscriptions SET status = 'disabled', \
     disabled_reason = $2 \
     WHERE status = 'active' AND circuit_state <> 'closed' AND circuit_opened_at < $1 \
     RETURNING id";

/// Lets subscription $1's oldest parked delivery through as the probe ($2 =
/// now).
pub(crate) const RELEASE_PROBE: &str = "UPDATE deliveries \
     SET state = CASE WHEN attempts = 0 THEN 'pending' ELSE 'scheduled' END, \
     next_attempt_at = $2, updated_at = $2 \
     WHERE id = (SELECT id FROM deliveries WHERE subscription_id = $1 AND state = 'paused' \
        ORDER BY id LIMIT 1)";

/// Nothing parked to probe with: the next delivery decides.
pub(crate) const CLOSE_CIRCUIT: &str =
    "UPDATE subscriptions SET circuit_state = 'closed' WHERE id = $1";

/// Returns expired leases ($1 = now, $2 = the error left on them).
pub(crate) const REAP_EXPIRED: &str = "UPDATE deliveries SET \
     state = CASE WHEN attempts >= max_attempts THEN 'dead' ELSE 'scheduled' END, \
     last_error = $2, lease_expires_at = NULL, leased_by = NULL, \
     next_attempt_at = $1, updated_at = $1 \
     WHERE state = 'in_flight' AND lease_expires_at < $1 \
     RETURNING CASE WHEN state = 'dead' AND ordering_key IS NOT NULL THEN id END";

/// Hands back the in-flight deliveries of dead nodes ($1 = this node, $2 =
/// now, $3 = the oldest heartbeat still alive, $4 = the newest claim that
/// may be taken; $5 = the free hand-backs, after which one uses up an
/// attempt, and $6 the error then left on it): due now, without using up
/// an attempt — the delivery is given one more (`max_attempts + 1`), so the
/// next claim still carries a new attempt number and its attempt row never
/// collides with one the dead node might still write. Only claims older
/// than the cut-off: a node that claimed just before its first heartbeat
/// landed keeps what it claimed.
pub(crate) const RETURN_ORPHANED: &str = "UPDATE deliveries \
     SET max_attempts = max_attempts + CASE WHEN handbacks < $5 THEN 1 ELSE 0 END, \
     state = CASE WHEN handbacks >= $5 AND attempts >= max_attempts THEN 'dead' \
        ELSE 'scheduled' END, \
     last_error = CASE WHEN handbacks >= $5 THEN $6 ELSE last_error END, \
     handbacks = handbacks + 1, \
     lease_expires_at = NULL, leased_by = NULL, next_attempt_at = $2, updated_at = $2 \
     WHERE state = 'in_flight' AND updated_at < $4 AND leased_by <> $1 \
        AND leased_by NOT IN (SELECT id FROM nodes WHERE last_seen >= $3) \
     RETURNING CASE WHEN state = 'dead' AND ordering_key IS NOT NULL THEN id END";

/// Dead-letters claimed delivery $1 that cannot be read ($2 = why, $3 = now).
pub(crate) const DEAD_CORRUPT: &str = "UPDATE deliveries SET state = 'dead', last_error = $2, \
     lease_expires_at = NULL, leased_by = NULL, updated_at = $3 WHERE id = $1";

/// The lanes of a fair claim: the endpoints with waiting deliveries, in
/// id order, after $1 (from the start when NULL: every id sorts after
/// ''), at most $2. A skip scan over `deliveries_lanes`: one index probe
/// per endpoint, however long its backlog.
pub(crate) const LANES: &str = "WITH RECURSIVE lanes(sid, n) AS ( \
        SELECT (SELECT MIN(subscription_id) FROM deliveries \
                WHERE state IN ('pending', 'scheduled') \
                AND subscription_id > COALESCE(CAST($1 AS TEXT), '')), 1 \
        UNION ALL \
        SELECT (SELECT MIN(d.subscription_id) FROM deliveries d \
                WHERE d.state IN ('pending', 'scheduled') AND d.subscription_id > l.sid), \
            l.n + 1 \
        FROM lanes l WHERE l.sid IS NOT NULL AND l.n < $2 \
     ) SELECT sid FROM lanes WHERE sid IS NOT NULL";

/// Earliest due time of a waiting delivery.
pub(crate) const NEXT_DUE: &str = "SELECT MIN(next_attempt_at) FROM deliveries \
     WHERE state IN ('pending', 'scheduled')";

/// Events left without deliveries, older than $1, 5,000 at a time.
pub(crate) const PRUNE_EVENTS: &str = "DELETE FROM events WHERE id IN (SELECT id FROM events \
     WHERE created_at < $1 \
     AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = events.id) LIMIT 5000)";

/// The delivered rows one pruning pass takes, oldest first.
pub(crate) const PRUNE_BATCH: i64 = 5000;

pub(crate) const EVENT: &str = "SELECT * FROM events WHERE id = $1 AND kind = $2";

pub(crate) const EVENT_DELIVERIES: &str = concat!(
    "SELECT ",
    delivery_columns!(),
    " FROM deliveries d LEFT JOIN subscriptions s ON s.id = d.subscription_id \
      WHERE d.event_id = $1 ORDER BY d.id"
);

/// An event's attempts: the rows of `attempts`, and the successful ones
/// written on their delivery rows (`ok_*`).
pub(crate) const EVENT_ATTEMPTS: &str = concat!(
    "SELECT ",
    attempt_columns!(),
    " FROM attempts a JOIN deliveries d ON d.id = a.delivery_id WHERE d.event_id = $1 \
      UNION ALL SELECT d.id, d.event_id, d.subscription_id, d.run, d.attempts, d.ok_url, \
        d.last_status_code, d.last_error, d.ok_duration_ms, d.ok_response_body, d.ok_at \
      FROM deliveries d WHERE d.event_id = $1 AND d.ok_id IS NOT NULL \
      ORDER BY delivery_id, run, attempt"
);

/// Dead letters by filter ($1..$5), after id $6, at most $7.
pub(crate) const DEAD_LETTERS: &str = concat!(
    "SELECT ",
    delivery_columns!(),
    ", e.type AS event_type, e.tenant_id FROM deliveries d JOIN events e ON e.id = d.event_id \
       LEFT JOIN subscriptions s ON s.id = d.subscription_id WHERE ",
    dead_filter!(),
    " AND (CAST($6 AS BIGINT) IS NULL OR d.id > $6) ORDER BY d.id LIMIT $7"
);

/// Replays the dead letters a filter selects ($1..$5, $6 = now).
pub(crate) const REPLAY_FILTER: &str = concat!(replay_set!("$6"), dead_filter!(), replayed!());

/// Upserts one node's counters for one plugin.
pub(crate) const PLUGIN_COUNTERS: &str = "INSERT INTO plugin_stats \
     (node, name, invocations, errors, total_us, updated_at) VALUES ($1, $2, $3, $4, $5, $6) \
     ON CONFLICT (node, name) DO UPDATE SET invocations = excluded.invocations, \
        errors = excluded.errors, total_us = excluded.total_us, updated_at = excluded.updated_at";

/// Records a node's heartbeat ($1 node, $2 now).
pub(crate) const HEARTBEAT: &str = "INSERT INTO nodes (id, started_at, last_seen) \
     VALUES ($1, $2, $2) ON CONFLICT (id) DO UPDATE SET last_seen = $2";
