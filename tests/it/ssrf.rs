//! The SSRF guard end to end, on a node outside dev mode: literal internal
//! destinations are refused when written, names that resolve inside are
//! refused when dialled, redirects are never followed, and an allowlisted
//! range is delivered to.

use std::time::Duration;

use axum::http::StatusCode;
use dispatch_tests::{Backend, Daemon, Receiver, Reply, both_backends};
use serde_json::json;

const KEY: &str = "ssrf-test-key-0123456789";

async fn production_node(backend: Backend, allow: &[&str]) -> Daemon {
    let allow: Vec<String> = allow.iter().map(|s| s.to_string()).collect();
    Daemon::start_with(backend, move |c| {
        c.dev = false;
        c.api.keys = vec![KEY.into()];
        c.ssrf.allow_cidrs = allow;
    })
    .await
}

async fn literal_internal_destinations_are_refused(backend: Backend) {
    let d = production_node(backend, &[]).await;
    for url in [
        "http://127.0.0.1:8080/",
        "http://2130706433/",
        "http://0177.0.0.1/",
        "http://0x7f.1/",
        "http://[::ffff:127.0.0.1]/",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.5/",
        "http://192.168.0.1/",
        "http://[fd00::1]/",
        "http://[64:ff9b::a9fe:a9fe]/",
    ] {
        let (s, b) = d
            .post("/subscriptions", json!({"url": url, "event_types": ["*"]}))
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {b}");
        assert!(
            b["error"]["message"]
                .as_str()
                .unwrap()
                .contains("blocked destination"),
            "{b}"
        );
        let (s, b) = d
            .post("/tasks", json!({"url": url, "event": "a.b", "data": {}}))
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {b}");
    }
    d.finish().await;
}

async fn names_resolving_inside_are_refused_when_dialled(backend: Backend) {
    let rx = Receiver::start().await;
    let d = production_node(backend, &[]).await;
    // `localhost` passes when written (a name) but resolves to 127.0.0.1.
    let url = format!("http://localhost:{}/hook", rx.addr.port());
    d.subscribe(&url, &["*"], json!({"max_attempts": 1})).await;
    d.send_event("evt_ssrf", "a.b", json!({})).await;
    let ev = d
        .wait_event_status("evt_ssrf", "failed", Duration::from_secs(10))
        .await;
    let err = ev["deliveries"][0]["last_error"].as_str().unwrap();
    assert!(
        err.contains("blocked destination") && err.contains("loopback"),
        "{err}"
    );
    assert_eq!(rx.count(), 0, "nothing reached the internal receiver");
    d.finish().await;
}

async fn allowlisted_loopback_is_delivered_and_redirects_stay_put(backend: Backend) {
    let rx = Receiver::start().await;
    let internal = Receiver::start().await;
    let d = production_node(backend, &["127.0.0.1/32"]).await;
    d.subscribe(
        &format!("http://localhost:{}/ok", rx.addr.port()),
        &["ok"],
        json!({}),
    )
    .await;
    d.subscribe(&rx.url("/ok-literal"), &["ok"], json!({}))
        .await;
    d.send_event("evt_ok", "ok", json!({})).await;
    d.wait_event_status("evt_ok", "delivered", Duration::from_secs(10))
        .await;
    assert_eq!(rx.count(), 2);

    // A redirect towards an internal address is a failure, never followed.
    rx.always(Reply::status(307).header("Location", &internal.url("/admin")));
    d.subscribe(&rx.url("/moved"), &["moved"], json!({"max_attempts": 1}))
        .await;
    d.send_event("evt_moved", "moved", json!({})).await;
    let ev = d
        .wait_event_status("evt_moved", "failed", Duration::from_secs(10))
        .await;
    assert!(
        ev["deliveries"][0]["last_error"]
            .as_str()
            .unwrap()
            .contains("redirect"),
        "{ev}"
    );
    assert_eq!(internal.count(), 0);
    d.finish().await;
}

both_backends!(
    literal_internal_destinations_are_refused,
    names_resolving_inside_are_refused_when_dialled,
    allowlisted_loopback_is_delivered_and_redirects_stay_put,
);
