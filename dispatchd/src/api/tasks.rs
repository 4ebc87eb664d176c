//! `POST /tasks` and `GET /tasks/{id}`: DispatchGO's one-off deliveries.
//!
//! A task is stored as an event of kind `task` with exactly one delivery
//! whose destination is inline; it shares the queue, retries and dead
//! letters with subscription deliveries.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use dispatch_wire::{ErrorResponse, TaskAccepted, TaskIn, TaskView};

use super::error::{ApiError, ApiResult};
use super::events::new_id;
use super::extract::JsonBody;
use super::{AppState, PathId, views};
use crate::ingest::{Outcome, Submission};
use crate::model::{
    DeliveryState, Event, EventKind, InlineDestination, NewDelivery, now_ms, rfc3339,
};
use crate::validate;

#[utoipa::path(
    post,
    path = "/tasks",
    tag = "tasks",
    request_body = TaskIn,
    responses(
        (status = 202, description = "Queued", body = TaskAccepted),
        (status = 400, description = "Malformed JSON or query", body = ErrorResponse),
        (status = 401, description = "Missing or wrong credentials", body = ErrorResponse),
        (status = 403, description = "A tenant token cannot use tasks", body = ErrorResponse),
        (status = 413, description = "Body over api.max_body_bytes", body = ErrorResponse),
        (status = 415, description = "Not application/json", body = ErrorResponse),
        (status = 422, description = "Wrong shape, type or value", body = ErrorResponse),
        (status = 503, description = "Database unavailable; retry", body = ErrorResponse),
    )
)]
pub async fn create(
    State(st): State<AppState>,
    JsonBody(input): JsonBody<TaskIn>,
) -> ApiResult<(StatusCode, Json<TaskAccepted>)> {
    let url = validate::url("url", &input.url).map_err(ApiError::Validation)?;
    st.guard
        .check_url(&url)
        .map_err(|e| ApiError::Validation(format!("url: {e}")))?;
    let method = validate::method(input.method.as_deref().unwrap_or("POST"))
        .map_err(ApiError::Validation)?;
    validate::event_type(&input.event)
        .map_err(|e| ApiError::Validation(e.replacen("type", "event", 1)))?;
    if let Some(s) = &input.secret {
        validate::secret(s).map_err(ApiError::Validation)?;
    }
    if let Some(h) = &input.headers {
        validate::headers(h).map_err(ApiError::Validation)?;
    }
    let max_retries = input.max_retries.unwrap_or(st.cfg.tasks.max_retries);
    if max_retries > 99 {
        return Err(ApiError::Validation(
            "max_retries must be at most 99".into(),
        ));
    }
    let id = new_id("task");
    let data = input.data.get().to_string();
    let event = Event {
        id: id.clone(),
        kind: EventKind::Task,
        event_type: input.event,
        source: None,
        data: data.clone(),
        idempotency_key: None,
        created_at: now_ms(),
        tenant_id: None,
        channels: Vec::new(),
        ordering_key: None,
    };
    let delivery = NewDelivery {
        subscription_id: None,
        inline: InlineDestination {
            url: Some(input.url),
            method: Some(method),
            headers: Some(input.headers.unwrap_or_default()),
            secret: input.secret.map(Into::into),
            body: Some(data),
            event_type: None,
        },
        max_attempts: max_retries + 1,
        ordering_key: None,
        leased: false,
    };
    let outcome = st
        .ingest
        .ingest(vec![Submission {
            event,
            fixed: Some(vec![delivery]),
        }])
        .await?;
    match outcome.first() {
        Some(Outcome::Inserted) => Ok((
            StatusCode::ACCEPTED,
            Json(TaskAccepted {
                task_id: id,
                status: "queued".into(),
            }),
        )),
        _ => Err(ApiError::Internal("task id collided".into())),
    }
}

#[utoipa::path(
    get,
    path = "/tasks/{id}",
    tag = "tasks",
    params(("id" = String, Path, description = "The resource id")),
    responses(
        (status = 200, description = "Status and attempts", body = TaskView),
        (status = 400, description = "Bad query or path", body = ErrorResponse),
        (status = 401, description = "Missing or wrong credentials", body = ErrorResponse),
        (status = 403, description = "A tenant token cannot use tasks", body = ErrorResponse),
        (status = 404, description = "No such resource", body = ErrorResponse),
        (status = 503, description = "Database unavailable; retry", body = ErrorResponse),
    )
)]
pub async fn get(State(st): State<AppState>, PathId(id): PathId) -> ApiResult<Json<TaskView>> {
    let event = st
        .store
        .get_event(&id, EventKind::Task)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no task with id {id:?}")))?;
    let deliveries = st.store.event_deliveries(&id).await?;
    // A task whose delivery was pruned (retention) is gone as far as the API
    // is concerned; the event row follows it at the next sweep.
    let d = deliveries
        .first()
        .ok_or_else(|| ApiError::NotFound(format!("no task with id {id:?}")))?;
    let attempts = st.store.event_attempts(&id).await?;
    let status = match d.state {
        // A task is never ordered; held reads as waiting all the same.
        DeliveryState::Pending
        | DeliveryState::Scheduled
        | DeliveryState::Paused
        | DeliveryState::Held => "pending",
        DeliveryState::InFlight => "processing",
        DeliveryState::Delivered => "completed",
        DeliveryState::Dead | DeliveryState::Dropped => "failed",
    };
    Ok(Json(TaskView {
        task_id: event.id,
        status: status.into(),
        url: d.url.clone(),
        method: d.method.clone(),
        event: event.event_type,
        attempts_made: d.attempts,
        retry_count: (d.attempts - 1).max(0),
        max_retries: d.max_attempts - 1,
        error: d.last_error.clone(),
        last_status_code: d.last_status_code,
        created_at: rfc3339(event.created_at),
        completed_at: d.delivered_at.map(rfc3339),
        next_attempt_at: views::delivery(d).next_attempt_at,
        attempts: attempts.iter().map(views::attempt).collect(),
    }))
}
