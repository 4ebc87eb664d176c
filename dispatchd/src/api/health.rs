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
        (status = 401, description = "metrics.token is set and the bearer token is missing or wrong", body = dispatch_wire::ErrorResponse),

    )
)]
pub async fn metrics(
    State(st): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Result<impl axum::response::IntoResponse, super::error::ApiError> {
    let token = &st.cfg.metrics.token;
    if !token.is_empty() {
        let given = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !super::auth::key_matches(std::slice::from_ref(token), given.trim()) {
            return Err(super::error::ApiError::Unauthorized(
                "missing or invalid metrics token (metrics.token)".into(),
            ));
        }
    }
    let snapshot = match st.stats.snapshot().await {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "metrics: the database cannot be read; gauges left out");
            None
        }
    };
    let body = crate::telemetry::render(&st.metrics, snapshot.as_deref());
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    ))
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
