//! Two dispatchd nodes on one PostgreSQL: a key's deliveries stay one at
//! a time and in order across the cluster, and through a `kill -9` of one
//! node mid-run (the survivor takes its work back after the node timeout).

use std::time::Duration;

use dispatch_tests::{Backend, Binary, Receiver, TestDb, eventually};
use serde_json::json;

use super::{assert_in_order, flaky, ordered, post_keyed, wait_delivered};

const NODES: &[(&str, &str)] = &[
    ("DISPATCH_QUEUE__NODE_TIMEOUT_SECS", "3"),
    ("DISPATCH_RETENTION__SWEEP_INTERVAL_SECS", "1"),
    // A third failing at random now and then fails ten in a row, which
    // would open the circuit for its cooldown.
    ("DISPATCH_CIRCUIT__FAILURE_THRESHOLD", "1000"),
    ("RUST_LOG", "warn"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_two_nodes_keep_each_key_in_order_through_a_kill_9() {
    let db = TestDb::new(Backend::Postgres).await;
    let rx = Receiver::start().await;
    flaky(&rx, 23);
    let a = Binary::start_dev(&db, NODES).await;
    let mut b = Binary::start_dev(&db, NODES).await;
    let mut body = ordered(json!({}));
    body["url"] = json!(rx.url("/o"));
    body["event_types"] = json!(["account.*"]);
    let r = reqwest::Client::new()
        .post(format!("{}/subscriptions", a.base))
        .json(&body)
        .send()
        .await
        .expect("subscribe");
    assert_eq!(r.status().as_u16(), 201);
    // One producer, half its batches to each node: one order of acceptance.
    for (i, base) in [&a.base, &b.base, &a.base, &b.base].into_iter().enumerate() {
        post_keyed(base, i * 250..(i + 1) * 250, 20).await;
    }
    let third = eventually(Duration::from_secs(60), || async {
        rx.received().iter().filter(|r| r.status == 200).count() >= 300
    })
    .await;
    assert!(third, "only {} delivered", rx.count());
    b.kill9().await;
    // All 1,000 (50 per key) arrive, each key in order, though the node
    // that held some keys' heads died holding them.
    wait_delivered(&rx, 20, 50, Duration::from_secs(120)).await;
    let per_key = assert_in_order(&rx.received());
    assert!(per_key.values().all(|&n| n == 50), "{per_key:?}");
    a.terminate();
}
