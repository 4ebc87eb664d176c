//! The completer: writes finished attempts and releases in batches, one
//! transaction each, and keeps them through database outages.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, mpsc};

use super::{Done, backoff_pause};
use crate::circuit::CircuitPolicy;
use crate::model::{ClaimToken, Completion};
use crate::store::Store;

/// A finished send and the claim slot it holds until its outcome is
/// written: while the database refuses writes the slots stay taken, so the
/// claimer stops claiming instead of piling outcomes up in memory and
/// sending work whose lease would run out.
pub(super) struct Finished {
    pub done: Done,
    pub slot: OwnedSemaphorePermit,
}

/// Writes finished attempts in batches until every sender is gone.
///
/// While the database is away (`Unavailable`, `Contention`) it keeps the
/// batch, backs off and retries, adding results as they come (at most
/// `2 × queue.max_in_flight`: each holds its claim slot). Any other error means the
/// database refuses some row: the batch is written row by row and only the
/// refused rows are dropped (logged); their leases expire and the sweeper
/// sends those deliveries again, so nothing is lost.
pub(super) async fn run(
    store: Arc<dyn Store>,
    mut rx: mpsc::Receiver<Finished>,
    policy: CircuitPolicy,
) {
    const MAX_BATCH: usize = 500;
    let mut batch = Batch::default();
    loop {
        let Some(first) = rx.recv().await else { break };
        batch.take(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(m) => batch.take(m),
                Err(_) => break,
            }
        }
        let mut failures = 0;
        while !batch.is_written() {
            let result = match store.complete(&batch.completions, &policy).await {
                Ok(_) => {
                    batch.completions.clear();
                    store.release(&batch.releases).await
                }
                Err(e) => Err(e),
            };
            match result {
                Ok(_) => batch.releases.clear(),
                Err(e) if e.is_transient() => {
                    failures += 1;
                    tracing::warn!(error = %e, pending = batch.len(), "recording attempts failed; retrying");
                    tokio::time::sleep(backoff_pause(failures)).await;
                    while let Ok(m) = rx.try_recv() {
                        batch.take(m);
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "the database refused a batch; writing it one by one");
                    batch.write_one_by_one(store.as_ref(), &policy).await;
                }
            }
        }
        // Every outcome is written (or refused for good): free the slots.
        batch.slots.clear();
    }
}

/// The outcomes being written and the slots they hold.
#[derive(Default)]
struct Batch {
    completions: Vec<Completion>,
    releases: Vec<(ClaimToken, i64)>,
    slots: Vec<OwnedSemaphorePermit>,
}

impl Batch {
    fn take(&mut self, m: Finished) {
        match m.done {
            Done::Completed(x) => self.completions.push(x),
            Done::Released(t, delay) => self.releases.push((t, delay)),
        }
        self.slots.push(m.slot);
    }

    fn len(&self) -> usize {
        self.completions.len() + self.releases.len()
    }

    fn is_written(&self) -> bool {
        self.completions.is_empty() && self.releases.is_empty()
    }

    /// Writes each outcome alone, keeping those that failed transiently
    /// and dropping those the database refuses.
    async fn write_one_by_one(&mut self, store: &dyn Store, policy: &CircuitPolicy) {
        let mut kept = Vec::new();
        for c in self.completions.drain(..) {
            match store.complete(std::slice::from_ref(&c), policy).await {
                Ok(_) => {}
                Err(e) if e.is_transient() => kept.push(c),
                Err(e) => tracing::error!(
                    delivery = c.token.id,
                    error = %e,
                    "dropping an attempt the database refuses; the delivery will be sent again when its lease expires"
                ),
            }
        }
        self.completions = kept;
        let mut kept = Vec::new();
        for r in self.releases.drain(..) {
            match store.release(std::slice::from_ref(&r)).await {
                Ok(_) => {}
                Err(e) if e.is_transient() => kept.push(r),
                Err(e) => tracing::error!(
                    delivery = r.0.id,
                    error = %e,
                    "dropping a release the database refuses; the delivery comes back when its lease expires"
                ),
            }
        }
        self.releases = kept;
    }
}
