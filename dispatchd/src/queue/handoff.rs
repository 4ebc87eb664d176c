//! Deliveries leased at ingest. When this node has free send slots, the
//! committer creates a group's deliveries already leased to it (one row
//! version instead of an insert and a claim's update) and hands them to
//! the worker from memory after the commit: no claim statement, no wake-up,
//! no round trip between the commit and the send.
//!
//! The slots are the worker's own: the committer takes a send slot and a
//! claim slot for each delivery it leases *before* the commit (never
//! waiting for one), so the worker is never handed more than it could
//! have claimed. A delivery created parked or held is not leased and its
//! slots go back at once. Leased rows are leases like any other: should
//! this node die before it records an outcome, the others take them back
//! (`liveness`); at shutdown they are sent or handed back like claimed
//! ones (`settled`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use super::liveness::Beat;
use crate::config::Config;
use crate::model::{ClaimedDelivery, Lessee};

/// The worker's slots, shared with the committers.
pub struct Handoff {
    node: String,
    lease_ms: i64,
    node_timeout: Duration,
    beat: Arc<Beat>,
    /// Held while a delivery is processed and sent.
    pub(super) send_slots: Arc<Semaphore>,
    /// Held from a delivery's claim (or lease at ingest) until its outcome
    /// is written.
    pub(super) claim_slots: Arc<Semaphore>,
    tx: mpsc::UnboundedSender<Handed>,
    open: AtomicBool,
    /// Reservations alive: a commit that may still hand deliveries over.
    reserving: AtomicUsize,
}

/// A delivery leased at ingest, with the slots taken for it.
pub struct Handed {
    pub(super) delivery: ClaimedDelivery,
    pub(super) send_slot: OwnedSemaphorePermit,
    pub(super) claim_slot: OwnedSemaphorePermit,
}

/// Slots taken for one commit's leased deliveries.
pub struct Reservation<'a> {
    handoff: &'a Handoff,
    slots: Vec<(OwnedSemaphorePermit, OwnedSemaphorePermit)>,
}

impl Handoff {
    /// The slots of a worker that sends `queue.max_in_flight` deliveries at
    /// once and holds twice as many claims; and the receiving end, for the
    /// worker.
    pub fn new(
        cfg: &Config,
        node: String,
        beat: Arc<Beat>,
    ) -> (Arc<Self>, mpsc::UnboundedReceiver<Handed>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let handoff = Self {
            node,
            lease_ms: i64::try_from(cfg.lease().as_millis()).unwrap_or(i64::MAX),
            node_timeout: cfg.node_timeout(),
            beat,
            send_slots: Arc::new(Semaphore::new(cfg.queue.max_in_flight as usize)),
            claim_slots: Arc::new(Semaphore::new(2 * cfg.queue.max_in_flight as usize)),
            tx,
            open: AtomicBool::new(cfg.queue.lease_at_ingest),
            reserving: AtomicUsize::new(0),
        };
        (Arc::new(handoff), rx)
    }

    /// Takes slots for up to `want` deliveries, as many as are free now.
    /// None while closed, or while this node's heartbeat is stale (the
    /// others may be taking its leases back).
    pub fn reserve(&self, want: usize) -> Reservation<'_> {
        // Counted before the check, so `settled` never misses a commit
        // that saw the handoff open.
        self.reserving.fetch_add(1, Ordering::SeqCst);
        let mut slots = Vec::new();
        if self.open.load(Ordering::SeqCst) && self.beat.fresh(self.node_timeout) {
            while slots.len() < want {
                let Ok(claim) = self.claim_slots.clone().try_acquire_owned() else {
                    break;
                };
                let Ok(send) = self.send_slots.clone().try_acquire_owned() else {
                    break;
                };
                slots.push((send, claim));
            }
        }
        Reservation {
            handoff: self,
            slots,
        }
    }

    /// Whom the deliveries are leased to.
    pub fn lessee(&self) -> Lessee<'_> {
        Lessee {
            node: &self.node,
            lease_ms: self.lease_ms,
        }
    }

    /// Leases nothing more (at shutdown), then waits until no commit can
    /// still hand deliveries over, at most `limit`.
    pub(super) async fn settled(&self, limit: Duration) -> bool {
        self.open.store(false, Ordering::SeqCst);
        let start = tokio::time::Instant::now();
        while self.reserving.load(Ordering::SeqCst) > 0 {
            if start.elapsed() >= limit {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        true
    }
}

impl Reservation<'_> {
    /// How many deliveries the commit may lease.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Hands the committed leased deliveries to the worker, each with its
    /// slots; the slots not used go back. The store leases no more than
    /// were reserved; should it, the extra ones wait for slots.
    pub async fn hand(mut self, leased: Vec<ClaimedDelivery>) {
        for delivery in leased {
            let (send_slot, claim_slot) = match self.slots.pop() {
                Some(s) => s,
                None => {
                    let h = self.handoff;
                    let claim = h.claim_slots.clone().acquire_owned().await;
                    let send = h.send_slots.clone().acquire_owned().await;
                    (send.expect("never closed"), claim.expect("never closed"))
                }
            };
            let handed = Handed {
                delivery,
                send_slot,
                claim_slot,
            };
            if self.handoff.tx.send(handed).is_err() {
                // The worker is gone (shutdown took longer than `settled`
                // waits): the lease runs out and the delivery is sent again.
                tracing::warn!("a delivery leased at ingest arrived after the worker stopped");
            }
        }
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.slots.clear();
        self.handoff.reserving.fetch_sub(1, Ordering::SeqCst);
    }
}
