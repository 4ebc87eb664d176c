//! `GET /admin/stats` and `GET /admin/stream`: the operator's live view,
//! counted from the database (`store::stats`) so every node agrees.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use dispatch_wire::{
    AdminStats, AttemptEvent, DeliveryCounts, EndpointStats, ErrorResponse, LatencyStats, NodeView,
    PluginStats, Rates, ThroughputPoint,
};
use futures::Stream;

use super::AppState;
use super::error::ApiResult;
use crate::model::{CircuitState, DeliveryState, Millis, SubscriptionStatus, now_ms, rfc3339};
use crate::store::stats::{AttemptTail, StatsSnapshot};

/// Rates, throughput and latency cover this many whole seconds.
pub const WINDOW_SECS: i64 = 60;
/// How often the stream sends a snapshot and the attempts since the last.
const STREAM_EVERY: Duration = Duration::from_secs(1);
/// Most attempts one stream tick sends; a busier second is sampled.
const TAIL_BATCH: u32 = 200;

#[utoipa::path(
    get,
    path = "/admin/stats",
    tag = "admin",
    responses(
        (status = 200, description = "A snapshot counted from the database: every node answers the same", body = AdminStats),
        (status = 401, description = "Missing or wrong admin token", body = ErrorResponse),
        (status = 503, description = "Database unavailable; retry", body = ErrorResponse),
    )
)]
pub async fn stats(State(st): State<AppState>) -> ApiResult<Json<AdminStats>> {
    Ok(Json(read(&st).await?))
}

async fn read(st: &AppState) -> crate::store::Result<AdminStats> {
    let now = now_ms();
    let first = now / 1000 - WINDOW_SECS;
    let raw = st.store.stats(first * 1000).await?;
    let live_ms = st.cfg.retention.sweep_interval_secs as i64 * 3000;
    Ok(shape(raw, now, st.store.backend(), live_ms))
}

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

#[utoipa::path(
    get,
    path = "/admin/stream",
    tag = "admin",
    responses(
        (status = 200, description = "Server-sent events, endless: every second an `event: stats` with the `/admin/stats` snapshot, then an `event: attempt` (an AttemptEvent) for each attempt made since (the latest 50 first; past 200 a second the tail skips ahead to the newest); `event: error` when the database cannot be read (the stream goes on)", content_type = "text/event-stream", body = String),
        (status = 401, description = "Missing or wrong admin token", body = ErrorResponse),
    )
)]
pub async fn stream(
    State(st): State<AppState>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let ticks =
        futures::stream::unfold((st, None::<i64>, true), |(st, cursor, first)| async move {
            if !first {
                tokio::time::sleep(STREAM_EVERY).await;
            }
            let mut out = Vec::new();
            match read(&st).await {
                Ok(stats) => out.push(json_event("stats", &stats)),
                Err(e) => out.push(error_event(&e)),
            }
            let limit = if cursor.is_none() { 50 } else { TAIL_BATCH };
            let mut next = cursor;
            match st.store.attempt_tail(cursor, limit).await {
                Ok(rows) => {
                    let full = cursor.is_some() && rows.len() == TAIL_BATCH as usize;
                    for a in rows {
                        next = Some(next.map_or(a.id, |c| c.max(a.id)));
                        out.push(json_event("attempt", &attempt_event(a)));
                    }
                    // Nothing yet: start from the beginning next time.
                    next = next.or(Some(0));
                    // Busier than the tail shows: skip to the newest rather
                    // than fall further behind every second.
                    if full && let Ok(latest) = st.store.attempt_tail(None, 1).await {
                        next = next.max(latest.last().map(|a| a.id));
                    }
                }
                Err(e) => out.push(error_event(&e)),
            }
            Some((
                futures::stream::iter(out.into_iter().map(Ok)),
                (st, next, false),
            ))
        });
    Sse::new(futures::StreamExt::flatten(ticks)).keep_alive(KeepAlive::default())
}

fn json_event<T: serde::Serialize>(name: &str, value: &T) -> SseEvent {
    SseEvent::default()
        .event(name)
        .data(serde_json::to_string(value).unwrap_or_default())
}

fn error_event(e: &crate::store::StoreError) -> SseEvent {
    tracing::warn!(error = %e, "admin stream: reading the database failed");
    json_event(
        "error",
        &serde_json::json!({"error": {"code": "unavailable", "message": "the database cannot be read; retrying"}}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

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
