//! The embedded SQLite store: the zero-setup default, single node.
//!
//! One writer connection serialises every write in-process (SQLite allows
//! one writer anyway; this avoids `SQLITE_BUSY` upgrades), a few reader
//! connections serve the API's lookups. WAL with `synchronous = FULL`: a
//! `kill -9` or power cut after a commit loses nothing acknowledged. Work is
//! announced in-process, since no other process shares the file. Each
//! statement is a round trip to the connection's worker thread (sqlx), so
//! batches go as one JSON array per statement, unpacked by `json_each`.
//!
//! As for PostgreSQL, the roles' shared code runs here through `Backend`;
//! SQLite's own hot path is in `ingest` and `queue` (there is nothing to
//! vacuum). This file opens the pools.

pub(crate) mod ingest;
pub(crate) mod queue;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use tokio::sync::Notify;

use super::db::Db;
use super::{
    Backend, DeadLetterStore, EventStore, QueueStore, Result, SnapshotCache, StatsStore, Store,
    StoreError, SubscriptionStore, UpkeepStore,
};
use crate::config::Config;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");

/// The SQLite implementation of every store role.
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    cache: SnapshotCache,
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
            cache: SnapshotCache::default(),
            work: Arc::new(Notify::new()),
        })
    }
}

impl Backend for SqliteStore {
    fn reads(&self) -> Db<'_> {
        Db::Sqlite(&self.reader)
    }
    fn writes(&self) -> Db<'_> {
        Db::Sqlite(&self.writer)
    }
    fn cache(&self) -> &SnapshotCache {
        &self.cache
    }
    fn work(&self) -> &Arc<Notify> {
        &self.work
    }
}

impl SubscriptionStore for SqliteStore {}
impl EventStore for SqliteStore {}
impl QueueStore for SqliteStore {}
impl DeadLetterStore for SqliteStore {}
impl UpkeepStore for SqliteStore {}
impl StatsStore for SqliteStore {}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.writer).await?;
        Ok(())
    }

    async fn ready(&self) -> Result<()> {
        let applied: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
                .fetch_one(&self.reader)
                .await?;
        super::check_migrations(applied, &MIGRATOR)
    }

    /// The embedded file has no server to lose: ingest is never gated.
    async fn ping(&self) -> Result<()> {
        Ok(())
    }

    fn work_signal(&self) -> Arc<Notify> {
        self.work.clone()
    }
}
