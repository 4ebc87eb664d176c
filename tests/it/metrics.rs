//! `/metrics` in Prometheus text format: ingest and delivery counters, the
//! attempt latency histogram, queue depth by state and circuit state.

use std::time::Duration;

use dispatch_tests::{Backend, Daemon, Receiver, Reply, both_backends};
use serde_json::json;

/// The value of the sample whose line starts with `series` (name and labels).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

async fn metrics_report_work_done(backend: Backend) {
    let ok = Receiver::start().await;
    let down = Receiver::start().await;
    down.always(Reply::status(500));
    let d = Daemon::start(backend).await;
    d.subscribe(&ok.url("/ok"), &["ok"], json!({"id": "sub_ok"}))
        .await;
    d.subscribe(
        &down.url("/down"),
        &["down"],
        json!({"id": "sub_down", "max_attempts": 1}),
    )
    .await;
    for i in 0..5 {
        d.send_event(&format!("ok{i}"), "ok", json!({})).await;
    }
    d.send_event("down0", "down", json!({})).await;
    d.wait_event_status("ok4", "delivered", Duration::from_secs(10))
        .await;
    d.wait_event_status("down0", "failed", Duration::from_secs(10))
        .await;

    let resp = d.http.get(d.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = resp.text().await.unwrap();
    // Counters are process-wide (tests may share a process): at least ours.
    assert!(
        sample(&text, r#"dispatch_events_ingested_total{kind="event"}"#).unwrap() >= 6.0,
        "{text}"
    );
    assert!(sample(&text, r#"dispatch_deliveries_total{outcome="delivered"}"#).unwrap() >= 5.0);
    assert!(sample(&text, r#"dispatch_deliveries_total{outcome="dead"}"#).unwrap() >= 1.0);
    assert!(
        text.contains(r#"dispatch_attempt_duration_seconds_bucket{result="success",le="0.005"}"#),
        "{text}"
    );
    // Gauges come from this node's database: exact.
    assert_eq!(
        sample(&text, r#"dispatch_queue_depth{state="delivered"}"#),
        Some(5.0)
    );
    assert_eq!(
        sample(&text, r#"dispatch_queue_depth{state="dead"}"#),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, r#"dispatch_queue_depth{state="pending"}"#),
        Some(0.0)
    );
    assert_eq!(
        sample(&text, r#"dispatch_circuit_state{subscription_id="sub_ok"}"#),
        Some(0.0)
    );
    d.finish().await;
}

/// `/openapi.json` is OpenAPI 3.1 and documents every route the daemon
/// serves, with the error body on its 4xx answers.
async fn openapi_documents_every_route(backend: Backend) {
    let d = Daemon::start(backend).await;
    let (status, doc) = d.get("/openapi.json").await;
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    for (path, method) in [
        ("/events", "post"),
        ("/events/batch", "post"),
        ("/events/{id}", "get"),
        ("/events/{id}/attempts", "get"),
        ("/tasks", "post"),
        ("/tasks/{id}", "get"),
        ("/subscriptions", "post"),
        ("/subscriptions", "get"),
        ("/subscriptions/{id}", "get"),
        ("/subscriptions/{id}", "patch"),
        ("/subscriptions/{id}", "delete"),
        ("/health", "get"),
        ("/ready", "get"),
        ("/metrics", "get"),
        ("/admin/subscriptions/{id}/pause", "post"),
        ("/admin/subscriptions/{id}/resume", "post"),
        ("/admin/subscriptions/{id}/disable", "post"),
        ("/admin/subscriptions/{id}/enable", "post"),
        ("/admin/dead-letters", "get"),
        ("/admin/dead-letters/replay", "post"),
        ("/admin/dead-letters/purge", "post"),
    ] {
        let op = &doc["paths"][path][method];
        assert!(op.is_object(), "{method} {path} is not documented");
        assert!(
            op["responses"]
                .as_object()
                .unwrap()
                .keys()
                .any(|k| k.starts_with('2'))
        );
    }
    let err = &doc["paths"]["/events"]["post"]["responses"]["422"]["content"]["application/json"]["schema"];
    assert_eq!(err["$ref"], "#/components/schemas/ErrorResponse");
    d.finish().await;
}

/// `metrics.token` guards `/metrics`; a deleted subscription's circuit
/// gauge goes with it (the gauges are written from the admin snapshot, not
/// kept by the recorder).
async fn metrics_token_and_deleted_endpoints(backend: Backend) {
    const TOKEN: &str = "metrics-token-0123456789";
    let d = Daemon::start_with(backend, |c| c.metrics.token = TOKEN.into()).await;
    d.subscribe("http://127.0.0.1:9/gone", &["x"], json!({"id": "sub_gone"}))
        .await;
    let scrape = |token: Option<&'static str>| {
        let url = d.url("/metrics");
        async move {
            let mut r = reqwest::Client::new().get(url);
            if let Some(t) = token {
                r = r.bearer_auth(t);
            }
            let r = r.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let (status, body) = scrape(None).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("metrics.token"), "{body}");
    assert_eq!(scrape(Some("wrong-token-0123456789")).await.0, 401);
    let (status, text) = scrape(Some(TOKEN)).await;
    assert_eq!(status, 200);
    let series = r#"dispatch_circuit_state{subscription_id="sub_gone"}"#;
    assert_eq!(sample(&text, series), Some(0.0), "{text}");
    d.delete("/subscriptions/sub_gone").await;
    // The snapshot is at most a second old.
    let gone = dispatch_tests::eventually(Duration::from_secs(5), || async {
        sample(&scrape(Some(TOKEN)).await.1, series).is_none()
    })
    .await;
    assert!(gone, "the deleted subscription's gauge stayed");
    d.finish().await;
}

both_backends!(
    metrics_report_work_done,
    openapi_documents_every_route,
    metrics_token_and_deleted_endpoints
);
