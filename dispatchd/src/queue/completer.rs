//! The completer: writes finished attempts and releases in batches, one
//! transaction each, and keeps them through database outages.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::{Done, backoff_pause};
use crate::circuit::CircuitPolicy;
use crate::model::{ClaimToken, Completion};
use crate::store::Store;

/// Writes finished attempts in batches until every sender is gone.
///
/// While the database is away (`Unavailable`, `Contention`) it keeps the
/// batch, backs off and retries, still accepting results. Any other error
/// means the database refuses some row: the batch is written row by row and
/// only the refused rows are dropped (logged); their leases expire and the
/// sweeper sends those deliveries again, so nothing is lost.
pub(super) async fn run(
    store: Arc<dyn Store>,
    mut rx: mpsc::UnboundedReceiver<Done>,
    policy: CircuitPolicy,
) {
    const MAX_BATCH: usize = 500;
    let mut completions = Vec::new();
    let mut releases = Vec::new();
    let take = |m: Done, c: &mut Vec<Completion>, r: &mut Vec<(ClaimToken, i64)>| match m {
        Done::Completed(x) => c.push(x),
        Done::Released(t, delay) => r.push((t, delay)),
    };
    loop {
        let Some(first) = rx.recv().await else { break };
        take(first, &mut completions, &mut releases);
        while completions.len() + releases.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(m) => take(m, &mut completions, &mut releases),
                Err(_) => break,
            }
        }
        let mut failures = 0;
        while !completions.is_empty() || !releases.is_empty() {
            let result = match store.complete(&completions, &policy).await {
                Ok(_) => store.release(&releases).await,
                Err(e) => Err(e),
            };
            match result {
                Ok(_) => {
                    completions.clear();
                    releases.clear();
                }
                Err(e) if e.is_transient() => {
                    failures += 1;
                    tracing::warn!(error = %e, pending = completions.len(), "recording attempts failed; retrying");
                    tokio::time::sleep(backoff_pause(failures)).await;
                    // Keep accepting results meanwhile so senders never block.
                    while let Ok(m) = rx.try_recv() {
                        take(m, &mut completions, &mut releases);
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "the database refused a batch of attempts; writing them one by one");
                    let mut kept = Vec::new();
                    for c in completions.drain(..) {
                        match store.complete(std::slice::from_ref(&c), &policy).await {
                            Ok(_) => {}
                            Err(e) if e.is_transient() => kept.push(c),
                            Err(e) => tracing::error!(
                                delivery = c.token.id,
                                error = %e,
                                "dropping an attempt the database refuses; the delivery will be sent again when its lease expires"
                            ),
                        }
                    }
                    completions = kept;
                }
            }
        }
    }
}
