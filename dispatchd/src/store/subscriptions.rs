//! The subscriptions role, written once for both backends: every statement
//! here is the same SQL in both dialects (`sql`), except how a deleted
//! subscription's deliveries go (PostgreSQL deletes their attempts in the
//! same statement; SQLite's foreign keys cascade).

use async_trait::async_trait;

use super::db::Tx;
use super::rows::{self, SubscriptionRow};
use super::sql::{self, SubscriptionJson};
use super::{Backend, Page, Result, SubscriptionSnapshot, ordering};
use crate::model::{Subscription, SubscriptionStatus};

/// Subscriptions and their status. Every change bumps
/// `subscriptions_version` as the first statement of its transaction, so
/// ingest never fans out over a stale list.
#[async_trait]
pub trait SubscriptionStore: Backend {
    /// Every subscription, from a cache invalidated by this node's changes
    /// (another node's changes are caught by the version check at ingest).
    async fn subscriptions(&self) -> Result<SubscriptionSnapshot> {
        if let Some(snap) = self.cache().get() {
            return Ok(snap);
        }
        // One transaction: the version and the rows of one moment (on
        // PostgreSQL, READ COMMITTED reads the version first; a change
        // between the two reads makes the snapshot look older than it is,
        // which ingest detects, never the reverse).
        let mut tx = self.reads().begin(self.work()).await?;
        let (version, found, tenants): (i64, Vec<SubscriptionRow>, Vec<(String, Option<i32>)>) =
            on!(tx, |c| (
                sqlx::query_scalar(sql::VERSION).fetch_one(&mut **c).await?,
                sqlx::query_as(sql::ALL_SUBSCRIPTIONS)
                    .fetch_all(&mut **c)
                    .await?,
                sqlx::query_as("SELECT id, rate_limit FROM tenants")
                    .fetch_all(&mut **c)
                    .await?,
            ));
        tx.commit().await?;
        let tenants = tenants
            .into_iter()
            .map(|(id, rate)| (id, rate.and_then(|r| u32::try_from(r).ok())))
            .collect();
        let snap = SubscriptionSnapshot::new(version, rows::all(found)?, tenants);
        self.cache().put(snap.clone());
        Ok(snap)
    }

    /// Every subscription as of now: the cache when its version is still
    /// the database's (one small read), else a fresh read. For callers off
    /// the ingest path, which have no commit-time check to catch another
    /// node's change.
    async fn current_subscriptions(&self) -> Result<SubscriptionSnapshot> {
        if let Some(snap) = self.cache().get() {
            let version: i64 = on!(self.reads(), |p| sqlx::query_scalar(sql::VERSION)
                .fetch_one(p)
                .await?);
            if version == snap.version {
                return Ok(snap);
            }
            self.cache().invalidate();
        }
        self.subscriptions().await
    }

    async fn create_subscription(&self, s: &Subscription) -> Result<()> {
        let j = SubscriptionJson::of(s)?;
        let mut tx = self.writes().begin(self.work()).await?;
        tx.bump_version().await?;
        on!(tx, |c| {
            bind_subscription!(sqlx::query(sql::INSERT_SUBSCRIPTION), s, &j)
                .execute(&mut **c)
                .await?;
        });
        tx.commit().await?;
        self.cache().invalidate();
        Ok(())
    }

    async fn get_subscription(&self, id: &str) -> Result<Option<Subscription>> {
        let row: Option<SubscriptionRow> = on!(self.reads(), |p| sqlx::query_as(sql::SUBSCRIPTION)
            .bind(id)
            .fetch_optional(p)
            .await?);
        row.map(Subscription::try_from).transpose()
    }

    /// A page of subscriptions; only `tenant_id`'s when it is set.
    async fn list_subscriptions(
        &self,
        page: &Page,
        tenant_id: Option<&str>,
    ) -> Result<Vec<Subscription>> {
        let found: Vec<SubscriptionRow> =
            on!(self.reads(), |p| sqlx::query_as(sql::LIST_SUBSCRIPTIONS)
                .bind(&page.after)
                .bind(i64::from(page.limit))
                .bind(tenant_id)
                .fetch_all(p)
                .await?);
        rows::all(found)
    }

    /// Replaces a subscription's fields; false when it does not exist. A
    /// change of ordering applies to the deliveries not yet sent, in the
    /// same transaction (`ordering::reorder`).
    async fn update_subscription(&self, s: &Subscription) -> Result<bool> {
        let j = SubscriptionJson::of(s)?;
        let mut tx = self.writes().begin(self.work()).await?;
        tx.bump_version().await?;
        let before: Option<(String, String)> = on!(tx, |c| sqlx::query_as(
            "SELECT ordering, ordering_on_dead FROM subscriptions WHERE id = $1"
        )
        .bind(&s.id)
        .fetch_optional(&mut **c)
        .await?);
        let Some((ordering, on_dead)) = before else {
            return Ok(false);
        };
        on!(tx, |c| {
            bind_subscription!(sqlx::query(sql::UPDATE_SUBSCRIPTION), s, &j)
                .execute(&mut **c)
                .await?;
        });
        let before = (
            rows::parse("subscriptions", &s.id, "ordering", &ordering)?,
            rows::parse("subscriptions", &s.id, "ordering_on_dead", &on_dead)?,
        );
        ordering::reorder(&mut tx, &s.id, before, (s.ordering, s.ordering_on_dead)).await?;
        tx.commit().await?;
        self.cache().invalidate();
        Ok(true)
    }

    /// Deletes it and its deliveries not yet sent (history — delivered,
    /// dead, in flight — stays visible on the event); false when absent.
    async fn delete_subscription(&self, id: &str) -> Result<bool> {
        let mut tx = self.writes().begin(self.work()).await?;
        tx.bump_version().await?;
        // The subscription row first, as every writer that locks it and
        // then its deliveries (a completion) does: no lock cycle.
        let n = on!(tx, |c| sqlx::query(sql::DELETE_SUBSCRIPTION)
            .bind(id)
            .execute(&mut **c)
            .await?
            .rows_affected());
        delete_undelivered(&mut tx, &[id.to_string()]).await?;
        tx.commit().await?;
        self.cache().invalidate();
        Ok(n == 1)
    }

    /// Sets a subscription's status: `Paused` and `Disabled` park its
    /// waiting deliveries, `Active` closes its circuit and unparks them.
    /// `None` when there is no such subscription.
    async fn set_status(
        &self,
        id: &str,
        status: SubscriptionStatus,
        reason: Option<&str>,
    ) -> Result<Option<Subscription>> {
        let mut tx = self.writes().begin(self.work()).await?;
        tx.bump_version().await?;
        let now = tx.now().await?;
        let active = status == SubscriptionStatus::Active;
        let n = on!(tx, |c| sqlx::query(sql::SET_STATUS)
            .bind(id)
            .bind(status.as_str())
            .bind(reason)
            .bind(active)
            .bind(now)
            .execute(&mut **c)
            .await?
            .rows_affected());
        if n == 0 {
            return Ok(None);
        }
        if tx.park(&[id.to_string()], active).await? > 0 && active {
            tx.wake().await?;
        }
        let row: SubscriptionRow = on!(tx, |c| sqlx::query_as(sql::SUBSCRIPTION)
            .bind(id)
            .fetch_one(&mut **c)
            .await?);
        tx.commit().await?;
        self.cache().invalidate();
        Subscription::try_from(row).map(Some)
    }
}

/// Deletes the deliveries not yet sent (pending, scheduled, parked) of
/// these subscriptions, in the caller's transaction, after it deleted or
/// locked their rows; returns how many.
pub(super) async fn delete_undelivered(tx: &mut Tx, subscriptions: &[String]) -> Result<u64> {
    ordering::lock_subscriptions(tx, subscriptions).await?;
    let n: i64 = on!(
        tx,
        pg => |c| {
            // Two statements, each matching one partial index: no index
            // covers all three states.
            let mut n = 0;
            for statement in [
                delete_with_attempts!(
                    "DELETE FROM deliveries d WHERE d.subscription_id = ANY($1) \
                     AND d.state IN ('pending', 'scheduled')"
                ),
                delete_with_attempts!(
                    "DELETE FROM deliveries d WHERE d.subscription_id = ANY($1) \
                     AND d.state = 'paused'"
                ),
                delete_with_attempts!(
                    "DELETE FROM deliveries d WHERE d.subscription_id = ANY($1) \
                     AND d.ordering_key IS NOT NULL AND d.state = 'held'"
                ),
            ] {
                n += sqlx::query_scalar::<_, i64>(statement)
                    .bind(subscriptions)
                    .fetch_one(&mut **c)
                    .await?;
            }
            n
        },
        sqlite => |c| {
            // As above: one statement per partial index.
            let ids = rows::to_json(subscriptions);
            let mut n = 0u64;
            for statement in [
                "DELETE FROM deliveries WHERE subscription_id IN (SELECT value FROM json_each($1)) \
                 AND state IN ('pending', 'scheduled')",
                "DELETE FROM deliveries WHERE subscription_id IN (SELECT value FROM json_each($1)) \
                 AND state = 'paused'",
                "DELETE FROM deliveries WHERE subscription_id IN (SELECT value FROM json_each($1)) \
                 AND ordering_key IS NOT NULL AND state = 'held'",
            ] {
                n += sqlx::query(statement)
                    .bind(&ids)
                    .execute(&mut **c)
                    .await?
                    .rows_affected();
            }
            i64::try_from(n).unwrap_or(i64::MAX)
        },
    );
    ordering::forget(tx, subscriptions).await?;
    Ok(u64::try_from(n).unwrap_or_default())
}
