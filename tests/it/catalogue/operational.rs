//! Operational events: a dead delivery, a disabled endpoint, a circuit
//! that opens and closes, each reported once to `dispatch.*` subscribers
//! of the endpoint's tenant, signed like any event; no operational event
//! about the delivery of one, and none sent to the subscription it is
//! about.

use std::time::Duration;

use axum::http::StatusCode;
use dispatch_tests::{Backend, Daemon, Received, Receiver, Reply, both_backends, eventually};
use serde_json::{Value, json};

fn retry(max_attempts: u32) -> Value {
    json!({"max_attempts": max_attempts,
           "retry": {"initial_delay_ms": 10, "multiplier": 1.0, "max_delay_ms": 10}})
}

/// The operational events `rx` received on `path`, as (type, data).
fn reports(rx: &Receiver, path: &str) -> Vec<(String, Value)> {
    rx.received()
        .iter()
        .filter(|r| r.path == path)
        .map(Received::json)
        .filter(|b| {
            b["type"]
                .as_str()
                .is_some_and(|t| t.starts_with("dispatch."))
        })
        .map(|b| (b["type"].as_str().unwrap().to_string(), b["data"].clone()))
        .collect()
}

/// Waits for `n` reports on `path`, then a while longer to see that no
/// more come.
async fn settle(rx: &Receiver, path: &str, n: usize) -> Vec<(String, Value)> {
    let arrived = eventually(Duration::from_secs(15), || async {
        reports(rx, path).len() >= n
    })
    .await;
    assert!(arrived, "{n} reports on {path}: {:?}", reports(rx, path));
    tokio::time::sleep(Duration::from_millis(1200)).await;
    reports(rx, path)
}

/// Answers 500 on paths starting `/fail`, 410 on `/gone`, 200 elsewhere.
async fn receiver() -> Receiver {
    let rx = Receiver::start().await;
    rx.respond_with(|r| {
        Reply::status(if r.path.starts_with("/fail") {
            500
        } else if r.path.starts_with("/gone") {
            410
        } else {
            200
        })
    });
    rx
}

async fn a_dead_delivery_is_reported_once_to_its_tenant(backend: Backend) {
    let rx = receiver().await;
    let d = Daemon::start_with(backend, |c| c.circuit.failure_threshold = 50).await;
    let (s, b) = d.post("/tenants", json!({"id": "acme"})).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let acme = json!({"tenant_id": "acme"});
    let mut fail = retry(2);
    fail["id"] = json!("sub-fail");
    fail["tenant_id"] = json!("acme");
    d.subscribe(&rx.url("/fail"), &["order.*"], fail).await;
    d.subscribe(&rx.url("/ops-acme"), &["dispatch.*"], acme.clone())
        .await;
    d.subscribe(&rx.url("/all-acme"), &["*"], acme).await;
    d.subscribe(&rx.url("/ops-global"), &["dispatch.*"], json!({}))
        .await;
    let (s, b) = d
        .post(
            "/events",
            json!({"id": "e1", "type": "order.created", "tenant_id": "acme", "data": {"n": 1}}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{b}");

    let got = settle(&rx, "/ops-acme", 1).await;
    assert_eq!(got.len(), 1, "exactly one report: {got:?}");
    let (kind, data) = &got[0];
    assert_eq!(kind, "dispatch.delivery.dead");
    assert_eq!(data["event_id"], "e1");
    assert_eq!(data["event_type"], "order.created");
    assert_eq!(data["subscription_id"], "sub-fail");
    assert_eq!(data["attempts"], 2);
    assert!(
        data["last_error"].as_str().unwrap().contains("500"),
        "{data}"
    );
    // Signed and shaped like any delivery, from dispatchd.
    let r = rx
        .received()
        .into_iter()
        .find(|r| r.path == "/ops-acme")
        .unwrap();
    assert!(r.header("webhook-signature").starts_with("v1,"));
    assert_eq!(r.json()["source"], "dispatchd");
    // Another tenant's (here: the global) subscribers hear nothing, and `*`
    // does not take operational events.
    assert!(reports(&rx, "/ops-global").is_empty());
    assert!(reports(&rx, "/all-acme").is_empty());
    // It is an event like any other, visible by its id.
    let id = r.json()["id"].as_str().unwrap().to_string();
    let (s, ev) = d.get(&format!("/events/{id}")).await;
    assert_eq!(s, StatusCode::OK, "{ev}");
    assert_eq!(ev["tenant_id"], "acme");
    assert_eq!(d.db.count_rows("operational_outbox").await, 0);
    d.finish().await;
}

async fn a_410_and_an_operator_disable_are_reported(backend: Backend) {
    let rx = receiver().await;
    let d = Daemon::start(backend).await;
    d.subscribe(&rx.url("/gone"), &["a.*"], json!({"id": "sub-gone"}))
        .await;
    d.subscribe(&rx.url("/other"), &["b.*"], json!({"id": "sub-other"}))
        .await;
    d.subscribe(&rx.url("/ops"), &["dispatch.endpoint.*"], json!({}))
        .await;
    d.send_event("e1", "a.b", json!({})).await;
    let got = settle(&rx, "/ops", 1).await;
    assert_eq!(
        got,
        [(
            "dispatch.endpoint.disabled".to_string(),
            json!({"subscription_id": "sub-gone", "reason": "gone",
                   "detail": "the receiver answered 410 Gone"})
        )]
    );
    let (s, b) = d
        .post("/admin/subscriptions/sub-other/disable", json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let got = settle(&rx, "/ops", 2).await;
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[1].0, "dispatch.endpoint.disabled");
    assert_eq!(got[1].1["subscription_id"], "sub-other");
    assert_eq!(got[1].1["reason"], "operator");
    d.finish().await;
}

async fn a_circuit_that_opens_and_closes_is_reported_once_each(backend: Backend) {
    let rx = Receiver::start().await;
    let healthy = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let h = healthy.clone();
    rx.respond_with(move |r| {
        let up = h.load(std::sync::atomic::Ordering::SeqCst);
        Reply::status(if r.path == "/flaky" && !up { 500 } else { 200 })
    });
    let d = Daemon::start_with(backend, |c| {
        c.circuit.failure_threshold = 3;
        c.circuit.cooldown_secs = 1;
    })
    .await;
    let mut flaky = retry(20);
    flaky["id"] = json!("sub-flaky");
    d.subscribe(&rx.url("/flaky"), &["a.*"], flaky).await;
    d.subscribe(&rx.url("/ops"), &["dispatch.*"], json!({}))
        .await;
    d.send_event("e1", "a.b", json!({})).await;
    let got = settle(&rx, "/ops", 1).await;
    assert_eq!(
        got,
        [(
            "dispatch.endpoint.circuit_opened".to_string(),
            json!({"subscription_id": "sub-flaky", "consecutive_failures": 3})
        )]
    );
    healthy.store(true, std::sync::atomic::Ordering::SeqCst);
    d.wait_event_status("e1", "delivered", Duration::from_secs(15))
        .await;
    let got = settle(&rx, "/ops", 2).await;
    assert_eq!(got.len(), 2, "one open, one close: {got:?}");
    assert_eq!(
        got[1],
        (
            "dispatch.endpoint.circuit_closed".to_string(),
            json!({"subscription_id": "sub-flaky"})
        )
    );
    d.finish().await;
}

/// An operational subscription that fails: its dead deliveries (of
/// operational events) produce nothing, and the report of its own open
/// circuit goes to the other watcher, never to itself.
async fn a_failing_operational_subscription_is_not_fed_its_own_reports(backend: Backend) {
    let rx = receiver().await;
    let d = Daemon::start_with(backend, |c| c.circuit.failure_threshold = 3).await;
    let mut fail = retry(1);
    fail["id"] = json!("sub-fail");
    d.subscribe(&rx.url("/fail"), &["a.*"], fail).await;
    let mut ops = retry(3);
    ops["id"] = json!("ops-fail");
    d.subscribe(&rx.url("/fail-ops"), &["a.never", "dispatch.*"], ops)
        .await;
    d.subscribe(&rx.url("/watch"), &["dispatch.*"], json!({"id": "watch"}))
        .await;
    d.send_event("e1", "a.b", json!({})).await;
    d.send_event("e2", "a.b", json!({})).await;
    // sub-fail's two dead deliveries, then ops-fail's circuit (three
    // attempts of the first report, all refused).
    let got = settle(&rx, "/watch", 3).await;
    let mut about: Vec<(String, String)> = got
        .iter()
        .map(|(k, v)| {
            let what = v["event_id"].as_str().or(v["subscription_id"].as_str());
            (k.clone(), what.unwrap_or("").to_string())
        })
        .collect();
    about.sort();
    assert_eq!(
        about,
        [
            ("dispatch.delivery.dead".to_string(), "e1".to_string()),
            ("dispatch.delivery.dead".to_string(), "e2".to_string()),
            (
                "dispatch.endpoint.circuit_opened".to_string(),
                "ops-fail".to_string()
            ),
        ],
        "no report of a report's death; one of ops-fail's circuit"
    );
    assert_eq!(
        d.get("/subscriptions/ops-fail").await.1["circuit"]["state"],
        "open"
    );
    let own: Vec<_> = reports(&rx, "/fail-ops")
        .into_iter()
        .filter(|(_, v)| v["subscription_id"] == "ops-fail")
        .collect();
    assert!(own.is_empty(), "ops-fail was sent its own report: {own:?}");
    assert_eq!(d.db.count_rows("operational_outbox").await, 0);
    d.finish().await;
}

both_backends!(
    a_dead_delivery_is_reported_once_to_its_tenant,
    a_410_and_an_operator_disable_are_reported,
    a_circuit_that_opens_and_closes_is_reported_once_each,
    a_failing_operational_subscription_is_not_fed_its_own_reports,
);
