//! Producer authentication and the scope of a request.
//!
//! Credentials: `Authorization: Bearer <key>` against `api.keys` (the
//! producer's whole API), a tenant token (`dtt_…`, the API scoped to one
//! tenant), or DispatchGO request signing, `X-HMAC-Signature: <hex
//! HMAC-SHA256 of the raw body>` against `api.hmac_secrets`. Dev mode
//! lets a request without credentials through unrestricted, but a token it
//! presents still counts: a tenant token scopes it, and an unknown,
//! expired or revoked one is 401 in every mode. `/health`, `/ready`,
//! `/metrics` and `/openapi.json` never need credentials; `/admin` has its
//! own tokens, and refuses tenant tokens.
//!
//! Every request leaves here with a `Scope` in its extensions. A tenant
//! token is refused (403) on the route families that are never a tenant's
//! (`refused`); on the others each handler answers another tenant's
//! resources 404, so existence does not leak.

use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::Method;
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::AppState;
use super::error::ApiError;
use crate::model::now_ms;
use crate::sign;

/// The prefix of every tenant token.
pub const TENANT_TOKEN_PREFIX: &str = "dtt_";

/// Whom a request acts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// The producer: every resource.
    All,
    /// One tenant, through one of its tokens: only its own resources.
    Tenant(String),
}

impl Scope {
    /// The tenant the request is limited to, if any.
    pub fn tenant(&self) -> Option<&str> {
        match self {
            Self::All => None,
            Self::Tenant(t) => Some(t),
        }
    }

    /// Whether a resource of `owner` (`None`: tenant-less) is visible.
    pub fn sees(&self, owner: Option<&str>) -> bool {
        match self {
            Self::All => true,
            Self::Tenant(t) => owner == Some(t.as_str()),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Scope {
    type Rejection = ApiError;
    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, ApiError> {
        // `require_auth` runs on every route; a handler without its scope
        // is a wiring bug, refused rather than served unrestricted.
        parts
            .extensions
            .get::<Scope>()
            .cloned()
            .ok_or_else(|| ApiError::Internal("request reached a handler without a scope".into()))
    }
}

pub async fn require_auth(
    State(st): State<AppState>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let cfg = &st.cfg;
    let path = req.uri().path().to_string();
    if matches!(
        path.as_str(),
        "/health" | "/ready" | "/metrics" | "/openapi.json"
    ) {
        return Ok(next.run(req).await);
    }
    let bearer = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(|t| t.trim().to_string());
    if path.starts_with("/admin/") {
        // Admin tokens are checked by `api::admin`; a tenant token is
        // recognised here so it gets its own answer.
        if let Some(token) = bearer.as_deref().filter(|t| is_tenant_token(t)) {
            tenant_of(&st, token).await?;
            return Err(forbidden());
        }
        return Ok(next.run(req).await);
    }
    let scope = if let Some(token) = bearer {
        if key_matches(&cfg.api.keys, &token) {
            Scope::All
        } else if is_tenant_token(&token) {
            let tenant = tenant_of(&st, &token).await?;
            if refused(&path, req.method()) {
                return Err(forbidden());
            }
            Scope::Tenant(tenant)
        } else {
            return Err(ApiError::Unauthorized("invalid API key".into()));
        }
    } else if let Some(sig) = req
        .headers()
        .get("x-hmac-signature")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
    {
        // The signature covers the raw body: buffer it (under the body limit),
        // check, then hand the same bytes on.
        let (parts, body) = req.into_parts();
        let bytes = super::extract::read_limited(body, cfg.api.max_body_bytes).await?;
        let ok = cfg
            .api
            .hmac_secrets
            .iter()
            .any(|s| sign::verify_hex_hmac(s.expose().as_bytes(), &bytes, &sig));
        if !ok && !cfg.dev {
            return Err(ApiError::Unauthorized(
                "X-HMAC-Signature does not match the body".into(),
            ));
        }
        req = Request::from_parts(parts, Body::from(bytes));
        Scope::All
    } else if cfg.dev {
        Scope::All
    } else {
        return Err(ApiError::Unauthorized(
            "missing credentials: send Authorization: Bearer <key> or X-HMAC-Signature".into(),
        ));
    };
    req.extensions_mut().insert(scope);
    Ok(next.run(req).await)
}

fn is_tenant_token(token: &str) -> bool {
    token.starts_with(TENANT_TOKEN_PREFIX)
}

/// The route families a tenant token never opens: tenant management,
/// posting events and tasks, changing the event-type catalogue (a
/// tenant's portal reads; the producer sends and documents). A tenant's
/// own dead letters are the exception under `/tenants`.
fn refused(path: &str, method: &Method) -> bool {
    if path.starts_with("/tasks") {
        return true;
    }
    if path == "/event-types" || path.starts_with("/event-types/") {
        return method != Method::GET;
    }
    if path == "/events" || path == "/events/batch" {
        return method == Method::POST;
    }
    if path == "/tenants" || path.starts_with("/tenants/") {
        let parts: Vec<&str> = path.trim_end_matches('/').split('/').collect();
        // ["", "tenants", id, "dead-letters", ("replay")]
        let own_dead_letters = matches!(
            parts.as_slice(),
            ["", "tenants", _, "dead-letters"] | ["", "tenants", _, "dead-letters", "replay"]
        );
        return !own_dead_letters;
    }
    false
}

fn forbidden() -> ApiError {
    ApiError::Forbidden("a tenant token cannot use this route".into())
}

/// The tenant a token belongs to: 401 when it is unknown (or revoked, which
/// deletes it) or expired. Records its use, at most once a minute.
async fn tenant_of(st: &AppState, token: &str) -> Result<String, ApiError> {
    let hash = token_hash(token);
    let found = st.store.token_by_hash(&hash).await?;
    let now = now_ms();
    let Some(t) = found else {
        return Err(ApiError::Unauthorized(
            "unknown or revoked tenant token".into(),
        ));
    };
    if t.expires_at.is_some_and(|at| at <= now) {
        return Err(ApiError::Unauthorized(
            "the tenant token has expired".into(),
        ));
    }
    if t.last_used_at.is_none_or(|at| now - at >= 60_000) {
        let store = st.store.clone();
        let id = t.id.clone();
        tokio::spawn(async move {
            if let Err(e) = store.touch_token(&id, now).await {
                tracing::debug!(error = %e, "could not record a token's use");
            }
        });
    }
    Ok(t.tenant_id)
}

/// Hex SHA-256 of a token: how tokens are stored and looked up. Tokens are
/// 32 random bytes, so a fast hash is enough (nothing to brute-force).
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new tenant token: the prefix and 32 random bytes, hex.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS random source is available");
    format!("{TENANT_TOKEN_PREFIX}{}", hex::encode(bytes))
}

/// Constant-time comparison of digests, so neither content nor length leaks.
pub(super) fn key_matches(keys: &[crate::secret::Secret], token: &str) -> bool {
    let t = Sha256::digest(token.as_bytes());
    keys.iter().fold(false, |acc, k| {
        acc | bool::from(Sha256::digest(k.expose().as_bytes()).ct_eq(&t))
    })
}
