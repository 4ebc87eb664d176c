//! Dead letters: list (`GET /admin/dead-letters`), inspect one, replay and
//! purge by ids (at most `MAX_IDS`) or by filter.

use axum::Json;
use axum::extract::State;
use dispatch_wire::{
    DeadLetterAction, DeadLetterActionOut, DeadLetterDetail, DeadLetterFilter, DeadLetterView,
    ErrorResponse, ListOut,
};

use super::MAX_IDS;
use crate::api::error::{ApiError, ApiResult};
use crate::api::extract::JsonBody;
use crate::api::{AppState, PathId, Query, paged, views};
use crate::model::{DeadFilter, DeadSelection, Millis};

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeadLetterQuery {
    #[param(min_length = 1, max_length = 255, pattern = "^[A-Za-z0-9._~:-]+$")]
    subscription_id: Option<String>,
    /// Only dead letters of this tenant's events.
    #[param(min_length = 1, max_length = 255, pattern = "^[A-Za-z0-9._~:-]+$")]
    tenant_id: Option<String>,
    #[param(min_length = 1, max_length = 255, pattern = "^[A-Za-z0-9._:/-]+$")]
    event_type: Option<String>,
    /// RFC 3339: died at or after.
    #[param(format = DateTime)]
    since: Option<String>,
    /// RFC 3339: died before.
    #[param(format = DateTime)]
    until: Option<String>,
    /// 1 to 1000; 100 when absent.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    after: Option<i64>,
}

#[utoipa::path(
    get,
    path = "/admin/dead-letters",
    tag = "admin",
    params(DeadLetterQuery),
    responses(
        (status = 200, description = "Dead letters, oldest first", body = ListOut<DeadLetterView>),
        (status = 400, description = "Bad query", body = ErrorResponse),
        (status = 401, description = "Missing or wrong admin token", body = ErrorResponse),
        (status = 503, description = "Database unavailable; retry", body = ErrorResponse),
    )
)]
pub async fn dead_letters(
    State(st): State<AppState>,
    Query(q): Query<DeadLetterQuery>,
) -> ApiResult<Json<ListOut<DeadLetterView>>> {
    list_within(&st, q, None).await
}

/// A page of dead letters; with `within`, only that tenant's (a filter
/// naming another tenant is refused).
pub(crate) async fn list_within(
    st: &AppState,
    q: DeadLetterQuery,
    within: Option<&str>,
) -> ApiResult<Json<ListOut<DeadLetterView>>> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::BadRequest(
            "limit must be between 1 and 1000".into(),
        ));
    }
    let filter = to_filter(
        DeadLetterFilter {
            subscription_id: q.subscription_id,
            tenant_id: q.tenant_id,
            event_type: q.event_type,
            since: q.since,
            until: q.until,
        },
        within,
    )
    .map_err(ApiError::BadRequest)?;
    let rows = st.store.dead_letters(&filter, q.after, limit).await?;
    Ok(paged(
        &rows,
        limit,
        |r| r.delivery.id.to_string(),
        views::dead_letter,
    ))
}

#[utoipa::path(
    get,
    path = "/admin/dead-letters/{id}",
    tag = "admin",
    params(("id" = i64, Path, description = "The dead delivery's id (`delivery_id`)")),
    responses(
        (status = 200, description = "The dead letter with its event payload, the destination's headers (values masked) and every attempt", body = DeadLetterDetail),
        (status = 401, description = "Missing or wrong admin token", body = ErrorResponse),
        (status = 404, description = "No dead letter with this id", body = ErrorResponse),
        (status = 503, description = "Database unavailable; retry", body = ErrorResponse),
    )
)]
pub async fn dead_letter(
    State(st): State<AppState>,
    PathId(id): PathId,
) -> ApiResult<Json<DeadLetterDetail>> {
    let missing = || ApiError::NotFound(format!("no dead letter with id {id:?}"));
    let n: i64 = id.parse().ok().filter(|&n| n > 0).ok_or_else(missing)?;
    // The first dead letter at or after `n`: it is this one or none is.
    let dead = st
        .store
        .dead_letters(&DeadFilter::default(), Some(n - 1), 1)
        .await?
        .into_iter()
        .find(|d| d.delivery.id == n)
        .ok_or_else(missing)?;
    let r = &dead.delivery;
    let kind = if r.subscription_id.is_some() {
        crate::model::EventKind::Event
    } else {
        crate::model::EventKind::Task
    };
    let event = st
        .store
        .get_event(&r.event_id, kind)
        .await?
        .ok_or_else(missing)?;
    let headers = match &r.subscription_id {
        Some(sub) => st
            .store
            .get_subscription(sub)
            .await?
            .map(|s| views::subscription(&s, false).headers)
            .unwrap_or_default(),
        None => Default::default(),
    };
    let attempts = st
        .store
        .event_attempts(&r.event_id)
        .await?
        .iter()
        .filter(|a| a.delivery_id == n)
        .map(views::attempt)
        .collect();
    Ok(Json(DeadLetterDetail {
        dead_letter: views::dead_letter(&dead),
        source: event.source.clone(),
        data: views::raw(&event.data),
        headers,
        attempts,
    }))
}

#[utoipa::path(
    post,
    path = "/admin/dead-letters/replay",
    tag = "admin",
    request_body = dispatch_wire::DeadLetterSelection,
    responses(
        (status = 200, description = "Replayed (a fresh run of attempts)", body = DeadLetterActionOut),
        (status = 400, description = "Malformed JSON", body = ErrorResponse),
        (status = 401, description = "Missing or wrong admin token", body = ErrorResponse),
        (status = 413, description = "Body too large", body = ErrorResponse),
        (status = 415, description = "Not application/json", body = ErrorResponse),
        (status = 422, description = "Neither or both of ids and filter, too many ids, bad filter", body = ErrorResponse),
        (status = 503, description = "Database unavailable; retry", body = ErrorResponse),
    )
)]
pub async fn replay(
    State(st): State<AppState>,
    JsonBody(action): JsonBody<DeadLetterAction>,
) -> ApiResult<Json<DeadLetterActionOut>> {
    replay_within(&st, action, None).await
}

/// Replays what `action` selects; with `within`, only that tenant's.
pub(crate) async fn replay_within(
    st: &AppState,
    action: DeadLetterAction,
    within: Option<&str>,
) -> ApiResult<Json<DeadLetterActionOut>> {
    let selection = to_selection(action, within)?;
    let count = st.store.replay_dead(&selection).await?;
    st.stats.mark_stale().await;
    Ok(Json(DeadLetterActionOut { count }))
}

#[utoipa::path(
    post,
    path = "/admin/dead-letters/purge",
    tag = "admin",
    request_body = dispatch_wire::DeadLetterSelection,
    responses(
        (status = 200, description = "Purged with their attempts", body = DeadLetterActionOut),
        (status = 400, description = "Malformed JSON", body = ErrorResponse),
        (status = 401, description = "Missing or wrong admin token", body = ErrorResponse),
        (status = 413, description = "Body too large", body = ErrorResponse),
        (status = 415, description = "Not application/json", body = ErrorResponse),
        (status = 422, description = "Neither or both of ids and filter, too many ids, bad filter", body = ErrorResponse),
        (status = 503, description = "Database unavailable; retry", body = ErrorResponse),
    )
)]
pub async fn purge(
    State(st): State<AppState>,
    JsonBody(action): JsonBody<DeadLetterAction>,
) -> ApiResult<Json<DeadLetterActionOut>> {
    let selection = to_selection(action, None)?;
    let count = st.store.purge_dead(&selection).await?;
    st.stats.mark_stale().await;
    Ok(Json(DeadLetterActionOut { count }))
}

fn to_selection(action: DeadLetterAction, within: Option<&str>) -> ApiResult<DeadSelection> {
    match (action.ids, action.filter) {
        (Some(ids), None) => {
            if ids.is_empty() || ids.len() > MAX_IDS {
                return Err(ApiError::Validation(format!(
                    "ids must hold 1 to {MAX_IDS} delivery ids"
                )));
            }
            Ok(DeadSelection::Ids(ids, within.map(str::to_string)))
        }
        (None, Some(filter)) => to_filter(filter, within)
            .map(DeadSelection::Filter)
            .map_err(ApiError::Validation),
        _ => Err(ApiError::Validation(
            "give exactly one of ids or filter".into(),
        )),
    }
}

fn to_filter(f: DeadLetterFilter, within: Option<&str>) -> Result<DeadFilter, String> {
    if let Some(id) = &f.subscription_id {
        crate::validate::id("subscription_id", id)?;
    }
    if let Some(id) = &f.tenant_id {
        crate::validate::id("tenant_id", id)?;
    }
    let tenant_id = match (within, f.tenant_id) {
        (Some(own), Some(t)) if t != own => {
            return Err(format!("tenant_id: {t:?} is not this route's tenant"));
        }
        (Some(own), _) => Some(own.to_string()),
        (None, t) => t,
    };
    if let Some(t) = &f.event_type {
        crate::validate::event_type(t).map_err(|e| format!("event_{e}"))?;
    }
    Ok(DeadFilter {
        subscription_id: f.subscription_id,
        tenant_id,
        event_type: f.event_type,
        since: f.since.as_deref().map(|s| time("since", s)).transpose()?,
        until: f.until.as_deref().map(|s| time("until", s)).transpose()?,
    })
}

fn time(field: &str, value: &str) -> Result<Millis, String> {
    chrono::DateTime::parse_from_rfc3339(value)
        .map(|t| t.timestamp_millis())
        .map_err(|_| format!("{field} must be an RFC 3339 time like 2026-01-31T12:00:00Z"))
}
