//! The ingest gate: fails ingest fast while the database is unreachable.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::store::Store;

/// Fails ingest fast while the database is unreachable. `watch` pings the
/// database every 250 ms on a connection of its own (`Store::ping`, 500 ms
/// timeout) and closes the gate when a ping fails (only then: a busy pool
/// or lock contention is not an outage). While it is closed every ingest is
/// answered 503 at once, and requests already waiting on the database give
/// up; the next good ping reopens it.
#[derive(Default)]
pub struct Gate {
    down: AtomicBool,
    changed: Notify,
}

impl Gate {
    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::Acquire)
    }

    fn set(&self, down: bool) {
        if self.down.swap(down, Ordering::AcqRel) != down {
            if down {
                tracing::warn!("database unreachable: ingest answers 503 until it is back");
            } else {
                tracing::info!("database reachable again: ingest resumes");
            }
            self.changed.notify_waiters();
        }
    }

    /// Resolves once the gate is closed.
    pub(super) async fn closed(&self) {
        loop {
            let changed = self.changed.notified();
            if self.is_down() {
                return;
            }
            changed.await;
        }
    }

    /// Pings the database until shutdown, opening and closing the gate.
    pub async fn watch(self: Arc<Self>, store: Arc<dyn Store>, shutdown: CancellationToken) {
        loop {
            let ok = matches!(
                tokio::time::timeout(Duration::from_millis(500), store.ping()).await,
                Ok(Ok(()))
            );
            self.set(!ok);
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                _ = shutdown.cancelled() => return,
            }
        }
    }
}
