//! Durable storage behind one interface, with a PostgreSQL and an embedded
//! SQLite implementation.
//!
//! The store owns the schema, the queue's claim/complete statements and the
//! fencing rules. It knows nothing of HTTP or WASM: callers hand it domain
//! types (`crate::model`) and get domain types back. Both implementations
//! pass the same behavioural tests (`tests/it/store`).
//!
//! The interface is cut by role, one trait each (`SubscriptionStore`,
//! `EventStore`, `QueueStore`, `DeadLetterStore`, `UpkeepStore`,
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
mod error;
mod events;
mod plan;
mod postgres;
mod queue;
mod rows;
mod sqlite;
pub mod stats;
mod subscriptions;
mod upkeep;

use std::sync::Arc;

use async_trait::async_trait;

pub use dead_letters::DeadLetterStore;
pub use error::{Result, StoreError};
pub use events::EventStore;
pub use postgres::PgStore;
pub use queue::QueueStore;
pub use sqlite::SqliteStore;
pub use stats::StatsStore;
pub use subscriptions::SubscriptionStore;
pub use upkeep::UpkeepStore;

use crate::config::Config;
use crate::model::Subscription;

/// Every role trait, for `use crate::store::prelude::*`.
pub mod prelude {
    pub use super::{
        DeadLetterStore, EventStore, QueueStore, StatsStore, Store, SubscriptionStore, UpkeepStore,
    };
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

/// The whole store: every role, plus opening and health.
#[async_trait]
pub trait Store:
    SubscriptionStore + EventStore + QueueStore + DeadLetterStore + UpkeepStore + StatsStore
{
    /// `postgres` or `sqlite`.
    fn backend(&self) -> &'static str;

    /// Applies pending migrations.
    async fn migrate(&self) -> Result<()>;

    /// Whether the database answers and the schema is current.
    async fn ready(&self) -> Result<()>;

    /// A cheap round trip that does not wait for a pooled connection (the
    /// ingest gate's health check).
    async fn ping(&self) -> Result<()>;

    /// Notified when new work may be due: by this node's own writes and, on
    /// PostgreSQL, by every other node's (LISTEN/NOTIFY).
    fn work_signal(&self) -> Arc<tokio::sync::Notify>;
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

/// The migrations applied must be all the binary knows.
fn check_migrations(applied: i64, migrator: &sqlx::migrate::Migrator) -> Result<()> {
    let known = i64::try_from(migrator.iter().count()).unwrap_or(i64::MAX);
    if applied < known {
        return Err(StoreError::Unavailable("migrations not applied".into()));
    }
    Ok(())
}
