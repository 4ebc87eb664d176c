//! `/health` (the process answers), `/ready` (the database answers and
//! the schema is current) and `/metrics` (Prometheus).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use dispatch_wire::HealthOut;

use super::AppState;

#[utoipa::path(
    get,
    path = "/health",
    tag = "operations",
    responses(
        (status = 200, description = "The process answers", body = HealthOut),

    )
)]
pub async fn health() -> Json<HealthOut> {
    Json(HealthOut {
        status: "ok".into(),
        database: None,
        version: env!("CARGO_PKG_VERSION").into(),
    })
}

/// `GET /metrics`: Prometheus text format.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses(
        (status = 200, description = "Prometheus text format", body = String, content_type = "text/plain"),

    )
)]
pub async fn metrics(State(st): State<AppState>) -> impl axum::response::IntoResponse {
    let body = crate::telemetry::render(&st.metrics, st.store.as_ref()).await;
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
}

#[utoipa::path(
    get,
    path = "/ready",
    tag = "operations",
    responses(
        (status = 200, description = "Database reachable, migrations applied", body = HealthOut),
        (status = 503, description = "Not ready", body = HealthOut),

    )
)]
pub async fn ready(State(st): State<AppState>) -> (StatusCode, Json<HealthOut>) {
    let (status, db) = match st.store.ready().await {
        Ok(()) => (StatusCode::OK, "ok".to_string()),
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            (StatusCode::SERVICE_UNAVAILABLE, "unavailable".to_string())
        }
    };
    (
        status,
        Json(HealthOut {
            status: if status.is_success() {
                "ok"
            } else {
                "unavailable"
            }
            .into(),
            database: Some(format!("{} {db}", st.store.backend())),
            version: env!("CARGO_PKG_VERSION").into(),
        }),
    )
}
