//! `block`: purging the dead head releases its key, and the events behind
//! it go in order; the key no longer counts as blocked.

use std::time::Duration;

use axum::http::StatusCode;
use dispatch_tests::{Backend, both_backends};
use serde_json::json;

use super::dead::{arrivals, start};
use super::stats;

async fn purging_a_dead_head_releases_its_key(backend: Backend) {
    let (d, rx, _failing) = start(backend, "block").await;
    d.wait_event_status("a0", "failed", Duration::from_secs(20))
        .await;
    d.wait_event_status("b2", "delivered", Duration::from_secs(20))
        .await;
    let (_, a1) = d.get("/events/a1").await;
    assert_eq!(a1["deliveries"][0]["state"], "held", "{a1}");
    let (_, dead) = d.get("/admin/dead-letters").await;
    let id = dead["data"][0]["delivery_id"].clone();
    let (st, b) = d
        .post("/admin/dead-letters/purge", json!({"ids": [id]}))
        .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    d.wait_event_status("a2", "delivered", Duration::from_secs(20))
        .await;
    // Event 0 was purged, never delivered: 1 and 2 follow it, in order.
    assert_eq!(
        arrivals(&rx, "a"),
        vec![(0, 500), (0, 500), (1, 200), (2, 200)]
    );
    let b: Vec<u64> = arrivals(&rx, "b").iter().map(|(n, _)| *n).collect();
    assert_eq!(b, vec![0, 1, 2]);
    let unblocked = dispatch_tests::eventually(Duration::from_secs(3), || async {
        stats(&d).await["blocked_keys"] == 0
    })
    .await;
    assert!(unblocked);
    d.finish().await;
}

both_backends!(purging_a_dead_head_releases_its_key);
