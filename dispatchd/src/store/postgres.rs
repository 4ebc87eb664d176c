//! The PostgreSQL store: production storage, shared by several nodes.
//!
//! Work is claimed with `FOR UPDATE SKIP LOCKED` under a lease measured on
//! the database's clock (`dispatch_now_ms()`), batches are written with
//! `unnest` arrays (one round trip per batch), and new work is announced
//! with `NOTIFY dispatch_work` so every node's workers wake at once.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use sqlx::{PgPool, Row};
use tokio::sync::Notify;

use super::rows::{
    AttemptRow, ClaimRow, DeadRow, DeliveryRow, EventRow, SubscriptionRow, subscription_json,
};
use super::{Page, Result, Store, StoreError, SubscriptionSnapshot};
use crate::circuit::{self, CircuitPolicy, CircuitRow};
use crate::config::Config;
use crate::model::{
    AttemptRecord, ClaimToken, ClaimedDelivery, Completion, DeadFilter, DeadLetter, DeadSelection,
    DeliveryRecord, Event, EventKind, InsertOutcome, Millis, RoutedEvent, Subscription,
};

/// Wraps `DELETE FROM deliveries d WHERE ...` so the deleted deliveries'
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

/// The WHERE clause of a dead-letter selection by filter ($1..$4) — shared
/// by list, replay and purge.
macro_rules! pg_dead_filter {
    () => {
        "d.state = 'dead' \
         AND ($1::text IS NULL OR d.subscription_id = $1) \
         AND ($2::text IS NULL OR EXISTS (SELECT 1 FROM events e2 WHERE e2.id = d.event_id AND e2.type = $2)) \
         AND ($3::int8 IS NULL OR d.updated_at >= $3) \
         AND ($4::int8 IS NULL OR d.updated_at < $4)"
    };
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

const WORK_CHANNEL: &str = "dispatch_work";
/// Advisory lock key held while a node vacuums ("dispatch" in ASCII).
const VACUUM_LOCK: i64 = 0x6469_7370_6174_6368;

pub struct PgStore {
    pool: PgPool,
    opts: PgConnectOptions,
    /// `ping`'s own connection: health checks never queue behind the pool.
    pinger: tokio::sync::Mutex<Option<sqlx::PgConnection>>,
    cache: Mutex<Option<SubscriptionSnapshot>>,
    work: Arc<Notify>,
}

impl PgStore {
    pub async fn connect(cfg: &Config) -> Result<Self> {
        let opts: PgConnectOptions = cfg
            .database
            .url
            .parse()
            .map_err(|e| StoreError::Other(format!("database.url: {e}")))?;
        let opts = opts.application_name("dispatchd");
        let pool = PgPoolOptions::new()
            .max_connections(cfg.database.max_connections)
            .acquire_timeout(Duration::from_millis(cfg.database.acquire_timeout_ms))
            .connect_with(opts.clone())
            .await?;
        let work = Arc::new(Notify::new());
        tokio::spawn(listen_for_work(pool.clone(), work.clone()));
        Ok(Self {
            pool,
            opts,
            pinger: tokio::sync::Mutex::new(None),
            cache: Mutex::new(None),
            work,
        })
    }

    /// The underlying pool, for tests and tools.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    fn invalidate(&self) {
        *self.cache.lock().expect("cache lock") = None;
    }
}

/// Forwards `NOTIFY dispatch_work` to the local workers; reconnects with a
/// pause when the database goes away, and stops when the pool is closed.
async fn listen_for_work(pool: PgPool, work: Arc<Notify>) {
    while !pool.is_closed() {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        if listener.listen(WORK_CHANNEL).await.is_err() {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        }
        // Anything may have arrived while we were not listening.
        work.notify_one();
        loop {
            match listener.try_recv().await {
                Ok(Some(_)) => work.notify_one(),
                // Connection lost: the next try_recv reconnects; wake the
                // workers since notifications may have been missed.
                Ok(None) => work.notify_one(),
                Err(_) => break,
            }
            if pool.is_closed() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    async fn ready(&self) -> Result<()> {
        let applied: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
                .fetch_one(&self.pool)
                .await?;
        if (applied as usize) < MIGRATOR.iter().count() {
            return Err(StoreError::Unavailable("migrations not applied".into()));
        }
        Ok(())
    }

    async fn ping(&self) -> Result<()> {
        use sqlx::Connection;
        const LIMIT: Duration = Duration::from_millis(400);
        let mut slot = self.pinger.lock().await;
        // Out of the slot while in use: a ping that times out drops its
        // connection instead of leaving a stuck one for the next ping.
        let conn = match slot.take() {
            Some(c) => Ok(c),
            None => tokio::time::timeout(LIMIT, sqlx::PgConnection::connect_with(&self.opts))
                .await
                .map_err(|_| StoreError::Unavailable("ping: connect timed out".into()))
                .and_then(|r| r.map_err(StoreError::from)),
        };
        let mut conn = conn?;
        match tokio::time::timeout(LIMIT, conn.ping()).await {
            Ok(Ok(())) => {
                *slot = Some(conn);
                Ok(())
            }
            Ok(Err(e)) => Err(e.into()),
            Err(_) => Err(StoreError::Unavailable("ping timed out".into())),
        }
    }

    async fn subscriptions(&self) -> Result<SubscriptionSnapshot> {
        if let Some(snap) = self.cache.lock().expect("cache lock").clone() {
            return Ok(snap);
        }
        // Version first: a change between the two reads makes the snapshot
        // look older than it is, which ingest detects; never the reverse.
        let version: i64 = sqlx::query_scalar(
            "SELECT value FROM dispatch_meta WHERE key = 'subscriptions_version'",
        )
        .fetch_one(&self.pool)
        .await?;
        let rows: Vec<SubscriptionRow> = sqlx::query_as("SELECT * FROM subscriptions ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        let snap = SubscriptionSnapshot {
            version,
            subscriptions: Arc::new(rows.into_iter().map(Subscription::from).collect()),
        };
        *self.cache.lock().expect("cache lock") = Some(snap.clone());
        Ok(snap)
    }

    async fn create_subscription(&self, s: &Subscription) -> Result<()> {
        let j = subscription_json(s);
        let mut tx = self.pool.begin().await?;
        bump_version(&mut tx).await?;
        sqlx::query(
            "INSERT INTO subscriptions (id, url, event_types, secret, previous_secret, \
             previous_secret_expires_at, headers, rate_limit, max_attempts, retry_initial_delay_ms, \
             retry_multiplier, retry_max_delay_ms, timeout_ms, plugins, status, created_at, updated_at) \
             VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17)",
        )
        .bind(&s.id)
        .bind(&s.url)
        .bind(&j.event_types)
        .bind(&s.secret)
        .bind(&s.previous_secret)
        .bind(s.previous_secret_expires_at)
        .bind(&j.headers)
        .bind(s.rate_limit.map(|v| v as i32))
        .bind(s.max_attempts as i32)
        .bind(s.retry.initial_delay_ms as i64)
        .bind(s.retry.multiplier)
        .bind(s.retry.max_delay_ms as i64)
        .bind(s.timeout_ms as i64)
        .bind(&j.plugins)
        .bind(&s.status)
        .bind(s.created_at)
        .bind(s.updated_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.invalidate();
        Ok(())
    }

    async fn get_subscription(&self, id: &str) -> Result<Option<Subscription>> {
        let row: Option<SubscriptionRow> =
            sqlx::query_as("SELECT * FROM subscriptions WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(Into::into))
    }

    async fn list_subscriptions(&self, page: &Page) -> Result<Vec<Subscription>> {
        let rows: Vec<SubscriptionRow> = sqlx::query_as(
            "SELECT * FROM subscriptions WHERE ($1::text IS NULL OR id > $1) ORDER BY id LIMIT $2",
        )
        .bind(&page.after)
        .bind(page.limit as i64)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn update_subscription(&self, s: &Subscription) -> Result<bool> {
        let j = subscription_json(s);
        let mut tx = self.pool.begin().await?;
        bump_version(&mut tx).await?;
        let n = sqlx::query(
            "UPDATE subscriptions SET url = $2, event_types = $3, secret = $4, previous_secret = $5, \
             previous_secret_expires_at = $6, headers = $7, rate_limit = $8, max_attempts = $9, \
             retry_initial_delay_ms = $10, retry_multiplier = $11, retry_max_delay_ms = $12, \
             timeout_ms = $13, plugins = $14, status = $15, updated_at = $16 WHERE id = $1",
        )
        .bind(&s.id)
        .bind(&s.url)
        .bind(&j.event_types)
        .bind(&s.secret)
        .bind(&s.previous_secret)
        .bind(s.previous_secret_expires_at)
        .bind(&j.headers)
        .bind(s.rate_limit.map(|v| v as i32))
        .bind(s.max_attempts as i32)
        .bind(s.retry.initial_delay_ms as i64)
        .bind(s.retry.multiplier)
        .bind(s.retry.max_delay_ms as i64)
        .bind(s.timeout_ms as i64)
        .bind(&j.plugins)
        .bind(&s.status)
        .bind(s.updated_at)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        self.invalidate();
        Ok(n == 1)
    }

    async fn delete_subscription(&self, id: &str) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        bump_version(&mut tx).await?;
        let n = sqlx::query("DELETE FROM subscriptions WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        // Deliveries not yet sent go with it; history (delivered, dead,
        // in flight) stays visible on the event.
        // Two statements, each matching one partial index: no index covers
        // all three states.
        sqlx::query_scalar::<_, i64>(delete_with_attempts!(
            "DELETE FROM deliveries d WHERE d.subscription_id = $1 \
             AND d.state IN ('pending', 'scheduled')"
        ))
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query_scalar::<_, i64>(delete_with_attempts!(
            "DELETE FROM deliveries d WHERE d.subscription_id = $1 AND d.state = 'paused'"
        ))
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        self.invalidate();
        Ok(n == 1)
    }

    async fn insert_events(
        &self,
        events: &[RoutedEvent],
        routed_at_version: i64,
    ) -> Result<Vec<InsertOutcome>> {
        let mut tx = self.pool.begin().await?;
        // FOR SHARE: a subscription change (which updates this row first)
        // waits for in-flight ingests, and ingests wait for it, so fan-out
        // and subscription changes are ordered, never interleaved.
        let version: i64 = sqlx::query_scalar(
            "SELECT value FROM dispatch_meta WHERE key = 'subscriptions_version' FOR SHARE",
        )
        .fetch_one(&mut *tx)
        .await?;
        if version != routed_at_version {
            drop(tx);
            self.invalidate();
            return Err(StoreError::StaleSubscriptions);
        }
        let ids: Vec<&str> = events.iter().map(|e| e.event.id.as_str()).collect();
        let kinds: Vec<&str> = events.iter().map(|e| e.event.kind.as_str()).collect();
        let types: Vec<&str> = events.iter().map(|e| e.event.event_type.as_str()).collect();
        let sources: Vec<Option<&str>> = events.iter().map(|e| e.event.source.as_deref()).collect();
        let datas: Vec<&str> = events.iter().map(|e| e.event.data.as_str()).collect();
        let keys: Vec<Option<&str>> = events
            .iter()
            .map(|e| e.event.idempotency_key.as_deref())
            .collect();
        let created: Vec<i64> = events.iter().map(|e| e.event.created_at).collect();
        // Rows go in sorted by id (see `ingest`), so concurrent batches
        // take unique-index locks in the same order and do not deadlock.
        let inserted: Vec<(String, Option<String>)> = sqlx::query_as(
            "INSERT INTO events (id, kind, type, source, data, idempotency_key, created_at) \
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], \
                                  $6::text[], $7::int8[]) \
             ON CONFLICT DO NOTHING RETURNING id, idempotency_key",
        )
        .bind(&ids)
        .bind(&kinds)
        .bind(&types)
        .bind(&sources)
        .bind(&datas)
        .bind(&keys)
        .bind(&created)
        .fetch_all(&mut *tx)
        .await?;

        let fresh = super::first_occurrences(events, &inserted);
        let mut d = DeliveryColumns::default();
        for (e, _) in events.iter().zip(&fresh).filter(|(_, f)| **f) {
            for nd in &e.deliveries {
                d.push(&e.event.id, nd);
            }
        }
        if !d.event_id.is_empty() {
            sqlx::query(
                "INSERT INTO deliveries (event_id, subscription_id, dest_url, dest_method, \
                 dest_headers, dest_secret, body, max_attempts, state, next_attempt_at, \
                 created_at, updated_at) \
                 SELECT t.*, \
                    CASE WHEN s.status <> 'active' OR s.circuit_state <> 'closed' \
                        THEN 'paused' ELSE 'pending' END, \
                    dispatch_now_ms(), dispatch_now_ms(), dispatch_now_ms() \
                 FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], \
                             $6::text[], $7::text[], $8::int4[]) \
                    AS t(event_id, subscription_id, url, method, headers, secret, body, max_attempts) \
                 LEFT JOIN subscriptions s ON s.id = t.subscription_id",
            )
            .bind(&d.event_id)
            .bind(&d.subscription_id)
            .bind(&d.url)
            .bind(&d.method)
            .bind(&d.headers)
            .bind(&d.secret)
            .bind(&d.body)
            .bind(&d.max_attempts)
            .execute(&mut *tx)
            .await?;
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(WORK_CHANNEL)
                .execute(&mut *tx)
                .await?;
        }

        let mut outcomes = Vec::with_capacity(events.len());
        let dup_ids: Vec<&str> = events
            .iter()
            .zip(&fresh)
            .filter(|(_, f)| !**f)
            .map(|(e, _)| e.event.id.as_str())
            .collect();
        let existing: Vec<Event> = if dup_ids.is_empty() {
            Vec::new()
        } else {
            let dup_keys: Vec<&str> = events
                .iter()
                .zip(&fresh)
                .filter(|(_, f)| !**f)
                .filter_map(|(e, _)| e.event.idempotency_key.as_deref())
                .collect();
            let rows: Vec<EventRow> = sqlx::query_as(
                "SELECT * FROM events WHERE id = ANY($1) OR idempotency_key = ANY($2)",
            )
            .bind(&dup_ids)
            .bind(&dup_keys)
            .fetch_all(&mut *tx)
            .await?;
            rows.into_iter().map(Event::from).collect()
        };
        tx.commit().await?;
        for (e, f) in events.iter().zip(&fresh) {
            outcomes.push(super::outcome_for(e, *f, &existing)?);
        }
        Ok(outcomes)
    }

    async fn get_event(&self, id: &str, kind: EventKind) -> Result<Option<Event>> {
        let row: Option<EventRow> =
            sqlx::query_as("SELECT * FROM events WHERE id = $1 AND kind = $2")
                .bind(id)
                .bind(kind.as_str())
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(Into::into))
    }

    async fn event_deliveries(&self, event_id: &str) -> Result<Vec<DeliveryRecord>> {
        let rows: Vec<DeliveryRow> = sqlx::query_as(concat!(
            "SELECT ",
            delivery_columns!(),
            " FROM deliveries d LEFT JOIN subscriptions s ON s.id = d.subscription_id \
              WHERE d.event_id = $1 ORDER BY d.id"
        ))
        .bind(event_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn event_attempts(&self, event_id: &str) -> Result<Vec<AttemptRecord>> {
        let rows: Vec<AttemptRow> = sqlx::query_as(concat!(
            "SELECT ",
            attempt_columns!(),
            " FROM attempts a JOIN deliveries d ON d.id = a.delivery_id \
              WHERE d.event_id = $1 ORDER BY a.delivery_id, a.run, a.attempt"
        ))
        .bind(event_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn claim(&self, node: &str, limit: u32, lease: Duration) -> Result<Vec<ClaimedDelivery>> {
        let rows: Vec<ClaimRow> = sqlx::query_as(concat!(
            "WITH due AS ( \
                SELECT id FROM deliveries \
                WHERE state IN ('pending', 'scheduled') AND next_attempt_at <= dispatch_now_ms() \
                ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED \
             ), claimed AS ( \
                UPDATE deliveries d SET state = 'in_flight', attempts = d.attempts + 1, \
                    lease_expires_at = dispatch_now_ms() + $2, leased_by = $3, \
                    updated_at = dispatch_now_ms() \
                FROM due WHERE d.id = due.id RETURNING d.* \
             ) SELECT ",
            claim_columns!(),
            " FROM claimed d JOIN events e ON e.id = d.event_id \
              LEFT JOIN subscriptions s ON s.id = d.subscription_id ORDER BY d.id"
        ))
        .bind(limit as i64)
        .bind(lease.as_millis() as i64)
        .bind(node)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn complete(&self, completions: &[Completion], policy: &CircuitPolicy) -> Result<u64> {
        if completions.is_empty() {
            return Ok(0);
        }
        let tallies = super::tallies(completions);
        let mut tx = self.pool.begin().await?;
        if tallies.values().any(|t| t.gone) {
            // A 410 changes a subscription's status: order it against
            // ingest like any subscription change (version row first).
            bump_version(&mut tx).await?;
        }
        let now: i64 = sqlx::query_scalar("SELECT dispatch_now_ms()")
            .fetch_one(&mut *tx)
            .await?;
        let mut parked = HashSet::new();
        let mut park_now: Vec<String> = Vec::new();
        let mut unpark_now: Vec<String> = Vec::new();
        for (sub_id, tally) in &tallies {
            let row: Option<(String, i32, Option<i64>, Option<i64>, String)> = sqlx::query_as(
                "SELECT circuit_state, consecutive_failures, circuit_opened_at, \
                 circuit_next_probe_at, status FROM subscriptions WHERE id = $1 FOR UPDATE",
            )
            .bind(sub_id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((state, failures, opened_at, next_probe_at, status)) = row else {
                continue;
            };
            let before = CircuitRow {
                state,
                consecutive_failures: failures,
                opened_at,
                next_probe_at,
            };
            let t = circuit::next(&before, tally, policy, now);
            let disable = tally.gone && status != "disabled";
            let status = if disable {
                "disabled".to_string()
            } else {
                status
            };
            sqlx::query(
                "UPDATE subscriptions SET circuit_state = $2, consecutive_failures = $3, \
                    circuit_opened_at = $4, circuit_next_probe_at = $5, \
                    last_success_at = CASE WHEN $6 THEN $7 ELSE last_success_at END, \
                    status = $8, disabled_reason = CASE WHEN $9 THEN $10 ELSE disabled_reason END \
                 WHERE id = $1",
            )
            .bind(sub_id)
            .bind(&t.row.state)
            .bind(t.row.consecutive_failures)
            .bind(t.row.opened_at)
            .bind(t.row.next_probe_at)
            .bind(tally.succeeded)
            .bind(now)
            .bind(&status)
            .bind(disable)
            .bind(super::GONE)
            .execute(&mut *tx)
            .await?;
            if t.row.state != "closed" || status != "active" {
                parked.insert(sub_id.clone());
            }
            if t.opened || disable {
                park_now.push(sub_id.clone());
            }
            if t.closed && status == "active" {
                unpark_now.push(sub_id.clone());
            }
        }

        let mut c = CompletionColumns::default();
        for x in completions {
            c.push(x, &parked);
        }
        let updated: Vec<i64> = sqlx::query_scalar(
            "UPDATE deliveries d SET state = v.state, \
                next_attempt_at = CASE WHEN v.state IN ('scheduled', 'paused') \
                    THEN dispatch_now_ms() + v.delay_ms ELSE d.next_attempt_at END, \
                lease_expires_at = NULL, leased_by = NULL, \
                last_status_code = v.status_code, last_error = v.error, \
                delivered_at = CASE WHEN v.state IN ('delivered', 'dropped') \
                    THEN dispatch_now_ms() ELSE d.delivered_at END, \
                dest_url = CASE WHEN v.t THEN v.t_url ELSE d.dest_url END, \
                dest_method = CASE WHEN v.t THEN v.t_method ELSE d.dest_method END, \
                dest_headers = CASE WHEN v.t THEN v.t_headers ELSE d.dest_headers END, \
                body = CASE WHEN v.t THEN v.t_body ELSE d.body END, \
                dest_type = CASE WHEN v.t THEN v.t_type ELSE d.dest_type END, \
                updated_at = dispatch_now_ms() \
             FROM unnest($1::int8[], $2::int4[], $3::int4[], $4::text[], $5::int8[], \
                         $6::int4[], $7::text[], $8::bool[], $9::text[], $10::text[], \
                         $11::text[], $12::text[], $13::text[]) \
                 AS v(id, run, attempt, state, delay_ms, status_code, error, \
                      t, t_url, t_method, t_headers, t_body, t_type) \
             WHERE d.id = v.id AND d.run = v.run AND d.attempts = v.attempt \
               AND d.state = 'in_flight' \
             RETURNING d.id",
        )
        .bind(&c.id)
        .bind(&c.run)
        .bind(&c.attempt)
        .bind(&c.state)
        .bind(&c.delay_ms)
        .bind(&c.status_code)
        .bind(&c.error)
        .bind(&c.transformed)
        .bind(&c.t_url)
        .bind(&c.t_method)
        .bind(&c.t_headers)
        .bind(&c.t_body)
        .bind(&c.t_type)
        .fetch_all(&mut *tx)
        .await?;
        let changed = updated.len() as u64;
        // No attempt without its delivery (the schema has no foreign key):
        // the rows the update changed are locked by it until commit, so
        // nothing deletes them meanwhile; a late completion's delivery (not
        // updated) is locked here the way a foreign key check would.
        sqlx::query(
            "INSERT INTO attempts (delivery_id, event_id, run, attempt, url, status_code, error, \
             duration_ms, response_body, created_at) \
             SELECT u.* FROM unnest($1::int8[], $2::text[], $3::int4[], $4::int4[], $5::text[], \
                                    $6::int4[], $7::text[], $8::int8[], $9::text[], $10::int8[]) \
                 AS u(delivery_id, event_id, run, attempt, url, status_code, error, duration_ms, \
                      response_body, created_at) \
             WHERE u.delivery_id = ANY($11) \
                OR EXISTS (SELECT 1 FROM deliveries d WHERE d.id = u.delivery_id FOR KEY SHARE) \
             ON CONFLICT DO NOTHING",
        )
        .bind(&c.id)
        .bind(&c.event_id)
        .bind(&c.run)
        .bind(&c.attempt)
        .bind(&c.url)
        .bind(&c.status_code)
        .bind(&c.error)
        .bind(&c.duration_ms)
        .bind(&c.response_body)
        .bind(&c.created_at)
        .bind(&updated)
        .execute(&mut *tx)
        .await?;
        if !park_now.is_empty() {
            park(&mut tx, &park_now).await?;
        }
        if !unpark_now.is_empty() {
            unpark(&mut tx, &unpark_now).await?;
        }
        if c.state.contains(&"scheduled") || !unpark_now.is_empty() {
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(WORK_CHANNEL)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        if !tallies.values().any(|t| t.gone) {
            return Ok(changed);
        }
        self.invalidate();
        Ok(changed)
    }

    async fn release(&self, items: &[(ClaimToken, i64)]) -> Result<u64> {
        if items.is_empty() {
            return Ok(0);
        }
        let ids: Vec<i64> = items.iter().map(|(t, _)| t.id).collect();
        let runs: Vec<i32> = items.iter().map(|(t, _)| t.run).collect();
        let attempts: Vec<i32> = items.iter().map(|(t, _)| t.attempt).collect();
        let delays: Vec<i64> = items.iter().map(|(_, d)| *d).collect();
        let n = sqlx::query(
            "UPDATE deliveries d SET \
                state = CASE WHEN d.attempts > 1 THEN 'scheduled' ELSE 'pending' END, \
                attempts = d.attempts - 1, lease_expires_at = NULL, leased_by = NULL, \
                next_attempt_at = dispatch_now_ms() + v.delay_ms, updated_at = dispatch_now_ms() \
             FROM unnest($1::int8[], $2::int4[], $3::int4[], $4::int8[]) \
                AS v(id, run, attempt, delay_ms) \
             WHERE d.id = v.id AND d.run = v.run AND d.attempts = v.attempt \
               AND d.state = 'in_flight'",
        )
        .bind(&ids)
        .bind(&runs)
        .bind(&attempts)
        .bind(&delays)
        .execute(&self.pool)
        .await?
        .rows_affected();
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(WORK_CHANNEL)
            .execute(&self.pool)
            .await?;
        Ok(n)
    }

    async fn heartbeat(&self, node: &str, ttl: Duration) -> Result<u32> {
        let ttl = ttl.as_millis() as i64;
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO nodes (id, started_at, last_seen) \
             VALUES ($1, dispatch_now_ms(), dispatch_now_ms()) \
             ON CONFLICT (id) DO UPDATE SET last_seen = dispatch_now_ms()",
        )
        .bind(node)
        .execute(&mut *tx)
        .await?;
        // Forget nodes gone for a long while.
        sqlx::query("DELETE FROM nodes WHERE last_seen < dispatch_now_ms() - $1 * 100")
            .bind(ttl)
            .execute(&mut *tx)
            .await?;
        let live: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM nodes WHERE last_seen >= dispatch_now_ms() - $1",
        )
        .bind(ttl)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(live.max(1) as u32)
    }

    async fn reap_expired_leases(&self) -> Result<u64> {
        let n = sqlx::query(
            "UPDATE deliveries SET \
                state = CASE WHEN attempts >= max_attempts THEN 'dead' ELSE 'scheduled' END, \
                last_error = $1, lease_expires_at = NULL, leased_by = NULL, \
                next_attempt_at = dispatch_now_ms(), updated_at = dispatch_now_ms() \
             WHERE state = 'in_flight' AND lease_expires_at < dispatch_now_ms()",
        )
        .bind(super::LEASE_EXPIRED)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if n > 0 {
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(WORK_CHANNEL)
                .execute(&self.pool)
                .await?;
        }
        Ok(n)
    }

    async fn vacuum(&self, min_dead: u64) -> Result<Vec<String>> {
        let due: Vec<String> = sqlx::query_scalar(
            "SELECT relname::text FROM pg_stat_user_tables \
             WHERE schemaname = current_schema() \
               AND relname IN ('deliveries', 'attempts', 'events') AND n_dead_tup >= $1 \
               AND COALESCE(GREATEST(last_vacuum, last_autovacuum), '-infinity') \
                   < now() - interval '10 seconds' \
             ORDER BY n_dead_tup DESC",
        )
        .bind(min_dead.min(i64::MAX as u64) as i64)
        .fetch_all(&self.pool)
        .await?;
        if due.is_empty() {
            return Ok(due);
        }
        // One node at a time, under a session lock. This connection is
        // closed when dropped, not pooled, which releases the lock however
        // the vacuum ends (done, failed or cancelled).
        let mut conn = self.pool.acquire().await?;
        conn.close_on_drop();
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(VACUUM_LOCK)
            .fetch_one(&mut *conn)
            .await?;
        if !locked {
            return Ok(Vec::new());
        }
        let mut done = Vec::new();
        for table in due {
            // The names come from the fixed list above. A table vacuumed
            // within 10 s (above) is skipped, so an old snapshot holding
            // dead rows back does not make this a loop of full vacuums.
            let sql = sqlx::AssertSqlSafe(format!("VACUUM (SKIP_LOCKED) {table}"));
            sqlx::query(sql).execute(&mut *conn).await?;
            done.push(table);
        }
        Ok(done)
    }

    async fn prune_delivered(&self, before: Millis) -> Result<u64> {
        let mut total = 0;
        loop {
            let n = sqlx::query_scalar::<_, i64>(delete_with_attempts!(
                "DELETE FROM deliveries d WHERE d.id IN (SELECT id FROM deliveries \
                 WHERE state IN ('delivered', 'dropped') AND updated_at < $1 LIMIT 5000)"
            ))
            .bind(before)
            .fetch_one(&self.pool)
            .await? as u64;
            total += n;
            if n < 5000 {
                break;
            }
        }
        loop {
            let n = sqlx::query(
                "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE created_at < $1 \
                 AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = events.id) \
                 LIMIT 5000)",
            )
            .bind(before)
            .execute(&self.pool)
            .await?
            .rows_affected();
            if n < 5000 {
                break;
            }
        }
        Ok(total)
    }

    async fn set_status(
        &self,
        id: &str,
        status: &str,
        reason: Option<&str>,
    ) -> Result<Option<Subscription>> {
        let mut tx = self.pool.begin().await?;
        bump_version(&mut tx).await?;
        let active = status == "active";
        let n = sqlx::query(
            "UPDATE subscriptions SET status = $2, disabled_reason = $3, \
                circuit_state = CASE WHEN $4 THEN 'closed' ELSE circuit_state END, \
                consecutive_failures = CASE WHEN $4 THEN 0 ELSE consecutive_failures END, \
                circuit_opened_at = CASE WHEN $4 THEN NULL ELSE circuit_opened_at END, \
                circuit_next_probe_at = CASE WHEN $4 THEN NULL ELSE circuit_next_probe_at END, \
                updated_at = dispatch_now_ms() \
             WHERE id = $1",
        )
        .bind(id)
        .bind(status)
        .bind(reason)
        .bind(active)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Ok(None);
        }
        let subs = [id.to_string()];
        if active {
            if unpark(&mut tx, &subs).await? > 0 {
                sqlx::query("SELECT pg_notify($1, '')")
                    .bind(WORK_CHANNEL)
                    .execute(&mut *tx)
                    .await?;
            }
        } else {
            park(&mut tx, &subs).await?;
        }
        let row: SubscriptionRow = sqlx::query_as("SELECT * FROM subscriptions WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        self.invalidate();
        Ok(Some(row.into()))
    }

    async fn dead_letters(
        &self,
        filter: &DeadFilter,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Vec<DeadLetter>> {
        let rows: Vec<DeadRow> = sqlx::query_as(concat!(
            "SELECT ",
            delivery_columns!(),
            ", e.type AS event_type FROM deliveries d JOIN events e ON e.id = d.event_id \
               LEFT JOIN subscriptions s ON s.id = d.subscription_id WHERE ",
            pg_dead_filter!(),
            " AND ($5::int8 IS NULL OR d.id > $5) ORDER BY d.id LIMIT $6"
        ))
        .bind(&filter.subscription_id)
        .bind(&filter.event_type)
        .bind(filter.since)
        .bind(filter.until)
        .bind(after)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn replay_dead(&self, selection: &DeadSelection) -> Result<u64> {
        // A fresh run: attempts start again at 1; parked if its endpoint is.
        let n = match selection {
            DeadSelection::Ids(ids) => sqlx::query(
                "UPDATE deliveries d SET run = d.run + 1, attempts = 0, \
                    state = CASE WHEN s.id IS NULL OR (s.status = 'active' AND s.circuit_state = 'closed') \
                        THEN 'pending' ELSE 'paused' END, \
                    next_attempt_at = dispatch_now_ms(), lease_expires_at = NULL, leased_by = NULL, \
                    last_status_code = NULL, last_error = NULL, delivered_at = NULL, \
                    updated_at = dispatch_now_ms() \
                 FROM deliveries d0 LEFT JOIN subscriptions s ON s.id = d0.subscription_id \
                 WHERE d0.id = d.id AND d.state = 'dead' AND d.id = ANY($1)",
            )
            .bind(ids)
            .execute(&self.pool)
            .await?
            .rows_affected(),
            DeadSelection::Filter(f) => sqlx::query(concat!(
                "UPDATE deliveries d SET run = d.run + 1, attempts = 0, \
                    state = CASE WHEN s.id IS NULL OR (s.status = 'active' AND s.circuit_state = 'closed') \
                        THEN 'pending' ELSE 'paused' END, \
                    next_attempt_at = dispatch_now_ms(), lease_expires_at = NULL, leased_by = NULL, \
                    last_status_code = NULL, last_error = NULL, delivered_at = NULL, \
                    updated_at = dispatch_now_ms() \
                 FROM deliveries d0 LEFT JOIN subscriptions s ON s.id = d0.subscription_id \
                 WHERE d0.id = d.id AND ",
                pg_dead_filter!()
            ))
            .bind(&f.subscription_id)
            .bind(&f.event_type)
            .bind(f.since)
            .bind(f.until)
            .execute(&self.pool)
            .await?
            .rows_affected(),
        };
        if n > 0 {
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(WORK_CHANNEL)
                .execute(&self.pool)
                .await?;
        }
        Ok(n)
    }

    async fn purge_dead(&self, selection: &DeadSelection) -> Result<u64> {
        let n = match selection {
            DeadSelection::Ids(ids) => {
                sqlx::query_scalar::<_, i64>(delete_with_attempts!(
                    "DELETE FROM deliveries d WHERE d.state = 'dead' AND d.id = ANY($1)"
                ))
                .bind(ids)
                .fetch_one(&self.pool)
                .await?
            }
            DeadSelection::Filter(f) => {
                sqlx::query_scalar::<_, i64>(delete_with_attempts!(
                    "DELETE FROM deliveries d WHERE ",
                    pg_dead_filter!()
                ))
                .bind(&f.subscription_id)
                .bind(&f.event_type)
                .bind(f.since)
                .bind(f.until)
                .fetch_one(&self.pool)
                .await?
            }
        };
        Ok(n as u64)
    }

    async fn probe_open_circuits(&self) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        let due: Vec<String> = sqlx::query_scalar(
            "UPDATE subscriptions SET circuit_state = 'half_open', circuit_next_probe_at = NULL \
             WHERE id IN (SELECT id FROM subscriptions WHERE circuit_state = 'open' \
                AND status = 'active' AND circuit_next_probe_at <= dispatch_now_ms() \
                FOR UPDATE SKIP LOCKED) \
             RETURNING id",
        )
        .fetch_all(&mut *tx)
        .await?;
        for id in &due {
            let released = sqlx::query(
                "UPDATE deliveries SET \
                    state = CASE WHEN attempts = 0 THEN 'pending' ELSE 'scheduled' END, \
                    next_attempt_at = dispatch_now_ms(), updated_at = dispatch_now_ms() \
                 WHERE id = (SELECT id FROM deliveries WHERE subscription_id = $1 \
                    AND state = 'paused' ORDER BY id LIMIT 1)",
            )
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if released == 0 {
                // Nothing parked to probe with: let the next delivery decide.
                sqlx::query("UPDATE subscriptions SET circuit_state = 'closed' WHERE id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        if !due.is_empty() {
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(WORK_CHANNEL)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(due.len() as u64)
    }

    async fn auto_disable(&self, before: Millis) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        bump_version(&mut tx).await?;
        let ids: Vec<String> = sqlx::query_scalar(
            "UPDATE subscriptions SET status = 'disabled', \
                disabled_reason = 'disabled automatically: its circuit stayed open past circuit.auto_disable_after_hours' \
             WHERE status = 'active' AND circuit_state <> 'closed' AND circuit_opened_at < $1 \
             RETURNING id",
        )
        .bind(before)
        .fetch_all(&mut *tx)
        .await?;
        if ids.is_empty() {
            // Nothing changed: do not bump the version for nothing.
            tx.rollback().await?;
            return Ok(0);
        }
        park(&mut tx, &ids).await?;
        tx.commit().await?;
        self.invalidate();
        Ok(ids.len() as u64)
    }

    async fn delivery_counts(&self) -> Result<Vec<(String, i64)>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(super::stats::COUNT_BY_STATE)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows)
    }

    async fn stats(&self, since: Millis) -> Result<super::stats::StatsSnapshot> {
        Ok(super::stats::read_stats!(&self.pool, since))
    }

    async fn attempt_tail(
        &self,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Vec<super::stats::AttemptTail>> {
        Ok(super::stats::read_attempt_tail!(&self.pool, after, limit))
    }

    async fn record_plugin_counters(
        &self,
        node: &str,
        counters: &[super::stats::PluginCounters],
    ) -> Result<()> {
        super::stats::write_plugin_counters!(&self.pool, node, counters, crate::model::now_ms());
        Ok(())
    }

    async fn next_due_in_ms(&self) -> Result<Option<i64>> {
        let row = sqlx::query(
            "SELECT MIN(next_attempt_at) - dispatch_now_ms() AS due FROM deliveries \
             WHERE state IN ('pending', 'scheduled')",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get::<Option<i64>, _>("due")?)
    }

    fn work_signal(&self) -> Arc<Notify> {
        self.work.clone()
    }
}

/// Must be the first statement of a subscription change: it takes the
/// version row's lock before anything else, ordering the change against
/// in-flight ingests (which hold the row FOR SHARE).
async fn bump_version(tx: &mut sqlx::Transaction<'_, sqlx::Postgres>) -> Result<()> {
    sqlx::query("UPDATE dispatch_meta SET value = value + 1 WHERE key = 'subscriptions_version'")
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Parks the waiting deliveries of these subscriptions.
async fn park(tx: &mut sqlx::Transaction<'_, sqlx::Postgres>, subs: &[String]) -> Result<()> {
    sqlx::query(
        "UPDATE deliveries SET state = 'paused', updated_at = dispatch_now_ms() \
         WHERE subscription_id = ANY($1) AND state IN ('pending', 'scheduled')",
    )
    .bind(subs)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Returns these subscriptions' parked deliveries to the queue, due now.
async fn unpark(tx: &mut sqlx::Transaction<'_, sqlx::Postgres>, subs: &[String]) -> Result<u64> {
    let n = sqlx::query(
        "UPDATE deliveries SET state = CASE WHEN attempts = 0 THEN 'pending' ELSE 'scheduled' END, \
            next_attempt_at = dispatch_now_ms(), updated_at = dispatch_now_ms() \
         WHERE subscription_id = ANY($1) AND state = 'paused'",
    )
    .bind(subs)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(n)
}

/// Deliveries to insert, as parallel arrays for `unnest`.
#[derive(Default)]
struct DeliveryColumns {
    event_id: Vec<String>,
    subscription_id: Vec<Option<String>>,
    url: Vec<Option<String>>,
    method: Vec<Option<String>>,
    headers: Vec<Option<String>>,
    secret: Vec<Option<String>>,
    body: Vec<Option<String>>,
    max_attempts: Vec<i32>,
}

impl DeliveryColumns {
    fn push(&mut self, event_id: &str, d: &crate::model::NewDelivery) {
        self.event_id.push(event_id.to_string());
        self.subscription_id.push(d.subscription_id.clone());
        self.url.push(d.inline.url.clone());
        self.method.push(d.inline.method.clone());
        self.headers.push(
            d.inline
                .headers
                .as_ref()
                .map(|h| serde_json::to_string(h).expect("strings serialize")),
        );
        self.secret.push(d.inline.secret.clone());
        self.body.push(d.inline.body.clone());
        self.max_attempts.push(d.max_attempts as i32);
    }
}

/// Completions, as parallel arrays for `unnest`.
#[derive(Default)]
struct CompletionColumns {
    id: Vec<i64>,
    event_id: Vec<String>,
    run: Vec<i32>,
    attempt: Vec<i32>,
    url: Vec<String>,
    status_code: Vec<Option<i32>>,
    error: Vec<Option<String>>,
    duration_ms: Vec<i64>,
    response_body: Vec<Option<String>>,
    created_at: Vec<i64>,
    state: Vec<&'static str>,
    delay_ms: Vec<i64>,
    transformed: Vec<bool>,
    t_url: Vec<Option<String>>,
    t_method: Vec<Option<String>>,
    t_headers: Vec<Option<String>>,
    t_body: Vec<Option<String>>,
    t_type: Vec<Option<String>>,
}

impl CompletionColumns {
    fn push(&mut self, c: &Completion, parked: &HashSet<String>) {
        let a = &c.attempt;
        self.id.push(c.token.id);
        self.event_id.push(a.event_id.clone());
        self.run.push(c.token.run);
        self.attempt.push(c.token.attempt);
        self.url.push(a.url.clone());
        self.status_code.push(a.status_code);
        self.error.push(a.error.clone());
        self.duration_ms.push(a.duration_ms);
        self.response_body.push(a.response_body.clone());
        self.created_at.push(a.created_at);
        let (state, delay) = super::final_state(c, parked);
        self.state.push(state);
        self.delay_ms.push(delay);
        let t = c.transformed.as_deref();
        self.transformed.push(t.is_some());
        self.t_url.push(t.and_then(|t| t.url.clone()));
        self.t_method.push(t.and_then(|t| t.method.clone()));
        self.t_headers.push(
            t.and_then(|t| t.headers.as_ref())
                .map(|h| serde_json::to_string(h).expect("string maps serialize")),
        );
        self.t_body.push(t.and_then(|t| t.body.clone()));
        self.t_type.push(t.and_then(|t| t.event_type.clone()));
    }
}
