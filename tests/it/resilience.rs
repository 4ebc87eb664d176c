//! How dispatchd treats bad endpoints: the circuit breaker parks and
//! recovers, pause/resume and disable/enable never drop a delivery, a 410
//! disables, and dead letters can be listed, replayed and purged.

use std::time::Duration;

use axum::http::StatusCode;
use dispatch_tests::{Backend, Daemon, Receiver, Reply, both_backends, eventually};
use serde_json::{Value, json};

fn fast_retry(max_attempts: u32) -> Value {
    json!({
        "max_attempts": max_attempts,
        "retry": {"initial_delay_ms": 10, "multiplier": 1.0, "max_delay_ms": 10}
    })
}

async fn attempts_of(d: &Daemon, event: &str) -> i64 {
    d.get(&format!("/events/{event}")).await.1["deliveries"][0]["attempts"]
        .as_i64()
        .unwrap()
}

async fn circuit_opens_parks_and_recovers(backend: Backend) {
    let rx = Receiver::start().await;
    rx.always(Reply::status(500));
    let d = Daemon::start_with(backend, |c| {
        c.circuit.failure_threshold = 10;
        c.circuit.cooldown_secs = 2;
    })
    .await;
    let sub = d
        .subscribe(&rx.url("/flaky"), &["*"], fast_retry(100))
        .await;
    let sub_path = format!("/subscriptions/{}", sub["id"].as_str().unwrap());
    d.send_event("evt_c0", "a.b", json!({})).await;

    let opened = eventually(Duration::from_secs(10), || async {
        d.get(&sub_path).await.1["circuit"]["state"] == "open"
    })
    .await;
    assert!(opened, "10 failures in a row open the circuit");
    let (_, s) = d.get(&sub_path).await;
    assert_eq!(s["circuit"]["consecutive_failures"], 10);
    assert!(s["circuit"]["next_probe_at"].is_string());
    assert_eq!(attempts_of(&d, "evt_c0").await, 10);
    let (_, ev) = d.get("/events/evt_c0").await;
    assert_eq!(
        ev["deliveries"][0]["state"], "paused",
        "parked, attempts not consumed"
    );

    // New events for the endpoint are parked too; nothing more is sent.
    for i in 1..=5 {
        d.send_event(&format!("evt_c{i}"), "a.b", json!({})).await;
    }
    let (_, ev) = d.get("/events/evt_c3").await;
    assert_eq!(ev["deliveries"][0]["state"], "paused");
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        attempts_of(&d, "evt_c0").await,
        10,
        "the attempt count stops growing"
    );
    assert_eq!(rx.count(), 10);

    // The receiver recovers: the next probe closes the circuit and every
    // parked delivery arrives.
    rx.always(Reply::status(200));
    for i in 0..=5 {
        d.wait_event_status(&format!("evt_c{i}"), "delivered", Duration::from_secs(15))
            .await;
    }
    let (_, s) = d.get(&sub_path).await;
    assert_eq!(s["circuit"]["state"], "closed");
    assert_eq!(s["circuit"]["consecutive_failures"], 0);
    d.finish().await;
}

async fn pause_parks_and_resume_delivers_all(backend: Backend) {
    let rx = Receiver::start().await;
    let d = Daemon::start(backend).await;
    let sub = d.subscribe(&rx.url("/p"), &["*"], json!({})).await;
    let id = sub["id"].as_str().unwrap();
    let (s, paused) = d
        .post(&format!("/admin/subscriptions/{id}/pause"), json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{paused}");
    assert_eq!(paused["status"], "paused");

    let events: Vec<Value> = (0..100)
        .map(|i| json!({"id": format!("p{i}"), "type": "a.b", "data": {"i": i}}))
        .collect();
    let (s, _) = d.post("/events/batch", json!({"events": events})).await;
    assert_eq!(s, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(rx.count(), 0, "nothing is delivered while paused");
    let (_, ev) = d.get("/events/p42").await;
    assert_eq!(ev["deliveries"][0]["state"], "paused");
    assert_eq!(ev["deliveries"][0]["attempts"], 0);

    let (s, resumed) = d
        .post(&format!("/admin/subscriptions/{id}/resume"), json!({}))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(resumed["status"], "active");
    rx.wait_for(100, Duration::from_secs(15)).await;
    d.wait_event_status("p99", "delivered", Duration::from_secs(10))
        .await;
    let (s, b) = d.post("/admin/subscriptions/nope/pause", json!({})).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{b}");
    d.finish().await;
}

async fn gone_disables_and_enable_delivers(backend: Backend) {
    let rx = Receiver::start().await;
    rx.script([Reply::status(410)]);
    let d = Daemon::start(backend).await;
    let sub = d.subscribe(&rx.url("/gone"), &["*"], fast_retry(5)).await;
    let id = sub["id"].as_str().unwrap();
    d.send_event("evt_g1", "a.b", json!({})).await;
    let disabled = eventually(Duration::from_secs(10), || async {
        d.get(&format!("/subscriptions/{id}")).await.1["status"] == "disabled"
    })
    .await;
    assert!(disabled, "410 Gone disables the subscription");
    let (_, s) = d.get(&format!("/subscriptions/{id}")).await;
    assert!(
        s["disabled_reason"].as_str().unwrap().contains("410"),
        "{s}"
    );
    d.send_event("evt_g2", "a.b", json!({})).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rx.count(), 1, "nothing is sent to a disabled endpoint");
    let (_, ev) = d.get("/events/evt_g2").await;
    assert_eq!(
        ev["deliveries"][0]["state"], "paused",
        "parked, not dropped"
    );

    let (s, _) = d
        .post(&format!("/admin/subscriptions/{id}/enable"), json!({}))
        .await;
    assert_eq!(s, StatusCode::OK);
    d.wait_event_status("evt_g1", "delivered", Duration::from_secs(10))
        .await;
    d.wait_event_status("evt_g2", "delivered", Duration::from_secs(10))
        .await;
    d.finish().await;
}

async fn dead_letters_replay_and_purge(backend: Backend) {
    let rx = Receiver::start().await;
    rx.always(Reply::status(500));
    let d = Daemon::start(backend).await;
    let sub = d
        .subscribe(&rx.url("/dl"), &["order.*", "invoice.*"], fast_retry(2))
        .await;
    let sub_id = sub["id"].as_str().unwrap().to_string();
    for (id, t) in [
        ("dl1", "order.created"),
        ("dl2", "order.created"),
        ("dl3", "invoice.paid"),
    ] {
        d.send_event(id, t, json!({})).await;
    }
    for id in ["dl1", "dl2", "dl3"] {
        d.wait_event_status(id, "failed", Duration::from_secs(10))
            .await;
    }
    let (s, list) = d
        .get(&format!("/admin/dead-letters?subscription_id={sub_id}"))
        .await;
    assert_eq!(s, StatusCode::OK, "{list}");
    let rows = list["data"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0]["attempts"], 2);
    assert!(rows[0]["last_error"].as_str().unwrap().contains("500"));
    let (_, by_type) = d.get("/admin/dead-letters?event_type=invoice.paid").await;
    assert_eq!(by_type["data"].as_array().unwrap().len(), 1);
    let (_, page) = d.get("/admin/dead-letters?limit=2").await;
    assert_eq!(page["data"].as_array().unwrap().len(), 2);
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, rest) = d
        .get(&format!("/admin/dead-letters?limit=2&after={cursor}"))
        .await;
    assert_eq!(rest["data"].as_array().unwrap().len(), 1);
    let (_, none) = d
        .get("/admin/dead-letters?since=2999-01-01T00:00:00Z")
        .await;
    assert_eq!(none["data"], json!([]));

    // The receiver is fixed: replay one by id, the rest by filter.
    rx.always(Reply::status(200));
    let first = rows.iter().find(|r| r["event_id"] == "dl1").unwrap()["delivery_id"].clone();
    let (s, out) = d
        .post("/admin/dead-letters/replay", json!({"ids": [first]}))
        .await;
    assert_eq!(
        (s, out["count"].clone()),
        (StatusCode::OK, json!(1)),
        "{out}"
    );
    d.wait_event_status("dl1", "delivered", Duration::from_secs(10))
        .await;
    let (_, out) = d
        .post(
            "/admin/dead-letters/replay",
            json!({"filter": {"subscription_id": sub_id}}),
        )
        .await;
    assert_eq!(out["count"], 2);
    d.wait_event_status("dl2", "delivered", Duration::from_secs(10))
        .await;
    d.wait_event_status("dl3", "delivered", Duration::from_secs(10))
        .await;

    // Both runs' attempts are kept: run 1 failed twice, run 2 succeeded.
    let (_, attempts) = d.get("/events/dl1/attempts").await;
    let runs: Vec<(i64, i64, Value)> = attempts["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["run"].as_i64().unwrap(),
                a["attempt"].as_i64().unwrap(),
                a["status_code"].clone(),
            )
        })
        .collect();
    assert_eq!(
        runs,
        [(1, 1, json!(500)), (1, 2, json!(500)), (2, 1, json!(200))]
    );
    let (_, list) = d.get("/admin/dead-letters").await;
    assert_eq!(list["data"], json!([]));

    // Purge: a new dead letter, purged by id, is gone with its attempts.
    rx.always(Reply::status(500));
    d.send_event("dl4", "order.created", json!({})).await;
    d.wait_event_status("dl4", "failed", Duration::from_secs(10))
        .await;
    let (_, list) = d.get("/admin/dead-letters").await;
    let id = list["data"][0]["delivery_id"].clone();
    let (_, out) = d
        .post("/admin/dead-letters/purge", json!({"ids": [id]}))
        .await;
    assert_eq!(out["count"], 1);
    let (_, list) = d.get("/admin/dead-letters").await;
    assert_eq!(list["data"], json!([]));
    let (_, attempts) = d.get("/events/dl4/attempts").await;
    assert_eq!(attempts["data"], json!([]));
    // Nothing is left behind in the table either: dl1..dl3 keep their two
    // failures as rows (the replay's success is on the delivery row).
    assert_eq!(d.db.count_rows("attempts").await, 6);
    // Purge by filter takes the attempts too.
    d.send_event("dl5", "order.created", json!({})).await;
    d.wait_event_status("dl5", "failed", Duration::from_secs(10))
        .await;
    let (_, out) = d
        .post(
            "/admin/dead-letters/purge",
            json!({"filter": {"subscription_id": sub_id}}),
        )
        .await;
    assert_eq!(out["count"], 1);
    assert_eq!(d.db.count_rows("attempts").await, 6);

    for bad in [
        json!({}),
        json!({"ids": [1], "filter": {}}),
        json!({"ids": []}),
        json!({"ids": (0..1001).collect::<Vec<i64>>()}),
        json!({"filter": {"since": "yesterday"}}),
        json!({"filter": {"colour": "red"}}),
        // An array is not a filter (serde would read it as all-empty fields
        // and purge everything).
        json!({"filter": [null, null]}),
    ] {
        let (s, b) = d.post("/admin/dead-letters/replay", bad.clone()).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {b}");
        assert_eq!(b["error"]["code"], "validation_failed");
    }
    let (s, _) = d.get("/admin/dead-letters?since=soon").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    d.finish().await;
}

/// `rate_limit = 20`: 200 deliveries take 10 s ± 10 %, each sent once
/// (waiting for a slot costs no attempt).
async fn rate_limit_paces_an_endpoint(backend: Backend) {
    let rx = Receiver::start().await;
    let d = Daemon::start(backend).await;
    d.subscribe(&rx.url("/rl"), &["*"], json!({"rate_limit": 20}))
        .await;
    let events: Vec<Value> = (0..200)
        .map(|i| json!({"id": format!("rl{i}"), "type": "a.b", "data": {}}))
        .collect();
    let (s, _) = d.post("/events/batch", json!({"events": events})).await;
    assert_eq!(s, StatusCode::OK);
    let got = rx.wait_for(200, Duration::from_secs(30)).await;
    let span = got[199].at.duration_since(got[0].at);
    assert!(
        span >= Duration::from_millis(9000) && span <= Duration::from_millis(11000),
        "200 deliveries at 20/s took {span:?}"
    );
    let ids: std::collections::HashSet<&str> = got.iter().map(|r| r.header("webhook-id")).collect();
    assert_eq!(ids.len(), 200, "each delivered once");
    assert_eq!(attempts_of(&d, "rl150").await, 1);
    d.finish().await;
}

both_backends!(
    rate_limit_paces_an_endpoint,
    circuit_opens_parks_and_recovers,
    pause_parks_and_resume_delivers_all,
    gone_disables_and_enable_delivers,
    dead_letters_replay_and_purge,
);

/// The admin API has its own tokens; producer keys do not open it.
#[tokio::test]
async fn admin_requires_its_own_token() {
    let producer = "producer-key-0123456789";
    let admin = "admin-token-0123456789";
    let d = Daemon::start_with(Backend::Sqlite, |c| {
        c.dev = false;
        c.api.keys = vec![producer.into()];
        c.admin.tokens = vec![admin.into()];
    })
    .await;
    let get = |token: &str| {
        d.http
            .get(d.url("/admin/dead-letters"))
            .bearer_auth(token.to_string())
            .send()
    };
    assert_eq!(get(producer).await.unwrap().status(), 401);
    assert_eq!(get("wrong-token-0000000000").await.unwrap().status(), 401);
    assert_eq!(get(admin).await.unwrap().status(), 200);
    // And the admin token does not open the producer API.
    let r = d
        .http
        .get(d.url("/subscriptions"))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    d.finish().await;

    let d = Daemon::start_with(Backend::Sqlite, |c| {
        c.dev = false;
        c.api.keys = vec![producer.into()];
    })
    .await;
    let r = d
        .http
        .get(d.url("/admin/dead-letters"))
        .bearer_auth(producer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let b: Value = r.json().await.unwrap();
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("admin.tokens"),
        "{b}"
    );
    d.finish().await;
}
