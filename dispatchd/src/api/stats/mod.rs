//! `GET /admin/stats` and `GET /admin/stream`: the operator's live view,
//! counted from the database (`store::stats`) so every node agrees.

mod hub;
mod shape;

pub use hub::StatsHub;

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use dispatch_wire::{AdminStats, ErrorResponse};
use futures::Stream;

use super::AppState;
use super::error::ApiResult;

/// Rates, throughput and latency cover this many whole seconds.
pub const WINDOW_SECS: i64 = 60;
/// How often the stream sends a snapshot and the attempts since the last.
const STREAM_EVERY: Duration = Duration::from_secs(1);
/// Most attempts one stream tick sends; a busier second is sampled.
const TAIL_BATCH: u32 = 200;
/// Attempts a new stream client is sent first.
const TAIL_START: usize = 50;

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
    let snap = st.stats.snapshot().await?;
    Ok(Json(AdminStats::clone(&snap)))
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
    // Each client keeps only its place in the hub's ring of attempts: the
    // database work is the hub's, once a second, however many watch.
    let ticks = futures::stream::unfold((st, None::<i64>, true), |(st, seen, first)| async move {
        if !first {
            tokio::time::sleep(STREAM_EVERY).await;
        }
        let tick = st.stats.tick().await;
        let mut out = Vec::new();
        match &tick.stats {
            Ok(stats) => out.push(json_event("stats", stats.as_ref())),
            Err(e) => out.push(error_event(e)),
        }
        if let Some(e) = &tick.tail_error {
            out.push(error_event(e));
        }
        let fresh: Vec<_> = match seen {
            Some(seen) => tick.attempts.iter().filter(|a| a.id > seen).collect(),
            None => {
                let skip = tick.attempts.len().saturating_sub(TAIL_START);
                tick.attempts.iter().skip(skip).collect()
            }
        };
        let next = tick.attempts.last().map(|a| a.id).max(seen).or(Some(0));
        out.extend(fresh.into_iter().map(|a| json_event("attempt", a)));
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
