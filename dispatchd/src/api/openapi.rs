//! `GET /openapi.json`: the OpenAPI 3.1 document, generated from the route
//! annotations and the `dispatch_wire` types (utoipa), built once.

use std::sync::OnceLock;

use axum::response::IntoResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{admin, event_types, events, health, stats, subscriptions, tasks, tenants};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "dispatchd",
        description = "Durable, signed webhook delivery. Producers send events; dispatchd \
                       delivers them to subscriptions with retries and dead letters. Every \
                       error is {\"error\": {\"code\", \"message\"}}."
    ),
    paths(
        events::create,
        events::create_batch,
        events::get,
        events::attempts,
        event_types::create,
        event_types::list,
        event_types::get,
        event_types::update,
        event_types::delete,
        tasks::create,
        tasks::get,
        subscriptions::create,
        subscriptions::list,
        subscriptions::get,
        subscriptions::update,
        subscriptions::delete,
        tenants::create,
        tenants::list,
        tenants::get,
        tenants::update,
        tenants::delete,
        tenants::create_token,
        tenants::list_tokens,
        tenants::delete_token,
        tenants::dead_letters,
        tenants::replay,
        health::health,
        health::ready,
        health::metrics,
        admin::pause,
        admin::resume,
        admin::disable,
        admin::enable,
        stats::stats,
        stats::stream,
        admin::dead_letters,
        admin::dead_letter,
        admin::replay,
        admin::purge,
        admin::plugins,
        admin::reload_plugins,
        admin::event_types,
    ),
    modifiers(&Auth),
    tags(
        (name = "events", description = "Producers send events"),
        (name = "event-types", description = "The catalogue: documented event types, their schemas (checked at ingest), and dispatchd's operational events"),
        (name = "tasks", description = "One-off deliveries (DispatchGO)"),
        (name = "subscriptions", description = "Where events go"),
        (name = "tenants", description = "The producer's customers: their events, subscriptions and scoped tokens"),
        (name = "admin", description = "Operators: endpoints and dead letters (admin token)"),
        (name = "operations", description = "Health, readiness, metrics"),
    )
)]
pub struct ApiDoc;

/// Bearer keys (producers: `api.keys`; tenants: their `dtt_` tokens;
/// operators: `admin.tokens`).
struct Auth;

impl Modify for Auth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document, serialised once.
pub fn document() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        ApiDoc::openapi()
            .to_pretty_json()
            .expect("the document serialises")
    })
}

pub async fn serve() -> impl IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        document(),
    )
}
