//! A key's events arrive one after another, in the order they were
//! accepted, through random failures; keys do not wait for each other;
//! unordered subscriptions beside them are unaffected.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use dispatch_tests::{Backend, Daemon, Receiver, both_backends, eventually};
use serde_json::json;

use super::{assert_in_order, flaky, ordered, post_keyed, stats, wait_delivered};

/// 1,000 events over 20 keys to a receiver failing a third of attempts:
/// per key, event n + 1 never arrives before event n was answered 2xx,
/// and all arrive. An unordered subscription to the same events gets all
/// of them too.
async fn keys_arrive_in_order_through_failures(backend: Backend) {
    let rx = Receiver::start().await;
    flaky(&rx, 17);
    let plain = Receiver::start().await;
    // A third failing at random will now and then fail ten in a row,
    // which opens the endpoint's circuit for its cooldown: not what this
    // test is about.
    let d = Daemon::start_with(backend, |c| c.circuit.failure_threshold = 1000).await;
    let sub = d
        .subscribe(&rx.url("/ordered"), &["account.*"], ordered(json!({})))
        .await;
    assert_eq!(sub["ordering"], "per_key");
    assert_eq!(sub["ordering_on_dead"], "skip");
    d.subscribe(&plain.url("/plain"), &["account.*"], json!({}))
        .await;
    post_keyed(&d.base, 0..1000, 20).await;
    wait_delivered(&rx, 20, 50, Duration::from_secs(90)).await;
    let got = rx.received();
    let failed = got.iter().filter(|r| r.status == 500).count();
    assert!(
        failed > 100,
        "the receiver failed {failed} of {}",
        got.len()
    );
    let done = assert_in_order(&got);
    assert!(done.values().all(|&n| n == 50), "{done:?}");
    // The unordered subscription's deliveries are not held back.
    let ok = eventually(Duration::from_secs(30), || async { plain.count() >= 1000 }).await;
    assert!(ok, "plain got {}", plain.count());
    let (_, ev) = d.get("/events/e999").await;
    assert_eq!(ev["ordering_key"], "k19", "{ev}");
    assert_eq!(ev["status"], "delivered", "{ev}");
    let s = stats(&d).await;
    assert_eq!(s["deliveries"]["held"], 0, "{s}");
    d.finish().await;
}

/// While a key's head waits for its retry, the key's next event is held
/// (visible as `held`), and another key's events go.
async fn a_retrying_head_holds_only_its_key(backend: Backend) {
    let rx = Receiver::start().await;
    rx.respond_with(|r| {
        let slow = r.json()["data"]["key"] == "stuck";
        dispatch_tests::Reply::status(if slow { 503 } else { 200 })
    });
    let d = Daemon::start(backend).await;
    d.subscribe(
        &rx.url("/o"),
        &["account.*"],
        ordered(
            json!({"retry": {"initial_delay_ms": 60000, "multiplier": 1.0,
                                  "max_delay_ms": 60000}}),
        ),
    )
    .await;
    for (id, key, n) in [
        ("s0", "stuck", 0),
        ("s1", "stuck", 1),
        ("f0", "free", 0),
        ("f1", "free", 1),
    ] {
        let (s, b) = d
            .post(
                "/events",
                json!({"id": id, "type": "account.updated", "ordering_key": key,
                                    "data": {"key": key, "n": n}}),
            )
            .await;
        assert_eq!(s, axum::http::StatusCode::ACCEPTED, "{b}");
    }
    d.wait_event_status("f1", "delivered", Duration::from_secs(20))
        .await;
    let (_, s1) = d.get("/events/s1").await;
    assert_eq!(s1["deliveries"][0]["state"], "held", "{s1}");
    let (_, s0) = d.get("/events/s0").await;
    assert_eq!(s0["deliveries"][0]["state"], "scheduled", "{s0}");
    assert_eq!(stats(&d).await["deliveries"]["held"], 1);
    assert_eq!(
        rx.received()
            .iter()
            .filter(|r| r.json()["data"]["key"] == "stuck")
            .count(),
        1
    );
    d.finish().await;
}

/// An open circuit parks the whole endpoint: each key waits behind its
/// parked head (no attempt used by the ones behind), and after the probe
/// every key goes on, in order.
async fn an_open_circuit_holds_every_key_in_order(backend: Backend) {
    let rx = Receiver::start().await;
    // Every request fails until the test has seen the circuit open (at
    // the second failure). A fixed count of failures raced: a batch that
    // held a failure and a retried head's success kept it closed.
    let failing = Arc::new(AtomicBool::new(true));
    let fail = failing.clone();
    rx.respond_with(move |_| {
        dispatch_tests::Reply::status(if fail.load(Ordering::SeqCst) {
            500
        } else {
            200
        })
    });
    let d = Daemon::start_with(backend, |c| {
        c.circuit.failure_threshold = 2;
        c.circuit.cooldown_secs = 1;
    })
    .await;
    d.subscribe(
        &rx.url("/o"),
        &["account.*"],
        ordered(json!({"id": "sub-o"})),
    )
    .await;
    post_keyed(&d.base, 0..40, 4).await;
    let opened = eventually(Duration::from_secs(5), || async {
        d.get("/subscriptions/sub-o").await.1["circuit"]["state"] != "closed"
    })
    .await;
    assert!(opened, "the circuit never opened");
    failing.store(false, Ordering::SeqCst);
    wait_delivered(&rx, 4, 10, Duration::from_secs(30)).await;
    let (_, sub) = d.get("/subscriptions/sub-o").await;
    assert_eq!(sub["circuit"]["state"], "closed", "{sub}");
    // Only heads were ever tried while it failed: the last of each key
    // was attempted once.
    for key in 0..4 {
        let (_, ev) = d.get(&format!("/events/e{}", 36 + key)).await;
        assert_eq!(ev["deliveries"][0]["attempts"], 1, "{ev}");
    }
    d.finish().await;
}

both_backends!(
    keys_arrive_in_order_through_failures,
    a_retrying_head_holds_only_its_key,
    an_open_circuit_holds_every_key_in_order
);
