//! The PostgreSQL store: production storage, shared by several nodes.
//!
//! Work is claimed with `FOR UPDATE SKIP LOCKED` under a lease measured on
//! the database's clock (`dispatch_now_ms()`), batches are written with
//! `unnest` arrays (one round trip per batch), and new work is announced
//! with `NOTIFY dispatch_work` so every node's workers wake at once.
//!
//! The roles' shared code (`store::{subscriptions, events, queue, …}`)
//! runs here through `Backend`; what is PostgreSQL's own is in a file per
//! role, mirrored by `store::sqlite`: `ingest` and `queue` (the hot path)
//! and `upkeep` (vacuum). This file opens the pool, listens for work and
//! pings.

pub(crate) mod ingest;
pub(crate) mod queue;
pub(crate) mod upkeep;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use tokio::sync::Notify;

use super::db::WORK_CHANNEL;
use super::{Result, SnapshotCache, Store, StoreError};
use crate::config::Config;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

/// The PostgreSQL implementation of every store role.
pub struct PgStore {
    pool: PgPool,
    opts: PgConnectOptions,
    /// `ping`'s own connection: health checks never queue behind the pool.
    pinger: tokio::sync::Mutex<Option<sqlx::PgConnection>>,
    cache: SnapshotCache,
    work: Arc<Notify>,
    lanes: crate::store::queue::LaneCursor,
}

impl PgStore {
    pub async fn connect(cfg: &Config) -> Result<Self> {
        let opts: PgConnectOptions = cfg
            .database
            .url
            .expose()
            .parse()
            .map_err(|e| StoreError::Other(format!("database.url: {e}")))?;
        // JIT off: the queue's statements are short, but their cost
        // estimates pass `jit_above_cost` once the table holds a backlog,
        // and then every claim spent ~170 ms compiling itself (the decay of
        // long runs). OLTP statements never win that back.
        let opts = opts.application_name("dispatchd").options([("jit", "off")]);
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
            cache: SnapshotCache::default(),
            lanes: Default::default(),
            work,
        })
    }

    /// The underlying pool, for tests and tools.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

super::impl_roles!(PgStore, Pg, pool, pool, MIGRATOR);

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
}
