//! Durable storage behind one interface, with a PostgreSQL and an embedded
//! SQLite implementation.
//!
//! The store owns the schema, the queue's claim/complete statements and the
//! fencing rules. It knows nothing of HTTP or WASM: callers hand it domain
//! types (`crate::model`) and get domain types back. Both implementations
//! pass the same behavioural tests (`tests/it/store`).
//!
//! The interface is cut by role, one trait each (`SubscriptionStore`,
//! `TenantStore`, `EventStore`, `QueueStore`, `DeadLetterStore`, `UpkeepStore`,
//! `StatsStore`), and each backend implements each role in a file of the
//! same name (`postgres/queue.rs` beside `sqlite/queue.rs`), so the two
//! dialects compare file by file. SQL that is the same in both dialects is
//! written once in `sql`; decisions are pure functions in `plan`. `Store`
//! is all of them plus the lifecycle: a caller holding `Arc<dyn Store>`
//! calls every role's methods as they are; code generic over a concrete
//! store brings the roles into scope with `use crate::store::prelude::*`.

// Integer conversions between the model (u32, u64) and the columns (INT,
// BIGINT) are checked here: a wrapped value would be a corrupt row.
#![warn(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]

#[macro_use]
mod sql;
#[macro_use]
mod db;
mod dead_letters;
mod egress;
mod error;
mod event_types;
mod events;
mod ordering;
mod outbox;
mod plan;
mod postgres;
mod queue;
mod rows;
mod sqlite;
pub mod stats;
mod subscriptions;
mod tenants;
mod upkeep;

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;

pub use dead_letters::DeadLetterStore;
pub use error::{Result, StoreError};
pub use event_types::EventTypeStore;
pub use events::EventStore;
pub use outbox::{OutboxBatch, OutboxStore};
pub use postgres::PgStore;
pub use queue::QueueStore;
pub use sqlite::SqliteStore;
pub use stats::StatsStore;
pub use subscriptions::SubscriptionStore;
pub use tenants::TenantStore;
pub use upkeep::UpkeepStore;

use crate::config::Config;
use crate::model::Subscription;

/// Every role trait, for `use crate::store::prelude::*`.
pub mod prelude {
    pub use super::{
        DeadLetterStore, EventStore, EventTypeStore, OutboxStore, QueueStore, StatsStore, Store,
        SubscriptionStore, TenantStore, UpkeepStore,
    };
}

/// A point-in-time list of subscriptions and tenants, and the version it
/// was read at.
#[derive(Debug, Clone, Default)]
pub struct SubscriptionSnapshot {
    pub version: i64,
    /// Grouped by tenant (global ones first), by id within a tenant.
    pub subscriptions: Arc<Vec<Subscription>>,
    /// Where the global subscriptions, and each tenant's, sit in
    /// `subscriptions`.
    global: Range<usize>,
    lanes: Arc<HashMap<String, Range<usize>>>,
    /// Every tenant, with its ingest rate limit.
    tenants: Arc<HashMap<String, Option<u32>>>,
}

impl SubscriptionSnapshot {
    pub fn new(
        version: i64,
        mut subscriptions: Vec<Subscription>,
        tenants: HashMap<String, Option<u32>>,
    ) -> Self {
        subscriptions.sort_by(|a, b| (&a.tenant_id, &a.id).cmp(&(&b.tenant_id, &b.id)));
        let global = 0..subscriptions.partition_point(|s| s.tenant_id.is_none());
        let mut lanes: HashMap<String, Range<usize>> = HashMap::new();
        for (i, s) in subscriptions.iter().enumerate().skip(global.end) {
            if let Some(t) = &s.tenant_id {
                lanes
                    .entry(t.clone())
                    .and_modify(|r| r.end = i + 1)
                    .or_insert(i..i + 1);
            }
        }
        Self {
            version,
            global,
            subscriptions: Arc::new(subscriptions),
            lanes: Arc::new(lanes),
            tenants: Arc::new(tenants),
        }
    }

    /// The subscriptions of one tenant (`None`: the global ones).
    pub fn lane(&self, tenant_id: Option<&str>) -> &[Subscription] {
        let range = match tenant_id {
            None => Some(&self.global),
            Some(t) => self.lanes.get(t),
        };
        range.map_or(&[], |r| &self.subscriptions[r.clone()])
    }

    /// Whether the tenant exists, and its ingest limit: `None` when there
    /// is no such tenant.
    pub fn tenant(&self, id: &str) -> Option<Option<u32>> {
        self.tenants.get(id).copied()
    }
}

/// A page request: rows after `after` (an opaque cursor), at most `limit`.
#[derive(Debug, Clone)]
pub struct Page {
    pub after: Option<String>,
    pub limit: u32,
}

/// The whole store: every role, plus opening and health.
#[async_trait]
pub trait Store:
    SubscriptionStore
    + TenantStore
    + EventStore
    + EventTypeStore
    + OutboxStore
    + QueueStore
    + DeadLetterStore
    + UpkeepStore
    + StatsStore
{
    /// `postgres` or `sqlite`.
    fn backend(&self) -> &'static str {
        match self.writes() {
            db::Db::Pg(_) => "postgres",
            db::Db::Sqlite(_) => "sqlite",
        }
    }

    /// Applies pending migrations.
    async fn migrate(&self) -> Result<()> {
        let migrator = self.migrator();
        on!(self.writes(), |p| migrator.run(p).await?);
        Ok(())
    }

    /// Whether the database answers and the schema is current.
    async fn ready(&self) -> Result<()> {
        let applied: i64 = on!(self.reads(), |p| sqlx::query_scalar(
            "SELECT COUNT(*) FROM _sqlx_migrations WHERE success"
        )
        .fetch_one(p)
        .await?);
        let known = i64::try_from(self.migrator().iter().count()).unwrap_or(i64::MAX);
        if applied < known {
            return Err(StoreError::Unavailable("migrations not applied".into()));
        }
        Ok(())
    }

    /// A cheap round trip that does not wait for a pooled connection (the
    /// ingest gate's health check). The embedded SQLite file has no server
    /// to lose, so by default there is nothing to check.
    async fn ping(&self) -> Result<()> {
        Ok(())
    }

    /// Notified when new work may be due: by this node's own writes and, on
    /// PostgreSQL, by every other node's (LISTEN/NOTIFY).
    fn work_signal(&self) -> Arc<tokio::sync::Notify> {
        self.work().clone()
    }
}

/// What every role's shared code needs from a backend: its pools, its
/// subscription cache and its work signal. Implemented by `PgStore` and
/// `SqliteStore`; not meant for callers outside the store.
#[doc(hidden)]
pub trait Backend: Send + Sync + 'static {
    /// The pool reads go to.
    fn reads(&self) -> db::Db<'_>;
    /// The pool writes go to (SQLite's single writer).
    fn writes(&self) -> db::Db<'_>;
    /// Subscriptions as last read by this node.
    fn cache(&self) -> &SnapshotCache;
    /// Signalled when this node's writes made work due.
    fn work(&self) -> &Arc<tokio::sync::Notify>;
    /// Where this node's next fair claim starts.
    fn lanes(&self) -> &queue::LaneCursor;
    /// The backend's migrations.
    fn migrator(&self) -> &'static sqlx::migrate::Migrator;
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

/// Implements `Backend` for a store whose pools are the fields `$reads` and
/// `$writes`, and every role, which is then all shared code.
macro_rules! impl_roles {
    ($store:ty, $pool:ident, $reads:ident, $writes:ident, $migrator:expr) => {
        impl $crate::store::Backend for $store {
            fn reads(&self) -> $crate::store::db::Db<'_> {
                $crate::store::db::Db::$pool(&self.$reads)
            }
            fn writes(&self) -> $crate::store::db::Db<'_> {
                $crate::store::db::Db::$pool(&self.$writes)
            }
            fn cache(&self) -> &$crate::store::SnapshotCache {
                &self.cache
            }
            fn work(&self) -> &std::sync::Arc<tokio::sync::Notify> {
                &self.work
            }
            fn lanes(&self) -> &$crate::store::queue::LaneCursor {
                &self.lanes
            }
            fn migrator(&self) -> &'static sqlx::migrate::Migrator {
                &$migrator
            }
        }
        impl $crate::store::SubscriptionStore for $store {}
        impl $crate::store::TenantStore for $store {}
        impl $crate::store::EventStore for $store {}
        impl $crate::store::EventTypeStore for $store {}
        impl $crate::store::OutboxStore for $store {}
        impl $crate::store::QueueStore for $store {}
        impl $crate::store::DeadLetterStore for $store {}
        impl $crate::store::UpkeepStore for $store {}
        impl $crate::store::StatsStore for $store {}
    };
}
use impl_roles;

/// The subscription cache both stores keep: filled on read, emptied by
/// every change this node makes.
#[derive(Default)]
#[doc(hidden)]
pub struct SnapshotCache(std::sync::Mutex<Option<SubscriptionSnapshot>>);

impl SnapshotCache {
    pub(crate) fn get(&self) -> Option<SubscriptionSnapshot> {
        self.0.lock().expect("cache lock").clone()
    }
    pub(crate) fn put(&self, snap: SubscriptionSnapshot) {
        *self.0.lock().expect("cache lock") = Some(snap);
    }
    pub(crate) fn invalidate(&self) {
        *self.0.lock().expect("cache lock") = None;
    }
}

/// Why an endpoint was disabled, as operational events name it, from the
/// reason the store recorded: `gone` (a 410), `sustained_failures` (its
/// circuit stayed open too long) or `operator`.
pub fn disabled_reason(recorded: Option<&str>) -> &'static str {
    match recorded {
        Some(plan::GONE) => "gone",
        Some(plan::AUTO_DISABLED) => "sustained_failures",
        _ => "operator",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The three reasons of `dispatch.endpoint.disabled`, from what each
    /// disabling path records.
    #[test]
    fn disabled_reasons_name_their_cause() {
        assert_eq!(disabled_reason(Some(plan::GONE)), "gone");
        assert_eq!(
            disabled_reason(Some(plan::AUTO_DISABLED)),
            "sustained_failures"
        );
        assert_eq!(disabled_reason(Some("maintenance window")), "operator");
        assert_eq!(disabled_reason(None), "operator");
    }
}
