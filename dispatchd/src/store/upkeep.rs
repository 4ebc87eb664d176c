//! The upkeep role: what the sweeper runs every few seconds (heartbeat,
//! expired leases, circuit probes, auto-disable, retention) and the upkeep
//! task's vacuum. Written once; where the dialects differ the bodies sit
//! side by side: PostgreSQL counts live nodes and probes circuits under
//! `SKIP LOCKED` (several nodes share it), SQLite is the only node.

use std::time::Duration;

use async_trait::async_trait;

use super::{Backend, Result, ordering, plan, postgres, sql};
use crate::model::Millis;

/// How many stuck ordered lines one sweep settles at most.
const STUCK_LINES_PER_SWEEP: i64 = 1000;

/// What the sweeper and the upkeep task do: liveness, leases, circuits,
/// retention, vacuum.
#[async_trait]
pub trait UpkeepStore: Backend {
    /// Records that `node` is alive and returns how many nodes were seen
    /// within `ttl` (at least 1: this one).
    async fn heartbeat(&self, node: &str, ttl: Duration) -> Result<u32> {
        let ttl = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        let mut tx = self.writes().begin(self.work()).await?;
        let now = tx.now().await?;
        let live: i64 = on!(
            tx,
            pg => |c| {
                sqlx::query(sql::HEARTBEAT)
                    .bind(node)
                    .bind(now)
                    .execute(&mut **c)
                    .await?;
                // Forget nodes gone for a long while.
                sqlx::query("DELETE FROM nodes WHERE last_seen < $1")
                    .bind(now.saturating_sub(ttl.saturating_mul(100)))
                    .execute(&mut **c)
                    .await?;
                sqlx::query_scalar("SELECT COUNT(*) FROM nodes WHERE last_seen >= $1")
                    .bind(now.saturating_sub(ttl))
                    .fetch_one(&mut **c)
                    .await?
            },
            // One process owns the file: this node is the only one.
            sqlite => |c| {
                sqlx::query(sql::HEARTBEAT)
                    .bind(node)
                    .bind(now)
                    .execute(&mut **c)
                    .await?;
                sqlx::query("DELETE FROM nodes WHERE id <> $1")
                    .bind(node)
                    .execute(&mut **c)
                    .await?;
                1
            },
        );
        tx.commit().await?;
        Ok(u32::try_from(live.max(1)).unwrap_or(u32::MAX))
    }

    /// Hands back, without using up an attempt, the in-flight deliveries of
    /// every node but `node` whose heartbeat is older than `timeout` (a
    /// node gone from `nodes` counts as dead). On SQLite every other node
    /// is a previous run of this one, so at start this takes back at once
    /// whatever a killed process held. Returns how many.
    async fn return_orphaned_leases(&self, node: &str, timeout: Duration) -> Result<u64> {
        let timeout = i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX);
        let mut tx = self.writes().begin(self.work()).await?;
        let now = tx.now().await?;
        let alive_since = now.saturating_sub(timeout);
        // On PostgreSQL only claims older than the timeout: a node whose
        // first heartbeat had not landed yet keeps what it just claimed. On
        // SQLite every other node is a previous run of this process.
        let claimed_before = match self.writes() {
            super::db::Db::Pg(_) => alive_since,
            super::db::Db::Sqlite(_) => now.saturating_add(1),
        };
        let moved: Vec<Option<i64>> = on!(tx, |c| sqlx::query_scalar(sql::RETURN_ORPHANED)
            .bind(node)
            .bind(now)
            .bind(alive_since)
            .bind(claimed_before)
            .bind(plan::FREE_HANDBACKS)
            .bind(plan::HANDED_BACK)
            .fetch_all(&mut **c)
            .await?);
        let n = moved_on(&mut tx, moved).await?;
        if n > 0 {
            tx.wake().await?;
        }
        tx.commit().await?;
        Ok(n)
    }

    /// The safety net of ordered keys: lines whose held deliveries have
    /// waited a minute with none of the line out and no dead head blocking
    /// it (a head that left by a path that did not let the next go) are
    /// settled. Returns how many deliveries went.
    async fn settle_stuck_lines(&self) -> Result<u64> {
        let mut tx = self.writes().begin(self.work()).await?;
        let n = ordering::settle_stuck(&mut tx, STUCK_LINES_PER_SWEEP).await?;
        tx.commit().await?;
        Ok(n)
    }

    /// Returns deliveries whose lease expired to the queue (or to dead when
    /// that was their last attempt). Returns how many.
    async fn reap_expired_leases(&self) -> Result<u64> {
        let mut tx = self.writes().begin(self.work()).await?;
        let now = tx.now().await?;
        let moved: Vec<Option<i64>> = on!(tx, |c| sqlx::query_scalar(sql::REAP_EXPIRED)
            .bind(now)
            .bind(plan::LEASE_EXPIRED)
            .fetch_all(&mut **c)
            .await?);
        let n = moved_on(&mut tx, moved).await?;
        if n > 0 {
            tx.wake().await?;
        }
        tx.commit().await?;
        Ok(n)
    }

    /// Moves open circuits whose cooldown is over to half-open and lets one
    /// parked delivery of each through as the probe. Returns how many.
    async fn probe_open_circuits(&self) -> Result<u64> {
        let mut tx = self.writes().begin(self.work()).await?;
        let now = tx.now().await?;
        let due: Vec<String> = on!(
            tx,
            pg => |c|
                sqlx::query_scalar(concat!(
                    "UPDATE subscriptions SET circuit_state = 'half_open', ",
                    "circuit_next_probe_at = NULL WHERE id IN (SELECT id FROM subscriptions ",
                    "WHERE circuit_state = 'open' AND status = 'active' ",
                    "AND circuit_next_probe_at <= $1 FOR UPDATE SKIP LOCKED) RETURNING id"
                ))
                .bind(now)
                .fetch_all(&mut **c)
                .await?,
            sqlite => |c|
                sqlx::query_scalar(concat!(
                    "UPDATE subscriptions SET circuit_state = 'half_open', ",
                    "circuit_next_probe_at = NULL WHERE circuit_state = 'open' ",
                    "AND status = 'active' AND circuit_next_probe_at <= $1 RETURNING id"
                ))
                .bind(now)
                .fetch_all(&mut **c)
                .await?,
        );
        for id in &due {
            let released = on!(tx, |c| sqlx::query(sql::RELEASE_PROBE)
                .bind(id)
                .bind(now)
                .execute(&mut **c)
                .await?
                .rows_affected());
            if released == 0 {
                // Nothing parked to probe with: the next delivery decides.
                on!(tx, |c| {
                    sqlx::query(sql::CLOSE_CIRCUIT)
                        .bind(id)
                        .execute(&mut **c)
                        .await?;
                });
            }
        }
        if !due.is_empty() {
            tx.wake().await?;
        }
        tx.commit().await?;
        Ok(due.len() as u64)
    }

    /// Disables active subscriptions whose circuit opened before `before`.
    async fn auto_disable(&self, before: Millis) -> Result<u64> {
        let mut tx = self.writes().begin(self.work()).await?;
        tx.bump_version().await?;
        let ids: Vec<String> = on!(tx, |c| sqlx::query_scalar(sql::AUTO_DISABLE)
            .bind(before)
            .bind(plan::AUTO_DISABLED)
            .fetch_all(&mut **c)
            .await?);
        if ids.is_empty() {
            // Nothing changed: do not bump the version for nothing.
            tx.rollback().await?;
            return Ok(0);
        }
        tx.park(&ids, false).await?;
        tx.commit().await?;
        self.cache().invalidate();
        Ok(ids.len() as u64)
    }

    /// Deletes delivered deliveries (and their attempts) last updated before
    /// `before`, in batches, then events left with no deliveries that are
    /// older than it.
    async fn prune_delivered(&self, before: Millis) -> Result<u64> {
        let mut total = 0;
        loop {
            let n: u64 = on!(
                self.writes(),
                pg => |p|
                    sqlx::query_scalar::<_, i64>(delete_with_attempts!(
                        "DELETE FROM deliveries d WHERE d.id IN (SELECT id FROM deliveries \
                     WHERE state IN ('delivered', 'dropped') AND updated_at < $1 LIMIT $2)"
                    ))
                    .bind(before)
                    .bind(sql::PRUNE_BATCH)
                    .fetch_one(p)
                    .await?
                    .try_into()
                    .unwrap_or_default(),
                sqlite => |p|
                    sqlx::query(
                        "DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries \
                     WHERE state IN ('delivered', 'dropped') AND updated_at < $1 LIMIT $2)"
                    )
                    .bind(before)
                    .bind(sql::PRUNE_BATCH)
                    .execute(p)
                    .await?
                    .rows_affected(),
            );
            total += n;
            if n < sql::PRUNE_BATCH.unsigned_abs() {
                break;
            }
        }
        loop {
            let n = on!(self.writes(), |p| sqlx::query(sql::PRUNE_EVENTS)
                .bind(before)
                .execute(p)
                .await?
                .rows_affected());
            if n < sql::PRUNE_BATCH.unsigned_abs() {
                break;
            }
        }
        Ok(total)
    }

    /// Vacuums each of the store's tables holding at least `min_dead` dead
    /// row versions, unless another node is already at it; returns the
    /// tables vacuumed. Only PostgreSQL keeps dead versions (SQLite reuses
    /// a deleted row's space at once), so SQLite does nothing.
    async fn vacuum(&self, min_dead: u64) -> Result<Vec<String>> {
        Ok(on!(
            self.writes(),
            pg => |p| postgres::upkeep::vacuum(p, min_dead).await?,
            sqlite => |_p| Vec::new(),
        ))
    }
}

/// What a sweep statement moved (a row each: the id of an ordered one that
/// died, else NULL): a dead ordered one lets its key go on, or blocks it.
/// Returns how many moved.
async fn moved_on(tx: &mut super::db::Tx, moved: Vec<Option<i64>>) -> Result<u64> {
    let n = moved.len() as u64;
    let dead: Vec<i64> = moved.into_iter().flatten().collect();
    if !dead.is_empty() {
        ordering::after_exit(tx, &dead).await?;
    }
    Ok(n)
}
