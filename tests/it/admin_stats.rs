//! The operator's figures: `GET /admin/stats` counts from the database,
//! `GET /admin/dead-letters/{id}` shows what a dead letter needs to be
//! judged, and `GET /admin/stream` sends snapshots and attempts live.

use std::time::Duration;

use axum::http::StatusCode;
use dispatch_tests::{Backend, Daemon, Receiver, Reply, both_backends};
use serde_json::{Value, json};

async fn stats_reflect_deliveries_dead_letters_and_endpoints(backend: Backend) {
    let ok_rx = Receiver::start().await;
    let bad_rx = Receiver::start().await;
    bad_rx.always(Reply::status(500));
    let d = Daemon::start(backend).await;
    let good = d.subscribe(&ok_rx.url("/ok"), &["ok.*"], json!({})).await;
    let bad = d
        .subscribe(
            &bad_rx.url("/bad"),
            &["bad.*"],
            json!({"max_attempts": 2, "headers": {"X-Api-Key": "hunter2"},
                   "retry": {"initial_delay_ms": 10, "multiplier": 1.0, "max_delay_ms": 10}}),
        )
        .await;
    for i in 0..20 {
        d.send_event(&format!("ok{i}"), "ok.created", json!({"n": i}))
            .await;
    }
    for i in 0..3 {
        d.send_event(&format!("bad{i}"), "bad.created", json!({"n": i}))
            .await;
    }
    ok_rx.wait_for(20, Duration::from_secs(10)).await;
    for i in 0..3 {
        d.wait_event_status(&format!("bad{i}"), "failed", Duration::from_secs(10))
            .await;
    }
    // Rates count whole seconds: let the current one finish.
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let (status, s) = d.get("/admin/stats").await;
    assert_eq!(status, StatusCode::OK, "{s}");
    assert_eq!(
        s["deliveries"],
        json!({"pending": 0, "in_flight": 0, "scheduled": 0, "delivered": 20,
               "dead": 3, "paused": 0, "dropped": 0, "held": 0})
    );
    assert_eq!(s["blocked_keys"], 0);
    assert_eq!(s["oldest_pending_age_ms"], Value::Null);
    let backend_name = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    assert_eq!(s["backend"], backend_name);
    let points = s["throughput"].as_array().unwrap();
    assert_eq!(points.len(), 60);
    let sum = |k: &str| points.iter().map(|p| p[k].as_i64().unwrap()).sum::<i64>();
    assert_eq!(sum("ingested"), 23, "{points:?}");
    assert_eq!(sum("delivered"), 20);
    assert_eq!(sum("failed"), 6, "3 dead letters of 2 attempts each");
    assert_eq!(
        s["rates"]["ingested_per_sec"].as_f64().unwrap(),
        23.0 / 60.0
    );
    let lat = &s["latency_ms"];
    assert_eq!(lat["samples"], 20, "{lat}");
    let (p50, p95, p99) = (
        lat["p50"].as_i64().unwrap(),
        lat["p95"].as_i64().unwrap(),
        lat["p99"].as_i64().unwrap(),
    );
    assert!(
        0 <= p50 && p50 <= p95 && p95 <= p99 && p99 < 10_000,
        "{lat}"
    );

    let endpoint = |id: &Value| {
        s["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["subscription_id"] == *id)
            .cloned()
            .unwrap()
    };
    let g = endpoint(&good["id"]);
    assert_eq!(
        (&g["health"], &g["delivered_last_minute"], &g["backlog"]),
        (&json!("healthy"), &json!(20), &json!(0)),
        "{g}"
    );
    let b = endpoint(&bad["id"]);
    assert_eq!(
        (
            &b["health"],
            &b["dead"],
            &b["failed_last_minute"],
            &b["circuit_state"]
        ),
        (&json!("failing"), &json!(3), &json!(6), &json!("closed")),
        "{b}"
    );
    assert_eq!(b["url"], bad_rx.url("/bad"));
    let nodes = s["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 1);
    assert_eq!(nodes[0]["live"], true);

    // Pausing shows at once, and new events park.
    d.post(
        &format!(
            "/admin/subscriptions/{}/pause",
            good["id"].as_str().unwrap()
        ),
        json!({}),
    )
    .await;
    d.send_event("ok_parked", "ok.created", json!({})).await;
    let (_, s) = d.get("/admin/stats").await;
    assert_eq!(s["deliveries"]["paused"], 1, "{}", s["deliveries"]);
    let g = s["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["subscription_id"] == good["id"])
        .cloned()
        .unwrap();
    assert_eq!((&g["health"], &g["paused"]), (&json!("paused"), &json!(1)));

    // One dead letter, inspected: payload, masked headers, every attempt.
    let (_, list) = d.get("/admin/dead-letters?limit=1").await;
    let id = list["data"][0]["delivery_id"].as_i64().unwrap();
    let (status, detail) = d.get(&format!("/admin/dead-letters/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    assert_eq!(detail["dead_letter"]["event_id"], "bad0");
    assert_eq!(detail["data"], json!({"n": 0}));
    assert_eq!(detail["headers"], json!({"X-Api-Key": "********"}));
    let attempts = detail["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[1]["status_code"], 500);
    for missing in ["999999", "abc", "-1", "0", "-9223372036854775808"] {
        let (status, body) = d.get(&format!("/admin/dead-letters/{missing}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{missing}: {body}");
        assert_eq!(body["error"]["code"], "not_found");
    }
    // A delivered delivery is not a dead letter.
    let (_, ev) = d.get("/events/ok1").await;
    let delivered = ev["deliveries"][0]["id"].as_i64().unwrap();
    let (status, _) = d.get(&format!("/admin/dead-letters/{delivered}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    d.finish().await;
}

async fn stream_sends_stats_and_new_attempts(backend: Backend) {
    let rx = Receiver::start().await;
    let d = Daemon::start(backend).await;
    d.subscribe(&rx.url("/s"), &["*"], json!({})).await;
    d.send_event("before", "a.b", json!({})).await;
    rx.wait_for(1, Duration::from_secs(10)).await;

    let mut resp = reqwest::Client::new()
        .get(d.url("/admin/stream"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut text = String::new();
    // The first tick replays recent attempts; then new ones follow.
    assert!(
        read_until(&mut resp, &mut text, "\"event_id\":\"before\"").await,
        "{text}"
    );
    d.send_event("after", "a.b", json!({})).await;
    assert!(
        read_until(&mut resp, &mut text, "\"event_id\":\"after\"").await,
        "{text}"
    );
    let mut stats = None;
    let mut attempts = Vec::new();
    for block in text.split("\n\n") {
        let event = block.lines().find_map(|l| l.strip_prefix("event: "));
        let data = block.lines().find_map(|l| l.strip_prefix("data: "));
        match (event, data) {
            (Some("stats"), Some(d)) => stats = Some(serde_json::from_str::<Value>(d).unwrap()),
            (Some("attempt"), Some(d)) => attempts.push(serde_json::from_str::<Value>(d).unwrap()),
            _ => {}
        }
    }
    let stats = stats.expect("a stats event");
    assert!(stats["deliveries"]["delivered"].as_i64().unwrap() >= 1);
    let ids: Vec<&str> = attempts
        .iter()
        .map(|a| a["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["before", "after"], "each attempt once, in order");
    assert_eq!(attempts[1]["ok"], true);
    assert_eq!(attempts[1]["status_code"], 200);
    assert_eq!(attempts[1]["event_type"], "a.b");
    drop(resp);
    d.finish().await;
}

/// Reads the stream until `needle` shows, for at most 10 s.
async fn read_until(resp: &mut reqwest::Response, text: &mut String, needle: &str) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !text.contains(needle) {
        match tokio::time::timeout_at(deadline, resp.chunk()).await {
            Ok(Ok(Some(c))) => text.push_str(&String::from_utf8_lossy(&c)),
            _ => return false,
        }
    }
    true
}

both_backends!(
    stats_reflect_deliveries_dead_letters_and_endpoints,
    stream_sends_stats_and_new_attempts
);
