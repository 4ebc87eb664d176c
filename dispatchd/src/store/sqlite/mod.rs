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

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use tokio::sync::Notify;

use super::{Result, SnapshotCache, Store, StoreError};
use crate::config::Config;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");

/// WAL pages written before the writer copies them back into the file (a
/// checkpoint). SQLite's default, 1,000 pages (4 MiB), checkpointed every
/// few commits once deliveries spread over many endpoints, each dirtying
/// its own index pages: a page rewritten by many commits was copied back
/// each time. 8,000 pages (32 MiB of WAL) copy it back once; recovery
/// after a crash replays at most that.
const WAL_CHECKPOINT_PAGES: &str = "8000";

/// The SQLite implementation of every store role.
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    cache: SnapshotCache,
    work: Arc<Notify>,
    lanes: crate::store::queue::LaneCursor,
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
            .connect_with(
                opts.clone()
                    .pragma("wal_autocheckpoint", WAL_CHECKPOINT_PAGES),
            )
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
            lanes: Default::default(),
            work: Arc::new(Notify::new()),
        })
    }
}

super::impl_roles!(SqliteStore, Sqlite, reader, writer, MIGRATOR);

/// Every lifecycle method is the shared default: the file has no server
/// to ping.
impl Store for SqliteStore {}
