//! The delivery worker: claim due deliveries in batches, send them
//! concurrently, write their outcomes back in batches.
//!
//! Three parts run per node. The *claimer* claims up to `claim_batch`
//! deliveries at a time, never more than there are free in-flight slots,
//! and sleeps until work is announced (`Store::work_signal`), the next
//! scheduled retry is due, or the poll interval passes. Each claimed delivery
//! is sent on its own task, as is each delivery the committers leased at
//! ingest and handed over from memory (`handoff`). The *completer* gathers finished attempts and
//! writes them in one transaction per batch, retrying while the database is
//! away (a completion that arrives after its lease expired is fenced off by
//! its attempt number, so at worst the delivery is sent again: at least once).
//! The *sweeper* returns expired leases to the queue and prunes old
//! delivered rows (`sweep`); `upkeep` vacuums PostgreSQL's tables.
//!
//! The queue knows the store and hands each claimed delivery to the
//! `Pipeline` (plugins, HTTP): it knows nothing of either.
//!
//! Shutdown: the claimer stops at once, and so does leasing at ingest
//! (commits already under way hand theirs over first); in-flight sends get the grace
//! period to finish; those still running are cancelled and handed back
//! (`Store::release`) so another node, or this one after a restart, sends
//! them. Nothing claimed is left stranded until its lease runs out.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

mod completer;
mod handoff;
pub mod liveness;
mod send;
mod sweep;
mod upkeep;

pub use handoff::{Handed, Handoff, Reservation};
pub use sweep::sweep;
pub use upkeep::upkeep;

use crate::config::Config;
use crate::model::{ClaimToken, Completion};
use crate::pipeline::Pipeline;
use crate::ratelimit::Limiter;
use crate::store::Store;
use send::Sender;

/// What a send task reports back.
enum Done {
    Completed(Completion),
    /// Not attempted: hand the claim back, due again after this many ms
    /// (cancelled at shutdown: 0; waiting for a rate-limit slot: the wait).
    Released(ClaimToken, i64),
}

pub struct Worker {
    pub store: Arc<dyn Store>,
    /// Plugins, signing and sending: one claimed delivery in, one
    /// completion out.
    pub pipeline: Arc<Pipeline>,
    pub cfg: Arc<Config>,
    pub node: String,
    /// The heartbeat's view: how many nodes share the database (rate
    /// limits are split between them) and whether this node still counts
    /// as alive (it claims only then).
    pub beat: Arc<liveness::Beat>,
    /// Its slots, shared with the committers, and the deliveries they
    /// leased at ingest.
    pub handoff: Arc<Handoff>,
    pub handed: mpsc::UnboundedReceiver<Handed>,
}

impl Worker {
    /// Runs until `shutdown`, then drains as described in the module docs.
    pub async fn run(self, shutdown: CancellationToken) {
        let Worker {
            store,
            pipeline,
            cfg,
            node,
            beat,
            handoff,
            mut handed,
        } = self;
        // Two kinds of slot (`Handoff`). A send slot is held while a
        // delivery is being processed and sent (`max_in_flight` requests at
        // once); a claim slot from its claim until its outcome is written,
        // twice as many, so the next sends go out while the completer
        // writes the last batch. While outcomes cannot be written the claim
        // slots run out and the worker claims nothing more: memory stays
        // bounded.
        let slots = handoff.send_slots.clone();
        let unwritten = handoff.claim_slots.clone();
        // Bounded by the claim slots: each message holds one.
        let (done_tx, done_rx) = mpsc::channel(2 * cfg.queue.max_in_flight as usize);
        let completer = tokio::spawn(completer::run(store.clone(), done_rx, cfg.circuit_policy()));
        let sender = Sender {
            pipeline,
            done: done_tx,
            // Cancelled when the grace period is over: unfinished sends give up.
            hard_stop: CancellationToken::new(),
            limiter: Arc::new(Limiter::default()),
            beat: beat.clone(),
            sends: TaskTracker::new(),
        };
        let grace = Duration::from_secs(cfg.shutdown.grace_secs);
        // Deliveries leased at ingest go out as they are handed over; at
        // shutdown, those of commits still running are sent (or handed
        // back) like the claimed ones.
        let receiver = {
            let sender = sender.clone();
            let shutdown = shutdown.clone();
            let handoff = handoff.clone();
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        h = handed.recv() => match h {
                            Some(h) => sender.start(h.delivery, h.claim_slot, h.send_slot),
                            None => return,
                        },
                        _ = shutdown.cancelled() => break,
                    }
                }
                if !handoff.settled(grace).await {
                    tracing::warn!(
                        "commits still running at shutdown; their leased deliveries will be sent again when their leases run out"
                    );
                }
                while let Ok(h) = handed.try_recv() {
                    sender.start(h.delivery, h.claim_slot, h.send_slot);
                }
            })
        };
        let signal = store.work_signal();
        let poll = Duration::from_millis(cfg.queue.poll_interval_ms);
        let mut failures = 0u32;

        while !shutdown.is_cancelled() {
            let free = slots.available_permits().min(unwritten.available_permits()) as u32;
            if free == 0 {
                // Wait for the kind that ran out (if it is back already,
                // the acquire returns at once).
                let wanted = if slots.available_permits() == 0 {
                    slots.clone()
                } else {
                    unwritten.clone()
                };
                tokio::select! {
                    p = wanted.acquire_owned() => drop(p),
                    _ = shutdown.cancelled() => break,
                }
                continue;
            }
            // A node whose heartbeat has failed for a node timeout is dead
            // to the others, which take back what it holds: it claims
            // nothing more until a heartbeat succeeds again.
            if !beat.fresh(cfg.node_timeout()) {
                tokio::select! {
                    _ = tokio::time::sleep(poll) => {}
                    _ = shutdown.cancelled() => break,
                }
                continue;
            }
            let want = free.min(cfg.queue.claim_batch);
            let claimed = match store.claim(&node, want, cfg.lease()).await {
                Ok(c) => {
                    failures = 0;
                    c
                }
                Err(e) => {
                    failures += 1;
                    let pause = backoff_pause(failures);
                    tracing::warn!(error = %e, retry_in_ms = pause.as_millis() as u64, "claim failed");
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => {}
                        _ = shutdown.cancelled() => break,
                    }
                    continue;
                }
            };
            let got = claimed.len() as u32;
            for d in claimed {
                let claim_slot = unwritten
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("semaphore never closes");
                let send_slot = slots
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("semaphore never closes");
                sender.start(d, claim_slot, send_slot);
            }
            if got == want {
                continue; // probably more waiting
            }
            let wait = match store.next_due_in_ms().await {
                Ok(Some(ms)) => Duration::from_millis(ms.max(5) as u64).min(poll),
                _ => poll,
            };
            tokio::select! {
                _ = signal.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.cancelled() => break,
            }
        }

        // Graceful drain: every send is started before the tracker closes.
        let _ = receiver.await;
        let Sender {
            sends,
            hard_stop,
            done,
            ..
        } = sender;
        sends.close();
        if tokio::time::timeout(grace, sends.wait()).await.is_err() {
            tracing::warn!("grace period over: handing unfinished deliveries back to the queue");
            hard_stop.cancel();
            sends.wait().await;
        }
        drop(done);
        // With the database gone, the completer could retry forever; give it
        // a bounded time. Unrecorded attempts are not lost: their leases
        // expire and the sweeper returns them to the queue.
        let mut completer = completer;
        let flush = grace.max(Duration::from_secs(5));
        if tokio::time::timeout(flush, &mut completer).await.is_err() {
            tracing::error!(
                "could not record the last attempts before exit; their leases will expire and they will be sent again"
            );
            completer.abort();
        }
    }
}

/// 100 ms doubling to 5 s, with jitter: how long to wait after repeated
/// database failures, so workers back off instead of crash-looping.
pub(crate) fn backoff_pause(failures: u32) -> Duration {
    let base = 100u64.saturating_mul(1 << failures.min(6)).min(5000);
    Duration::from_millis(base / 2 + fastrand::u64(0..=base / 2))
}
