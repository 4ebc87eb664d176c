//! `auth`: basic credentials presented with every delivery, write-only
//! (masked on every read), removable, and checked when written.

use std::time::Duration;

use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use dispatch_tests::{Backend, Daemon, Receiver, both_backends};
use serde_json::json;

async fn basic_auth_is_presented_and_write_only(backend: Backend) {
    let rx = Receiver::start().await;
    let d = Daemon::start(backend).await;
    let sub = d
        .subscribe(
            &rx.url("/basic"),
            &["*"],
            json!({"id": "s", "auth": {"type": "basic", "username": "acme", "password": "s3cret pass"}}),
        )
        .await;
    assert_eq!(
        sub["auth"]["password"], "s3cret pass",
        "shown once, when set"
    );
    let (_, read) = d.get("/subscriptions/s").await;
    assert_eq!(
        read["auth"],
        json!({"type": "basic", "username": "acme", "password": "********"})
    );
    d.send_event("e1", "a.b", json!({})).await;
    let got = rx.wait_for(1, Duration::from_secs(10)).await;
    let want = format!("Basic {}", STANDARD.encode("acme:s3cret pass"));
    assert_eq!(got[0].header("authorization"), want);
    // Removed, it is no longer sent.
    let (s, b) = d.patch("/subscriptions/s", json!({"auth": null})).await;
    assert_eq!(
        (s, &b["auth"]),
        (StatusCode::OK, &serde_json::Value::Null),
        "{b}"
    );
    d.send_event("e2", "a.b", json!({})).await;
    let got = rx.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(got[1].header("authorization"), "");
    d.finish().await;
}

async fn bad_credentials_are_refused_naming_the_field(backend: Backend) {
    let d = Daemon::start(backend).await;
    let cases = [
        (
            json!({"type": "basic", "username": "a:b", "password": "p"}),
            "auth.username",
        ),
        (
            json!({"type": "basic", "username": "a", "password": ""}),
            "auth.password",
        ),
        (
            json!({"type": "digest", "username": "a", "password": "p"}),
            "auth",
        ),
        (json!({"type": "basic", "username": "a"}), "auth"),
    ];
    for (auth, field) in cases {
        let (s, b) = d
            .post(
                "/subscriptions",
                json!({"url": "https://example.com/h", "event_types": ["*"], "auth": auth}),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{auth}: {b}");
        let m = b["error"]["message"].as_str().unwrap();
        assert!(m.contains(field), "{auth}: {field} not in {m}");
    }
    assert_eq!(d.db.count_rows("subscriptions").await, 0);
    d.finish().await;
}

both_backends!(
    basic_auth_is_presented_and_write_only,
    bad_credentials_are_refused_naming_the_field,
);
