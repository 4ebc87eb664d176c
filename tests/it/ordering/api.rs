//! The ordering fields: defaults, changes, and a precise 422 for each bad
//! value (per item in a batch).

use std::time::Duration;

use axum::http::StatusCode;
use dispatch_tests::{Backend, Daemon, Receiver, both_backends};
use serde_json::json;

use super::stats;

async fn ordering_fields_and_their_errors(backend: Backend) {
    let rx = Receiver::start().await;
    let d = Daemon::start(backend).await;
    let sub = d
        .subscribe(&rx.url("/h"), &["*"], json!({"id": "sub-1"}))
        .await;
    assert_eq!(
        (&sub["ordering"], &sub["ordering_on_dead"]),
        (&json!("none"), &json!("skip"))
    );
    for (bad, field) in [
        (json!({"ordering": "sometimes"}), "ordering"),
        (json!({"ordering": 1}), "ordering"),
        (json!({"ordering_on_dead": "retry"}), "ordering_on_dead"),
    ] {
        let mut body = json!({"url": rx.url("/h"), "event_types": ["*"]});
        body.as_object_mut()
            .unwrap()
            .extend(bad.as_object().unwrap().clone());
        let (s, b) = d.post("/subscriptions", body).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
        assert!(
            b["error"]["message"].as_str().unwrap().contains(field),
            "{b}"
        );
        let (s, b) = d.patch("/subscriptions/sub-1", bad).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    }
    let (s, b) = d
        .patch(
            "/subscriptions/sub-1",
            json!({"ordering": "per_key", "ordering_on_dead": "block"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(
        (&b["ordering"], &b["ordering_on_dead"]),
        (&json!("per_key"), &json!("block"))
    );
    let (_, b) = d.get("/subscriptions/sub-1").await;
    assert_eq!(b["ordering"], "per_key", "{b}");

    for key in [
        json!(""),
        json!("has space"),
        json!("x".repeat(256)),
        json!(7),
    ] {
        let (s, b) = d
            .post(
                "/events",
                json!({"type": "a.b", "data": {}, "ordering_key": key}),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{key}: {b}");
        assert!(
            b["error"]["message"]
                .as_str()
                .unwrap()
                .contains("ordering_key"),
            "{b}"
        );
    }
    let (s, b) = d
        .post(
            "/events/batch",
            json!({"events": [
                {"id": "ok-1", "type": "a.b", "ordering_key": "acct:1", "data": {}},
                {"id": "bad-1", "type": "a.b", "ordering_key": "no spaces", "data": {}},
            ]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["results"][0]["status"], "queued");
    assert_eq!(b["results"][1]["status"], "rejected");
    assert!(
        b["results"][1]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("ordering_key"),
        "{b}"
    );
    let ev = d
        .wait_event_status("ok-1", "delivered", Duration::from_secs(10))
        .await;
    assert_eq!(ev["ordering_key"], "acct:1");
    let (s, _) = d.get("/events/bad-1").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(stats(&d).await["blocked_keys"], 0);
    d.finish().await;
}

both_backends!(ordering_fields_and_their_errors);
