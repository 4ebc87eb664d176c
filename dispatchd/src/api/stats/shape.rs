//! Shapes the store's raw figures into the wire snapshot of
//! `/admin/stats`: per-state counts, the last minute second by second,
//! rates, latency percentiles, endpoint health. Pure, so it is unit-tested.

use std::collections::HashMap;

use dispatch_wire::{
    AdminStats, AttemptEvent, DeliveryCounts, EndpointStats, LatencyStats, NodeView, PluginStats,
    Rates, ThroughputPoint,
};

use super::WINDOW_SECS;
use crate::model::{CircuitState, DeliveryState, Millis, SubscriptionStatus, rfc3339};
use crate::store::stats::{AttemptTail, StatsSnapshot};

/// Shapes raw figures into the wire snapshot. Pure, so it is unit-tested.
pub fn shape(raw: StatsSnapshot, now: Millis, backend: &str, live_ms: i64) -> AdminStats {
    let mut deliveries = DeliveryCounts::default();
    for (state, n) in &raw.counts {
        let slot = match state {
            DeliveryState::Pending => &mut deliveries.pending,
            DeliveryState::InFlight => &mut deliveries.in_flight,
            DeliveryState::Scheduled => &mut deliveries.scheduled,
            DeliveryState::Delivered => &mut deliveries.delivered,
            DeliveryState::Dead => &mut deliveries.dead,
            DeliveryState::Paused => &mut deliveries.paused,
            DeliveryState::Dropped => &mut deliveries.dropped,
            DeliveryState::Held => &mut deliveries.held,
        };
        *slot += n;
    }

    // Whole seconds only: the current one is still filling.
    let first = now / 1000 - WINDOW_SECS;
    let mut throughput: Vec<ThroughputPoint> = (first..first + WINDOW_SECS)
        .map(|at| ThroughputPoint {
            at,
            ..Default::default()
        })
        .collect();
    let slot = |s: i64| {
        usize::try_from(s - first)
            .ok()
            .filter(|&i| i < WINDOW_SECS as usize)
    };
    for &(s, n) in &raw.ingested {
        if let Some(i) = slot(s) {
            throughput[i].ingested = n;
        }
    }
    for &(s, ok, all) in &raw.attempts {
        if let Some(i) = slot(s) {
            throughput[i].delivered = ok;
            throughput[i].failed = all - ok;
        }
    }
    let mean = |f: fn(&ThroughputPoint) -> i64| {
        throughput.iter().map(f).sum::<i64>() as f64 / WINDOW_SECS as f64
    };
    let rates = Rates {
        window_secs: WINDOW_SECS as u32,
        ingested_per_sec: mean(|p| p.ingested),
        delivered_per_sec: mean(|p| p.delivered),
        failed_per_sec: mean(|p| p.failed),
    };

    let mut backlog: HashMap<&str, (i64, i64, i64)> = HashMap::new();
    for (sub, state, n) in &raw.backlog {
        let e = backlog.entry(sub.as_str()).or_default();
        match state {
            DeliveryState::Paused => e.1 += n,
            DeliveryState::Dead => e.2 += n,
            _ => e.0 += n,
        }
    }
    let recent: HashMap<&str, (i64, i64)> = raw
        .recent
        .iter()
        .map(|(sub, ok, all)| (sub.as_str(), (*ok, all - ok)))
        .collect();
    let endpoints = raw
        .endpoints
        .into_iter()
        .map(|e| {
            let (waiting, paused, dead) = backlog.get(e.id.as_str()).copied().unwrap_or_default();
            let (ok, failed) = recent.get(e.id.as_str()).copied().unwrap_or_default();
            let health = if e.status != SubscriptionStatus::Active {
                e.status.to_string()
            } else if e.circuit_state != CircuitState::Closed {
                e.circuit_state.to_string()
            } else if e.consecutive_failures > 0 {
                "failing".to_string()
            } else if ok + failed == 0 {
                "idle".to_string()
            } else {
                "healthy".to_string()
            };
            EndpointStats {
                subscription_id: e.id,
                tenant_id: e.tenant_id,
                url: e.url,
                status: e.status,
                circuit_state: e.circuit_state,
                consecutive_failures: e.consecutive_failures,
                rate_limit: e.rate_limit,
                last_success_at: e.last_success_at.map(rfc3339),
                disabled_reason: e.disabled_reason,
                health,
                backlog: waiting,
                paused,
                dead,
                delivered_last_minute: ok,
                failed_last_minute: failed,
            }
        })
        .collect();

    AdminStats {
        generated_at: rfc3339(now),
        backend: backend.to_string(),
        deliveries,
        oldest_pending_age_ms: raw.oldest_pending_at.map(|t| (now - t).max(0)),
        rates,
        throughput,
        latency_ms: percentiles(raw.latencies),
        endpoints,
        plugins: raw
            .plugins
            .into_iter()
            .map(|(name, invocations, errors, total_us)| PluginStats {
                name,
                invocations,
                errors,
                mean_us: if invocations == 0 {
                    0.0
                } else {
                    total_us as f64 / invocations as f64
                },
            })
            .collect(),
        nodes: raw
            .nodes
            .into_iter()
            .map(|(id, started_at, last_seen)| NodeView {
                id,
                started_at: rfc3339(started_at),
                last_seen: rfc3339(last_seen),
                live: now - last_seen <= live_ms,
            })
            .collect(),
        blocked_keys: raw.blocked_keys,
    }
}

/// Nearest-rank percentiles.
fn percentiles(mut samples: Vec<i64>) -> LatencyStats {
    samples.sort_unstable();
    let rank = |p: f64| -> Option<i64> {
        if samples.is_empty() {
            return None;
        }
        let i = ((p / 100.0) * samples.len() as f64).ceil() as usize;
        samples.get(i.clamp(1, samples.len()) - 1).copied()
    };
    LatencyStats {
        samples: samples.len() as u64,
        p50: rank(50.0),
        p95: rank(95.0),
        p99: rank(99.0),
    }
}

pub fn attempt_event(a: AttemptTail) -> AttemptEvent {
    AttemptEvent {
        ok: a.status_code.is_some_and(|c| (200..300).contains(&c)),
        id: a.id,
        delivery_id: a.delivery_id,
        event_id: a.event_id,
        event_type: a.event_type,
        subscription_id: a.subscription_id,
        run: a.run,
        attempt: a.attempt,
        url: a.url,
        status_code: a.status_code,
        error: a.error,
        duration_ms: a.duration_ms,
        at: rfc3339(a.created_at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::stats::StatsSnapshot;

    #[test]
    fn percentiles_use_nearest_rank() {
        let l = percentiles((1..=100).rev().collect());
        assert_eq!(
            (l.samples, l.p50, l.p95, l.p99),
            (100, Some(50), Some(95), Some(99))
        );
        let one = percentiles(vec![7]);
        assert_eq!((one.p50, one.p99), (Some(7), Some(7)));
        assert_eq!(percentiles(vec![]).p50, None);
    }

    #[test]
    fn shape_fills_every_second_and_derives_rates() {
        let now = 1_000_000_500;
        let first = now / 1000 - WINDOW_SECS;
        let raw = StatsSnapshot {
            counts: vec![
                (DeliveryState::Pending, 3),
                (DeliveryState::Dead, 2),
                (DeliveryState::Dropped, 1),
            ],
            oldest_pending_at: Some(now - 1_500),
            ingested: vec![(first, 60), (first + 59, 60), (now / 1000, 999)],
            attempts: vec![(first + 1, 100, 130)],
            ..Default::default()
        };
        let s = shape(raw, now, "sqlite", 30_000);
        assert_eq!(s.throughput.len(), 60);
        assert_eq!(s.throughput[0].at, first);
        assert_eq!(s.deliveries.pending, 3);
        assert_eq!(s.deliveries.dead, 2);
        assert_eq!(s.deliveries.dropped, 1);
        assert_eq!(s.oldest_pending_age_ms, Some(1_500));
        // The current, partial second is left out.
        assert_eq!(s.rates.ingested_per_sec, 2.0);
        assert_eq!(s.throughput[1].failed, 30);
        assert_eq!(s.rates.delivered_per_sec, 100.0 / 60.0);
    }
}
