//! Egress through an HTTP CONNECT proxy: `delivery.proxy_url` for every
//! delivery, a subscription's own `proxy_url` instead; the proxy sees the
//! CONNECT, and a destination the SSRF guard refuses is refused before the
//! proxy is asked.

use std::time::Duration;

use axum::http::StatusCode;
use dispatch_tests::{Backend, ConnectProxy, Daemon, Receiver, TestCa, both_backends};
use serde_json::json;

async fn deliveries_go_through_the_configured_proxy(backend: Backend) {
    let ca = TestCa::new("private CA");
    let rx = Receiver::start_tls(ca.server_config(None)).await;
    let proxy = ConnectProxy::start().await;
    let other = ConnectProxy::start().await;
    let url = proxy.url();
    let d = Daemon::start_with(backend, move |c| c.delivery.proxy_url = url).await;
    let tls = json!({"ca_pem": ca.pem()});
    d.subscribe(&rx.url("/via"), &["a.*"], json!({"id": "via", "tls": tls}))
        .await;
    let own = d
        .subscribe(
            &rx.url("/own"),
            &["b.*"],
            json!({"id": "own", "tls": tls, "proxy_url": other.url()}),
        )
        .await;
    assert_eq!(own["proxy_url"], other.url().as_str());
    d.send_event("e1", "a.x", json!({})).await;
    d.send_event("e2", "b.x", json!({})).await;
    d.wait_event_status("e1", "delivered", Duration::from_secs(10))
        .await;
    d.wait_event_status("e2", "delivered", Duration::from_secs(10))
        .await;
    let target = format!("CONNECT {} HTTP/1.1", rx.addr);
    assert_eq!(
        proxy.asked(),
        vec![target.clone()],
        "the configured proxy carried e1"
    );
    assert_eq!(
        other.asked(),
        vec![target],
        "the subscription's own proxy carried e2"
    );
    d.finish().await;
}

/// A destination the guard refuses never reaches the proxy: a subscription
/// to `localhost`, made while loopback was open (`--dev`), meets a node
/// where it is not, and dispatchd's own lookup of the name refuses it.
async fn a_refused_destination_is_refused_before_the_proxy(backend: Backend) {
    let rx = Receiver::start().await;
    let proxy = ConnectProxy::start().await;
    let first = Daemon::start(backend).await;
    // A name, not a literal: only dispatchd's own lookup can refuse it.
    let by_name = format!("http://localhost:{}/x", rx.addr.port());
    first
        .subscribe(&by_name, &["a.*"], json!({"id": "s", "max_attempts": 1}))
        .await;
    let db = first.db.clone();
    first.stop().await;
    let url = proxy.url();
    let d = Daemon::start_on(db, move |c| {
        c.dev = false;
        c.api.keys = vec!["a-producer-key-for-the-proxy-test".into()];
        c.delivery.proxy_url = url;
    })
    .await;
    d.send_event("e1", "a.x", json!({})).await;
    let ev = d
        .wait_event_status("e1", "failed", Duration::from_secs(10))
        .await;
    let error = ev["deliveries"][0]["last_error"].as_str().unwrap();
    assert!(error.contains("resolves to a refused address"), "{error}");
    assert!(error.contains("loopback"), "{error}");
    assert!(proxy.asked().is_empty(), "{:?}", proxy.asked());
    assert_eq!(rx.count(), 0);
    // A producer's proxy passes the guard like a destination.
    let (s, b) = d
        .post(
            "/subscriptions",
            json!({"url": "https://example.com/h", "event_types": ["*"],
                   "proxy_url": "http://127.0.0.1:3128"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("proxy_url"),
        "{b}"
    );
    d.finish().await;
}

both_backends!(
    deliveries_go_through_the_configured_proxy,
    a_refused_destination_is_refused_before_the_proxy,
);
