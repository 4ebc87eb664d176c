//! `POST/GET /event-types`, `GET/PATCH/DELETE /event-types/{name}`: the
//! catalogue. A schema is compiled when written (a bad one is a 422
//! naming the problem), an example is checked against it, and every node
//! enforces the change within `catalogue::POLL`. dispatchd's operational
//! types are listed with the others and cannot be changed. Tenant tokens
//! may read the catalogue (a portal documents it), not change it.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use dispatch_wire::{ErrorResponse, EventTypeIn, EventTypePatch, EventTypeView, ListOut};
use serde_json::Value;

use super::error::{ApiError, ApiResult};
use super::extract::JsonBody;
use super::{AppState, PageQuery, Query, paged, views};
use crate::catalogue::{self, builtin};
use crate::model::{EventType, now_ms};
use crate::validate;

/// Most characters of a description.
const MAX_DESCRIPTION: usize = 4096;

#[utoipa::path(
    post,
    path = "/event-types",
    tag = "event-types",
    request_body = EventTypeIn,
    responses(
        (status = 201, description = "Created", body = EventTypeView),
        (status = 400, description = "Malformed JSON", body = ErrorResponse),
        (status = 401, description = "Missing or wrong credentials", body = ErrorResponse),
        (status = 403, description = "A tenant token cannot change the catalogue", body = ErrorResponse),
        (status = 409, description = "The type exists", body = ErrorResponse),
        (status = 413, description = "Body over api.max_body_bytes", body = ErrorResponse),
        (status = 415, description = "Not application/json", body = ErrorResponse),
        (status = 422, description = "Wrong shape or value; a schema that is not valid JSON Schema 2020-12; an example that breaks it", body = ErrorResponse),
        (status = 503, description = "Database unavailable; retry", body = ErrorResponse),
    )
)]
pub async fn create(
    State(st): State<AppState>,
    JsonBody(input): JsonBody<EventTypeIn>,
) -> ApiResult<(StatusCode, Json<EventTypeView>)> {
    validate::event_type(&input.name)
        .map_err(|e| ApiError::Validation(e.replacen("type", "name", 1)))?;
    if builtin::is_operational(&input.name) {
        return Err(ApiError::Validation(format!(
            "name: types under \"{}\" are reserved for dispatchd's operational events",
            builtin::PREFIX
        )));
    }
    let now = now_ms();
    let t = EventType {
        name: input.name,
        description: input.description,
        schema: input.schema.as_ref().map(Value::to_string),
        deprecated: input.deprecated.unwrap_or(false),
        example: input.example.as_ref().map(Value::to_string),
        created_at: now,
        updated_at: now,
    };
    checked(&t).await?;
    st.store.create_event_type(&t).await.map_err(|e| match e {
        crate::store::StoreError::Conflict(_) => {
            ApiError::Conflict(format!("event type {:?} already exists", t.name))
        }
        other => other.into(),
    })?;
    reload(&st).await;
    Ok((StatusCode::CREATED, Json(views::event_type(&t))))
}

#[utoipa::path(
    get,
    path = "/event-types",
    tag = "event-types",
    params(NamePage),
    responses(
        (status = 200, description = "A page of event types by name, with their schemas; dispatchd's operational types among them", body = ListOut<EventTypeView>),
        (status = 400, description = "Bad query", body = ErrorResponse),
        (status = 401, description = "Missing or wrong credentials", body = ErrorResponse),
        (status = 503, description = "Database unavailable; retry", body = ErrorResponse),
    )
)]
pub async fn list(
    State(st): State<AppState>,
    Query(q): Query<NamePage>,
) -> ApiResult<Json<ListOut<EventTypeView>>> {
    if let Some(after) = &q.after {
        validate::event_type(after)
            .map_err(|e| ApiError::BadRequest(e.replacen("type", "after", 1)))?;
    }
    let page = PageQuery {
        limit: q.limit,
        after: None,
    }
    .page()?;
    let page = crate::store::Page {
        after: q.after,
        limit: page.limit,
    };
    // The stored page, and the built-in types that fall in it.
    let mut found = st.store.list_event_types(&page).await?;
    found.extend(
        builtin::types()
            .iter()
            .filter(|t| page.after.as_deref().is_none_or(|a| t.name.as_str() > a))
            .cloned(),
    );
    found.sort_by(|a, b| a.name.cmp(&b.name));
    found.truncate(page.limit as usize);
    Ok(paged(
        &found,
        page.limit,
        |t| t.name.clone(),
        views::event_type,
    ))
}

#[utoipa::path(
    get,
    path = "/event-types/{name}",
    tag = "event-types",
    params(("name" = String, Path, description = "The event type")),
    responses(
        (status = 200, description = "The event type", body = EventTypeView),
        (status = 401, description = "Missing or wrong credentials", body = ErrorResponse),
        (status = 404, description = "Not in the catalogue", body = ErrorResponse),
        (status = 503, description = "Database unavailable; retry", body = ErrorResponse),
    )
)]
pub async fn get(
    State(st): State<AppState>,
    PathName(name): PathName,
) -> ApiResult<Json<EventTypeView>> {
    if let Some(t) = builtin::types().iter().find(|t| t.name == name) {
        return Ok(Json(views::event_type(t)));
    }
    Ok(Json(views::event_type(&find(&st, &name).await?)))
}

#[utoipa::path(
    patch,
    path = "/event-types/{name}",
    tag = "event-types",
    request_body = EventTypePatch,
    params(("name" = String, Path, description = "The event type")),
    responses(
        (status = 200, description = "Updated; every node checks events against it within a second", body = EventTypeView),
        (status = 400, description = "Malformed JSON", body = ErrorResponse),
        (status = 401, description = "Missing or wrong credentials", body = ErrorResponse),
        (status = 403, description = "A tenant token cannot change the catalogue", body = ErrorResponse),
        (status = 404, description = "Not in the catalogue", body = ErrorResponse),
        (status = 409, description = "One of dispatchd's operational types, which cannot be changed", body = ErrorResponse),
        (status = 413, description = "Body over api.max_body_bytes", body = ErrorResponse),
        (status = 415, description = "Not application/json", body = ErrorResponse),
        (status = 422, description = "Wrong shape or value; a bad schema; an example that breaks it", body = ErrorResponse),
        (status = 503, description = "Database unavailable; retry", body = ErrorResponse),
    )
)]
pub async fn update(
    State(st): State<AppState>,
    PathName(name): PathName,
    JsonBody(patch): JsonBody<EventTypePatch>,
) -> ApiResult<Json<EventTypeView>> {
    fixed(&name)?;
    let mut t = find(&st, &name).await?;
    if let Some(d) = patch.description {
        t.description = d;
    }
    if let Some(s) = patch.schema {
        t.schema = s.as_ref().map(Value::to_string);
    }
    if let Some(d) = patch.deprecated {
        t.deprecated = d;
    }
    if let Some(e) = patch.example {
        t.example = e.as_ref().map(Value::to_string);
    }
    t.updated_at = now_ms();
    checked(&t).await?;
    if !st.store.update_event_type(&t).await? {
        return Err(not_found(&name));
    }
    reload(&st).await;
    Ok(Json(views::event_type(&t)))
}

#[utoipa::path(
    delete,
    path = "/event-types/{name}",
    tag = "event-types",
    params(("name" = String, Path, description = "The event type")),
    responses(
        (status = 204, description = "Deleted: its events are no longer checked"),
        (status = 401, description = "Missing or wrong credentials", body = ErrorResponse),
        (status = 403, description = "A tenant token cannot change the catalogue", body = ErrorResponse),
        (status = 404, description = "Not in the catalogue", body = ErrorResponse),
        (status = 409, description = "One of dispatchd's operational types, which cannot be deleted", body = ErrorResponse),
        (status = 503, description = "Database unavailable; retry", body = ErrorResponse),
    )
)]
pub async fn delete(State(st): State<AppState>, PathName(name): PathName) -> ApiResult<StatusCode> {
    fixed(&name)?;
    if !st.store.delete_event_type(&name).await? {
        return Err(not_found(&name));
    }
    reload(&st).await;
    Ok(StatusCode::NO_CONTENT)
}

async fn find(st: &AppState, name: &str) -> ApiResult<EventType> {
    st.store
        .get_event_type(name)
        .await?
        .ok_or_else(|| not_found(name))
}

fn not_found(name: &str) -> ApiError {
    ApiError::NotFound(format!("no event type {name:?} in the catalogue"))
}

/// The operational types are dispatchd's promise to its subscribers.
fn fixed(name: &str) -> ApiResult<()> {
    if builtin::is_operational(name) {
        return Err(ApiError::Conflict(format!(
            "{name:?} is one of dispatchd's operational event types and cannot be changed"
        )));
    }
    Ok(())
}

/// Every rule a stored type obeys: a short description, a schema that
/// compiles, an example that satisfies it. Compiling a big schema takes a
/// while: off the reactor.
async fn checked(t: &EventType) -> ApiResult<()> {
    if let Some(d) = &t.description
        && d.chars().count() > MAX_DESCRIPTION
    {
        return Err(ApiError::Validation(format!(
            "description must be at most {MAX_DESCRIPTION} characters"
        )));
    }
    let Some(schema) = t.schema.clone() else {
        return Ok(());
    };
    let example = t.example.clone();
    tokio::task::spawn_blocking(move || {
        let json = |s: &str| serde_json::from_str::<Value>(s).map_err(|e| e.to_string());
        let v = catalogue::compile(&json(&schema)?)?;
        match example {
            Some(e) => catalogue::violation(&v, &json(&e)?, "example").map_or(Ok(()), Err),
            None => Ok(()),
        }
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?
    .map_err(ApiError::Validation)
}

/// `?limit=&after=` of the catalogue's list: the cursor is a type name.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct NamePage {
    /// 1 to 1000; 100 when absent.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[param(min_length = 1, max_length = 255, pattern = "^[A-Za-z0-9._:/-]+$")]
    pub after: Option<String>,
}

/// The `{name}` of a path: a type name, percent-encoded where it holds a
/// `/`. A name no type can have names nothing (404).
pub struct PathName(pub String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for PathName {
    type Rejection = ApiError;
    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        let name = axum::extract::Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::BadRequest(e.body_text()))?
            .0;
        if validate::event_type(&name).is_err() {
            return Err(not_found(&name));
        }
        Ok(PathName(name))
    }
}

/// This node enforces its own change at once; the others within a poll.
async fn reload(st: &AppState) {
    if let Err(e) = st.catalogue.refresh().await {
        tracing::warn!(error = %e, "catalogue not reloaded; the next poll will");
    }
}
