//! A tenant's API tokens: made (shown once), listed (never shown), revoked.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use dispatch_wire::{ErrorResponse, ListOut, TenantTokenCreated, TenantTokenIn, TenantTokenView};

use super::{find, not_found, text};
use crate::api::auth::{new_token, token_hash};
use crate::api::error::{ApiError, ApiResult};
use crate::api::events::new_id;
use crate::api::extract::JsonBody;
use crate::api::{AppState, PageQuery, PathId, Query, TwoIds, paged, views};
use crate::model::{TenantToken, now_ms, rfc3339};

#[utoipa::path(
    post,
    path = "/tenants/{id}/tokens",
    tag = "tenants",
    request_body = TenantTokenIn,
    params(("id" = String, Path, description = "The tenant's id")),
    responses(
        (status = 201, description = "Created; the token is shown this once", body = TenantTokenCreated),
        (status = 400, description = "Malformed JSON", body = ErrorResponse),
        (status = 401, description = "Missing or wrong credentials", body = ErrorResponse),
        (status = 403, description = "A tenant token cannot manage tokens", body = ErrorResponse),
        (status = 404, description = "No such tenant", body = ErrorResponse),
        (status = 413, description = "Body over api.max_body_bytes", body = ErrorResponse),
        (status = 415, description = "Not application/json", body = ErrorResponse),
        (status = 422, description = "Wrong shape, type or value", body = ErrorResponse),
        (status = 503, description = "Database unavailable; retry", body = ErrorResponse),
    )
)]
pub async fn create_token(
    State(st): State<AppState>,
    PathId(id): PathId,
    JsonBody(input): JsonBody<TenantTokenIn>,
) -> ApiResult<(StatusCode, Json<TenantTokenCreated>)> {
    find(&st, &id).await?;
    if let Some(d) = &input.description {
        text("description", d)?;
    }
    let ttl = match input.expires_in_secs {
        Some(s) if (1..=315_360_000).contains(&s) => Some(s as i64 * 1000),
        Some(_) => {
            return Err(ApiError::Validation(
                "expires_in_secs must be between 1 and 315360000 (10 years)".into(),
            ));
        }
        None => None,
    };
    let now = now_ms();
    let token = new_token();
    let stored = TenantToken {
        id: new_id("tok"),
        tenant_id: id,
        token_hash: token_hash(&token),
        description: input.description,
        expires_at: ttl.map(|t| now + t),
        created_at: now,
        last_used_at: None,
    };
    // A tenant deleted meanwhile: its tokens are gone with it, and the
    // foreign key refuses this one.
    st.store.create_token(&stored).await.map_err(|e| match e {
        crate::store::StoreError::Conflict(_) => not_found(&stored.tenant_id),
        other => other.into(),
    })?;
    Ok((
        StatusCode::CREATED,
        Json(TenantTokenCreated {
            id: stored.id,
            token,
            description: stored.description,
            expires_at: stored.expires_at.map(rfc3339),
            created_at: rfc3339(stored.created_at),
        }),
    ))
}

#[utoipa::path(
    get,
    path = "/tenants/{id}/tokens",
    tag = "tenants",
    params(("id" = String, Path, description = "The tenant's id"), PageQuery),
    responses(
        (status = 200, description = "A page of the tenant's tokens (never the tokens themselves)", body = ListOut<TenantTokenView>),
        (status = 400, description = "Bad query", body = ErrorResponse),
        (status = 401, description = "Missing or wrong credentials", body = ErrorResponse),
        (status = 403, description = "A tenant token cannot manage tokens", body = ErrorResponse),
        (status = 404, description = "No such tenant", body = ErrorResponse),
        (status = 503, description = "Database unavailable; retry", body = ErrorResponse),
    )
)]
pub async fn list_tokens(
    State(st): State<AppState>,
    PathId(id): PathId,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<ListOut<TenantTokenView>>> {
    let page = q.page()?;
    find(&st, &id).await?;
    let found = st.store.list_tokens(&id, &page).await?;
    Ok(paged(&found, page.limit, |t| t.id.clone(), views::token))
}

#[utoipa::path(
    delete,
    path = "/tenants/{id}/tokens/{token_id}",
    tag = "tenants",
    params(
        ("id" = String, Path, description = "The tenant's id"),
        ("token_id" = String, Path, description = "The token's id"),
    ),
    responses(
        (status = 204, description = "Revoked: the token stops working at once"),
        (status = 401, description = "Missing or wrong credentials", body = ErrorResponse),
        (status = 403, description = "A tenant token cannot manage tokens", body = ErrorResponse),
        (status = 404, description = "No such tenant or token", body = ErrorResponse),
        (status = 503, description = "Database unavailable; retry", body = ErrorResponse),
    )
)]
pub async fn delete_token(
    State(st): State<AppState>,
    TwoIds(id, token_id): TwoIds,
) -> ApiResult<StatusCode> {
    if st.store.delete_token(&id, &token_id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!(
            "tenant {id:?} has no token with id {token_id:?}"
        )))
    }
}
