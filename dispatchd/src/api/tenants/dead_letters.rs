//! A tenant's own dead letters, open to its tokens: the admin routes'
//! query and body, limited to the tenant.

use axum::Json;
use axum::extract::State;
use dispatch_wire::{
    DeadLetterAction, DeadLetterActionOut, DeadLetterView, ErrorResponse, ListOut,
};

use super::{find, not_found};
use crate::api::admin::{DeadLetterQuery, list_within, replay_within};
use crate::api::auth::Scope;
use crate::api::error::ApiResult;
use crate::api::extract::JsonBody;
use crate::api::{AppState, PathId, Query};

#[utoipa::path(
    get,
    path = "/tenants/{id}/dead-letters",
    tag = "tenants",
    params(("id" = String, Path, description = "The tenant's id"), DeadLetterQuery),
    responses(
        (status = 200, description = "The tenant's dead letters, oldest first", body = ListOut<DeadLetterView>),
        (status = 400, description = "Bad query", body = ErrorResponse),
        (status = 401, description = "Missing or wrong credentials", body = ErrorResponse),
        (status = 404, description = "No such tenant (or not this token's)", body = ErrorResponse),
        (status = 503, description = "Database unavailable; retry", body = ErrorResponse),
    )
)]
pub async fn dead_letters(
    State(st): State<AppState>,
    scope: Scope,
    PathId(id): PathId,
    Query(q): Query<DeadLetterQuery>,
) -> ApiResult<Json<ListOut<DeadLetterView>>> {
    visible(&st, &scope, &id).await?;
    list_within(&st, q, Some(&id)).await
}

#[utoipa::path(
    post,
    path = "/tenants/{id}/dead-letters/replay",
    tag = "tenants",
    request_body = dispatch_wire::DeadLetterSelection,
    params(("id" = String, Path, description = "The tenant's id")),
    responses(
        (status = 200, description = "Replayed (only the tenant's own dead letters)", body = DeadLetterActionOut),
        (status = 400, description = "Malformed JSON", body = ErrorResponse),
        (status = 401, description = "Missing or wrong credentials", body = ErrorResponse),
        (status = 404, description = "No such tenant (or not this token's)", body = ErrorResponse),
        (status = 413, description = "Body too large", body = ErrorResponse),
        (status = 415, description = "Not application/json", body = ErrorResponse),
        (status = 422, description = "Neither or both of ids and filter, too many ids, bad filter", body = ErrorResponse),
        (status = 503, description = "Database unavailable; retry", body = ErrorResponse),
    )
)]
pub async fn replay(
    State(st): State<AppState>,
    scope: Scope,
    PathId(id): PathId,
    JsonBody(action): JsonBody<DeadLetterAction>,
) -> ApiResult<Json<DeadLetterActionOut>> {
    visible(&st, &scope, &id).await?;
    replay_within(&st, action, Some(&id)).await
}

/// 404 unless the tenant exists and the scope is the producer's or the
/// tenant's own.
async fn visible(st: &AppState, scope: &Scope, id: &str) -> ApiResult<()> {
    if !scope.sees(Some(id)) {
        return Err(not_found(id));
    }
    find(st, id).await.map(|_| ())
}
