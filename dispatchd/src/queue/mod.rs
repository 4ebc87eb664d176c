//! The delivery worker: claim due deliveries in batches, send them
//! concurrently, write their outcomes back in batches.
//!
//! Three parts run per node. The *claimer* claims up to `claim_batch`
//! deliveries at a time, never more than there are free in-flight slots,
//! and sleeps until work is announced (`Store::work_signal`), the next
//! scheduled retry is due, or the poll interval passes. Each claimed delivery
//! is sent on its own task. The *completer* gathers finished attempts and
//! writes them in one transaction per batch, retrying while the database is
//! away (a completion that arrives after its lease expired is fenced off by
//! its attempt number, so at worst the delivery is sent again: at least once).
//! The *sweeper* returns expired leases to the queue and prunes old
//! delivered rows.
//!
//! Shutdown: the claimer stops at once; in-flight sends get the grace
//! period to finish; those still running are cancelled and handed back
//! (`Store::release`) so another node, or this one after a restart, sends
//! them. Nothing claimed is left stranded until its lease runs out.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::circuit::CircuitPolicy;
use crate::config::Config;
use crate::deliver::{AttemptResult, Deliverer};
use crate::model::{
    AttemptRecord, ClaimToken, ClaimedDelivery, Completion, NextState, RetryPolicy, now_ms,
};
use crate::plugins::Plugins;
use crate::plugins::stage::{self, Transform};
use crate::ratelimit::{Limiter, Pace};
use crate::retry;
use crate::store::{Store, StoreError};

/// What a send task reports back.
enum Done {
    Completed(Completion),
    /// Not attempted: hand the claim back, due again after this many ms
    /// (cancelled at shutdown: 0; waiting for a rate-limit slot: the wait).
    Released(ClaimToken, i64),
}

pub struct Worker {
    pub store: Arc<dyn Store>,
    pub deliverer: Arc<Deliverer>,
    pub cfg: Arc<Config>,
    pub node: String,
    /// Nodes sharing the database, kept by the sweeper's heartbeat; rate
    /// limits are split between them.
    pub live_nodes: Arc<AtomicU32>,
    /// Transform chains run before sending.
    pub plugins: Arc<Plugins>,
}

/// The longest a send waits for its rate-limit slot before the delivery is
/// handed back to the queue instead.
const MAX_PACING_WAIT: Duration = Duration::from_secs(1);

impl Worker {
    /// Runs until `shutdown`, then drains as described in the module docs.
    pub async fn run(self, shutdown: CancellationToken) {
        let Worker {
            store,
            deliverer,
            cfg,
            node,
            live_nodes,
            plugins,
        } = self;
        let limiter = Arc::new(Limiter::default());
        let slots = Arc::new(Semaphore::new(cfg.queue.max_in_flight as usize));
        let (done_tx, done_rx) = mpsc::unbounded_channel::<Done>();
        let completer = tokio::spawn(complete_loop(store.clone(), done_rx, cfg.circuit_policy()));
        let sends = TaskTracker::new();
        // Cancelled when the grace period is over: unfinished sends give up.
        let hard_stop = CancellationToken::new();
        let signal = store.work_signal();
        let poll = Duration::from_millis(cfg.queue.poll_interval_ms);
        let mut failures = 0u32;

        while !shutdown.is_cancelled() {
            let free = slots.available_permits() as u32;
            if free == 0 {
                tokio::select! {
                    p = slots.clone().acquire_owned() => drop(p),
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
                let permit = slots
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("semaphore never closes");
                let deliverer = deliverer.clone();
                let plugins = plugins.clone();
                let cfg = cfg.clone();
                let done = done_tx.clone();
                let hard_stop = hard_stop.clone();
                let limiter = limiter.clone();
                let nodes = live_nodes.load(Ordering::Relaxed).max(1);
                sends.spawn(async move {
                    let token = d.token();
                    let msg = match pace(&limiter, &d, nodes) {
                        Pace::Defer(wait) => {
                            crate::telemetry::delivery_outcome("deferred");
                            Done::Released(token, wait.as_millis() as i64)
                        }
                        Pace::Go(wait) => tokio::select! {
                            c = async {
                                tokio::time::sleep(wait).await;
                                attempt(&deliverer, &plugins, &cfg, d).await
                            } => Done::Completed(c),
                            _ = hard_stop.cancelled() => {
                                crate::telemetry::delivery_outcome("released");
                                Done::Released(token, 0)
                            }
                        },
                    };
                    let _ = done.send(msg);
                    drop(permit);
                });
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

        // Graceful drain.
        sends.close();
        let grace = Duration::from_secs(cfg.shutdown.grace_secs);
        if tokio::time::timeout(grace, sends.wait()).await.is_err() {
            tracing::warn!("grace period over: handing unfinished deliveries back to the queue");
            hard_stop.cancel();
            sends.wait().await;
        }
        drop(done_tx);
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

/// Runs the subscription's plugins (once: their output is stored), sends
/// the delivery, and decides its next state.
async fn attempt(
    deliverer: &Deliverer,
    plugins: &Plugins,
    cfg: &Config,
    mut d: ClaimedDelivery,
) -> Completion {
    let mut transformed = None;
    let began = std::time::Instant::now();
    if stage::needs_transform(&d) {
        let started = now_ms();
        let clock = std::time::Instant::now();
        let url = d
            .inline
            .url
            .clone()
            .or_else(|| d.subscription.as_ref().map(|s| s.url.clone()))
            .unwrap_or_default();
        let (next, error) = match stage::transform(plugins, &d).await {
            Transform::Deliver(inline) => {
                d.inline = inline.clone();
                transformed = Some(Box::new(inline));
                (None, None)
            }
            Transform::Drop { plugin, reason } => (
                Some(NextState::Dropped),
                Some(format!("dropped by plugin '{plugin}': {reason}")),
            ),
            Transform::Fail(f) => (Some(next_after_failure(cfg, &d, None)), Some(f.to_string())),
        };
        if let Some(next) = next {
            crate::telemetry::delivery_outcome(match next {
                NextState::Dropped => "dropped",
                _ => "plugin_failed",
            });
            let result = AttemptResult {
                url,
                success: false,
                status_code: None,
                error,
                duration_ms: clock.elapsed().as_millis() as i64,
                response_prefix: None,
                retry_after: None,
                started_at: started,
            };
            return completion(&d, next, result, false, None);
        }
    }
    let now = now_ms();
    let result = match deliverer.prepare(&d, now) {
        Some(mut req) => {
            // The plugins' time (and a pacing wait) came out of the lease:
            // the send gets only what is left of it, minus a second.
            let left = cfg
                .lease()
                .saturating_sub(began.elapsed() + MAX_PACING_WAIT + Duration::from_secs(1));
            req.timeout = req.timeout.min(left.max(Duration::from_millis(100)));
            deliverer.send(req).await
        }
        None => AttemptResult {
            url: String::new(),
            success: false,
            status_code: None,
            error: Some("subscription was deleted; nothing to deliver to".into()),
            duration_ms: 0,
            response_prefix: None,
            retry_after: None,
            started_at: now,
        },
    };
    let deliverable = !result.url.is_empty();
    let next = if result.success {
        NextState::Delivered
    } else if !deliverable {
        NextState::Dead
    } else {
        next_after_failure(cfg, &d, result.retry_after)
    };
    crate::telemetry::attempt_duration(result.success, result.duration_ms);
    crate::telemetry::delivery_outcome(match next {
        NextState::Delivered => "delivered",
        NextState::Retry { .. } => "retry",
        NextState::Dead => "dead",
        NextState::Dropped => "dropped",
    });
    if !result.success {
        tracing::debug!(
            delivery = d.id,
            attempt = d.attempt,
            error = result.error.as_deref().unwrap_or(""),
            "attempt failed"
        );
    }
    completion(&d, next, result, deliverable, transformed)
}

/// The record of one attempt and the state it leads to. Only attempts that
/// `reached_endpoint` count for the endpoint's circuit.
fn completion(
    d: &ClaimedDelivery,
    next: NextState,
    result: AttemptResult,
    reached_endpoint: bool,
    transformed: Option<Box<crate::model::InlineDestination>>,
) -> Completion {
    Completion {
        token: d.token(),
        next,
        attempt: AttemptRecord {
            delivery_id: d.id,
            event_id: d.event.id.clone(),
            subscription_id: d.subscription_id.clone(),
            run: d.run,
            attempt: d.attempt,
            url: result.url,
            status_code: result.status_code.map(i32::from),
            error: result.error,
            duration_ms: result.duration_ms,
            response_body: result.response_prefix,
            created_at: result.started_at,
        },
        reached_endpoint,
        transformed,
    }
}

/// After a failed attempt: dead if it was the last, else a retry after the
/// receiver's `Retry-After` or the policy's backoff.
fn next_after_failure(
    cfg: &Config,
    d: &ClaimedDelivery,
    retry_after: Option<Duration>,
) -> NextState {
    if d.attempt >= d.max_attempts {
        return NextState::Dead;
    }
    let policy: RetryPolicy = match &d.subscription {
        Some(s) => s.retry,
        None => cfg.tasks.retry.into(),
    };
    let delay = retry_after.unwrap_or_else(|| retry::backoff(&policy, d.attempt));
    NextState::Retry {
        delay_ms: delay.as_millis() as i64,
    }
}

/// Writes finished attempts in batches until every sender is gone.
///
/// While the database is away (`Unavailable`, `Contention`) it keeps the
/// batch, backs off and retries, still accepting results. Any other error
/// means the database refuses some row: the batch is written row by row and
/// only the refused rows are dropped (logged); their leases expire and the
/// sweeper sends those deliveries again, so nothing is lost.
async fn complete_loop(
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
                Err(e) if is_transient(&e) => {
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
                            Err(e) if is_transient(&e) => kept.push(c),
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

fn is_transient(e: &StoreError) -> bool {
    matches!(e, StoreError::Unavailable(_) | StoreError::Contention(_))
}

/// Returns expired leases to the queue, probes open circuits, disables
/// endpoints that kept failing, and prunes old delivered rows.
pub async fn sweep(
    store: Arc<dyn Store>,
    cfg: Arc<Config>,
    node: String,
    live_nodes: Arc<AtomicU32>,
    shutdown: CancellationToken,
) {
    let every = Duration::from_secs(cfg.retention.sweep_interval_secs);
    // A node is live while its heartbeat is younger than three sweeps.
    let ttl = every * 3;
    let beat = |store: Arc<dyn Store>, node: String, live: Arc<AtomicU32>| async move {
        match store.heartbeat(&node, ttl).await {
            Ok(n) => live.store(n, Ordering::Relaxed),
            Err(e) => tracing::warn!(error = %e, "heartbeat failed"),
        }
    };
    beat(store.clone(), node.clone(), live_nodes.clone()).await;
    let keep_ms = (cfg.retention.delivered_hours * 3600 * 1000) as i64;
    let mut tick = 0u64;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.cancelled() => return,
        }
        beat(store.clone(), node.clone(), live_nodes.clone()).await;
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
        tick += 1;
    }
}

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
                "vacuumed"
            ),
            Err(e) => tracing::warn!(error = %e, "vacuum failed"),
        }
    }
}

/// 100 ms doubling to 5 s, with jitter: how long to wait after repeated
/// database failures, so workers back off instead of crash-looping.
fn backoff_pause(failures: u32) -> Duration {
    let base = 100u64.saturating_mul(1 << failures.min(6)).min(5000);
    Duration::from_millis(base / 2 + fastrand::u64(0..=base / 2))
}
