//! The per-tenant ingest limit.

use axum::http::StatusCode;
use dispatch_tests::{Backend, Daemon, both_backends};
use serde_json::{Value, json};

use super::tenant;

/// A tenant over its `rate_limit` is answered 429 with `Retry-After`;
/// other tenants are not slowed.
async fn a_tenant_over_its_rate_limit_gets_429(backend: Backend) {
    let d = Daemon::start(backend).await;
    let (s, _) = d
        .post("/tenants", json!({"id": "slow", "rate_limit": 5}))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    tenant(&d, "fast").await;
    let mut accepted = 0;
    let mut limited = None;
    for _ in 0..30 {
        let r = d
            .http
            .post(d.url("/events"))
            .json(&json!({"type": "a.b", "tenant_id": "slow", "data": {}}))
            .send()
            .await
            .unwrap();
        match r.status().as_u16() {
            202 => accepted += 1,
            429 => {
                let after: u64 = r.headers()["retry-after"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                let body: Value = r.json().await.unwrap();
                limited = Some((after, body));
            }
            other => panic!("unexpected {other}"),
        }
    }
    // A second's burst at 5/s, give or take the time the loop took.
    assert!((5..=12).contains(&accepted), "{accepted} accepted");
    let (after, body) = limited.expect("some requests are limited");
    assert!(after >= 1, "Retry-After {after}");
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    for _ in 0..30 {
        let (s, _) = d
            .post(
                "/events",
                json!({"type": "a.b", "tenant_id": "fast", "data": {}}),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED);
    }
    // In a batch, the items over the limit are rejected one by one.
    let (s, b) = d
        .post(
            "/events/batch",
            json!({"events": (0..20).map(|_| json!({"type": "a.b", "tenant_id": "slow", "data": {}})).collect::<Vec<_>>()}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        b["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["error"]["code"] == "rate_limited"),
        "{b}"
    );
    d.finish().await;
}

both_backends!(a_tenant_over_its_rate_limit_gets_429);
