//! The operator API under `/admin` (SPEC §7 route names are the contract):
//! endpoint pause/resume/disable/enable and dead letters (list, replay,
//! purge). Its own bearer tokens (`admin.tokens`), separate from producer
//! keys; open in dev mode.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use dispatch_wire::{
    DeadLetterAction, DeadLetterActionOut, DeadLetterDetail, DeadLetterFilter, DeadLetterView,
    ErrorResponse, ListOut, PluginList, PluginReloadOut, PluginReloadResult, PluginView,
    SubscriptionView,
};

use super::error::{ApiError, ApiResult};
use super::extract::JsonBody;
use super::{AppState, PathId, Query, views};
use crate::config::Config;
use crate::model::{DeadFilter, DeadSelection, Millis};

/// Most ids one replay or purge may name.
const MAX_IDS: usize = 1000;

pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/subscriptions/{id}/pause", post(pause))
        .route("/subscriptions/{id}/resume", post(resume))
        .route("/subscriptions/{id}/disable", post(disable))
        .route("/subscriptions/{id}/enable", post(enable))
        .route("/stats", get(super::stats::stats))
        .route("/stream", get(super::stats::stream))
        .route("/dead-letters", get(dead_letters))
        .route("/dead-letters/{id}", get(dead_letter))
        .route("/dead-letters/replay", post(replay))
        .route("/dead-letters/purge", post(purge))
        .route("/plugins", get(plugins))
        .route("/plugins/reload", post(reload_plugins))
        .layer(axum::middleware::from_fn_with_state(
            state.cfg,
            require_admin,
        ))
}

async fn require_admin(
    State(cfg): State<Arc<Config>>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if cfg.dev {
        return Ok(next.run(req).await);
    }
    if cfg.admin.tokens.is_empty() {
        return Err(ApiError::Unauthorized(
            "the admin API is disabled: configure admin.tokens".into(),
        ));
    }
    let token = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if super::auth::key_matches(&cfg.admin.tokens, token.trim()) {
        Ok(next.run(req).await)
    } else {
        Err(ApiError::Unauthorized(
            "missing or invalid admin token".into(),
        ))
    }
}

async fn set_status(
    st: &AppState,
    id: &str,
    status: &str,
    reason: Option<&str>,
) -> ApiResult<Json<SubscriptionView>> {
    let sub = st
        .store
        .set_status(id, status, reason)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no subscription with id {id:?}")))?;
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
    set_status(&st, &id, "paused", None).await
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
    set_status(&st, &id, "active", None).await
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
    set_status(&st, &id, "disabled", Some("disabled by an operator")).await
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
    set_status(&st, &id, "active", None).await
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeadLetterQuery {
    #[param(min_length = 1, max_length = 255, pattern = "^[A-Za-z0-9._~:-]+$")]
    subscription_id: Option<String>,
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
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::BadRequest(
            "limit must be between 1 and 1000".into(),
        ));
    }
    let filter = to_filter(DeadLetterFilter {
        subscription_id: q.subscription_id,
        event_type: q.event_type,
        since: q.since,
        until: q.until,
    })
    .map_err(ApiError::BadRequest)?;
    let rows = st.store.dead_letters(&filter, q.after, limit).await?;
    let next_cursor = (rows.len() == limit as usize)
        .then(|| rows.last().map(|r| r.delivery.id.to_string()))
        .flatten();
    Ok(Json(ListOut {
        data: rows.iter().map(views::dead_letter).collect(),
        next_cursor,
    }))
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
    let selection = to_selection(action)?;
    let count = st.store.replay_dead(&selection).await?;
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
    let selection = to_selection(action)?;
    let count = st.store.purge_dead(&selection).await?;
    Ok(Json(DeadLetterActionOut { count }))
}

fn to_selection(action: DeadLetterAction) -> ApiResult<DeadSelection> {
    match (action.ids, action.filter) {
        (Some(ids), None) => {
            if ids.is_empty() || ids.len() > MAX_IDS {
                return Err(ApiError::Validation(format!(
                    "ids must hold 1 to {MAX_IDS} delivery ids"
                )));
            }
            Ok(DeadSelection::Ids(ids))
        }
        (None, Some(filter)) => to_filter(filter)
            .map(DeadSelection::Filter)
            .map_err(ApiError::Validation),
        _ => Err(ApiError::Validation(
            "give exactly one of ids or filter".into(),
        )),
    }
}

fn to_filter(f: DeadLetterFilter) -> Result<DeadFilter, String> {
    if let Some(id) = &f.subscription_id {
        crate::validate::id("subscription_id", id)?;
    }
    if let Some(t) = &f.event_type {
        crate::validate::event_type(t).map_err(|e| format!("event_{e}"))?;
    }
    Ok(DeadFilter {
        subscription_id: f.subscription_id,
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

#[utoipa::path(
    get,
    path = "/admin/plugins",
    tag = "admin",
    responses(
        (status = 200, description = "Loaded plugins with this node's call statistics", body = PluginList),
        (status = 401, description = "Missing or wrong admin token", body = ErrorResponse),
    )
)]
pub async fn plugins(State(st): State<AppState>) -> Json<PluginList> {
    Json(PluginList {
        plugins: st
            .plugins
            .list()
            .into_iter()
            .map(|p| PluginView {
                name: p.name,
                world: p.world.into(),
                path: p.path.display().to_string(),
                hash: p.hash,
                size_bytes: p.size,
                loaded_at: crate::model::rfc3339(p.loaded_at),
                invocations: p.invocations,
                errors: p.errors,
                mean_us: p.mean_us,
                warm: p.warm,
            })
            .collect(),
    })
}

#[utoipa::path(
    post,
    path = "/admin/plugins/reload",
    tag = "admin",
    responses(
        (status = 200, description = "Every configured plugin's file read again; changed ones recompiled and swapped in (calls in flight finish on the old version). A plugin that fails to load keeps its previous version and says why.", body = PluginReloadOut),
        (status = 401, description = "Missing or wrong admin token", body = ErrorResponse),
    )
)]
pub async fn reload_plugins(State(st): State<AppState>) -> Json<PluginReloadOut> {
    let results = st
        .plugins
        .reload()
        .await
        .into_iter()
        .map(|r| {
            if let Some(e) = &r.error {
                tracing::warn!(plugin = %r.name, error = %e, "plugin reload failed; the previous version keeps running");
            }
            PluginReloadResult {
                name: r.name,
                status: r.status.into(),
                hash: r.hash,
                error: r.error,
            }
        })
        .collect();
    Json(PluginReloadOut { results })
}
