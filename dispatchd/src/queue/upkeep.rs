//! Upkeep: vacuums PostgreSQL's queue tables when dead row versions pile
//! up, and analyzes them when their size has moved (SQLite has none to
//! vacuum).

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::store::Store;

/// Keeps PostgreSQL's tables vacuumed: every claim and completion leaves a
/// dead row version behind, and scans of the queue slow down as they pile
/// up (measured: a 10-minute run at 11,000 events/s fell from 10,660 to
/// 7,087 deliveries/s with no vacuum; BENCHMARKS.md). Autovacuum may be
/// off, or wake only once a minute, so the node checks every 2 s.
pub async fn upkeep(store: Arc<dyn Store>, cfg: Arc<Config>, shutdown: CancellationToken) {
    let min_dead = cfg.retention.vacuum_dead_rows;
    if min_dead == 0 || store.backend() != "postgres" {
        return;
    }
    loop {
        // Shutdown is only heard between vacuums: a VACUUM cut off midway
        // would leave its connection, and the lock it holds, in the pool.
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = shutdown.cancelled() => return,
        }
        let started = std::time::Instant::now();
        match store.vacuum(min_dead).await {
            Ok(tables) if tables.is_empty() => {}
            Ok(tables) => tracing::info!(
                ?tables,
                ms = started.elapsed().as_millis() as u64,
                "vacuumed or analyzed"
            ),
            Err(e) => tracing::warn!(error = %e, "vacuum failed"),
        }
    }
}
