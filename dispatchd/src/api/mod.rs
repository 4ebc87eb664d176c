//! The public HTTP API (SPEC §4): routes, shared state, and the mapping
//! between domain types and `dispatch_wire` shapes.
//!
//! Only this module knows JSON wire shapes. Handlers validate, call the
//! ingestor or the store, and map errors through `ApiError`.

mod admin;
mod auth;
pub mod error;
mod event_types;
mod events;
mod extract;
mod health;
pub mod openapi;
mod stats;

pub use stats::StatsHub;
mod subscriptions;
mod tasks;
mod tenants;
mod views;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request};
use axum::routing::{get, post};
use axum::{Json, Router};
use dispatch_wire::ListOut;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::config::Config;
use crate::ingest::Ingestor;
use crate::store::Store;
use error::ApiError;

/// What every handler shares, behind one `Arc`: axum clones the state
/// for each middleware and extractor of every request, and one reference
/// count is cheaper than a dozen (the profile of single POSTs showed the
/// field-by-field clones and drops at 2.6 %).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> Self {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

pub struct Shared {
    pub store: Arc<dyn Store>,
    pub ingest: Ingestor,
    pub cfg: Arc<Config>,
    /// Built once from the config: checks literal destination addresses.
    pub guard: Arc<crate::ssrf::Guard>,
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
    /// The admin figures, read at most once a second for every watcher.
    pub stats: Arc<stats::StatsHub>,
    pub plugins: Arc<crate::plugins::Plugins>,
    /// The heartbeat's view of the nodes alive (limits are split among them).
    pub beat: Arc<crate::queue::liveness::Beat>,
    /// Each tenant's ingest limit, paced on this node.
    pub tenant_limits: Arc<crate::ratelimit::Limiter>,
    /// The event-type catalogue, compiled.
    pub catalogue: Arc<crate::catalogue::Catalogue>,
}

pub fn router(state: AppState) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    Router::new()
        .route("/health", get(health::health))
        .route("/ready", get(health::ready))
        .route("/metrics", get(health::metrics))
        .route("/openapi.json", get(openapi::serve))
        .route("/events", post(events::create))
        .route("/events/batch", post(events::create_batch))
        .route("/events/{id}", get(events::get))
        .route("/events/{id}/attempts", get(events::attempts))
        .route(
            "/event-types",
            post(event_types::create).get(event_types::list),
        )
        .route(
            "/event-types/{name}",
            get(event_types::get)
                .patch(event_types::update)
                .delete(event_types::delete),
        )
        .route("/tasks", post(tasks::create))
        .route("/tasks/{id}", get(tasks::get))
        .route(
            "/subscriptions",
            post(subscriptions::create).get(subscriptions::list),
        )
        .route(
            "/subscriptions/{id}",
            get(subscriptions::get)
                .patch(subscriptions::update)
                .delete(subscriptions::delete),
        )
        .route("/tenants", post(tenants::create).get(tenants::list))
        .route(
            "/tenants/{id}",
            get(tenants::get)
                .patch(tenants::update)
                .delete(tenants::delete),
        )
        .route(
            "/tenants/{id}/tokens",
            post(tenants::create_token).get(tenants::list_tokens),
        )
        .route(
            "/tenants/{id}/tokens/{token_id}",
            axum::routing::delete(tenants::delete_token),
        )
        .route("/tenants/{id}/dead-letters", get(tenants::dead_letters))
        .route("/tenants/{id}/dead-letters/replay", post(tenants::replay))
        .nest("/admin", admin::router(state.clone()))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_auth,
        ))
        // Bodies are read by `extract::read_limited`, which enforces
        // api.max_body_bytes itself.
        .layer(DefaultBodyLimit::disable())
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                let id = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
            }),
        )
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_secs(30),
        ))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such route".into())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed("method not allowed on this route".into())
}

/// `?limit=&after=` of list routes.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// 1 to 1000; 100 when absent.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[param(min_length = 1, max_length = 255, pattern = "^[A-Za-z0-9._~:-]+$")]
    pub after: Option<String>,
}

impl PageQuery {
    pub fn page(self) -> Result<crate::store::Page, ApiError> {
        if let Some(after) = &self.after {
            crate::validate::id("after", after).map_err(ApiError::BadRequest)?;
        }
        let limit = self.limit.unwrap_or(100);
        if !(1..=1000).contains(&limit) {
            return Err(ApiError::BadRequest(
                "limit must be between 1 and 1000".into(),
            ));
        }
        Ok(crate::store::Page {
            after: self.after,
            limit,
        })
    }
}

/// A page of `rows` as the API lists it: each shown by `view`, and a
/// `next_cursor` (the last row's `cursor`) when the page is full, since
/// more may follow.
pub fn paged<T, V>(
    rows: &[T],
    limit: u32,
    cursor: impl Fn(&T) -> String,
    view: impl Fn(&T) -> V,
) -> Json<ListOut<V>> {
    let next_cursor = (rows.len() == limit as usize)
        .then(|| rows.last().map(&cursor))
        .flatten();
    Json(ListOut {
        data: rows.iter().map(view).collect(),
        next_cursor,
    })
}

/// Query-string extraction with our JSON error on bad input.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequestParts<S>
    for Query<T>
{
    type Rejection = ApiError;
    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(|e| ApiError::BadRequest(e.body_text()))
    }
}

/// Path extraction with our JSON error on bad input.
pub struct PathId(pub String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for PathId {
    type Rejection = ApiError;
    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        let id = axum::extract::Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::BadRequest(e.body_text()))?
            .0;
        // No stored id can hold other characters, so such a path names nothing.
        if crate::validate::id("id", &id).is_err() {
            return Err(ApiError::NotFound(format!("no resource with id {id:?}")));
        }
        Ok(PathId(id))
    }
}

/// Two path ids (`/tenants/{id}/tokens/{token_id}`); an impossible id names
/// nothing (404), as with `PathId`.
pub struct TwoIds(pub String, pub String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for TwoIds {
    type Rejection = ApiError;
    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        let (a, b) = axum::extract::Path::<(String, String)>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::BadRequest(e.body_text()))?
            .0;
        for v in [&a, &b] {
            if crate::validate::id("id", v).is_err() {
                return Err(ApiError::NotFound(format!("no resource with id {v:?}")));
            }
        }
        Ok(TwoIds(a, b))
    }
}
