//! The delivery contract as receivers see it: signatures a published
//! Standard Webhooks library accepts, the Dispatch headers, retries with a
//! stable webhook-id, dead letters, Retry-After, timeouts, redirects and
//! capped response bodies.

use std::time::Duration;

use dispatch_tests::{
    Backend, Daemon, Receiver, Reply, both_backends, verify_with_standardwebhooks,
};
use hmac::Mac;
use serde_json::{Value, json};

const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn hex_hmac(key: &[u8], body: &[u8]) -> String {
    let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    m.update(body);
    hex::encode(m.finalize().into_bytes())
}

fn fast_retry() -> Value {
    json!({"retry": {"initial_delay_ms": 20, "multiplier": 2.0, "max_delay_ms": 100}})
}

async fn signed_delivery_verifies(backend: Backend) {
    let rx = Receiver::start().await;
    let d = Daemon::start(backend).await;
    d.subscribe(
        &rx.url("/hook"),
        &["order.*"],
        json!({"secret": WHSEC, "headers": {"X-Tenant": "acme"}}),
    )
    .await;
    d.subscribe(
        &rx.url("/plain"),
        &["order.*"],
        json!({"secret": "my-secret-key"}),
    )
    .await;
    let (_, _) = d
        .post(
            "/events",
            json!({"id": "evt_sig", "type": "order.created", "source": "billing-service",
                   "data": {"order_id": "12345", "amount": 99.90}}),
        )
        .await;
    let got = rx.wait_for(2, Duration::from_secs(10)).await;
    for r in &got {
        let secret = if r.path == "/hook" {
            WHSEC
        } else {
            "my-secret-key"
        };
        // The libraries take a base64 key; a raw secret's key is its bytes.
        let lib_secret = if r.path == "/hook" {
            WHSEC.to_string()
        } else {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode("my-secret-key")
        };
        verify_with_standardwebhooks(&lib_secret, r).unwrap();
        let key = dispatchd::sign::secret_key(secret);
        assert_eq!(
            r.header("x-dispatch-signature"),
            format!("sha256={}", hex_hmac(&key, &r.body))
        );
        assert_eq!(r.header("webhook-id"), "evt_sig");
        assert_eq!(r.header("x-dispatch-event-id"), "evt_sig");
        assert_eq!(r.header("x-dispatch-event-type"), "order.created");
        assert_eq!(
            r.header("x-dispatch-timestamp"),
            r.header("webhook-timestamp")
        );
        assert_eq!(r.header("content-type"), "application/json");
        assert!(r.header("user-agent").starts_with("dispatchd/"));
        // The envelope, read with the type dispatchd writes it with; every
        // field is the seed's, and nothing else is there.
        let env: dispatch_wire::WebhookEnvelope =
            serde_json::from_slice(&r.body).expect("the seed's envelope");
        assert_eq!((&*env.id, &*env.event_type), ("evt_sig", "order.created"));
        assert_eq!(env.source.as_deref(), Some("billing-service"));
        let data: serde_json::Value = serde_json::from_str(env.data.get()).unwrap();
        assert_eq!(data, json!({"order_id": "12345", "amount": 99.90}));
        assert!(env.timestamp.ends_with('Z'), "{}", env.timestamp);
        let body = r.json();
        let keys: Vec<&str> = body
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        assert_eq!(keys.len(), 5, "{keys:?}");
    }
    let hook = got.iter().find(|r| r.path == "/hook").unwrap();
    assert_eq!(hook.header("x-tenant"), "acme");
    // A tampered body must not verify: the check above is not vacuous.
    let mut tampered = hook.clone();
    tampered.body = axum::body::Bytes::from_static(b"{\"id\":\"evt_sig\"}");
    assert!(verify_with_standardwebhooks(WHSEC, &tampered).is_err());
    d.finish().await;
}

async fn two_failures_then_success(backend: Backend) {
    let rx = Receiver::start().await;
    rx.script([Reply::status(500), Reply::status(502)]);
    let d = Daemon::start(backend).await;
    d.subscribe(&rx.url("/r"), &["*"], fast_retry()).await;
    d.send_event("evt_r", "a.b", json!({"x": 1})).await;
    let ev = d
        .wait_event_status("evt_r", "delivered", Duration::from_secs(10))
        .await;
    assert_eq!(ev["deliveries"][0]["attempts"], 3);
    let got = rx.received();
    assert_eq!(got.len(), 3);
    assert!(
        got.iter().all(|r| r.header("webhook-id") == "evt_r"),
        "stable webhook-id"
    );
    assert!(
        got.windows(2).all(|w| w[0].body == w[1].body),
        "retries resend the same bytes"
    );
    let (_, attempts) = d.get("/events/evt_r/attempts").await;
    let codes: Vec<Value> = attempts["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status_code"].clone())
        .collect();
    assert_eq!(codes, [json!(500), json!(502), json!(200)]);
    let numbers: Vec<i64> = attempts["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["attempt"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, [1, 2, 3]);
    assert!(
        attempts["data"][0]["error"]
            .as_str()
            .unwrap()
            .contains("500")
    );
    d.finish().await;
}

async fn exhausted_attempts_leave_a_dead_letter(backend: Backend) {
    let rx = Receiver::start().await;
    rx.always(Reply::status(503).body("down for maintenance"));
    let d = Daemon::start(backend).await;
    let mut extra = fast_retry();
    extra["max_attempts"] = json!(3);
    d.subscribe(&rx.url("/dead"), &["*"], extra).await;
    d.send_event("evt_d", "a.b", json!({})).await;
    let ev = d
        .wait_event_status("evt_d", "failed", Duration::from_secs(10))
        .await;
    let dl = &ev["deliveries"][0];
    assert_eq!(dl["state"], "dead");
    assert_eq!(dl["attempts"], 3);
    assert_eq!(dl["last_status_code"], 503);
    assert!(dl["last_error"].as_str().unwrap().contains("503"));
    let (_, attempts) = d.get("/events/evt_d/attempts").await;
    let attempts = attempts["data"].as_array().unwrap();
    assert_eq!(attempts.len(), 3);
    assert_eq!(attempts[2]["response_body"], "down for maintenance");
    assert!(
        attempts
            .iter()
            .all(|a| a["duration_ms"].as_i64().unwrap() >= 0)
    );
    // Nothing more is sent once dead: several retry periods later, still 3.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(rx.count(), 3);
    d.finish().await;
}

async fn retry_after_is_honoured(backend: Backend) {
    let rx = Receiver::start().await;
    rx.script([Reply::status(429).header("Retry-After", "1")]);
    let d = Daemon::start(backend).await;
    d.subscribe(&rx.url("/slow-down"), &["*"], fast_retry())
        .await;
    d.send_event("evt_ra", "a.b", json!({})).await;
    let got = rx.wait_for(2, Duration::from_secs(10)).await;
    let gap = got[1].at.duration_since(got[0].at);
    assert!(
        gap >= Duration::from_millis(950),
        "retried after {gap:?}, asked for 1 s"
    );
    d.wait_event_status("evt_ra", "delivered", Duration::from_secs(10))
        .await;
    d.finish().await;
}

async fn failures_are_recorded_clearly(backend: Backend) {
    let rx = Receiver::start().await;
    let d = Daemon::start(backend).await;
    let one_try = json!({"max_attempts": 1, "timeout_ms": 300});
    rx.script([
        Reply::status(200).delay(Duration::from_secs(3)),
        Reply::status(302).header("Location", "http://169.254.169.254/"),
        Reply::status(500).body("x".repeat(200_000)),
    ]);
    // One subscription per case, so each event meets its scripted reply in order.
    d.subscribe(&rx.url("/hang"), &["case.hang"], one_try.clone())
        .await;
    d.subscribe(&rx.url("/redirect"), &["case.redirect"], one_try.clone())
        .await;
    d.subscribe(&rx.url("/huge"), &["case.huge"], one_try.clone())
        .await;
    d.subscribe("http://127.0.0.1:1/refused", &["case.refused"], one_try)
        .await;

    d.send_event("hang", "case.hang", json!({})).await;
    let ev = d
        .wait_event_status("hang", "failed", Duration::from_secs(10))
        .await;
    assert!(
        ev["deliveries"][0]["last_error"]
            .as_str()
            .unwrap()
            .contains("timeout"),
        "{ev}"
    );

    d.send_event("redirect", "case.redirect", json!({})).await;
    let ev = d
        .wait_event_status("redirect", "failed", Duration::from_secs(10))
        .await;
    assert!(
        ev["deliveries"][0]["last_error"]
            .as_str()
            .unwrap()
            .contains("redirect"),
        "{ev}"
    );
    assert_eq!(ev["deliveries"][0]["last_status_code"], 302);

    d.send_event("huge", "case.huge", json!({})).await;
    d.wait_event_status("huge", "failed", Duration::from_secs(10))
        .await;
    let (_, attempts) = d.get("/events/huge/attempts").await;
    let stored = attempts["data"][0]["response_body"].as_str().unwrap();
    assert_eq!(stored.len(), 4096, "only a prefix of the answer is kept");

    d.send_event("refused", "case.refused", json!({})).await;
    let ev = d
        .wait_event_status("refused", "failed", Duration::from_secs(10))
        .await;
    assert!(
        ev["deliveries"][0]["last_error"]
            .as_str()
            .unwrap()
            .contains("connection"),
        "{ev}"
    );
    // The redirect target was never contacted: only our receiver's 3 requests.
    assert_eq!(rx.count(), 3);
    d.finish().await;
}

async fn rotated_secret_signs_twice(backend: Backend) {
    let rx = Receiver::start().await;
    let d = Daemon::start(backend).await;
    let sub = d
        .subscribe(&rx.url("/rot"), &["*"], json!({"secret": WHSEC}))
        .await;
    let new_secret = "whsec_c2VjcmV0LXR3by1zZWNyZXQtdHdvLXNlY3JldA==";
    let (status, _) = d
        .patch(
            &format!("/subscriptions/{}", sub["id"].as_str().unwrap()),
            json!({"secret": new_secret}),
        )
        .await;
    assert_eq!(status, 200);
    d.send_event("evt_rot", "a.b", json!({})).await;
    let got = rx.wait_for(1, Duration::from_secs(10)).await;
    let sigs: Vec<&str> = got[0].header("webhook-signature").split(' ').collect();
    assert_eq!(
        sigs.len(),
        2,
        "new and previous secret both sign during the grace period"
    );
    verify_with_standardwebhooks(new_secret, &got[0]).unwrap();
    verify_with_standardwebhooks(WHSEC, &got[0]).unwrap();
    d.finish().await;
}

/// A NUL in a receiver's answer is stored (replaced), not a wedge: the
/// attempt is recorded and the delivery completes.
async fn hostile_answer_bytes_are_stored_safely(backend: Backend) {
    let rx = Receiver::start().await;
    rx.script([Reply::status(200).body("ok\u{0}done")]);
    let d = Daemon::start(backend).await;
    d.subscribe(&rx.url("/nul"), &["*"], json!({})).await;
    d.send_event("evt_nul", "a.b", json!({})).await;
    d.wait_event_status("evt_nul", "delivered", Duration::from_secs(10))
        .await;
    let (_, attempts) = d.get("/events/evt_nul/attempts").await;
    assert_eq!(attempts["data"][0]["response_body"], "ok\u{FFFD}done");
    // And the node keeps recording later outcomes.
    d.send_event("evt_after", "a.b", json!({})).await;
    d.wait_event_status("evt_after", "delivered", Duration::from_secs(10))
        .await;
    d.finish().await;
}

both_backends!(
    hostile_answer_bytes_are_stored_safely,
    signed_delivery_verifies,
    two_failures_then_success,
    exhausted_attempts_leave_a_dead_letter,
    retry_after_is_honoured,
    failures_are_recorded_clearly,
    rotated_secret_signs_twice,
);
