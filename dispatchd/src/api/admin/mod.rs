//! The operator API under `/admin` (SPEC §7 route names are the contract):
//! endpoint pause/resume/disable/enable and dead letters (list, replay,
//! purge), plugins (list, reload), the event-type catalogue (read, for the
//! console); `/admin/stats` and `/admin/stream` are `api::stats`. Its own bearer tokens (`admin.tokens`), separate from
//! producer keys; open in dev mode. One file per resource: `endpoints`,
//! `dead_letters`, `plugins`.

mod dead_letters;
mod endpoints;
mod plugins;

pub use dead_letters::*;
pub use endpoints::*;
pub use plugins::*;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};

use super::AppState;
use super::error::ApiError;
use crate::config::Config;

#[utoipa::path(
    get,
    path = "/admin/event-types",
    tag = "admin",
    params(super::event_types::NamePage),
    responses(
        (status = 200, description = "The catalogue, as `GET /event-types` lists it", body = dispatch_wire::ListOut<dispatch_wire::EventTypeView>),
        (status = 400, description = "Bad query", body = dispatch_wire::ErrorResponse),
        (status = 401, description = "Missing or wrong admin token", body = dispatch_wire::ErrorResponse),
        (status = 503, description = "Database unavailable; retry", body = dispatch_wire::ErrorResponse),
    )
)]
/// The catalogue for operators (the console), under the admin token.
pub async fn event_types(
    st: State<AppState>,
    q: super::Query<super::event_types::NamePage>,
) -> super::error::ApiResult<axum::Json<dispatch_wire::ListOut<dispatch_wire::EventTypeView>>> {
    super::event_types::list(st, q).await
}

/// Most ids one replay or purge may name.
pub(super) const MAX_IDS: usize = 1000;

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
        .route("/event-types", get(event_types))
        .layer(axum::middleware::from_fn_with_state(
            state.cfg.clone(),
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
