//! Producer authentication: `Authorization: Bearer <key>` against
//! `api.keys`, or DispatchGO request signing, `X-HMAC-Signature: <hex
//! HMAC-SHA256 of the raw body>` against `api.hmac_secrets`. Dev mode
//! skips it; `/health`, `/ready` and `/metrics` never need it, and `/admin`
//! has its own tokens.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::ApiError;
use crate::config::Config;
use crate::sign;

pub async fn require_auth(
    State(cfg): State<Arc<Config>>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    // /admin has its own tokens (api::admin).
    let path = req.uri().path();
    if cfg.dev
        || matches!(path, "/health" | "/ready" | "/metrics" | "/openapi.json")
        || path.starts_with("/admin/")
    {
        return Ok(next.run(req).await);
    }
    if let Some(token) = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
    {
        if key_matches(&cfg.api.keys, token.trim()) {
            return Ok(next.run(req).await);
        }
        return Err(ApiError::Unauthorized("invalid API key".into()));
    }
    if let Some(sig) = req
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
        if !ok {
            return Err(ApiError::Unauthorized(
                "X-HMAC-Signature does not match the body".into(),
            ));
        }
        return Ok(next
            .run(Request::from_parts(parts, Body::from(bytes)))
            .await);
    }
    Err(ApiError::Unauthorized(
        "missing credentials: send Authorization: Bearer <key> or X-HMAC-Signature".into(),
    ))
}

/// Constant-time comparison of digests, so neither content nor length leaks.
pub(super) fn key_matches(keys: &[crate::secret::Secret], token: &str) -> bool {
    let t = Sha256::digest(token.as_bytes());
    keys.iter().fold(false, |acc, k| {
        acc | bool::from(Sha256::digest(k.expose().as_bytes()).ct_eq(&t))
    })
}
