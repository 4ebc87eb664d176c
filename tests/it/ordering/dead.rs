//! When a key's head dies: `block` stops the key until the dead letter is
//! replayed (then it and the rest go, in order) and `skip` lets the next
//! go at once; a replayed dead letter under `skip` goes to the back of
//! its key. Other keys flow throughout.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use dispatch_tests::{Backend, Daemon, Receiver, Reply, both_backends, eventually};
use serde_json::json;

use super::{assert_in_order, key_n, ordered, stats};

/// The events the receiver refuses (500), by id.
type Failing = Arc<Mutex<HashSet<String>>>;

fn event(key: &str, n: u64) -> serde_json::Value {
    json!({"id": format!("{key}{n}"), "type": "account.updated", "ordering_key": key,
           "data": {"key": key, "n": n, "id": format!("{key}{n}")}})
}

/// Key `a` opens with an event the receiver refuses, then two good ones;
/// key `b` has three good ones. Two attempts, a second apart.
pub(super) async fn start(backend: Backend, on_dead: &str) -> (Daemon, Receiver, Failing) {
    let rx = Receiver::start().await;
    let failing: Failing = Arc::new(Mutex::new(HashSet::from(["a0".to_string()])));
    let f = failing.clone();
    rx.respond_with(move |r| {
        let id = r.json()["data"]["id"].as_str().unwrap_or("").to_string();
        let bad = f.lock().expect("failing").contains(&id);
        Reply::status(if bad { 500 } else { 200 })
    });
    let d = Daemon::start(backend).await;
    d.subscribe(
        &rx.url("/o"),
        &["account.*"],
        ordered(
            json!({"id": "sub-o", "max_attempts": 2, "ordering_on_dead": on_dead,
            "retry": {"initial_delay_ms": 1000, "multiplier": 1.0, "max_delay_ms": 1000}}),
        ),
    )
    .await;
    let mut events = Vec::new();
    for n in 0..3 {
        for key in ["a", "b"] {
            events.push(event(key, n));
        }
    }
    let (s, b) = d.post("/events/batch", json!({"events": events})).await;
    assert!(s.is_success(), "{b}");
    (d, rx, failing)
}

pub(super) fn arrivals(rx: &Receiver, key: &str) -> Vec<(u64, u16)> {
    rx.received()
        .iter()
        .filter(|r| key_n(r).0 == key)
        .map(|r| (key_n(r).1, r.status))
        .collect()
}

async fn a_dead_head_blocks_its_key_until_replayed(backend: Backend) {
    let (d, rx, failing) = start(backend, "block").await;
    d.wait_event_status("b2", "delivered", Duration::from_secs(20))
        .await;
    d.wait_event_status("a0", "failed", Duration::from_secs(20))
        .await;
    // The key waits: its next events are held, visibly.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(arrivals(&rx, "a"), vec![(0, 500), (0, 500)]);
    let (_, a1) = d.get("/events/a1").await;
    assert_eq!(a1["deliveries"][0]["state"], "held", "{a1}");
    let s = stats(&d).await;
    assert_eq!(s["blocked_keys"], 1, "{s}");
    assert_eq!(s["deliveries"]["held"], 2, "{s}");
    // Replayed, the head goes first, then the rest in order.
    failing.lock().unwrap().clear();
    let (_, dead) = d.get("/admin/dead-letters").await;
    let id = dead["data"][0]["delivery_id"].clone();
    let (st, b) = d
        .post("/admin/dead-letters/replay", json!({"ids": [id]}))
        .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    d.wait_event_status("a2", "delivered", Duration::from_secs(20))
        .await;
    let a: Vec<u64> = arrivals(&rx, "a").iter().map(|(n, _)| *n).collect();
    assert_eq!(a, vec![0, 0, 0, 1, 2]);
    assert_in_order(&rx.received());
    assert_eq!(stats(&d).await["blocked_keys"], 0);
    d.finish().await;
}

async fn a_dead_head_is_skipped_and_replays_to_the_back(backend: Backend) {
    let (d, rx, failing) = start(backend, "skip").await;
    d.wait_event_status("a2", "delivered", Duration::from_secs(20))
        .await;
    d.wait_event_status("b2", "delivered", Duration::from_secs(20))
        .await;
    let (_, a0) = d.get("/events/a0").await;
    assert_eq!(a0["status"], "failed", "{a0}");
    assert_eq!(
        arrivals(&rx, "a"),
        vec![(0, 500), (0, 500), (1, 200), (2, 200)]
    );
    assert_eq!(stats(&d).await["blocked_keys"], 0);
    // A new head that fails once holds the key; the replayed dead letter
    // waits behind it, and goes when that head dies in its turn.
    *failing.lock().unwrap() = HashSet::from(["a3".to_string()]);
    let (s, b) = d.post("/events", event("a", 3)).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{b}");
    let ok = eventually(Duration::from_secs(10), || async {
        arrivals(&rx, "a").len() == 5
    })
    .await;
    assert!(ok, "{:?}", arrivals(&rx, "a"));
    let (st, b) = d
        .post(
            "/admin/dead-letters/replay",
            json!({"filter": {"subscription_id": "sub-o"}}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    let (_, a0) = d.get("/events/a0").await;
    assert_eq!(a0["deliveries"][0]["state"], "held", "{a0}");
    d.wait_event_status("a0", "delivered", Duration::from_secs(20))
        .await;
    let a: Vec<u64> = arrivals(&rx, "a").iter().map(|(n, _)| *n).collect();
    assert_eq!(a, vec![0, 0, 1, 2, 3, 3, 0]);
    d.finish().await;
}

both_backends!(
    a_dead_head_blocks_its_key_until_replayed,
    a_dead_head_is_skipped_and_replays_to_the_back
);
