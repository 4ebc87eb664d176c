//! Tenant tokens themselves: shown once, listed without the secret, their
//! use recorded; revoked, expired and unknown ones are 401 in every mode.

use std::time::Duration;

use axum::http::StatusCode;
use dispatch_tests::{Backend, Daemon, both_backends, eventually};
use serde_json::json;

use super::{as_token, tenant, token};

/// A token is listed without its secret and its use is recorded; revoked,
/// expired and unknown tokens get 401, here in dev mode.
async fn tokens_are_shown_once_and_revoked_at_once(backend: Backend) {
    let d = Daemon::start(backend).await;
    tenant(&d, "acme").await;
    let (_, a) = token(&d, "acme", json!({"description": "portal"})).await;
    let (s, _) = as_token(&d, &a, "GET", "/subscriptions", None).await;
    assert_eq!(s, StatusCode::OK);
    // The token list shows it without the token; its use is recorded.
    let (_, list) = d.get("/tenants/acme/tokens").await;
    let listed = &list["data"][0];
    assert_eq!(listed["description"], "portal");
    assert!(listed.get("token").is_none(), "{list}");
    assert!(
        !list.to_string().contains(&a),
        "the token is never shown again"
    );
    let used = eventually(Duration::from_secs(5), || async {
        d.get("/tenants/acme/tokens").await.1["data"][0]["last_used_at"].is_string()
    })
    .await;
    assert!(used, "last_used_at is recorded");

    // Revoked, expired and unknown tokens: 401, even in dev mode.
    let (revoked_id, revoked) = token(&d, "acme", json!({})).await;
    let (_, expired) = token(&d, "acme", json!({"expires_in_secs": 1})).await;
    assert_eq!(
        as_token(&d, &revoked, "GET", "/subscriptions", None)
            .await
            .0,
        StatusCode::OK
    );
    let (s, _) = d
        .delete(&format!("/tenants/acme/tokens/{revoked_id}"))
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let bogus = format!("dtt_{}", "0".repeat(64));
    for t in [&revoked, &expired, &bogus, &"not-a-token".to_string()] {
        for path in [
            "/subscriptions",
            "/tenants/acme/dead-letters",
            "/admin/stats",
        ] {
            let (s, b) = as_token(&d, t, "GET", path, None).await;
            if t == "not-a-token" && path == "/admin/stats" {
                // Not a tenant token: the admin API's own rules (open in
                // dev mode).
                continue;
            }
            assert_eq!(s, StatusCode::UNAUTHORIZED, "{t} {path}: {b}");
        }
    }
    d.finish().await;
}

/// With auth on, a tenant token still opens its own scope, and the
/// producer's key still opens everything.
async fn tenant_tokens_work_with_auth_on(backend: Backend) {
    let key = "producer-key-0123456789";
    let d = Daemon::start_with(backend, |c| {
        c.dev = false;
        c.server.addr = "127.0.0.1:0".into();
        c.api.keys = vec![key.into()];
        c.admin.tokens = vec!["admin-token-0123456789".into()];
    })
    .await;
    tenant(&d, "acme").await;
    let (_, a) = token(&d, "acme", json!({})).await;
    let (s, b) = as_token(&d, &a, "GET", "/subscriptions", None).await;
    assert_eq!((s, b["data"].clone()), (StatusCode::OK, json!([])), "{b}");
    let (s, _) = as_token(&d, &a, "GET", "/admin/stats", None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = as_token(
        &d,
        &format!("dtt_{}", "1".repeat(64)),
        "GET",
        "/subscriptions",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = as_token(&d, "wrong-key", "GET", "/subscriptions", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    d.finish().await;
}

both_backends!(
    tokens_are_shown_once_and_revoked_at_once,
    tenant_tokens_work_with_auth_on,
);
