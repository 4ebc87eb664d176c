//! Ordered delivery per key: `order` (a key's events arrive one after
//! another through random failures), `dead` (`skip` and `block` when a
//! head dies, and replays), `api` (the fields and their errors),
//! `changes` (a PATCH of ordering on deliveries not yet sent), `purged`
//! (a blocking dead head purged), `nodes` (two PostgreSQL nodes and a
//! `kill -9`).

mod api;
mod changes;
mod dead;
mod nodes;
mod order;
mod purged;

use std::collections::HashMap;
use std::time::Duration;

use axum::http::StatusCode;
use dispatch_tests::{Daemon, Received, Receiver, Reply};
use serde_json::{Value, json};

/// A per_key subscription retrying fast, with attempts to spare.
pub(super) fn ordered(extra: Value) -> Value {
    let mut body = json!({"ordering": "per_key", "max_attempts": 40,
        "retry": {"initial_delay_ms": 20, "multiplier": 2.0, "max_delay_ms": 200}});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            b.insert(k.clone(), v.clone());
        }
    }
    body
}

/// Events `range` (of a run numbered from 0) over `keys` keys, round
/// robin, posted in batches of 100 by one producer (so the order of
/// acceptance is the order of the batches and of the items in each):
/// event i, id `e{i}`, is number i / keys of key `k{i % keys}`.
pub(super) async fn post_keyed(base: &str, range: std::ops::Range<usize>, keys: usize) {
    let http = reqwest::Client::new();
    for start in range.clone().step_by(100) {
        let events: Vec<Value> = (start..(start + 100).min(range.end))
            .map(|i| {
                json!({"id": format!("e{i}"), "type": "account.updated",
                       "ordering_key": format!("k{}", i % keys),
                       "data": {"key": format!("k{}", i % keys), "n": i / keys}})
            })
            .collect();
        let r = http
            .post(format!("{base}/events/batch"))
            .json(&json!({"events": events}))
            .send()
            .await
            .expect("batch");
        assert!(r.status().is_success(), "{}", r.status());
        let b: Value = r.json().await.expect("json");
        let queued = b["results"]
            .as_array()
            .expect("results")
            .iter()
            .all(|x| x["status"] == "queued");
        assert!(queued, "{b}");
    }
}

/// The key and number an ordered request carries.
pub(super) fn key_n(r: &Received) -> (String, u64) {
    let v = r.json();
    (
        v["data"]["key"].as_str().expect("key").to_string(),
        v["data"]["n"].as_u64().expect("n"),
    )
}

/// Answers about a third of requests 500, at random.
pub(super) fn flaky(rx: &Receiver, seed: u64) {
    let rng = std::sync::Mutex::new(fastrand::Rng::with_seed(seed));
    rx.respond_with(move |_| {
        let fail = rng.lock().expect("rng").u8(0..3) == 0;
        Reply::status(if fail { 500 } else { 200 })
    });
}

/// Checks the receiver's log, in arrival order: per key, no request for
/// event n + 1 came before event n was answered 2xx. Returns, per key,
/// how many events were delivered (answered 2xx at least once).
pub(super) fn assert_in_order(got: &[Received]) -> HashMap<String, u64> {
    // Per key: how many leading events were answered 2xx.
    let mut done: HashMap<String, u64> = HashMap::new();
    for (i, r) in got.iter().enumerate() {
        let (key, n) = key_n(r);
        let d = done.entry(key.clone()).or_default();
        assert!(
            n <= *d,
            "request {i}: key {key} event {n} arrived before event {} was delivered",
            *d
        );
        if n == *d && (200..300).contains(&r.status) {
            *d += 1;
        }
    }
    done
}

/// Waits until the receiver has delivered `per_key` events of each of
/// `keys` keys.
pub(super) async fn wait_delivered(rx: &Receiver, keys: usize, per_key: u64, within: Duration) {
    let ok = dispatch_tests::eventually(within, || async {
        let done = assert_in_order(&rx.received());
        done.len() == keys && done.values().all(|&n| n >= per_key)
    })
    .await;
    let done = assert_in_order(&rx.received());
    assert!(ok, "not all delivered in {within:?}: {done:?}");
}

pub(super) async fn stats(d: &Daemon) -> Value {
    let (s, b) = d.get("/admin/stats").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    b
}
