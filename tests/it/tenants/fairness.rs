//! Fair claims: one tenant's backlog to a slow endpoint does not hold up
//! another tenant's deliveries.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use dispatch_tests::{Backend, Daemon, Receiver, Reply, eventually};
use serde_json::{Value, json};

use super::tenant;

/// Fairness on PostgreSQL: tenant A has 20,000 deliveries waiting for an
/// endpoint that answers in 200 ms; tenant B's 100 events, posted after,
/// are all delivered with p99 under a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_backlog_does_not_delay_other_tenants() {
    if !dispatch_tests::postgres_available().await {
        return;
    }
    let slow = Receiver::start().await;
    slow.always(Reply::status(200).delay(Duration::from_millis(200)));
    let fast = Receiver::start().await;
    let d = Daemon::start(Backend::Postgres).await;
    tenant(&d, "a").await;
    tenant(&d, "b").await;
    d.subscribe(&slow.url("/a"), &["*"], json!({"tenant_id": "a"}))
        .await;
    d.subscribe(&fast.url("/b"), &["*"], json!({"tenant_id": "b"}))
        .await;
    for chunk in 0..20 {
        let events: Vec<Value> = (0..1000)
            .map(|i| json!({"id": format!("a-{chunk}-{i}"), "type": "x.y", "tenant_id": "a", "data": {}}))
            .collect();
        let (s, b) = d.post("/events/batch", json!({"events": events})).await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }
    let waiting = d.db.undelivered().await;
    assert!(
        waiting > 15_000,
        "A's backlog is in place ({waiting} waiting)"
    );
    let mut sent_at = BTreeMap::new();
    for i in 0..100 {
        let id = format!("b-{i}");
        sent_at.insert(id.clone(), Instant::now());
        let (s, b) = d
            .post(
                "/events",
                json!({"id": id, "type": "x.y", "tenant_id": "b", "data": {}}),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{b}");
    }
    let all = eventually(Duration::from_secs(30), || async { fast.count() >= 100 }).await;
    assert!(all, "{} of B's 100 delivered", fast.count());
    let mut latencies: Vec<Duration> = fast
        .received()
        .iter()
        .map(|r| r.at - sent_at[r.json()["id"].as_str().unwrap()])
        .collect();
    latencies.sort();
    let p99 = latencies[98];
    assert!(
        p99 < Duration::from_secs(1),
        "B's p99 {p99:?} (A still has {} waiting)",
        d.db.undelivered().await
    );
    assert!(
        d.db.undelivered().await > 1000,
        "A's backlog was still there"
    );
    d.finish().await;
}
