//! Sends: each claimed (or leased at ingest) delivery on its own task,
//! paced by its endpoint's rate limit (this node's share of it), its
//! outcome (or its hand-back) to the completer.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Done, completer, liveness};
use crate::model::ClaimedDelivery;
use crate::pipeline::Pipeline;
use crate::ratelimit::{Limiter, MAX_PACING_WAIT, Pace};

/// Starts sends: each claimed (or leased at ingest) delivery on its own
/// task, paced by its endpoint's rate limit, its outcome to the completer.
#[derive(Clone)]
pub(super) struct Sender {
    pub(super) pipeline: Arc<Pipeline>,
    pub(super) done: mpsc::Sender<completer::Finished>,
    pub(super) hard_stop: CancellationToken,
    pub(super) limiter: Arc<Limiter>,
    pub(super) beat: Arc<liveness::Beat>,
    pub(super) sends: TaskTracker,
}

impl Sender {
    pub(super) fn start(
        &self,
        d: ClaimedDelivery,
        claim_slot: OwnedSemaphorePermit,
        send_slot: OwnedSemaphorePermit,
    ) {
        let pipeline = self.pipeline.clone();
        let done = self.done.clone();
        let hard_stop = self.hard_stop.clone();
        let limiter = self.limiter.clone();
        let nodes = self.beat.live_nodes.load(Ordering::Relaxed).max(1);
        self.sends.spawn(async move {
            let token = d.token();
            let msg = match pace(&limiter, &d, nodes) {
                Pace::Defer(wait) => {
                    crate::telemetry::delivery_outcome("deferred");
                    Done::Released(token, wait.as_millis() as i64)
                }
                Pace::Go(wait) => tokio::select! {
                    c = async {
                        tokio::time::sleep(wait).await;
                        pipeline.run(d).await
                    } => Done::Completed(c),
                    _ = hard_stop.cancelled() => {
                        crate::telemetry::delivery_outcome("released");
                        Done::Released(token, 0)
                    }
                },
            };
            drop(send_slot);
            let _ = done
                .send(completer::Finished {
                    done: msg,
                    slot: claim_slot,
                })
                .await;
        });
    }
}

/// Where this delivery stands in its endpoint's rate limit (this node's
/// share of it).
fn pace(limiter: &Limiter, d: &ClaimedDelivery, nodes: u32) -> Pace {
    match &d.subscription {
        Some(s) => match s.rate_limit {
            Some(rate) => limiter.acquire(
                &s.id,
                rate as f64 / nodes as f64,
                MAX_PACING_WAIT,
                std::time::Instant::now(),
            ),
            None => Pace::Go(Duration::ZERO),
        },
        _ => Pace::Go(Duration::ZERO),
    }
}
