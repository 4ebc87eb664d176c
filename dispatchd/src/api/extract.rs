//! `JsonBody<T>`: the one way request bodies are read.
//!
//! Checks the media type (415), reads the body under the configured limit
//! (413), tells syntax errors (400) from JSON of the wrong shape (422, with
//! the path of the offending field), so every bad body gets a precise answer.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};

use axum::http::header::CONTENT_TYPE;
use serde::de::DeserializeOwned;

use super::AppState;
use super::error::ApiError;

pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let bytes = read_json_body(req, state.cfg.api.max_body_bytes).await?;
        parse(&bytes).map(JsonBody)
    }
}

/// Reads a JSON request body, enforcing media type and size.
pub async fn read_json_body(req: Request, limit: usize) -> Result<Bytes, ApiError> {
    let ct = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence != "application/json" && !essence.ends_with("+json") {
        return Err(ApiError::UnsupportedMediaType(format!(
            "expected Content-Type: application/json, got {}",
            if ct.is_empty() {
                "none".to_string()
            } else {
                format!("{ct:?}")
            }
        )));
    }
    read_limited(req.into_body(), limit).await
}

/// Reads a body of at most `limit` bytes. A larger body is answered 413,
/// but only after reading (and discarding) a bounded overflow: a client
/// still writing its body would otherwise see a reset instead of the 413.
pub async fn read_limited(body: axum::body::Body, limit: usize) -> Result<Bytes, ApiError> {
    use futures::StreamExt;
    let drain_cap = limit.saturating_mul(4).max(16 * 1024 * 1024);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut stream = body.into_data_stream();
    let mut buf = bytes::BytesMut::new();
    let mut seen = 0usize;
    loop {
        let next = tokio::time::timeout_at(deadline, stream.next()).await;
        match next {
            Ok(Some(Ok(chunk))) => {
                seen += chunk.len();
                if seen <= limit {
                    buf.extend_from_slice(&chunk);
                } else if seen > drain_cap {
                    break;
                }
            }
            Ok(Some(Err(e))) => {
                return Err(ApiError::BadRequest(format!(
                    "could not read the request body: {e}"
                )));
            }
            Ok(None) | Err(_) => break,
        }
    }
    if seen > limit {
        return Err(ApiError::PayloadTooLarge(format!(
            "request body exceeds api.max_body_bytes ({limit} bytes)"
        )));
    }
    Ok(buf.freeze())
}

/// Parses JSON: 400 when it is not JSON, 422 when it is the wrong shape.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Syntax first, so a truncated body is a 400 even if it starts well.
    if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
        return Err(ApiError::MalformedJson(format!("malformed JSON: {e}")));
    }
    // Every body is an object. serde's derived structs would also take an
    // array of positional fields; that is not our API.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::Validation(
            "the body must be a JSON object".into(),
        ));
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
