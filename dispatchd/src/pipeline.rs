//! The per-delivery pipeline: the subscription's plugins (once: their
//! output is stored with the attempt), then the signed request, the send,
//! and the outcome classified into the delivery's next state.
//!
//! This is the one stage that knows both WASM (`plugins`) and HTTP
//! (`deliver`); the queue hands it a claimed delivery and gets a
//! `Completion` back, so the queue itself knows neither.

use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::deliver::{AttemptResult, Deliverer};
use crate::model::{AttemptRecord, ClaimedDelivery, Completion, NextState, RetryPolicy, now_ms};
use crate::plugins::Plugins;
use crate::plugins::stage::{self, Transform};
use crate::retry;

/// Turns a claimed delivery into a finished attempt.
pub struct Pipeline {
    pub deliverer: Arc<Deliverer>,
    pub plugins: Arc<Plugins>,
    pub cfg: Arc<Config>,
}

impl Pipeline {
    /// Runs the subscription's plugins (once: their output is stored), sends
    /// the delivery, and decides its next state.
    pub async fn run(&self, mut d: ClaimedDelivery) -> Completion {
        let (deliverer, plugins, cfg) = (&*self.deliverer, &*self.plugins, &*self.cfg);
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
                Transform::Fail(f) => {
                    (Some(next_after_failure(cfg, &d, None)), Some(f.to_string()))
                }
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
                let left = cfg.lease().saturating_sub(
                    began.elapsed() + crate::ratelimit::MAX_PACING_WAIT + Duration::from_secs(1),
                );
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
