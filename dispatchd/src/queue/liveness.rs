//! Node liveness: this node's heartbeat, and the deliveries of nodes whose
//! heartbeat stopped taken back at once.
//!
//! Every third of `queue.node_timeout_secs` the node records that it is
//! alive (which also counts the live nodes, for rate-limit shares) and hands
//! back to the queue the in-flight deliveries of any node silent for longer
//! than the timeout — a `kill -9`, a crash, a lost host — without using up
//! an attempt, since no outcome of theirs was recorded. A node that was only
//! paused past the timeout keeps sending what it held; its outcomes are then
//! fenced off by the attempt and claim numbers (the delivery may reach its
//! receiver twice: at least once). The lease (`queue.lease_secs`) stays the
//! backstop for a node that beats but never reports.
//!
//! Two guards keep a live node from being taken for dead. A node whose own
//! heartbeat has failed for a timeout stops claiming (`Beat::fresh`), so it
//! never holds new work the others would take back; and after a database
//! outage a node first beats for a whole timeout before it hands back
//! anything, since every other node's heartbeat is just as old as its own.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::model::now_ms;
use crate::store::Store;

/// What the liveness task shares with the worker.
#[derive(Debug, Default)]
pub struct Beat {
    /// Nodes sharing the database (rate limits are split between them).
    pub live_nodes: AtomicU32,
    /// When this node's heartbeat last succeeded (ms, process clock).
    last_ok: AtomicI64,
}

impl Beat {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            live_nodes: AtomicU32::new(1),
            last_ok: AtomicI64::new(0),
        })
    }

    /// Whether this node's heartbeat succeeded within `timeout`: the others
    /// still count it alive, so it may claim.
    pub fn fresh(&self, timeout: Duration) -> bool {
        let age = now_ms() - self.last_ok.load(Ordering::Relaxed);
        age < i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX)
    }
}

/// Beats and takes back dead nodes' work until `shutdown`.
pub async fn run(
    store: Arc<dyn Store>,
    node: String,
    timeout: Duration,
    beat: Arc<Beat>,
    shutdown: CancellationToken,
) {
    let mut every = tokio::time::interval((timeout / 3).max(Duration::from_millis(250)));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    every.tick().await;
    // The server's first beat just handed back what was orphaned.
    let mut healthy_since = beat.fresh(timeout).then(Instant::now);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        if !heartbeat(store.as_ref(), &node, timeout, &beat).await {
            healthy_since = None;
            continue;
        }
        let since = *healthy_since.get_or_insert_with(Instant::now);
        if since.elapsed() >= timeout {
            take_back(store.as_ref(), &node, timeout).await;
        }
    }
}

/// The first beat, before the worker starts: this node is alive, and what
/// a dead node (or this node's previous run, on SQLite) held is due again
/// at once.
pub async fn first(store: &dyn Store, node: &str, timeout: Duration, beat: &Beat) {
    if heartbeat(store, node, timeout, beat).await {
        take_back(store, node, timeout).await;
    }
}

/// One heartbeat; whether it was recorded.
async fn heartbeat(store: &dyn Store, node: &str, timeout: Duration, beat: &Beat) -> bool {
    match store.heartbeat(node, timeout).await {
        Ok(n) => {
            beat.live_nodes.store(n, Ordering::Relaxed);
            beat.last_ok.store(now_ms(), Ordering::Relaxed);
            true
        }
        Err(e) => {
            tracing::warn!(error = %e, "heartbeat failed");
            false
        }
    }
}

async fn take_back(store: &dyn Store, node: &str, timeout: Duration) {
    match store.return_orphaned_leases(node, timeout).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            count = n,
            "took back the deliveries of nodes whose heartbeat stopped"
        ),
        Err(e) => tracing::warn!(error = %e, "taking back dead nodes' deliveries failed"),
    }
}
