//! `ApiError`: every failure a client can see, one status and one stable
//! `code` each, rendered as `{"error": {"code", "message"}}`.
//!
//! Internal errors answer a generic message; the detail goes to the log
//! with the request id, never to the client.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use dispatch_wire::{ErrorBody, ErrorResponse};

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not JSON at all (400 `malformed_json`).
    #[error("{0}")]
    MalformedJson(String),
    /// A query string or path is wrong (400 `bad_request`).
    #[error("{0}")]
    BadRequest(String),
    /// No or wrong credentials (401 `unauthorized`).
    #[error("{0}")]
    Unauthorized(String),
    /// The credentials are good but do not open this route (403
    /// `forbidden`).
    #[error("{0}")]
    Forbidden(String),
    /// Over a rate limit; retry after this many seconds (429
    /// `rate_limited`).
    #[error("{0}")]
    RateLimited(String, u64),
    /// No such resource (404 `not_found`).
    #[error("{0}")]
    NotFound(String),
    /// The method is not served on this path (405 `method_not_allowed`).
    #[error("{0}")]
    MethodNotAllowed(String),
    /// The resource exists already (409 `conflict`).
    #[error("{0}")]
    Conflict(String),
    /// The body exceeds the configured limit (413 `payload_too_large`).
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The body is not `application/json` (415 `unsupported_media_type`).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// JSON of the wrong shape, type or value (422 `validation_failed`).
    #[error("{0}")]
    Validation(String),
    /// The event's data breaks its type's schema (422 `schema_violation`).
    #[error("{0}")]
    SchemaViolation(String),
    /// A router plugin failed on the event, which is not stored (422
    /// `plugin_failed`).
    #[error("{0}")]
    PluginFailed(String),
    /// The database is unreachable (503 `unavailable`).
    #[error("{0}")]
    Unavailable(String),
    /// A bug; the client sees a generic message (500 `internal`).
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MalformedJson(_) | Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::RateLimited(..) => StatusCode::TOO_MANY_REQUESTS,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Validation(_) | Self::SchemaViolation(_) | Self::PluginFailed(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::MalformedJson(_) => "malformed_json",
            Self::BadRequest(_) => "bad_request",
            Self::Unauthorized(_) => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::RateLimited(..) => "rate_limited",
            Self::NotFound(_) => "not_found",
            Self::MethodNotAllowed(_) => "method_not_allowed",
            Self::Conflict(_) => "conflict",
            Self::PayloadTooLarge(_) => "payload_too_large",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::Validation(_) => "validation_failed",
            Self::SchemaViolation(_) => "schema_violation",
            Self::PluginFailed(_) => "plugin_failed",
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
        }
    }

    /// The body a client sees.
    pub fn body(&self) -> ErrorBody {
        let message = match self {
            Self::Internal(_) => "internal error; see the server log".to_string(),
            Self::Unavailable(_) => "the database is unavailable; retry with backoff".to_string(),
            Self::RateLimited(m, _) => m.clone(),
            other => other.to_string(),
        };
        ErrorBody {
            code: self.code().to_string(),
            message,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(m) | StoreError::Contention(m) => Self::Unavailable(m),
            // The database's own words (constraint names, values) stay in
            // the log, under the request's span and id; the client gets ours.
            StoreError::Conflict(m) => {
                tracing::warn!(detail = %m, "the database refused a conflicting write");
                Self::Conflict("the request conflicts with a stored resource".into())
            }
            other => Self::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            Self::Internal(detail) => tracing::error!(error = %detail, "internal error"),
            Self::Unavailable(detail) => tracing::warn!(error = %detail, "database unavailable"),
            _ => {}
        }
        let status = self.status();
        let mut resp = (status, axum::Json(ErrorResponse { error: self.body() })).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut()
                .insert("retry-after", axum::http::HeaderValue::from_static("1"));
        }
        if let Self::RateLimited(_, secs) = &self {
            resp.headers_mut()
                .insert("retry-after", axum::http::HeaderValue::from(*secs));
        }
        resp
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
