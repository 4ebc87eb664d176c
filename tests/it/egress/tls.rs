//! `tls`: a private CA trusted only by the subscription that names it; a
//! receiver that demands a client certificate gets the right one and
//! refuses the others; PEM checked when written, the key write-only.

use std::time::Duration;

use axum::http::StatusCode;
use dispatch_tests::{Backend, Daemon, Receiver, TestCa, both_backends};
use serde_json::{Value, json};

/// One attempt, so a refused handshake is a dead delivery at once.
fn once(id: &str, tls: Value) -> Value {
    json!({"id": id, "max_attempts": 1, "tls": tls})
}

async fn a_private_ca_is_trusted_only_where_it_is_given(backend: Backend) {
    let ca = TestCa::new("private CA");
    let rx = Receiver::start_tls(ca.server_config(None)).await;
    let d = Daemon::start(backend).await;
    d.subscribe(
        &rx.url("/trusting"),
        &["a.*"],
        once("trusting", json!({"ca_pem": ca.pem()})),
    )
    .await;
    d.subscribe(&rx.url("/plain"), &["b.*"], once("plain", json!({})))
        .await;
    d.send_event("e1", "a.x", json!({})).await;
    d.send_event("e2", "b.x", json!({})).await;
    d.wait_event_status("e1", "delivered", Duration::from_secs(10))
        .await;
    let failed = d
        .wait_event_status("e2", "failed", Duration::from_secs(10))
        .await;
    let error = failed["deliveries"][0]["last_error"].as_str().unwrap_or("");
    assert!(!error.is_empty(), "{failed}");
    assert_eq!(
        rx.received().len(),
        1,
        "only the trusting subscription got through"
    );
    assert_eq!(rx.received()[0].path, "/trusting");
    d.finish().await;
}

async fn a_receiver_demanding_a_client_certificate_gets_the_right_one(backend: Backend) {
    let server_ca = TestCa::new("server CA");
    let client_ca = TestCa::new("client CA");
    let other_ca = TestCa::new("another CA");
    let rx = Receiver::start_tls(server_ca.server_config(Some(&client_ca))).await;
    let d = Daemon::start(backend).await;
    let right = client_ca.client();
    let wrong = other_ca.client();
    let with = |c: &dispatch_tests::Issued| json!({"ca_pem": server_ca.pem(), "client_cert_pem": c.cert_pem, "client_key_pem": c.key_pem});
    let sub = d
        .subscribe(&rx.url("/right"), &["a.*"], once("right", with(&right)))
        .await;
    assert_eq!(
        sub["tls"]["client_key_pem"],
        right.key_pem.as_str(),
        "shown once"
    );
    d.subscribe(
        &rx.url("/none"),
        &["b.*"],
        once("none", json!({"ca_pem": server_ca.pem()})),
    )
    .await;
    d.subscribe(&rx.url("/wrong"), &["c.*"], once("wrong", with(&wrong)))
        .await;
    let (_, read) = d.get("/subscriptions/right").await;
    assert_eq!(read["tls"]["client_key_pem"], "********", "{read}");
    assert_eq!(read["tls"]["client_cert_pem"], right.cert_pem.as_str());
    d.send_event("e1", "a.x", json!({})).await;
    d.send_event("e2", "b.x", json!({})).await;
    d.send_event("e3", "c.x", json!({})).await;
    d.wait_event_status("e1", "delivered", Duration::from_secs(10))
        .await;
    d.wait_event_status("e2", "failed", Duration::from_secs(10))
        .await;
    d.wait_event_status("e3", "failed", Duration::from_secs(10))
        .await;
    let paths: Vec<String> = rx.received().iter().map(|r| r.path.clone()).collect();
    assert_eq!(paths, ["/right"]);
    d.finish().await;
}

async fn bad_tls_settings_are_refused_naming_the_field(backend: Backend) {
    let d = Daemon::start(backend).await;
    let ca = TestCa::new("a CA");
    let one = ca.client();
    let two = ca.client();
    let cases = [
        (json!({"ca_pem": "not a certificate"}), "tls.ca_pem"),
        (
            json!({"client_cert_pem": one.cert_pem}),
            "tls.client_key_pem",
        ),
        (
            json!({"client_key_pem": one.key_pem}),
            "tls.client_cert_pem",
        ),
        (
            json!({"client_cert_pem": one.cert_pem, "client_key_pem": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}),
            "tls.client_key_pem",
        ),
        (
            json!({"client_cert_pem": one.cert_pem, "client_key_pem": two.key_pem}),
            "tls.client_key_pem",
        ),
        (json!({"ca_pem": ca.pem(), "cert": "x"}), "cert"),
        // A key pasted with its certificate would be shown on every read.
        (
            json!({"client_cert_pem": format!("{}{}", one.cert_pem, one.key_pem),
                   "client_key_pem": one.key_pem}),
            "tls.client_cert_pem",
        ),
        (json!({"ca_pem": "x".repeat(70_000)}), "tls.ca_pem"),
    ];
    for (tls, field) in cases {
        let (s, b) = d
            .post(
                "/subscriptions",
                json!({"url": "https://example.com/h", "event_types": ["*"], "tls": tls}),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{tls}: {b}");
        let m = b["error"]["message"].as_str().unwrap();
        assert!(m.contains(field), "{field} not in {m}");
    }
    assert_eq!(d.db.count_rows("subscriptions").await, 0);
    d.finish().await;
}

both_backends!(
    a_private_ca_is_trusted_only_where_it_is_given,
    a_receiver_demanding_a_client_certificate_gets_the_right_one,
    bad_tls_settings_are_refused_naming_the_field,
);
