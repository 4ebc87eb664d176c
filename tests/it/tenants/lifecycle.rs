//! A tenant from create to delete, and the errors a demanding user makes
//! on the way.

use axum::http::StatusCode;
use dispatch_tests::{Backend, Daemon, Receiver, both_backends};
use serde_json::{Value, json};

use super::{tenant, token};

/// Create, read, list, patch and delete; the errors a demanding user
/// makes; deleting takes the subscriptions, tokens and undelivered
/// deliveries with it and says how many.
async fn tenant_lifecycle(backend: Backend) {
    let rx = Receiver::start().await;
    let d = Daemon::start(backend).await;
    let (s, b) = d.post("/tenants", json!({})).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert!(b["id"].as_str().unwrap().starts_with("ten_"), "{b}");
    assert_eq!(b["metadata"], json!({}));
    for k in ["created_at", "updated_at"] {
        assert!(b[k].is_string(), "{b}");
    }
    let (s, b) = d
        .post(
            "/tenants",
            json!({"id": "acme", "name": "Acme", "metadata": {"plan": "gold"}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(b["metadata"]["plan"], "gold");
    let (s, b) = d.post("/tenants", json!({"id": "acme"})).await;
    assert_eq!(
        (s, b["error"]["code"].clone()),
        (StatusCode::CONFLICT, json!("conflict"))
    );
    for bad in [
        json!({"id": "no spaces"}),
        json!({"metadata": [1, 2]}),
        json!({"metadata": "x"}),
        json!({"rate_limit": 0}),
        json!({"name": "a\u{7}b"}),
        json!({"unknown": 1}),
    ] {
        let (s, b) = d.post("/tenants", bad.clone()).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {b}");
    }
    let (s, b) = d.get("/tenants?limit=1").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["data"].as_array().unwrap().len(), 1);
    let next = b["next_cursor"].as_str().unwrap().to_string();
    let (_, b2) = d.get(&format!("/tenants?limit=1&after={next}")).await;
    assert_ne!(b2["data"][0]["id"], b["data"][0]["id"]);
    let (s, b) = d
        .patch("/tenants/acme", json!({"name": null, "rate_limit": 50}))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(
        (b["name"].clone(), b["rate_limit"].clone()),
        (Value::Null, json!(50))
    );
    assert_eq!(d.get("/tenants/acme").await.1, b);
    assert_eq!(d.get("/tenants/nobody").await.0, StatusCode::NOT_FOUND);

    // Unknown tenants are refused wherever they are named.
    let (s, b) = d
        .post(
            "/subscriptions",
            json!({"url": rx.url("/h"), "event_types": ["*"], "tenant_id": "nobody"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("tenant_id"),
        "{b}"
    );
    let (s, b) = d
        .post(
            "/events",
            json!({"type": "a.b", "tenant_id": "nobody", "data": {}}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("tenant_id"),
        "{b}"
    );
    for bad in [
        json!(["a b"]),
        json!(vec!["x"; 11]),
        json!(["x", "x"]),
        json!("eu"),
    ] {
        let (s, b) = d
            .post(
                "/events",
                json!({"type": "a.b", "channels": bad, "data": {}}),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    }
    let (s, b) = d
        .post(
            "/subscriptions",
            json!({"url": rx.url("/h"), "event_types": ["*"], "channels": []}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    let (s, b) = d
        .post(
            "/events/batch",
            json!({"events": [
                {"id": "ok-1", "type": "a.b", "data": {}},
                {"id": "bad-1", "type": "a.b", "tenant_id": "nobody", "data": {}},
            ]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["results"][0]["status"], "queued");
    assert_eq!(b["results"][1]["status"], "rejected");
    assert_eq!(b["results"][1]["error"]["code"], "validation_failed");

    // Channels on a subscription can be changed and removed.
    let sub = d
        .subscribe(
            &rx.url("/acme"),
            &["*"],
            json!({"id": "sub-acme", "tenant_id": "acme", "channels": ["eu"]}),
        )
        .await;
    assert_eq!(sub["channels"], json!(["eu"]));
    let (s, b) = d
        .patch("/subscriptions/sub-acme", json!({"channels": null}))
        .await;
    assert_eq!(
        (s, b["channels"].clone()),
        (StatusCode::OK, Value::Null),
        "{b}"
    );
    assert_eq!(b["tenant_id"], "acme");

    // Parked deliveries (the endpoint is paused), two tokens: all go with
    // the tenant, in one transaction.
    let (s, _) = d
        .post("/admin/subscriptions/sub-acme/pause", json!({}))
        .await;
    assert_eq!(s, StatusCode::OK);
    for i in 0..3 {
        let (s, b) = d
            .post(
                "/events",
                json!({"id": format!("p-{i}"), "type": "a.b", "tenant_id": "acme", "data": {}}),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{b}");
    }
    token(&d, "acme", json!({})).await;
    token(&d, "acme", json!({"expires_in_secs": 3600})).await;
    let (s, b) = d.delete("/tenants/acme").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(
        b,
        json!({"id": "acme", "subscriptions": 1, "tokens": 2, "deliveries": 3})
    );
    assert_eq!(d.get("/tenants/acme").await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        d.get("/subscriptions/sub-acme").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(d.delete("/tenants/acme").await.0, StatusCode::NOT_FOUND);
    assert_eq!(d.db.count_rows("tenant_tokens").await, 0);
    let (_, e) = d.get("/events/p-0").await;
    assert_eq!(e["deliveries"], json!([]), "{e}");
    // Its name is free again, and its events now fail the check.
    let (s, b) = d
        .post(
            "/events",
            json!({"type": "a.b", "tenant_id": "acme", "data": {}}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    tenant(&d, "acme").await;
    d.finish().await;
}

both_backends!(tenant_lifecycle);
