//! `POST /events`, `POST /events/batch`, `GET /events/{id}`,
//! `GET /events/{id}/attempts`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use dispatch_wire::{
    AttemptView, ErrorResponse, EventAccepted, EventBatchIn, EventBatchOut, EventBatchResult,
    EventIn, EventView, ListOut,
};

use super::auth::Scope;
use super::error::{ApiError, ApiResult};
use super::extract::{JsonBody, parse};
use super::{AppState, PathId, views};
use crate::catalogue::{Refusal, builtin};
use crate::ingest::{Outcome, Submission};
use crate::model::{Event, EventKind, now_ms, rfc3339};
use crate::ratelimit::Pace;
use crate::store::SubscriptionSnapshot;
use crate::validate;

#[utoipa::path(
    post,
    path = "/events",
    tag = "events",
    request_body = EventIn,
    params(("Idempotency-Key" = Option<String>, Header, description = "Deduplicates events sent without an id", min_length = 1, max_length = 255)),
    responses(
        (status = 202, description = "Stored and queued", body = EventAccepted),
        (status = 200, description = "Duplicate id or Idempotency-Key: the stored event", body = EventView),
        (status = 409, description = "The id belongs to a task", body = ErrorResponse),
        (status = 400, description = "Malformed JSON or query", body = ErrorResponse),
        (status = 401, description = "Missing or wrong credentials", body = ErrorResponse),
        (status = 403, description = "A tenant token cannot post events", body = ErrorResponse),
        (status = 429, description = "The tenant is over its rate_limit; see Retry-After", body = ErrorResponse),
        (status = 413, description = "Body over api.max_body_bytes", body = ErrorResponse),
        (status = 415, description = "Not application/json", body = ErrorResponse),
        (status = 422, description = "Wrong shape, type or value; `schema_violation` when the data breaks its type's schema", body = ErrorResponse),
        (status = 503, description = "Database unavailable; retry", body = ErrorResponse),
    )
)]
pub async fn create(
    State(st): State<AppState>,
    headers: HeaderMap,
    JsonBody(input): JsonBody<EventIn>,
) -> ApiResult<Response> {
    let key = idempotency_key(&headers)?;
    let event = to_event(input, key)?;
    check(&st, &event)?;
    admit(&st, &mut None, &event).await?;
    let items = vec![Submission {
        event: event.clone(),
        fixed: None,
    }];
    let outcome = st
        .ingest
        .ingest(items)
        .await?
        .pop()
        .ok_or_else(|| ApiError::Internal("ingest returned no outcome".into()))?;
    match outcome {
        Outcome::Refused(f) => Err(ApiError::PluginFailed(f.to_string())),
        Outcome::NoTenant => Err(no_tenant(event.tenant_id.as_deref().unwrap_or_default())),
        Outcome::Inserted => Ok((
            StatusCode::ACCEPTED,
            Json(EventAccepted {
                id: event.id,
                status: "queued".into(),
                created_at: rfc3339(event.created_at),
            }),
        )
            .into_response()),
        Outcome::Duplicate(stored) => {
            if stored.kind != EventKind::Event {
                return Err(ApiError::Conflict(format!(
                    "id {:?} is already used by a task",
                    stored.id
                )));
            }
            let deliveries = st.store.event_deliveries(&stored.id).await?;
            let deprecated = st.catalogue.deprecated(&stored.event_type);
            Ok((
                StatusCode::OK,
                Json(views::event(&stored, &deliveries, deprecated)),
            )
                .into_response())
        }
    }
}

#[utoipa::path(
    post,
    path = "/events/batch",
    tag = "events",
    request_body = EventBatchIn,
    responses(
        (status = 200, description = "One result per event, in order", body = EventBatchOut),
        (status = 400, description = "Malformed JSON or query", body = ErrorResponse),
        (status = 401, description = "Missing or wrong credentials", body = ErrorResponse),
        (status = 403, description = "A tenant token cannot post events", body = ErrorResponse),
        (status = 413, description = "Body over api.max_body_bytes", body = ErrorResponse),
        (status = 415, description = "Not application/json", body = ErrorResponse),
        (status = 422, description = "Wrong shape, type or value", body = ErrorResponse),
        (status = 503, description = "Database unavailable; retry", body = ErrorResponse),
    )
)]
pub async fn create_batch(
    State(st): State<AppState>,
    JsonBody(input): JsonBody<EventBatchIn>,
) -> ApiResult<Json<EventBatchOut>> {
    let max = st.cfg.api.max_batch_events;
    if input.events.is_empty() || input.events.len() > max {
        return Err(ApiError::Validation(format!(
            "events must hold between 1 and {max} events"
        )));
    }
    let mut results: Vec<EventBatchResult> = Vec::with_capacity(input.events.len());
    let mut accepted: Vec<(usize, Submission)> = Vec::new();
    let mut snap = None;
    for (index, raw) in input.events.iter().enumerate() {
        let parsed = match parse::<EventIn>(raw.get().as_bytes())
            .and_then(|e| to_event(e, None))
            .and_then(|e| check(&st, &e).map(|()| e))
        {
            Ok(e) => admit(&st, &mut snap, &e).await.map(|()| e),
            Err(e) => Err(e),
        };
        match parsed {
            Ok(event) => {
                results.push(EventBatchResult {
                    index,
                    id: Some(event.id.clone()),
                    status: String::new(),
                    error: None,
                });
                accepted.push((index, Submission { event, fixed: None }));
            }
            Err(e) => results.push(EventBatchResult {
                index,
                id: None,
                status: "rejected".into(),
                error: Some(e.body()),
            }),
        }
    }
    if !accepted.is_empty() {
        let (indexes, subs): (Vec<usize>, Vec<Submission>) = accepted.into_iter().unzip();
        let tenants: Vec<Option<String>> = subs.iter().map(|s| s.event.tenant_id.clone()).collect();
        let outcomes = st.ingest.ingest(subs).await?;
        for ((i, outcome), tenant) in indexes.into_iter().zip(outcomes).zip(tenants) {
            let r = &mut results[i];
            match outcome {
                Outcome::Inserted => r.status = "queued".into(),
                Outcome::Duplicate(stored) if stored.kind == EventKind::Event => {
                    r.status = "duplicate".into();
                    r.id = Some(stored.id);
                }
                Outcome::Duplicate(stored) => {
                    r.status = "rejected".into();
                    r.error = Some(
                        ApiError::Conflict(format!("id {:?} is already used by a task", stored.id))
                            .body(),
                    );
                }
                Outcome::Refused(f) => {
                    r.status = "rejected".into();
                    r.error = Some(ApiError::PluginFailed(f.to_string()).body());
                }
                Outcome::NoTenant => {
                    r.status = "rejected".into();
                    r.error = Some(no_tenant(tenant.as_deref().unwrap_or_default()).body());
                }
            }
        }
    }
    Ok(Json(EventBatchOut { results }))
}

#[utoipa::path(
    get,
    path = "/events/{id}",
    tag = "events",
    params(("id" = String, Path, description = "The resource id")),
    responses(
        (status = 200, description = "The event and its deliveries", body = EventView),
        (status = 400, description = "Bad query or path", body = ErrorResponse),
        (status = 401, description = "Missing or wrong credentials", body = ErrorResponse),
        (status = 404, description = "No such resource", body = ErrorResponse),
        (status = 503, description = "Database unavailable; retry", body = ErrorResponse),
    )
)]
pub async fn get(
    State(st): State<AppState>,
    scope: Scope,
    PathId(id): PathId,
) -> ApiResult<Response> {
    let event = find(&st, &scope, &id).await?;
    let deliveries = st.store.event_deliveries(&id).await?;
    let deprecated = st.catalogue.deprecated(&event.event_type);
    Ok(Json(views::event(&event, &deliveries, deprecated)).into_response())
}

#[utoipa::path(
    get,
    path = "/events/{id}/attempts",
    tag = "events",
    params(("id" = String, Path, description = "The resource id")),
    responses(
        (status = 200, description = "Every attempt of every delivery", body = ListOut<AttemptView>),
        (status = 400, description = "Bad query or path", body = ErrorResponse),
        (status = 401, description = "Missing or wrong credentials", body = ErrorResponse),
        (status = 404, description = "No such resource", body = ErrorResponse),
        (status = 503, description = "Database unavailable; retry", body = ErrorResponse),
    )
)]
pub async fn attempts(
    State(st): State<AppState>,
    scope: Scope,
    PathId(id): PathId,
) -> ApiResult<Json<ListOut<AttemptView>>> {
    find(&st, &scope, &id).await?;
    let attempts = st.store.event_attempts(&id).await?;
    Ok(Json(ListOut {
        data: attempts.iter().map(views::attempt).collect(),
        next_cursor: None,
    }))
}

/// The event, if the scope sees it: another tenant's is as absent as one
/// that does not exist.
async fn find(st: &AppState, scope: &Scope, id: &str) -> ApiResult<Event> {
    st.store
        .get_event(id, EventKind::Event)
        .await?
        .filter(|e| scope.sees(e.tenant_id.as_deref()))
        .ok_or_else(|| ApiError::NotFound(format!("no event with id {id:?}")))
}

/// The catalogue's verdict on the event: its data against its type's
/// schema, and whether an unknown type may pass.
fn check(st: &AppState, e: &Event) -> ApiResult<()> {
    match st.catalogue.check(&e.event_type, &e.data) {
        Ok(_) => Ok(()),
        Err(Refusal::Unknown(m)) => Err(ApiError::Validation(m)),
        Err(Refusal::Violation(m)) => Err(ApiError::SchemaViolation(m)),
    }
}

fn no_tenant(id: &str) -> ApiError {
    ApiError::Validation(format!("tenant_id: no tenant with id {id:?}"))
}

/// Lets an event in if its tenant exists and is under its ingest limit.
/// The limit allows a burst of one second's worth; over it, the answer
/// says when to retry. Each node counts its own share: `rate_limit`
/// divided by the nodes alive.
///
/// Only an event with a tenant reads the snapshot (into `snap`, once per
/// request), and not while the database is away: then the answer is the
/// gate's fast 503, as for any ingest.
async fn admit(st: &AppState, snap: &mut Option<SubscriptionSnapshot>, e: &Event) -> ApiResult<()> {
    let Some(tenant) = &e.tenant_id else {
        return Ok(());
    };
    let snap = match snap {
        Some(s) => s,
        None => {
            if st.ingest.gate().is_down() {
                return Err(ApiError::Unavailable("database unreachable".into()));
            }
            snap.insert(st.store.subscriptions().await?)
        }
    };
    // The snapshot may predate a tenant another node just created: look
    // it up before refusing.
    let limit = match snap.tenant(tenant) {
        Some(limit) => limit,
        None => match st.store.get_tenant(tenant).await? {
            Some(t) => t.rate_limit,
            None => return Err(no_tenant(tenant)),
        },
    };
    let Some(rate) = limit else { return Ok(()) };
    let nodes = st
        .beat
        .live_nodes
        .load(std::sync::atomic::Ordering::Relaxed)
        .max(1);
    let per_node = f64::from(rate) / f64::from(nodes);
    let burst = std::time::Duration::from_secs(1);
    match st
        .tenant_limits
        .acquire(tenant, per_node, burst, std::time::Instant::now())
    {
        Pace::Go(_) => Ok(()),
        Pace::Defer(wait) => Err(ApiError::RateLimited(
            format!("tenant {tenant:?} is over its rate_limit of {rate} events per second"),
            (wait - burst).as_secs_f64().ceil().max(1.0) as u64,
        )),
    }
}

fn idempotency_key(headers: &HeaderMap) -> ApiResult<Option<String>> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let v = v
        .to_str()
        .map_err(|_| ApiError::BadRequest("Idempotency-Key must be visible ASCII".into()))?;
    if v.is_empty() || v.len() > 255 {
        return Err(ApiError::BadRequest(
            "Idempotency-Key must be 1 to 255 characters".into(),
        ));
    }
    Ok(Some(v.to_string()))
}

fn to_event(input: EventIn, idempotency_key: Option<String>) -> ApiResult<Event> {
    let id = id_or_new(input.id, "evt")?;
    if id.starts_with(crate::operational::ID_PREFIX) {
        // Taken, an operational event's id would find it already stored.
        return Err(ApiError::Validation(format!(
            "id: ids starting {:?} are dispatchd's own",
            crate::operational::ID_PREFIX
        )));
    }
    validate::event_type(&input.event_type).map_err(ApiError::Validation)?;
    if builtin::is_operational(&input.event_type) {
        return Err(ApiError::Validation(format!(
            "type: {:?}: types under \"{}\" are dispatchd's own operational events",
            input.event_type,
            builtin::PREFIX
        )));
    }
    if let Some(src) = &input.source {
        validate::source(src).map_err(ApiError::Validation)?;
    }
    if let Some(t) = &input.tenant_id {
        validate::id("tenant_id", t).map_err(ApiError::Validation)?;
    }
    let channels = input.channels.unwrap_or_default();
    validate::channels(&channels, 0).map_err(ApiError::Validation)?;
    if let Some(k) = &input.ordering_key {
        validate::id("ordering_key", k).map_err(ApiError::Validation)?;
    }
    Ok(Event {
        ordering_key: input.ordering_key,
        id,
        kind: EventKind::Event,
        tenant_id: input.tenant_id,
        channels,
        event_type: input.event_type,
        source: input.source,
        data: input.data.get().to_string(),
        idempotency_key,
        created_at: now_ms(),
    })
}

/// The caller's id, checked, or a new one with `prefix`.
pub fn id_or_new(given: Option<String>, prefix: &str) -> ApiResult<String> {
    match given {
        Some(id) => {
            validate::id("id", &id).map_err(ApiError::Validation)?;
            Ok(id)
        }
        None => Ok(new_id(prefix)),
    }
}

/// `evt_0190…`: time-ordered (UUIDv7), so ids sort by creation.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}
