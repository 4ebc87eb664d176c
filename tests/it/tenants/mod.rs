//! Tenants: `routing` (fan-out by tenant and channel, tenants across
//! nodes), `lifecycle` (create to delete, and the errors on the way),
//! `limits` (the per-tenant ingest limit), `isolation` (tenant tokens route
//! by route), `tokens` (shown once, revoked at once), `fairness` (claims that give every endpoint its turn).

mod fairness;
mod isolation;
mod lifecycle;
mod limits;
mod routing;
mod tokens;

use axum::http::StatusCode;
use dispatch_tests::Daemon;
use serde_json::{Value, json};

/// Sends one request with `token` as the bearer; the status and JSON body.
pub(super) async fn as_token(
    d: &Daemon,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let method: reqwest::Method = method.parse().expect("method");
    let mut req = d
        .http
        .request(method, d.url(path))
        .bearer_auth(token.to_string());
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.expect("request");
    let status = r.status();
    let bytes = r.bytes().await.expect("body");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    };
    (status, body)
}

pub(super) async fn tenant(d: &Daemon, id: &str) {
    let (s, b) = d.post("/tenants", json!({"id": id, "name": id})).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
}

pub(super) async fn token(d: &Daemon, tenant: &str, extra: Value) -> (String, String) {
    let (s, b) = d.post(&format!("/tenants/{tenant}/tokens"), extra).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let t = b["token"].as_str().expect("token").to_string();
    assert!(t.starts_with("dtt_"), "{b}");
    (b["id"].as_str().unwrap().to_string(), t)
}
