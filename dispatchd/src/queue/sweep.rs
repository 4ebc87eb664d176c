//! The sweeper: every `retention.sweep_interval_secs` it returns expired
//! leases (the backstop; `liveness` catches dead nodes sooner), probes open circuits,
//! disables endpoints that kept failing, and prunes delivered rows past
//! retention.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::model::now_ms;
use crate::store::Store;

/// Returns expired leases to the queue, probes open circuits, disables
/// endpoints that kept failing, and prunes old delivered rows.
pub async fn sweep(store: Arc<dyn Store>, cfg: Arc<Config>, shutdown: CancellationToken) {
    let every = Duration::from_secs(cfg.retention.sweep_interval_secs);
    let keep_ms = (cfg.retention.delivered_hours * 3600 * 1000) as i64;
    let mut tick = 0u64;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.cancelled() => return,
        }
        match store.reap_expired_leases().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                count = n,
                "returned deliveries with expired leases to the queue"
            ),
            Err(e) => tracing::warn!(error = %e, "lease reaper failed"),
        }
        match store.probe_open_circuits().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(count = n, "probing endpoints with open circuits"),
            Err(e) => tracing::warn!(error = %e, "circuit probe failed"),
        }
        let disable_after = cfg.circuit.auto_disable_after_hours as i64 * 3_600_000;
        if disable_after > 0 {
            match store.auto_disable(now_ms() - disable_after).await {
                Ok(0) => {}
                Ok(n) => tracing::warn!(count = n, "disabled endpoints that kept failing"),
                Err(e) => tracing::warn!(error = %e, "auto-disable failed"),
            }
        }
        // Pruning is heavier: once a minute at the default interval.
        if tick.is_multiple_of(6) {
            match store.prune_delivered(now_ms() - keep_ms).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(count = n, "pruned delivered deliveries past retention"),
                Err(e) => tracing::warn!(error = %e, "retention pruning failed"),
            }
        }
        // The ordered keys' safety net (a stalled line is a bug, never the
        // normal path): every ten minutes at the default interval.
        if tick.is_multiple_of(60) {
            match store.settle_stuck_lines().await {
                Ok(0) => {}
                Ok(n) => {
                    tracing::warn!(count = n, "let ordered deliveries go whose key had stalled")
                }
                Err(e) => tracing::warn!(error = %e, "settling ordered keys failed"),
            }
        }
        tick += 1;
    }
}
