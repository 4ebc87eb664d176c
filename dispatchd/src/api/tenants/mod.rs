//! Tenants CRUD; their tokens (`tokens`) and a tenant's own dead letters
//! (`dead_letters`).
//!
//! Managing tenants and tokens is the producer's (a tenant token is
//! refused by `auth`); `GET /tenants/{id}/dead-letters` and its replay are
//! also open to the tenant's own tokens, and answer 404 for any other
//! tenant, as if it did not exist.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use dispatch_wire::{ErrorResponse, ListOut, TenantDeleted, TenantIn, TenantPatch, TenantView};

mod dead_letters;
mod tokens;

pub use dead_letters::*;
pub use tokens::*;

use super::error::{ApiError, ApiResult};
use super::events::id_or_new;
use super::extract::JsonBody;
use super::{AppState, PageQuery, PathId, Query, paged, views};
use crate::model::{Tenant, now_ms};

/// Most bytes of a tenant's metadata, as JSON.
const MAX_METADATA_BYTES: usize = 16 * 1024;

#[utoipa::path(
    post,
    path = "/tenants",
    tag = "tenants",
    request_body = TenantIn,
    responses(
        (status = 201, description = "Created", body = TenantView),
        (status = 400, description = "Malformed JSON", body = ErrorResponse),
        (status = 401, description = "Missing or wrong credentials", body = ErrorResponse),
        (status = 403, description = "A tenant token cannot manage tenants", body = ErrorResponse),
        (status = 409, description = "The id exists", body = ErrorResponse),
        (status = 413, description = "Body over api.max_body_bytes", body = ErrorResponse),
        (status = 415, description = "Not application/json", body = ErrorResponse),
        (status = 422, description = "Wrong shape, type or value", body = ErrorResponse),
        (status = 503, description = "Database unavailable; retry", body = ErrorResponse),
    )
)]
pub async fn create(
    State(st): State<AppState>,
    JsonBody(input): JsonBody<TenantIn>,
) -> ApiResult<(StatusCode, Json<TenantView>)> {
    let now = now_ms();
    let id = id_or_new(input.id, "ten")?;
    let tenant = Tenant {
        id,
        name: input.name,
        metadata: serde_json::to_string(&input.metadata.unwrap_or_default())
            .map_err(|e| ApiError::Internal(e.to_string()))?,
        rate_limit: input.rate_limit,
        created_at: now,
        updated_at: now,
    };
    check(&tenant)?;
    st.store.create_tenant(&tenant).await.map_err(|e| match e {
        crate::store::StoreError::Conflict(_) => {
            ApiError::Conflict(format!("a tenant with id {:?} already exists", tenant.id))
        }
        other => other.into(),
    })?;
    Ok((StatusCode::CREATED, Json(views::tenant(&tenant))))
}

#[utoipa::path(
    get,
    path = "/tenants",
    tag = "tenants",
    params(PageQuery),
    responses(
        (status = 200, description = "A page of tenants, by id", body = ListOut<TenantView>),
        (status = 400, description = "Bad query", body = ErrorResponse),
        (status = 401, description = "Missing or wrong credentials", body = ErrorResponse),
        (status = 403, description = "A tenant token cannot manage tenants", body = ErrorResponse),
        (status = 503, description = "Database unavailable; retry", body = ErrorResponse),
    )
)]
pub async fn list(
    State(st): State<AppState>,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<ListOut<TenantView>>> {
    let page = q.page()?;
    let found = st.store.list_tenants(&page).await?;
    Ok(paged(&found, page.limit, |t| t.id.clone(), views::tenant))
}

#[utoipa::path(
    get,
    path = "/tenants/{id}",
    tag = "tenants",
    params(("id" = String, Path, description = "The tenant's id")),
    responses(
        (status = 200, description = "The tenant", body = TenantView),
        (status = 401, description = "Missing or wrong credentials", body = ErrorResponse),
        (status = 403, description = "A tenant token cannot manage tenants", body = ErrorResponse),
        (status = 404, description = "No such tenant", body = ErrorResponse),
        (status = 503, description = "Database unavailable; retry", body = ErrorResponse),
    )
)]
pub async fn get(State(st): State<AppState>, PathId(id): PathId) -> ApiResult<Json<TenantView>> {
    Ok(Json(views::tenant(&find(&st, &id).await?)))
}

#[utoipa::path(
    patch,
    path = "/tenants/{id}",
    tag = "tenants",
    request_body = TenantPatch,
    params(("id" = String, Path, description = "The tenant's id")),
    responses(
        (status = 200, description = "Updated", body = TenantView),
        (status = 400, description = "Malformed JSON", body = ErrorResponse),
        (status = 401, description = "Missing or wrong credentials", body = ErrorResponse),
        (status = 403, description = "A tenant token cannot manage tenants", body = ErrorResponse),
        (status = 404, description = "No such tenant", body = ErrorResponse),
        (status = 413, description = "Body over api.max_body_bytes", body = ErrorResponse),
        (status = 415, description = "Not application/json", body = ErrorResponse),
        (status = 422, description = "Wrong shape, type or value", body = ErrorResponse),
        (status = 503, description = "Database unavailable; retry", body = ErrorResponse),
    )
)]
pub async fn update(
    State(st): State<AppState>,
    PathId(id): PathId,
    JsonBody(patch): JsonBody<TenantPatch>,
) -> ApiResult<Json<TenantView>> {
    let mut t = find(&st, &id).await?;
    if let Some(name) = patch.name {
        t.name = name;
    }
    if let Some(m) = patch.metadata {
        t.metadata = serde_json::to_string(&m).map_err(|e| ApiError::Internal(e.to_string()))?;
    }
    if let Some(rate) = patch.rate_limit {
        t.rate_limit = rate;
    }
    t.updated_at = now_ms();
    check(&t)?;
    if !st.store.update_tenant(&t).await? {
        return Err(not_found(&id));
    }
    Ok(Json(views::tenant(&t)))
}

#[utoipa::path(
    delete,
    path = "/tenants/{id}",
    tag = "tenants",
    params(("id" = String, Path, description = "The tenant's id")),
    responses(
        (status = 200, description = "Deleted with its subscriptions, tokens and undelivered deliveries, in one transaction; says how many", body = TenantDeleted),
        (status = 401, description = "Missing or wrong credentials", body = ErrorResponse),
        (status = 403, description = "A tenant token cannot manage tenants", body = ErrorResponse),
        (status = 404, description = "No such tenant", body = ErrorResponse),
        (status = 503, description = "Database unavailable; retry", body = ErrorResponse),
    )
)]
pub async fn delete(
    State(st): State<AppState>,
    PathId(id): PathId,
) -> ApiResult<Json<TenantDeleted>> {
    let gone = st
        .store
        .delete_tenant(&id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    st.stats.mark_stale().await;
    Ok(Json(TenantDeleted {
        id,
        subscriptions: gone.subscriptions,
        tokens: gone.tokens,
        deliveries: gone.deliveries,
    }))
}

pub(super) async fn find(st: &AppState, id: &str) -> ApiResult<Tenant> {
    st.store.get_tenant(id).await?.ok_or_else(|| not_found(id))
}

pub(super) fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("no tenant with id {id:?}"))
}

pub(super) fn text(field: &str, v: &str) -> ApiResult<()> {
    if v.len() > 255 || v.chars().any(char::is_control) {
        return Err(ApiError::Validation(format!(
            "{field} must be at most 255 printable characters"
        )));
    }
    Ok(())
}

/// Every rule a stored tenant obeys, checked on create and update.
fn check(t: &Tenant) -> ApiResult<()> {
    if let Some(name) = &t.name {
        text("name", name)?;
    }
    if t.metadata.len() > MAX_METADATA_BYTES {
        return Err(ApiError::Validation(format!(
            "metadata must be at most {MAX_METADATA_BYTES} bytes of JSON"
        )));
    }
    if t.rate_limit == Some(0) || t.rate_limit.is_some_and(|r| r > 100_000) {
        return Err(ApiError::Validation(
            "rate_limit must be between 1 and 100000 events per second".into(),
        ));
    }
    Ok(())
}
