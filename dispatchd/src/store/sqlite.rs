//! The embedded SQLite store: the zero-setup default, single node.
//!
//! One writer connection serialises every write in-process (SQLite allows
//! one writer anyway; this avoids `SQLITE_BUSY` upgrades), a few reader
//! connections serve the API's lookups. WAL with `synchronous = FULL`: a
//! `kill -9` or power cut after a commit loses nothing acknowledged. Work is
//! announced in-process, since no other process shares the file.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use tokio::sync::Notify;

use super::rows::{
    AttemptRow, ClaimRow, DeadRow, DeliveryRow, EventRow, SubscriptionRow, subscription_json,
};
use super::{Page, Result, Store, StoreError, SubscriptionSnapshot};
use crate::circuit::{self, CircuitPolicy, CircuitRow};
use crate::config::Config;
use crate::model::{
    AttemptRecord, ClaimToken, ClaimedDelivery, Completion, DeadFilter, DeadLetter, DeadSelection,
    DeliveryRecord, Event, EventKind, InsertOutcome, Millis, RoutedEvent, Subscription, now_ms,
};

/// Rows for a `json_each(?)` statement: one bound parameter for a batch.
fn to_json<T: serde::Serialize + ?Sized>(rows: &T) -> String {
    serde_json::to_string(rows).expect("rows of strings and numbers serialize")
}

/// The WHERE clause of a dead-letter selection by filter (?1..?4).
macro_rules! sqlite_dead_filter {
    () => {
        "d.state = 'dead' \
         AND (?1 IS NULL OR d.subscription_id = ?1) \
         AND (?2 IS NULL OR EXISTS (SELECT 1 FROM events e2 WHERE e2.id = d.event_id AND e2.type = ?2)) \
         AND (?3 IS NULL OR d.updated_at >= ?3) \
         AND (?4 IS NULL OR d.updated_at < ?4)"
    };
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");

pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    cache: Mutex<Option<SubscriptionSnapshot>>,
    work: Arc<Notify>,
}

impl SqliteStore {
    pub async fn open(cfg: &Config) -> Result<Self> {
        let path = &cfg.database.sqlite_path;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Other(format!(
                    "database.sqlite_path: cannot create {}: {e}",
                    dir.display()
                ))
            })?;
        }
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let acquire = Duration::from_millis(cfg.database.acquire_timeout_ms);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(acquire)
            .connect_with(opts.clone())
            .await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(cfg.database.max_connections.clamp(1, 8))
            .acquire_timeout(acquire)
            .connect_with(opts)
            .await?;
        Ok(Self {
            writer,
            reader,
            cache: Mutex::new(None),
            work: Arc::new(Notify::new()),
        })
    }

    fn invalidate(&self) {
        *self.cache.lock().expect("cache lock") = None;
    }

    async fn bump_version(tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>) -> Result<()> {
        sqlx::query(
            "UPDATE dispatch_meta SET value = value + 1 WHERE key = 'subscriptions_version'",
        )
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Parks a subscription's waiting deliveries.
    async fn park(tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>, sub: &str, now: i64) -> Result<()> {
        sqlx::query(
            "UPDATE deliveries SET state = 'paused', updated_at = ?2 \
             WHERE subscription_id = ?1 AND state IN ('pending', 'scheduled')",
        )
        .bind(sub)
        .bind(now)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Returns a subscription's parked deliveries to the queue, due now.
    async fn unpark(
        tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
        sub: &str,
        now: i64,
    ) -> Result<u64> {
        let n = sqlx::query(
            "UPDATE deliveries SET state = CASE WHEN attempts = 0 THEN 'pending' ELSE 'scheduled' END, \
                next_attempt_at = ?2, updated_at = ?2 \
             WHERE subscription_id = ?1 AND state = 'paused'",
        )
        .bind(sub)
        .bind(now)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        Ok(n)
    }

    /// The ids a dead-letter selection names (filters resolved on a reader).
    async fn select_dead(&self, selection: &DeadSelection) -> Result<Vec<i64>> {
        Ok(match selection {
            DeadSelection::Ids(ids) => ids.clone(),
            DeadSelection::Filter(f) => {
                sqlx::query_scalar(concat!(
                    "SELECT d.id FROM deliveries d WHERE ",
                    sqlite_dead_filter!()
                ))
                .bind(&f.subscription_id)
                .bind(&f.event_type)
                .bind(f.since)
                .bind(f.until)
                .fetch_all(&self.reader)
                .await?
            }
        })
    }

    async fn write_subscription(&self, s: &Subscription, insert: bool) -> Result<bool> {
        let j = subscription_json(s);
        let sql = if insert {
            "INSERT INTO subscriptions (id, url, event_types, secret, previous_secret, \
             previous_secret_expires_at, headers, rate_limit, max_attempts, retry_initial_delay_ms, \
             retry_multiplier, retry_max_delay_ms, timeout_ms, plugins, status, created_at, updated_at) \
             VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17)"
        } else {
            "UPDATE subscriptions SET url = ?2, event_types = ?3, secret = ?4, previous_secret = ?5, \
             previous_secret_expires_at = ?6, headers = ?7, rate_limit = ?8, max_attempts = ?9, \
             retry_initial_delay_ms = ?10, retry_multiplier = ?11, retry_max_delay_ms = ?12, \
             timeout_ms = ?13, plugins = ?14, status = ?15, updated_at = ?17 WHERE id = ?1 \
             AND ?16 = ?16"
        };
        let mut tx = self.writer.begin().await?;
        let n = sqlx::query(sql)
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
            .await?
            .rows_affected();
        Self::bump_version(&mut tx).await?;
        tx.commit().await?;
        self.invalidate();
        Ok(n == 1)
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.writer).await?;
        Ok(())
    }

    /// The embedded file has no server to lose: ingest is never gated.
    async fn ping(&self) -> Result<()> {
        Ok(())
    }

    async fn ready(&self) -> Result<()> {
        let applied: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
                .fetch_one(&self.reader)
                .await?;
        if (applied as usize) < MIGRATOR.iter().count() {
            return Err(StoreError::Unavailable("migrations not applied".into()));
        }
        Ok(())
    }

    async fn subscriptions(&self) -> Result<SubscriptionSnapshot> {
        if let Some(snap) = self.cache.lock().expect("cache lock").clone() {
            return Ok(snap);
        }
        let mut tx = self.reader.begin().await?;
        let version: i64 = sqlx::query_scalar(
            "SELECT value FROM dispatch_meta WHERE key = 'subscriptions_version'",
        )
        .fetch_one(&mut *tx)
        .await?;
        let rows: Vec<SubscriptionRow> = sqlx::query_as("SELECT * FROM subscriptions ORDER BY id")
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        let snap = SubscriptionSnapshot {
            version,
            subscriptions: Arc::new(rows.into_iter().map(Subscription::from).collect()),
        };
        *self.cache.lock().expect("cache lock") = Some(snap.clone());
        Ok(snap)
    }

    async fn create_subscription(&self, s: &Subscription) -> Result<()> {
        self.write_subscription(s, true).await.map(|_| ())
    }

    async fn get_subscription(&self, id: &str) -> Result<Option<Subscription>> {
        let row: Option<SubscriptionRow> =
            sqlx::query_as("SELECT * FROM subscriptions WHERE id = ?1")
                .bind(id)
                .fetch_optional(&self.reader)
                .await?;
        Ok(row.map(Into::into))
    }

    async fn list_subscriptions(&self, page: &Page) -> Result<Vec<Subscription>> {
        let rows: Vec<SubscriptionRow> = sqlx::query_as(
            "SELECT * FROM subscriptions WHERE (?1 IS NULL OR id > ?1) ORDER BY id LIMIT ?2",
        )
        .bind(&page.after)
        .bind(page.limit as i64)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn update_subscription(&self, s: &Subscription) -> Result<bool> {
        self.write_subscription(s, false).await
    }

    async fn delete_subscription(&self, id: &str) -> Result<bool> {
        let mut tx = self.writer.begin().await?;
        let n = sqlx::query("DELETE FROM subscriptions WHERE id = ?1")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query(
            "DELETE FROM deliveries WHERE subscription_id = ?1 \
             AND state IN ('pending', 'scheduled', 'paused')",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        Self::bump_version(&mut tx).await?;
        tx.commit().await?;
        self.invalidate();
        Ok(n == 1)
    }

    async fn insert_events(
        &self,
        events: &[RoutedEvent],
        routed_at_version: i64,
    ) -> Result<Vec<InsertOutcome>> {
        let mut tx = self.writer.begin().await?;
        let version: i64 = sqlx::query_scalar(
            "SELECT value FROM dispatch_meta WHERE key = 'subscriptions_version'",
        )
        .fetch_one(&mut *tx)
        .await?;
        if version != routed_at_version {
            drop(tx);
            self.invalidate();
            return Err(StoreError::StaleSubscriptions);
        }
        let now = now_ms();
        // One statement per table, its rows passed as one JSON array: every
        // statement is a round trip to the connection's worker thread, and
        // a row at a time those hand-offs were most of the store's cost.
        // Rows go in array order, so the first copy of an id wins.
        let rows: Vec<_> = events
            .iter()
            .map(|e| {
                let ev = &e.event;
                (
                    &ev.id,
                    ev.kind.as_str(),
                    &ev.event_type,
                    &ev.source,
                    &ev.data,
                    &ev.idempotency_key,
                    ev.created_at,
                )
            })
            .collect();
        let inserted: Vec<(String, Option<String>)> = sqlx::query_as(
            "INSERT INTO events (id, kind, type, source, data, idempotency_key, created_at) \
             SELECT value->>0, value->>1, value->>2, value->>3, value->>4, value->>5, value->>6 \
             FROM json_each(?1) WHERE true ORDER BY key \
             ON CONFLICT DO NOTHING RETURNING id, idempotency_key",
        )
        .bind(to_json(&rows))
        .fetch_all(&mut *tx)
        .await?;
        let fresh = super::first_occurrences(events, &inserted);
        let deliveries: Vec<_> = events
            .iter()
            .zip(&fresh)
            .filter(|(_, f)| **f)
            .flat_map(|(e, _)| e.deliveries.iter().map(move |d| (&e.event.id, d)))
            .map(|(event_id, d)| {
                (
                    event_id,
                    &d.subscription_id,
                    &d.inline.url,
                    &d.inline.method,
                    d.inline.headers.as_ref().map(to_json),
                    &d.inline.secret,
                    &d.inline.body,
                    d.max_attempts,
                )
            })
            .collect();
        let any_delivery = !deliveries.is_empty();
        if any_delivery {
            sqlx::query(
                "INSERT INTO deliveries (event_id, subscription_id, dest_url, dest_method, \
                 dest_headers, dest_secret, body, max_attempts, state, next_attempt_at, \
                 created_at, updated_at) \
                 SELECT j.value->>0, j.value->>1, j.value->>2, j.value->>3, j.value->>4, \
                    j.value->>5, j.value->>6, j.value->>7, \
                    COALESCE((SELECT CASE WHEN s.status <> 'active' OR s.circuit_state <> 'closed' \
                        THEN 'paused' ELSE 'pending' END FROM subscriptions s \
                        WHERE s.id = j.value->>1), 'pending'), \
                    ?2, ?2, ?2 \
                 FROM json_each(?1) AS j ORDER BY j.key",
            )
            .bind(to_json(&deliveries))
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        let mut existing = Vec::new();
        for (e, f) in events.iter().zip(&fresh) {
            if *f {
                continue;
            }
            let row: Option<EventRow> = sqlx::query_as(
                "SELECT * FROM events WHERE id = ?1 OR (?2 IS NOT NULL AND idempotency_key = ?2) \
                 ORDER BY id = ?1 DESC LIMIT 1",
            )
            .bind(&e.event.id)
            .bind(&e.event.idempotency_key)
            .fetch_optional(&mut *tx)
            .await?;
            existing.extend(row.map(Event::from));
        }
        tx.commit().await?;
        if any_delivery {
            self.work.notify_one();
        }
        events
            .iter()
            .zip(&fresh)
            .map(|(e, f)| super::outcome_for(e, *f, &existing))
            .collect()
    }

    async fn get_event(&self, id: &str, kind: EventKind) -> Result<Option<Event>> {
        let row: Option<EventRow> =
            sqlx::query_as("SELECT * FROM events WHERE id = ?1 AND kind = ?2")
                .bind(id)
                .bind(kind.as_str())
                .fetch_optional(&self.reader)
                .await?;
        Ok(row.map(Into::into))
    }

    async fn event_deliveries(&self, event_id: &str) -> Result<Vec<DeliveryRecord>> {
        let rows: Vec<DeliveryRow> = sqlx::query_as(concat!(
            "SELECT ",
            delivery_columns!(),
            " FROM deliveries d LEFT JOIN subscriptions s ON s.id = d.subscription_id \
              WHERE d.event_id = ?1 ORDER BY d.id"
        ))
        .bind(event_id)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn event_attempts(&self, event_id: &str) -> Result<Vec<AttemptRecord>> {
        let rows: Vec<AttemptRow> = sqlx::query_as(concat!(
            "SELECT ",
            attempt_columns!(),
            " FROM attempts a JOIN deliveries d ON d.id = a.delivery_id \
              WHERE d.event_id = ?1 ORDER BY a.delivery_id, a.run, a.attempt"
        ))
        .bind(event_id)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn claim(&self, node: &str, limit: u32, lease: Duration) -> Result<Vec<ClaimedDelivery>> {
        let now = now_ms();
        let mut tx = self.writer.begin().await?;
        let ids: Vec<i64> = sqlx::query_scalar(
            "UPDATE deliveries SET state = 'in_flight', attempts = attempts + 1, \
                lease_expires_at = ?1 + ?2, leased_by = ?3, updated_at = ?1 \
             WHERE id IN (SELECT id FROM deliveries \
                WHERE state IN ('pending', 'scheduled') AND next_attempt_at <= ?1 \
                ORDER BY next_attempt_at LIMIT ?4) \
             RETURNING id",
        )
        .bind(now)
        .bind(lease.as_millis() as i64)
        .bind(node)
        .bind(limit as i64)
        .fetch_all(&mut *tx)
        .await?;
        if ids.is_empty() {
            tx.commit().await?;
            return Ok(Vec::new());
        }
        let id_list = to_json(&ids);
        let rows: Vec<ClaimRow> = sqlx::query_as(concat!(
            "SELECT ",
            claim_columns!(),
            " FROM deliveries d JOIN events e ON e.id = d.event_id \
              LEFT JOIN subscriptions s ON s.id = d.subscription_id \
              WHERE d.id IN (SELECT value FROM json_each(?1)) ORDER BY d.id"
        ))
        .bind(id_list)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn complete(&self, completions: &[Completion], policy: &CircuitPolicy) -> Result<u64> {
        if completions.is_empty() {
            return Ok(0);
        }
        let now = now_ms();
        let tallies = super::tallies(completions);
        let mut changed = 0;
        let mut wake = false;
        let mut parked = HashSet::new();
        let mut park_now: Vec<String> = Vec::new();
        let mut unpark_now: Vec<String> = Vec::new();
        // The single writer connection orders this against every other
        // write, so no row locks are needed.
        let mut tx = self.writer.begin().await?;
        let any_gone = tallies.values().any(|t| t.gone);
        if any_gone {
            Self::bump_version(&mut tx).await?;
        }
        for (sub_id, tally) in &tallies {
            let row: Option<(String, i32, Option<i64>, Option<i64>, String)> = sqlx::query_as(
                "SELECT circuit_state, consecutive_failures, circuit_opened_at, \
                 circuit_next_probe_at, status FROM subscriptions WHERE id = ?1",
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
                "UPDATE subscriptions SET circuit_state = ?2, consecutive_failures = ?3, \
                    circuit_opened_at = ?4, circuit_next_probe_at = ?5, \
                    last_success_at = CASE WHEN ?6 THEN ?7 ELSE last_success_at END, \
                    status = ?8, disabled_reason = CASE WHEN ?9 THEN ?10 ELSE disabled_reason END \
                 WHERE id = ?1",
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
        // As in `insert_events`: one statement per table for the batch.
        let mut updates = Vec::with_capacity(completions.len());
        let mut attempts = Vec::with_capacity(completions.len());
        for c in completions {
            let a = &c.attempt;
            let (state, delay_ms) = super::final_state(c, &parked);
            let next_at = matches!(state, "scheduled" | "paused").then_some(now + delay_ms);
            let delivered_at = matches!(state, "delivered" | "dropped").then_some(now);
            let t = c.transformed.as_deref();
            wake |= state == "scheduled";
            updates.push((
                c.token.id,
                c.token.run,
                c.token.attempt,
                state,
                next_at,
                a.status_code,
                &a.error,
                delivered_at,
                t.is_some(),
                t.and_then(|t| t.url.as_deref()),
                t.and_then(|t| t.method.as_deref()),
                t.and_then(|t| t.headers.as_ref()).map(to_json),
                t.and_then(|t| t.body.as_deref()),
                t.and_then(|t| t.event_type.as_deref()),
            ));
            attempts.push((
                c.token.id,
                &a.event_id,
                c.token.run,
                c.token.attempt,
                &a.url,
                a.status_code,
                &a.error,
                a.duration_ms,
                &a.response_body,
                a.created_at,
            ));
        }
        changed += sqlx::query(
            "UPDATE deliveries SET state = v.state, \
                next_attempt_at = COALESCE(v.next_at, deliveries.next_attempt_at), \
                lease_expires_at = NULL, leased_by = NULL, \
                last_status_code = v.status_code, last_error = v.error, \
                delivered_at = COALESCE(v.delivered_at, deliveries.delivered_at), updated_at = ?2, \
                dest_url = CASE WHEN v.t THEN v.t_url ELSE deliveries.dest_url END, \
                dest_method = CASE WHEN v.t THEN v.t_method ELSE deliveries.dest_method END, \
                dest_headers = CASE WHEN v.t THEN v.t_headers ELSE deliveries.dest_headers END, \
                body = CASE WHEN v.t THEN v.t_body ELSE deliveries.body END, \
                dest_type = CASE WHEN v.t THEN v.t_type ELSE deliveries.dest_type END \
             FROM (SELECT value->>0 AS id, value->>1 AS run, value->>2 AS attempt, \
                      value->>3 AS state, value->>4 AS next_at, value->>5 AS status_code, \
                      value->>6 AS error, value->>7 AS delivered_at, value->>8 AS t, \
                      value->>9 AS t_url, value->>10 AS t_method, value->>11 AS t_headers, \
                      value->>12 AS t_body, value->>13 AS t_type \
                   FROM json_each(?1)) AS v \
             WHERE deliveries.id = v.id AND deliveries.run = v.run \
               AND deliveries.attempts = v.attempt AND deliveries.state = 'in_flight'",
        )
        .bind(to_json(&updates))
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query(
            "INSERT INTO attempts (delivery_id, event_id, run, attempt, url, status_code, \
             error, duration_ms, response_body, created_at) \
             SELECT j.value->>0, j.value->>1, j.value->>2, j.value->>3, j.value->>4, \
                j.value->>5, j.value->>6, j.value->>7, j.value->>8, j.value->>9 \
             FROM json_each(?1) AS j \
             WHERE EXISTS (SELECT 1 FROM deliveries d WHERE d.id = j.value->>0) \
             ORDER BY j.key \
             ON CONFLICT DO NOTHING",
        )
        .bind(to_json(&attempts))
        .execute(&mut *tx)
        .await?;
        for sub_id in &park_now {
            Self::park(&mut tx, sub_id, now).await?;
        }
        for sub_id in &unpark_now {
            wake |= Self::unpark(&mut tx, sub_id, now).await? > 0;
        }
        tx.commit().await?;
        if any_gone {
            self.invalidate();
        }
        if wake {
            self.work.notify_one();
        }
        Ok(changed)
    }

    async fn release(&self, items: &[(ClaimToken, i64)]) -> Result<u64> {
        if items.is_empty() {
            return Ok(0);
        }
        let now = now_ms();
        let mut n = 0;
        let mut tx = self.writer.begin().await?;
        for (t, delay) in items {
            n += sqlx::query(
                "UPDATE deliveries SET \
                    state = CASE WHEN attempts > 1 THEN 'scheduled' ELSE 'pending' END, \
                    attempts = attempts - 1, lease_expires_at = NULL, leased_by = NULL, \
                    next_attempt_at = ?4 + ?5, updated_at = ?4 \
                 WHERE id = ?1 AND run = ?2 AND attempts = ?3 AND state = 'in_flight'",
            )
            .bind(t.id)
            .bind(t.run)
            .bind(t.attempt)
            .bind(now)
            .bind(delay)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        tx.commit().await?;
        self.work.notify_one();
        Ok(n)
    }

    async fn heartbeat(&self, node: &str, _ttl: Duration) -> Result<u32> {
        // One process owns the file: this node is the only one.
        let now = now_ms();
        sqlx::query(
            "INSERT INTO nodes (id, started_at, last_seen) VALUES (?1, ?2, ?2) \
             ON CONFLICT (id) DO UPDATE SET last_seen = ?2",
        )
        .bind(node)
        .bind(now)
        .execute(&self.writer)
        .await?;
        sqlx::query("DELETE FROM nodes WHERE id <> ?1")
            .bind(node)
            .execute(&self.writer)
            .await?;
        Ok(1)
    }

    async fn reap_expired_leases(&self) -> Result<u64> {
        let now = now_ms();
        let n = sqlx::query(
            "UPDATE deliveries SET \
                state = CASE WHEN attempts >= max_attempts THEN 'dead' ELSE 'scheduled' END, \
                last_error = ?2, lease_expires_at = NULL, leased_by = NULL, \
                next_attempt_at = ?1, updated_at = ?1 \
             WHERE state = 'in_flight' AND lease_expires_at < ?1",
        )
        .bind(now)
        .bind(super::LEASE_EXPIRED)
        .execute(&self.writer)
        .await?
        .rows_affected();
        if n > 0 {
            self.work.notify_one();
        }
        Ok(n)
    }

    async fn prune_delivered(&self, before: Millis) -> Result<u64> {
        let mut total = 0;
        loop {
            let n = sqlx::query(
                "DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries \
                 WHERE state IN ('delivered', 'dropped') AND updated_at < ?1 LIMIT 5000)",
            )
            .bind(before)
            .execute(&self.writer)
            .await?
            .rows_affected();
            total += n;
            if n < 5000 {
                break;
            }
        }
        loop {
            let n = sqlx::query(
                "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE created_at < ?1 \
                 AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = events.id) \
                 LIMIT 5000)",
            )
            .bind(before)
            .execute(&self.writer)
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
        let now = now_ms();
        let active = status == "active";
        let mut tx = self.writer.begin().await?;
        Self::bump_version(&mut tx).await?;
        let n = sqlx::query(
            "UPDATE subscriptions SET status = ?2, disabled_reason = ?3, \
                circuit_state = CASE WHEN ?4 THEN 'closed' ELSE circuit_state END, \
                consecutive_failures = CASE WHEN ?4 THEN 0 ELSE consecutive_failures END, \
                circuit_opened_at = CASE WHEN ?4 THEN NULL ELSE circuit_opened_at END, \
                circuit_next_probe_at = CASE WHEN ?4 THEN NULL ELSE circuit_next_probe_at END, \
                updated_at = ?5 \
             WHERE id = ?1",
        )
        .bind(id)
        .bind(status)
        .bind(reason)
        .bind(active)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Ok(None);
        }
        let mut wake = false;
        if active {
            wake = Self::unpark(&mut tx, id, now).await? > 0;
        } else {
            Self::park(&mut tx, id, now).await?;
        }
        let row: SubscriptionRow = sqlx::query_as("SELECT * FROM subscriptions WHERE id = ?1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        self.invalidate();
        if wake {
            self.work.notify_one();
        }
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
            sqlite_dead_filter!(),
            " AND (?5 IS NULL OR d.id > ?5) ORDER BY d.id LIMIT ?6"
        ))
        .bind(&filter.subscription_id)
        .bind(&filter.event_type)
        .bind(filter.since)
        .bind(filter.until)
        .bind(after)
        .bind(limit as i64)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn replay_dead(&self, selection: &DeadSelection) -> Result<u64> {
        let ids = self.select_dead(selection).await?;
        let now = now_ms();
        let mut tx = self.writer.begin().await?;
        let mut n = 0;
        for id in ids {
            // A fresh run: attempts start again at 1; parked if its endpoint is.
            n += sqlx::query(
                "UPDATE deliveries SET run = run + 1, attempts = 0, \
                    state = CASE WHEN subscription_id IS NULL OR EXISTS (SELECT 1 FROM subscriptions s \
                        WHERE s.id = deliveries.subscription_id AND s.status = 'active' \
                        AND s.circuit_state = 'closed') THEN 'pending' ELSE 'paused' END, \
                    next_attempt_at = ?2, lease_expires_at = NULL, leased_by = NULL, \
                    last_status_code = NULL, last_error = NULL, delivered_at = NULL, updated_at = ?2 \
                 WHERE id = ?1 AND state = 'dead'",
            )
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        tx.commit().await?;
        if n > 0 {
            self.work.notify_one();
        }
        Ok(n)
    }

    async fn purge_dead(&self, selection: &DeadSelection) -> Result<u64> {
        let ids = self.select_dead(selection).await?;
        let mut tx = self.writer.begin().await?;
        let mut n = 0;
        for id in ids {
            n += sqlx::query("DELETE FROM deliveries WHERE id = ?1 AND state = 'dead'")
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        tx.commit().await?;
        Ok(n)
    }

    async fn probe_open_circuits(&self) -> Result<u64> {
        let now = now_ms();
        let mut tx = self.writer.begin().await?;
        let due: Vec<String> = sqlx::query_scalar(
            "UPDATE subscriptions SET circuit_state = 'half_open', circuit_next_probe_at = NULL \
             WHERE circuit_state = 'open' AND status = 'active' AND circuit_next_probe_at <= ?1 \
             RETURNING id",
        )
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        for id in &due {
            let released = sqlx::query(
                "UPDATE deliveries SET \
                    state = CASE WHEN attempts = 0 THEN 'pending' ELSE 'scheduled' END, \
                    next_attempt_at = ?2, updated_at = ?2 \
                 WHERE id = (SELECT id FROM deliveries WHERE subscription_id = ?1 \
                    AND state = 'paused' ORDER BY id LIMIT 1)",
            )
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if released == 0 {
                sqlx::query("UPDATE subscriptions SET circuit_state = 'closed' WHERE id = ?1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        if !due.is_empty() {
            self.work.notify_one();
        }
        Ok(due.len() as u64)
    }

    async fn auto_disable(&self, before: Millis) -> Result<u64> {
        let now = now_ms();
        let mut tx = self.writer.begin().await?;
        let ids: Vec<String> = sqlx::query_scalar(
            "UPDATE subscriptions SET status = 'disabled', \
                disabled_reason = 'disabled automatically: its circuit stayed open past circuit.auto_disable_after_hours' \
             WHERE status = 'active' AND circuit_state <> 'closed' AND circuit_opened_at < ?1 \
             RETURNING id",
        )
        .bind(before)
        .fetch_all(&mut *tx)
        .await?;
        if ids.is_empty() {
            tx.rollback().await?;
            return Ok(0);
        }
        Self::bump_version(&mut tx).await?;
        for id in &ids {
            Self::park(&mut tx, id, now).await?;
        }
        tx.commit().await?;
        self.invalidate();
        Ok(ids.len() as u64)
    }

    async fn delivery_counts(&self) -> Result<Vec<(String, i64)>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(super::stats::COUNT_BY_STATE)
            .fetch_all(&self.reader)
            .await?;
        Ok(rows)
    }

    async fn stats(&self, since: Millis) -> Result<super::stats::StatsSnapshot> {
        Ok(super::stats::read_stats!(&self.reader, since))
    }

    async fn attempt_tail(
        &self,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Vec<super::stats::AttemptTail>> {
        Ok(super::stats::read_attempt_tail!(&self.reader, after, limit))
    }

    async fn record_plugin_counters(
        &self,
        node: &str,
        counters: &[super::stats::PluginCounters],
    ) -> Result<()> {
        super::stats::write_plugin_counters!(&self.writer, node, counters, crate::model::now_ms());
        Ok(())
    }

    async fn next_due_in_ms(&self) -> Result<Option<i64>> {
        let row = sqlx::query(
            "SELECT MIN(next_attempt_at) AS due FROM deliveries \
             WHERE state IN ('pending', 'scheduled')",
        )
        .fetch_one(&self.reader)
        .await?;
        Ok(row
            .try_get::<Option<i64>, _>("due")?
            .map(|at| at - now_ms()))
    }

    fn work_signal(&self) -> Arc<Notify> {
        self.work.clone()
    }
}
