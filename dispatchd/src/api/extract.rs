//! `JsonBody<T>`: the one way request bodies are read.
//!
//! Checks the media type (415), reads the body under the configured limit
//! (413), tells syntax errors (400) from JSON of the wrong shape (422, with
//! the path of the offending field), so every bad body gets a precise answer.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use serde::de::DeserializeOwned;

use super::error::ApiError;

pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = read_json_body(req, state).await?;
        parse(&bytes).map(JsonBody)
    }
}

/// Reads a JSON request body, enforcing media type and size.
pub async fn read_json_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    let ct = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if essence != "application/json" && !essence.ends_with("+json") {
        return Err(ApiError::UnsupportedMediaType(format!(
            "expected Content-Type: application/json, got {}",
            if ct.is_empty() { "none".to_string() } else { format!("{ct:?}") }
        )));
    }
    Bytes::from_request(req, state).await.map_err(|e| {
        if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge("request body exceeds api.max_body_bytes".into())
        } else {
            ApiError::BadRequest(format!("could not read the request body: {e}"))
        }
    })
}

/// Parses JSON: 400 when it is not JSON, 422 when it is the wrong shape.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Syntax first, so a truncated body is a 400 even if it starts well.
    if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
        return Err(ApiError::MalformedJson(format!("malformed JSON: {e}")));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." || path.is_empty() {
            ApiError::Validation(inner.to_string())
        } else {
            ApiError::Validation(format!("{path}: {inner}"))
        }
    })
}
