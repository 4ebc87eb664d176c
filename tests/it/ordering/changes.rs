//! A PATCH of `ordering` applies to the deliveries not yet sent: `none`
//! lets every held one go; `per_key` lines up the waiting ones, in the
//! order they were stored.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use axum::http::StatusCode;
use dispatch_tests::{Backend, Daemon, Receiver, Reply, both_backends};
use serde_json::json;

use super::{assert_in_order, stats};

/// Posts events e0..e{n-1} of key `k`, in one batch: event i carries
/// number i.
async fn post_line(d: &Daemon, n: u64) {
    let events: Vec<_> = (0..n)
        .map(|i| {
            json!({"id": format!("e{i}"), "type": "a.b", "ordering_key": "k",
                   "data": {"key": "k", "n": i}})
        })
        .collect();
    let (s, b) = d.post("/events/batch", json!({"events": events})).await;
    assert!(s.is_success(), "{b}");
}

/// PATCHes sub-1's ordering.
async fn set_ordering(d: &Daemon, ordering: &str) {
    let (s, b) = d
        .patch("/subscriptions/sub-1", json!({"ordering": ordering}))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
}

/// Switching ordering off lets every held delivery go at once.
async fn ordering_off_releases_what_was_held(backend: Backend) {
    let rx = Receiver::start().await;
    rx.respond_with(|r| {
        let head = r.json()["data"]["n"] == 0;
        dispatch_tests::Reply::status(if head { 503 } else { 200 })
    });
    let d = Daemon::start(backend).await;
    d.subscribe(
        &rx.url("/h"),
        &["*"],
        json!({"id": "sub-1", "ordering": "per_key",
               "retry": {"initial_delay_ms": 60000, "multiplier": 1.0, "max_delay_ms": 60000}}),
    )
    .await;
    post_line(&d, 5).await;
    rx.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(stats(&d).await["deliveries"]["held"], 4);
    set_ordering(&d, "none").await;
    d.wait_event_status("e4", "delivered", Duration::from_secs(10))
        .await;
    // (The snapshot is at most a second old.)
    let none_held = dispatch_tests::eventually(Duration::from_secs(3), || async {
        stats(&d).await["deliveries"]["held"] == 0
    })
    .await;
    assert!(none_held);
    let (_, e0) = d.get("/events/e0").await;
    assert_eq!(
        e0["deliveries"][0]["state"], "scheduled",
        "the old head keeps its retry: {e0}"
    );
    d.finish().await;
}

/// Five parked deliveries of one key, unordered; switched to `per_key`,
/// then resumed, they go one at a time, in order, though the receiver
/// refuses each one's first attempt (unordered, the retries would let
/// later ones pass).
async fn ordering_on_lines_up_what_waits(backend: Backend) {
    let rx = Receiver::start().await;
    let seen = Mutex::new(HashSet::new());
    rx.respond_with(move |r| {
        let first = seen
            .lock()
            .expect("seen")
            .insert(r.json()["id"].to_string());
        Reply::status(if first { 503 } else { 200 })
    });
    let d = Daemon::start(backend).await;
    d.subscribe(
        &rx.url("/h"),
        &["*"],
        json!({"id": "sub-1", "retry": {"initial_delay_ms": 20, "multiplier": 1.0,
                                        "max_delay_ms": 20}}),
    )
    .await;
    let (s, b) = d.post("/admin/subscriptions/sub-1/pause", json!({})).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    post_line(&d, 5).await;
    set_ordering(&d, "per_key").await;
    let (_, e1) = d.get("/events/e1").await;
    assert_eq!(e1["deliveries"][0]["state"], "held", "{e1}");
    let (s, b) = d.post("/admin/subscriptions/sub-1/resume", json!({})).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    d.wait_event_status("e4", "delivered", Duration::from_secs(20))
        .await;
    let got = rx.received();
    let log: Vec<_> = got
        .iter()
        .map(|r| (r.json()["id"].clone(), r.status))
        .collect();
    assert_eq!(got.len(), 10, "each refused once, then delivered: {log:?}");
    assert_in_order(&got);
    d.finish().await;
}

/// A delivery in flight when its subscription switches to `per_key` was
/// claimed unordered, but it finishes as its line's head: the events held
/// behind it go on when it is answered, not at the safety net.
async fn a_switch_mid_flight_lets_the_line_go_on(backend: Backend) {
    let rx = Receiver::start().await;
    rx.always(Reply::status(200).delay(Duration::from_millis(300)));
    // One send at a time: e0 is in flight, the rest wait unclaimed.
    let d = Daemon::start_with(backend, |c| c.queue.max_in_flight = 1).await;
    d.subscribe(&rx.url("/h"), &["*"], json!({"id": "sub-1"}))
        .await;
    post_line(&d, 3).await;
    rx.wait_for(1, Duration::from_secs(10)).await;
    set_ordering(&d, "per_key").await;
    let (_, e2) = d.get("/events/e2").await;
    assert_eq!(e2["deliveries"][0]["state"], "held", "{e2}");
    for n in 0..3 {
        d.wait_event_status(&format!("e{n}"), "delivered", Duration::from_secs(10))
            .await;
    }
    assert_in_order(&rx.received());
    d.finish().await;
}

both_backends!(
    ordering_off_releases_what_was_held,
    ordering_on_lines_up_what_waits,
    a_switch_mid_flight_lets_the_line_go_on
);
