//! `signature_scheme`: `v1a` signs with an ed25519 key pair dispatchd
//! makes, verified with the public key it shows; `v1+v1a` carries both,
//! the `v1` one still verifying with the Standard Webhooks library; a
//! rotation keeps the old key signing through the grace.

use std::time::Duration;

use axum::http::StatusCode;
use dispatch_tests::{Backend, Daemon, Receiver, both_backends, verify_with_standardwebhooks};
use serde_json::json;

use super::{entries, v1a_verifies};

const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

async fn v1a_verifies_with_the_published_public_key(backend: Backend) {
    let rx = Receiver::start().await;
    let d = Daemon::start(backend).await;
    let sub = d
        .subscribe(
            &rx.url("/a"),
            &["*"],
            json!({"id": "s", "signature_scheme": "v1a"}),
        )
        .await;
    assert_eq!(sub["signature_scheme"], "v1a");
    let public = sub["public_key"]
        .as_str()
        .expect("a public key")
        .to_string();
    assert!(public.starts_with("whpk_"), "{sub}");
    // Public: every read shows it, and nothing shows the private key.
    let (_, again) = d.get("/subscriptions/s").await;
    assert_eq!(again["public_key"], public.as_str());
    assert!(!again.to_string().contains("whsk_"), "{again}");
    d.send_event("e1", "a.b", json!({"n": 1})).await;
    let got = rx.wait_for(1, Duration::from_secs(10)).await;
    assert!(
        entries(&got[0], "v1").is_empty(),
        "v1a only: {}",
        got[0].header("webhook-signature")
    );
    assert!(v1a_verifies(&public, &got[0]));
    let mut tampered = got[0].clone();
    tampered.body = bytes::Bytes::from_static(b"{\"n\":2}");
    assert!(!v1a_verifies(&public, &tampered), "a changed body fails");
    d.finish().await;
}

async fn v1_and_v1a_are_both_carried(backend: Backend) {
    let rx = Receiver::start().await;
    let d = Daemon::start(backend).await;
    let sub = d
        .subscribe(
            &rx.url("/b"),
            &["*"],
            json!({"secret": WHSEC, "signature_scheme": "v1+v1a"}),
        )
        .await;
    let public = sub["public_key"].as_str().unwrap().to_string();
    d.send_event("e1", "a.b", json!({})).await;
    let got = rx.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(entries(&got[0], "v1").len(), 1);
    assert_eq!(entries(&got[0], "v1a").len(), 1);
    verify_with_standardwebhooks(WHSEC, &got[0]).unwrap();
    assert!(v1a_verifies(&public, &got[0]));
    d.finish().await;
}

async fn a_rotation_keeps_the_old_key_signing_through_the_grace(backend: Backend) {
    let rx = Receiver::start().await;
    let d = Daemon::start(backend).await;
    let sub = d
        .subscribe(
            &rx.url("/c"),
            &["*"],
            json!({"id": "s", "signature_scheme": "v1a"}),
        )
        .await;
    let old = sub["public_key"].as_str().unwrap().to_string();
    let (s, b) = d
        .patch(
            "/subscriptions/s",
            json!({"secret": "whsec_aGVsbG8gd29ybGQgdGhpcyBpcyBuZXc="}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let new = b["public_key"].as_str().unwrap().to_string();
    assert_ne!(new, old, "the key pair rotates with the secret");
    d.send_event("e1", "a.b", json!({})).await;
    let got = rx.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(
        entries(&got[0], "v1a").len(),
        2,
        "{}",
        got[0].header("webhook-signature")
    );
    assert!(v1a_verifies(&new, &got[0]));
    assert!(
        v1a_verifies(&old, &got[0]),
        "the old key signs through the grace"
    );
    d.finish().await;
}

async fn a_scheme_is_checked_and_a_switch_makes_a_key(backend: Backend) {
    let d = Daemon::start(backend).await;
    let (s, b) = d
        .post(
            "/subscriptions",
            json!({"url": "https://example.com/h", "event_types": ["*"], "signature_scheme": "v2"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("signature_scheme"),
        "{b}"
    );
    let sub = d
        .subscribe("https://example.com/h", &["*"], json!({"id": "s"}))
        .await;
    assert_eq!(sub["signature_scheme"], "v1");
    assert_eq!(sub["public_key"], serde_json::Value::Null);
    let (s, b) = d
        .patch("/subscriptions/s", json!({"signature_scheme": "v1+v1a"}))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert!(
        b["public_key"].as_str().unwrap().starts_with("whpk_"),
        "{b}"
    );
    d.finish().await;
}

both_backends!(
    v1a_verifies_with_the_published_public_key,
    v1_and_v1a_are_both_carried,
    a_rotation_keeps_the_old_key_signing_through_the_grace,
    a_scheme_is_checked_and_a_switch_makes_a_key,
);
