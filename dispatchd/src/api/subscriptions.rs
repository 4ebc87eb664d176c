//! Subscriptions CRUD. Secrets are write-only: generated when absent, shown
//! in full only in the answer to the request that set them, masked after.
//! A new secret in a PATCH rotates: the old one keeps signing (as a second
//! `webhook-signature` entry) for `delivery.secret_rotation_grace_secs`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use dispatch_wire::{
    EndpointAuthIn, ErrorResponse, ListOut, SubscriptionIn, SubscriptionPatch, SubscriptionView,
    TlsIn,
};

use super::auth::Scope;
use super::error::{ApiError, ApiResult};
use super::events::id_or_new;
use super::extract::JsonBody;
use super::{AppState, PageQuery, PathId, Query, paged, views};
use crate::model::{
    Egress, EndpointAuth, RetryPolicy, SignatureScheme, Subscription, TlsSettings, now_ms,
};
use crate::{matching, sign, validate};

#[utoipa::path(
    post,
    path = "/subscriptions",
    tag = "subscriptions",
    request_body = SubscriptionIn,
    responses(
        (status = 201, description = "Created; the secret and header values are shown this once", body = SubscriptionView),
        (status = 409, description = "The id exists", body = ErrorResponse),
        (status = 400, description = "Malformed JSON or query", body = ErrorResponse),
        (status = 401, description = "Missing or wrong credentials", body = ErrorResponse),
        (status = 413, description = "Body over api.max_body_bytes", body = ErrorResponse),
        (status = 415, description = "Not application/json", body = ErrorResponse),
        (status = 422, description = "Wrong shape, type or value", body = ErrorResponse),
        (status = 503, description = "Database unavailable; retry", body = ErrorResponse),
    )
)]
pub async fn create(
    State(st): State<AppState>,
    scope: Scope,
    JsonBody(input): JsonBody<SubscriptionIn>,
) -> ApiResult<(StatusCode, Json<SubscriptionView>)> {
    let now = now_ms();
    let tenant_id = owner(&st, &scope, input.tenant_id).await?;
    let id = id_or_new(input.id, "sub")?;
    let sub = Subscription {
        id,
        url: input.url,
        event_types: input.event_types,
        secret: input.secret.unwrap_or_else(sign::generate_secret).into(),
        previous_secret: None,
        previous_secret_expires_at: None,
        headers: input.headers.unwrap_or_default(),
        rate_limit: input.rate_limit,
        max_attempts: input.max_attempts.unwrap_or(st.cfg.delivery.max_attempts),
        retry: input
            .retry
            .map(policy)
            .unwrap_or_else(|| st.cfg.default_retry()),
        timeout_ms: input.timeout_ms.unwrap_or(st.cfg.delivery.timeout_ms),
        plugins: input.plugins.unwrap_or_default(),
        tenant_id,
        channels: input.channels,
        ordering: input.ordering.unwrap_or(crate::model::Ordering::None),
        ordering_on_dead: input.ordering_on_dead.unwrap_or(crate::model::OnDead::Skip),
        egress: Egress {
            tls: input.tls.and_then(tls_settings),
            proxy_url: input.proxy_url,
            ..egress(input.signature_scheme, input.auth)
        },
        status: crate::model::SubscriptionStatus::Active,
        created_at: now,
        updated_at: now,
        health: Default::default(),
    };
    check(&sub, &st)?;
    check_tls(&sub).await?;
    st.store
        .create_subscription(&sub)
        .await
        .map_err(|e| match e {
            crate::store::StoreError::Conflict(_) => ApiError::Conflict(format!(
                "a subscription with id {:?} already exists",
                sub.id
            )),
            other => other.into(),
        })?;
    Ok((StatusCode::CREATED, Json(views::subscription(&sub, true))))
}

#[utoipa::path(
    get,
    path = "/subscriptions",
    tag = "subscriptions",
    params(PageQuery),
    responses(
        (status = 200, description = "A page of subscriptions", body = ListOut<SubscriptionView>),
        (status = 400, description = "Bad query or path", body = ErrorResponse),
        (status = 401, description = "Missing or wrong credentials", body = ErrorResponse),
        (status = 404, description = "No such resource", body = ErrorResponse),
        (status = 503, description = "Database unavailable; retry", body = ErrorResponse),
    )
)]
pub async fn list(
    State(st): State<AppState>,
    scope: Scope,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<ListOut<SubscriptionView>>> {
    let page = q.page()?;
    let subs = st.store.list_subscriptions(&page, scope.tenant()).await?;
    Ok(paged(
        &subs,
        page.limit,
        |s| s.id.clone(),
        |s| views::subscription(s, false),
    ))
}

#[utoipa::path(
    get,
    path = "/subscriptions/{id}",
    tag = "subscriptions",
    params(("id" = String, Path, description = "The resource id")),
    responses(
        (status = 200, description = "The subscription", body = SubscriptionView),
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
) -> ApiResult<Json<SubscriptionView>> {
    let sub = find(&st, &scope, &id).await?;
    Ok(Json(views::subscription(&sub, false)))
}

#[utoipa::path(
    patch,
    path = "/subscriptions/{id}",
    tag = "subscriptions",
    request_body = SubscriptionPatch,
    params(("id" = String, Path, description = "The resource id")),
    responses(
        (status = 200, description = "Updated", body = SubscriptionView),
        (status = 404, description = "No such subscription", body = ErrorResponse),
        (status = 400, description = "Malformed JSON or query", body = ErrorResponse),
        (status = 401, description = "Missing or wrong credentials", body = ErrorResponse),
        (status = 413, description = "Body over api.max_body_bytes", body = ErrorResponse),
        (status = 415, description = "Not application/json", body = ErrorResponse),
        (status = 422, description = "Wrong shape, type or value", body = ErrorResponse),
        (status = 503, description = "Database unavailable; retry", body = ErrorResponse),
    )
)]
pub async fn update(
    State(st): State<AppState>,
    scope: Scope,
    PathId(id): PathId,
    JsonBody(patch): JsonBody<SubscriptionPatch>,
) -> ApiResult<Json<SubscriptionView>> {
    let mut sub = find(&st, &scope, &id).await?;
    let now = now_ms();
    if let Some(url) = patch.url {
        sub.url = url;
    }
    if let Some(types) = patch.event_types {
        sub.event_types = types;
    }
    if let Some(secret) = patch.secret.filter(|s| s != sub.secret.expose()) {
        let grace = st.cfg.delivery.secret_rotation_grace_secs as i64 * 1000;
        sub.previous_secret = Some(std::mem::replace(&mut sub.secret, secret.into()));
        sub.previous_secret_expires_at = Some(now + grace);
        // The ed25519 key rotates with the secret, the old one signing
        // through the same grace.
        if let Some(key) = sub.egress.signing_key.as_mut() {
            let old = std::mem::replace(key, sign::ed25519::generate_key().into());
            sub.egress.previous_signing_key = Some(old);
        }
    }
    if let Some(scheme) = patch.signature_scheme {
        sub.egress.signature_scheme = scheme;
        if scheme.ed25519() && sub.egress.signing_key.is_none() {
            sub.egress.signing_key = Some(sign::ed25519::generate_key().into());
        }
    }
    if let Some(a) = patch.auth {
        sub.egress.auth = a.map(endpoint_auth);
    }
    if let Some(t) = patch.tls {
        sub.egress.tls = t.and_then(tls_settings);
    }
    if let Some(p) = patch.proxy_url {
        sub.egress.proxy_url = p;
    }
    if let Some(headers) = patch.headers {
        sub.headers = headers;
    }
    if let Some(rate) = patch.rate_limit {
        sub.rate_limit = rate;
    }
    if let Some(n) = patch.max_attempts {
        sub.max_attempts = n;
    }
    if let Some(r) = patch.retry {
        sub.retry = policy(r);
    }
    if let Some(t) = patch.timeout_ms {
        sub.timeout_ms = t;
    }
    if let Some(p) = patch.plugins {
        sub.plugins = p;
    }
    if let Some(c) = patch.channels {
        sub.channels = c;
    }
    if let Some(o) = patch.ordering {
        sub.ordering = o;
    }
    if let Some(o) = patch.ordering_on_dead {
        sub.ordering_on_dead = o;
    }
    sub.updated_at = now;
    check(&sub, &st)?;
    check_tls(&sub).await?;
    if !st.store.update_subscription(&sub).await? {
        return Err(not_found(&id));
    }
    Ok(Json(views::subscription(&sub, false)))
}

#[utoipa::path(
    delete,
    path = "/subscriptions/{id}",
    tag = "subscriptions",
    params(("id" = String, Path, description = "The resource id")),
    responses(
        (status = 204, description = "Deleted, with its undelivered deliveries"),
        (status = 400, description = "Bad query or path", body = ErrorResponse),
        (status = 401, description = "Missing or wrong credentials", body = ErrorResponse),
        (status = 404, description = "No such resource", body = ErrorResponse),
        (status = 503, description = "Database unavailable; retry", body = ErrorResponse),
    )
)]
pub async fn delete(
    State(st): State<AppState>,
    scope: Scope,
    PathId(id): PathId,
) -> ApiResult<StatusCode> {
    find(&st, &scope, &id).await?;
    if st.store.delete_subscription(&id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found(&id))
    }
}

/// The subscription, if the scope sees it: another tenant's is as absent
/// as one that does not exist.
async fn find(st: &AppState, scope: &Scope, id: &str) -> ApiResult<Subscription> {
    st.store
        .get_subscription(id)
        .await?
        .filter(|s| scope.sees(s.tenant_id.as_deref()))
        .ok_or_else(|| not_found(id))
}

/// The tenant a new subscription belongs to: a tenant token's own (naming
/// another in the body is a 422), or the body's, which must exist.
async fn owner(st: &AppState, scope: &Scope, asked: Option<String>) -> ApiResult<Option<String>> {
    if let Some(t) = &asked {
        validate::id("tenant_id", t).map_err(ApiError::Validation)?;
    }
    match scope {
        Scope::Tenant(own) => match asked {
            Some(t) if &t != own => Err(ApiError::Validation(format!(
                "tenant_id: {t:?} is not this token's tenant"
            ))),
            _ => Ok(Some(own.clone())),
        },
        Scope::All => match asked {
            Some(t) if st.store.get_tenant(&t).await?.is_none() => Err(ApiError::Validation(
                format!("tenant_id: no tenant with id {t:?}"),
            )),
            other => Ok(other),
        },
    }
}

fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("no subscription with id {id:?}"))
}

/// A new subscription's egress: its scheme (with a fresh key pair when it
/// signs v1a) and credentials.
fn egress(scheme: Option<SignatureScheme>, auth: Option<EndpointAuthIn>) -> Egress {
    let scheme = scheme.unwrap_or(SignatureScheme::V1);
    Egress {
        signature_scheme: scheme,
        signing_key: scheme
            .ed25519()
            .then(|| sign::ed25519::generate_key().into()),
        previous_signing_key: None,
        auth: auth.map(endpoint_auth),
        tls: None,
        proxy_url: None,
    }
}

/// Credentials are printable and bounded; a token URL passes the same
/// checks as `url`.
fn check_auth(auth: &EndpointAuth, st: &AppState) -> ApiResult<()> {
    let invalid = ApiError::Validation;
    let printable = |field: &str, v: &str, max: usize| {
        if v.is_empty() || v.chars().count() > max || v.chars().any(char::is_control) {
            return Err(invalid(format!(
                "auth.{field} must be 1 to {max} printable characters"
            )));
        }
        Ok(())
    };
    match auth {
        EndpointAuth::Basic { username, password } => {
            printable("username", username, 255)?;
            if username.contains(':') {
                return Err(invalid("auth.username may not contain ':'".into()));
            }
            printable("password", password.expose(), 1024)
        }
        EndpointAuth::OAuth2(o) => {
            let url = validate::url("auth.token_url", &o.token_url).map_err(invalid)?;
            st.guard
                .check_url(&url)
                .map_err(|e| invalid(format!("auth.token_url: {e}")))?;
            printable("client_id", &o.client_id, 255)?;
            if o.client_id.contains(':') {
                return Err(invalid("auth.client_id may not contain ':'".into()));
            }
            printable("client_secret", o.client_secret.expose(), 1024)?;
            if let Some(v) = &o.scope {
                printable("scope", v, 1024)?;
            }
            if let Some(v) = &o.audience {
                printable("audience", v, 1024)?;
            }
            Ok(())
        }
    }
}

/// `None` when nothing is set (`"tls": {}`).
fn tls_settings(t: TlsIn) -> Option<TlsSettings> {
    let t = TlsSettings {
        ca_pem: t.ca_pem,
        client_cert_pem: t.client_cert_pem,
        client_key_pem: t.client_key_pem.map(Into::into),
    };
    let empty = t.ca_pem.is_none() && t.client_cert_pem.is_none() && t.client_key_pem.is_none();
    (!empty).then_some(t)
}

/// The TLS settings parse, and the key is the certificate's. Building the
/// trust store takes a few milliseconds: off the reactor.
async fn check_tls(s: &Subscription) -> ApiResult<()> {
    let Some(t) = s.egress.tls.clone() else {
        return Ok(());
    };
    tokio::task::spawn_blocking(move || crate::deliver::check_tls(&t))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(ApiError::Validation)
}

fn endpoint_auth(a: EndpointAuthIn) -> EndpointAuth {
    match a {
        EndpointAuthIn::Basic { username, password } => EndpointAuth::Basic {
            username,
            password: password.into(),
        },
        EndpointAuthIn::Oauth2ClientCredentials {
            token_url,
            client_id,
            client_secret,
            scope,
            audience,
        } => EndpointAuth::OAuth2(crate::model::OAuth2 {
            token_url,
            client_id,
            client_secret: client_secret.into(),
            scope,
            audience,
        }),
    }
}

fn policy(r: dispatch_wire::RetryIn) -> RetryPolicy {
    RetryPolicy {
        initial_delay_ms: r.initial_delay_ms,
        multiplier: r.multiplier,
        max_delay_ms: r.max_delay_ms,
    }
}

/// Every rule a stored subscription obeys, checked on create and update.
fn check(s: &Subscription, st: &AppState) -> ApiResult<()> {
    let cfg = &st.cfg;
    let invalid = ApiError::Validation;
    let url = validate::url("url", &s.url).map_err(invalid)?;
    st.guard
        .check_url(&url)
        .map_err(|e| invalid(format!("url: {e}")))?;
    if s.event_types.is_empty() || s.event_types.len() > 100 {
        return Err(invalid("event_types must hold 1 to 100 patterns".into()));
    }
    for p in &s.event_types {
        matching::validate_pattern(p).map_err(invalid)?;
    }
    validate::secret(s.secret.expose()).map_err(invalid)?;
    validate::headers(&s.headers).map_err(invalid)?;
    if s.rate_limit == Some(0) || s.rate_limit.is_some_and(|r| r > 100_000) {
        return Err(invalid(
            "rate_limit must be between 1 and 100000 requests per second".into(),
        ));
    }
    if !(1..=100).contains(&s.max_attempts) {
        return Err(invalid("max_attempts must be between 1 and 100".into()));
    }
    let r = &s.retry;
    if r.initial_delay_ms == 0 || r.initial_delay_ms > 86_400_000 {
        return Err(invalid(
            "retry.initial_delay_ms must be between 1 and 86400000".into(),
        ));
    }
    if !(1.0..=100.0).contains(&r.multiplier) {
        return Err(invalid("retry.multiplier must be between 1 and 100".into()));
    }
    if r.max_delay_ms < r.initial_delay_ms || r.max_delay_ms > 7 * 86_400_000 {
        return Err(invalid(
            "retry.max_delay_ms must be at least retry.initial_delay_ms and at most 7 days".into(),
        ));
    }
    let max_timeout = cfg.max_timeout_ms();
    if s.timeout_ms == 0 || s.timeout_ms > max_timeout {
        return Err(invalid(format!(
            "timeout_ms must be between 1 and {max_timeout} (60 s, and below the lease, queue.lease_secs)"
        )));
    }
    if let Some(channels) = &s.channels {
        validate::channels(channels, 1).map_err(invalid)?;
    }
    if let Some(auth) = &s.egress.auth {
        check_auth(auth, st)?;
    }
    if let Some(p) = &s.egress.proxy_url {
        // A producer's proxy is not trusted: its address passes the guard.
        let url = validate::url("proxy_url", p).map_err(invalid)?;
        st.guard
            .check_url(&url)
            .map_err(|e| invalid(format!("proxy_url: {e}")))?;
    }
    if s.plugins.len() > 20 {
        return Err(invalid("plugins may name at most 20 plugins".into()));
    }
    for p in &s.plugins {
        validate::id("plugins[]", p).map_err(invalid)?;
        if !st.plugins.is_transformer(p) {
            return Err(invalid(format!(
                "plugins[]: {p:?} is not a loaded transformer plugin (declare it under [plugins] in dispatch.toml; routers go in plugin_host.routers)"
            )));
        }
    }
    Ok(())
}
