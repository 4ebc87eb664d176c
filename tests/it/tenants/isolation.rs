//! A tenant token sees its own tenant and nothing else: 404 for another
//! tenant's resources, 403 for the route families a tenant never uses, 401
//! for a revoked, expired or unknown token in every mode.

use std::collections::BTreeSet;
use std::time::Duration;

use axum::http::StatusCode;
use dispatch_tests::{Backend, Daemon, Receiver, Reply, both_backends};
use serde_json::{Value, json};

use super::{as_token, tenant, token};

/// Tenant A's token against tenant B's resources, route by route: 404 for
/// each of B's resources, 403 for the route families a tenant never uses,
/// and B's data unchanged afterwards.
async fn a_tenant_token_sees_only_its_tenant(backend: Backend) {
    let ok = Receiver::start().await;
    let down = Receiver::start().await;
    down.always(Reply::status(500));
    let d = Daemon::start(backend).await;
    tenant(&d, "acme").await;
    tenant(&d, "globex").await;
    let (_, a) = token(&d, "acme", json!({"description": "portal"})).await;
    for (t, rx) in [("acme", &ok), ("globex", &down)] {
        d.subscribe(
            &rx.url("/hook"),
            &["order.*"],
            json!({"id": format!("sub-{t}"), "tenant_id": t, "max_attempts": 1}),
        )
        .await;
        let (s, b) = d
            .post(
                "/events",
                json!({"id": format!("evt-{t}"), "type": "order.created", "tenant_id": t,
                       "data": {}}),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{b}");
    }
    d.wait_event_status("evt-globex", "failed", Duration::from_secs(10))
        .await;
    d.wait_event_status("evt-acme", "delivered", Duration::from_secs(10))
        .await;
    let (_, dead) = d.get("/tenants/globex/dead-letters").await;
    let dead_id = dead["data"][0]["delivery_id"]
        .as_i64()
        .expect("a dead letter");
    assert_eq!(dead["data"][0]["tenant_id"], "globex");
    let before_sub = d.get("/subscriptions/sub-globex").await.1;
    let before_event = d.get("/events/evt-globex").await.1;

    let sub_body = json!({"url": ok.url("/x"), "event_types": ["*"]});
    let not_found: &[(&str, &str, Option<Value>)] = &[
        ("GET", "/subscriptions/sub-globex", None),
        (
            "PATCH",
            "/subscriptions/sub-globex",
            Some(json!({"url": ok.url("/stolen")})),
        ),
        ("DELETE", "/subscriptions/sub-globex", None),
        ("GET", "/events/evt-globex", None),
        ("GET", "/events/evt-globex/attempts", None),
        ("GET", "/tenants/globex/dead-letters", None),
        (
            "POST",
            "/tenants/globex/dead-letters/replay",
            Some(json!({"filter": {}})),
        ),
        (
            "POST",
            "/tenants/globex/dead-letters/replay",
            Some(json!({"ids": [dead_id]})),
        ),
        // Resources that do not exist look the same.
        ("GET", "/subscriptions/sub-nobody", None),
        ("GET", "/tenants/nobody/dead-letters", None),
    ];
    for (method, path, body) in not_found {
        let (s, b) = as_token(&d, &a, method, path, body.clone()).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{method} {path}: {b}");
        assert_eq!(b["error"]["code"], "not_found", "{method} {path}: {b}");
    }
    let forbidden: &[(&str, &str, Option<Value>)] = &[
        (
            "POST",
            "/events",
            Some(json!({"type": "order.created", "data": {}})),
        ),
        (
            "POST",
            "/events/batch",
            Some(json!({"events": [{"type": "a", "data": {}}]})),
        ),
        (
            "POST",
            "/tasks",
            Some(json!({"url": ok.url("/t"), "event": "a", "data": {}})),
        ),
        ("GET", "/tasks/tsk_1", None),
        ("GET", "/tenants", None),
        ("POST", "/tenants", Some(json!({"id": "evil"}))),
        ("GET", "/tenants/acme", None),
        ("PATCH", "/tenants/acme", Some(json!({"name": "x"}))),
        ("DELETE", "/tenants/acme", None),
        ("GET", "/tenants/acme/tokens", None),
        ("POST", "/tenants/acme/tokens", Some(json!({}))),
        ("DELETE", "/tenants/acme/tokens/tok_1", None),
        ("GET", "/tenants/globex", None),
        ("DELETE", "/tenants/globex", None),
        ("GET", "/admin/stats", None),
        ("GET", "/admin/dead-letters", None),
        (
            "POST",
            "/admin/dead-letters/replay",
            Some(json!({"filter": {}})),
        ),
        ("POST", "/admin/subscriptions/sub-globex/pause", None),
        ("POST", "/event-types", Some(json!({"name": "evil.type"}))),
        (
            "PATCH",
            "/event-types/order.created",
            Some(json!({"deprecated": true})),
        ),
        ("DELETE", "/event-types/order.created", None),
    ];
    for (method, path, body) in forbidden {
        let (s, b) = as_token(&d, &a, method, path, body.clone()).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{method} {path}: {b}");
        assert_eq!(b["error"]["code"], "forbidden", "{method} {path}: {b}");
    }
    // Naming another tenant in a body is refused, as is a filter that
    // reaches past the route's tenant; ids of another tenant's dead
    // letters replay nothing.
    let (s, b) = as_token(
        &d,
        &a,
        "POST",
        "/subscriptions",
        Some(json!({"url": ok.url("/x"), "event_types": ["*"], "tenant_id": "globex"})),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    let (s, b) = as_token(
        &d,
        &a,
        "POST",
        "/tenants/acme/dead-letters/replay",
        Some(json!({"filter": {"tenant_id": "globex"}})),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    let (s, b) = as_token(
        &d,
        &a,
        "POST",
        "/tenants/acme/dead-letters/replay",
        Some(json!({"ids": [dead_id]})),
    )
    .await;
    assert_eq!((s, b["count"].clone()), (StatusCode::OK, json!(0)), "{b}");
    let (s, b) = as_token(&d, &a, "GET", "/tenants/acme/dead-letters", None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["data"], json!([]));

    // Its own resources work, and what it creates is its own.
    let (s, b) = as_token(&d, &a, "GET", "/subscriptions/sub-acme", None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = as_token(&d, &a, "GET", "/events/evt-acme", None).await;
    assert_eq!(
        (s, b["tenant_id"].clone()),
        (StatusCode::OK, json!("acme")),
        "{b}"
    );
    let (s, b) = as_token(&d, &a, "GET", "/events/evt-acme/attempts", None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = as_token(&d, &a, "POST", "/subscriptions", Some(sub_body)).await;
    assert_eq!(
        (s, b["tenant_id"].clone()),
        (StatusCode::CREATED, json!("acme")),
        "{b}"
    );
    let own = b["id"].as_str().unwrap().to_string();
    // The catalogue is documentation a portal shows: readable, not writable.
    let (s, b) = as_token(&d, &a, "GET", "/event-types", None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert!(
        b["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["operational"] == true),
        "{b}"
    );
    let (s, b) = as_token(&d, &a, "GET", "/subscriptions", None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let ids: BTreeSet<&str> = b["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, BTreeSet::from(["sub-acme", own.as_str()]));
    let (s, _) = as_token(&d, &a, "DELETE", &format!("/subscriptions/{own}"), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);

    // B's data is as it was.
    assert_eq!(d.get("/subscriptions/sub-globex").await.1, before_sub);
    assert_eq!(d.get("/events/evt-globex").await.1, before_event);
    let (_, dead_after) = d.get("/tenants/globex/dead-letters").await;
    assert_eq!(dead_after["data"].as_array().unwrap().len(), 1);
    assert_eq!(
        ok.received().iter().filter(|r| r.path == "/stolen").count(),
        0
    );

    // Operators see the tenants: in the admin figures and filters.
    let (_, stats) = d.get("/admin/stats").await;
    let owners: BTreeSet<(String, String)> = stats["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["subscription_id"].as_str().unwrap().to_string(),
                e["tenant_id"].as_str().unwrap_or("-").to_string(),
            )
        })
        .collect();
    assert_eq!(
        owners,
        BTreeSet::from([
            ("sub-acme".to_string(), "acme".to_string()),
            ("sub-globex".to_string(), "globex".to_string()),
        ])
    );
    for (tenant, n) in [("globex", 1), ("acme", 0)] {
        let (s, b) = d
            .get(&format!("/admin/dead-letters?tenant_id={tenant}"))
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        assert_eq!(b["data"].as_array().unwrap().len(), n, "{tenant}: {b}");
    }
    let (s, b) = d
        .post(
            "/admin/dead-letters/purge",
            json!({"filter": {"tenant_id": "acme"}}),
        )
        .await;
    assert_eq!((s, b["count"].clone()), (StatusCode::OK, json!(0)), "{b}");

    d.finish().await;
}

both_backends!(a_tenant_token_sees_only_its_tenant);
