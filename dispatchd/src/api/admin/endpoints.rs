//! `POST /admin/subscriptions/{id}/pause|resume|disable|enable`: park an
//! endpoint's deliveries or let them flow again.

use axum::Json;
use axum::extract::State;
use dispatch_wire::{ErrorResponse, SubscriptionView};

use crate::api::error::{ApiError, ApiResult};
use crate::api::{AppState, PathId, views};
use crate::model::SubscriptionStatus;

async fn set_status(
    st: &AppState,
    id: &str,
    status: SubscriptionStatus,
    reason: Option<&str>,
) -> ApiResult<Json<SubscriptionView>> {
    let sub = st
        .store
        .set_status(id, status, reason)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no subscription with id {id:?}")))?;
    st.stats.mark_stale().await;
    Ok(Json(views::subscription(&sub, false)))
}

#[utoipa::path(
    post,
    path = "/admin/subscriptions/{id}/pause",
    tag = "admin",
    params(("id" = String, Path, description = "The subscription id")),
    responses(
        (status = 200, description = "Paused: deliveries parked", body = SubscriptionView),
        (status = 401, description = "Missing or wrong admin token", body = ErrorResponse),
        (status = 404, description = "No such subscription", body = ErrorResponse),
        (status = 503, description = "Database unavailable; retry", body = ErrorResponse),
    )
)]
pub async fn pause(
    State(st): State<AppState>,
    PathId(id): PathId,
) -> ApiResult<Json<SubscriptionView>> {
    set_status(&st, &id, SubscriptionStatus::Paused, None).await
}

#[utoipa::path(
    post,
    path = "/admin/subscriptions/{id}/resume",
    tag = "admin",
    params(("id" = String, Path, description = "The subscription id")),
    responses(
        (status = 200, description = "Active: parked deliveries flow", body = SubscriptionView),
        (status = 401, description = "Missing or wrong admin token", body = ErrorResponse),
        (status = 404, description = "No such subscription", body = ErrorResponse),
        (status = 503, description = "Database unavailable; retry", body = ErrorResponse),
    )
)]
pub async fn resume(
    State(st): State<AppState>,
    PathId(id): PathId,
) -> ApiResult<Json<SubscriptionView>> {
    set_status(&st, &id, SubscriptionStatus::Active, None).await
}

#[utoipa::path(
    post,
    path = "/admin/subscriptions/{id}/disable",
    tag = "admin",
    params(("id" = String, Path, description = "The subscription id")),
    responses(
        (status = 200, description = "Disabled: deliveries parked", body = SubscriptionView),
        (status = 401, description = "Missing or wrong admin token", body = ErrorResponse),
        (status = 404, description = "No such subscription", body = ErrorResponse),
        (status = 503, description = "Database unavailable; retry", body = ErrorResponse),
    )
)]
pub async fn disable(
    State(st): State<AppState>,
    PathId(id): PathId,
) -> ApiResult<Json<SubscriptionView>> {
    set_status(
        &st,
        &id,
        SubscriptionStatus::Disabled,
        Some("disabled by an operator"),
    )
    .await
}

#[utoipa::path(
    post,
    path = "/admin/subscriptions/{id}/enable",
    tag = "admin",
    params(("id" = String, Path, description = "The subscription id")),
    responses(
        (status = 200, description = "Active: parked deliveries flow", body = SubscriptionView),
        (status = 401, description = "Missing or wrong admin token", body = ErrorResponse),
        (status = 404, description = "No such subscription", body = ErrorResponse),
        (status = 503, description = "Database unavailable; retry", body = ErrorResponse),
    )
)]
pub async fn enable(
    State(st): State<AppState>,
    PathId(id): PathId,
) -> ApiResult<Json<SubscriptionView>> {
    set_status(&st, &id, SubscriptionStatus::Active, None).await
}
