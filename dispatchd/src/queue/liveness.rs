//! Node liveness: this node's heartbeat, and the deliveries of nodes whose
//! heartbeat stopped taken back at once.
//!
//! Every third of `queue.node_timeout_secs` the node records that it is
//! alive (which also counts the live nodes, for rate-limit shares) and hands
//! back to the queue the in-flight deliveries of any node silent for longer
//! than the timeout — a `kill -9`, a crash, a lost host — without using up
//! an attempt, since no outcome of theirs was recorded. A node that was only
//! paused past the timeout keeps sending what it held; its outcomes are then
//! fenced off by the claim number (the delivery may reach its receiver
//! twice: at least once). The lease (`queue.lease_secs`) stays the backstop
//! for a node that beats but never reports.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::store::Store;

/// Beats and takes back dead nodes' work until `shutdown`.
pub async fn run(
    store: Arc<dyn Store>,
    node: String,
    timeout: Duration,
    live_nodes: Arc<AtomicU32>,
    shutdown: CancellationToken,
) {
    let every = (timeout / 3).max(Duration::from_millis(250));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.cancelled() => return,
        }
        beat(store.as_ref(), &node, timeout, &live_nodes).await;
    }
}

/// One heartbeat, then the dead nodes' deliveries handed back. The server
/// runs one before the worker starts, so a restarted node (or the only
/// SQLite node) sends what its previous run held at once.
pub async fn beat(store: &dyn Store, node: &str, timeout: Duration, live_nodes: &AtomicU32) {
    match store.heartbeat(node, timeout).await {
        Ok(n) => live_nodes.store(n, Ordering::Relaxed),
        Err(e) => {
            tracing::warn!(error = %e, "heartbeat failed");
            return;
        }
    }
    match store.return_orphaned_leases(node, timeout).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            count = n,
            "took back the deliveries of nodes whose heartbeat stopped"
        ),
        Err(e) => tracing::warn!(error = %e, "taking back dead nodes' deliveries failed"),
    }
}
