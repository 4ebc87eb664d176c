//! The public API as producers use it: status codes, error bodies,
//! idempotency, subscriptions CRUD, tasks, batches and authentication.

use std::time::Duration;

use axum::http::StatusCode;
use dispatch_tests::{Backend, Daemon, Receiver, both_backends};
use serde_json::{Value, json};

fn assert_error(status: StatusCode, body: &Value, want: StatusCode, code: &str) {
    assert_eq!(status, want, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

async fn same_event_id_is_delivered_once(backend: Backend) {
    let rx = Receiver::start().await;
    let d = Daemon::start(backend).await;
    d.subscribe(&rx.url("/hook"), &["order.*"], json!({})).await;

    let ev = json!({"id": "evt_1", "type": "order.created", "data": {"n": 1}});
    let (s1, b1) = d.post("/events", ev.clone()).await;
    assert_eq!(s1, StatusCode::ACCEPTED, "{b1}");
    assert_eq!(b1["id"], "evt_1");
    assert_eq!(b1["status"], "queued");
    assert!(b1["created_at"].is_string());
    let (s2, b2) = d.post("/events", ev).await;
    assert_eq!(s2, StatusCode::OK, "{b2}");
    assert_eq!(b2["id"], "evt_1");
    assert_eq!(b2["data"], json!({"n": 1}));
    assert_eq!(b2["deliveries"].as_array().unwrap().len(), 1);

    // Idempotency-Key does the same for events without an id.
    let send_keyed = || {
        d.http
            .post(d.url("/events"))
            .header("Idempotency-Key", "order-77-created")
            .json(&json!({"type": "order.created", "data": {"n": 2}}))
            .send()
    };
    let first = send_keyed().await.unwrap();
    assert_eq!(first.status(), 202);
    let first: Value = first.json().await.unwrap();
    let second = send_keyed().await.unwrap();
    assert_eq!(second.status(), 200);
    let second: Value = second.json().await.unwrap();
    assert_eq!(first["id"], second["id"]);

    d.wait_event_status("evt_1", "delivered", Duration::from_secs(10))
        .await;
    d.wait_event_status(
        first["id"].as_str().unwrap(),
        "delivered",
        Duration::from_secs(10),
    )
    .await;
    // Let any stray duplicate show up before counting.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.count(), 2, "each event delivered exactly once");
    d.finish().await;
}

async fn wildcards_route_by_segment(backend: Backend) {
    let rx = Receiver::start().await;
    let d = Daemon::start(backend).await;
    d.subscribe(&rx.url("/orders"), &["order.*"], json!({}))
        .await;
    d.send_event("e1", "order.created", json!({})).await;
    d.send_event("e2", "invoice.paid", json!({})).await;
    let ev = d
        .wait_event_status("e1", "delivered", Duration::from_secs(10))
        .await;
    assert_eq!(ev["deliveries"][0]["url"], rx.url("/orders"));
    let (_, other) = d.get("/events/e2").await;
    assert_eq!(other["status"], "no_subscribers");
    assert_eq!(other["deliveries"], json!([]));
    let got = rx.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].header("x-dispatch-event-type"), "order.created");
    d.finish().await;
}

async fn bad_input_gets_precise_errors(backend: Backend) {
    let d = Daemon::start(backend).await;
    let raw = |path: &str, ct: &str, body: Vec<u8>| {
        d.http
            .post(d.url(path))
            .header("content-type", ct.to_string())
            .body(body)
            .send()
    };
    let json_of = |r: reqwest::Response| async move {
        let s = StatusCode::from_u16(r.status().as_u16()).unwrap();
        (s, r.json::<Value>().await.expect("error bodies are JSON"))
    };

    let (s, b) = json_of(
        raw("/events", "application/json", b"{\"type\": ".to_vec())
            .await
            .unwrap(),
    )
    .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "malformed_json");

    let big = format!(
        "{{\"type\":\"a.b\",\"data\":\"{}\"}}",
        "x".repeat(6 * 1024 * 1024)
    );
    let (s, b) = json_of(
        raw("/events", "application/json", big.into_bytes())
            .await
            .unwrap(),
    )
    .await;
    assert_error(s, &b, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");

    let (s, b) = json_of(raw("/events", "text/plain", b"{}".to_vec()).await.unwrap()).await;
    assert_error(
        s,
        &b,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );

    let (s, b) = d
        .post("/subscriptions", json!({"event_types": ["order.*"]}))
        .await;
    assert_error(s, &b, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert!(
        b["error"]["message"].as_str().unwrap().contains("url"),
        "{b}"
    );

    let cases = [
        ("/events", json!({"type": 5, "data": {}}), "type"),
        ("/events", json!({"type": "a.b"}), "data"),
        ("/events", json!({"type": "a b", "data": {}}), "type"),
        (
            "/events",
            json!({"id": "a/b", "type": "a.b", "data": {}}),
            "id",
        ),
        (
            "/events",
            json!({"type": "a.b", "data": {}, "extra": 1}),
            "extra",
        ),
        (
            "/subscriptions",
            json!({"url": "ftp://x", "event_types": ["a"]}),
            "url",
        ),
        (
            "/subscriptions",
            json!({"url": "http://x", "event_types": []}),
            "event_types",
        ),
        (
            "/subscriptions",
            json!({"url": "http://x", "event_types": ["a"], "event_type": ["a"]}),
            "event_type",
        ),
        (
            "/subscriptions",
            json!({"url": "http://x", "event_types": ["a"], "max_attempts": 0}),
            "max_attempts",
        ),
        (
            "/subscriptions",
            json!({"url": "http://x", "event_types": ["a"], "timeout_ms": 999999999}),
            "timeout_ms",
        ),
        (
            "/subscriptions",
            json!({"url": "http://x", "event_types": ["a"], "retry": {"initial_delay_ms": 10}}),
            "retry",
        ),
        (
            "/subscriptions",
            json!({"url": "http://x", "event_types": ["a"], "headers": {"webhook-id": "x"}}),
            "webhook-id",
        ),
        (
            "/subscriptions",
            json!({"url": "http://x", "event_types": ["a"], "rate_limit": -1}),
            "rate_limit",
        ),
        (
            "/tasks",
            json!({"url": "http://x", "event": "a", "data": {}, "method": "BREW"}),
            "method",
        ),
        ("/tasks", json!({"url": "http://x", "data": {}}), "event"),
        ("/events/batch", json!({"events": []}), "events"),
        // serde would read an array as positional struct fields; we do not.
        ("/events", json!(["evt_x", "a.b", null, {}]), "object"),
        (
            "/subscriptions",
            json!({"url": "http://x", "event_types": ["a"], "retry": [1, 2.0, 3]}),
            "retry",
        ),
    ];
    for (path, body, mentions) in cases {
        let (s, b) = d.post(path, body.clone()).await;
        assert_error(s, &b, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert!(
            b["error"]["message"].as_str().unwrap().contains(mentions),
            "{path} {body}: {b}"
        );
    }

    for path in [
        "/events/nope",
        "/events/nope/attempts",
        "/tasks/nope",
        "/subscriptions/nope",
        "/no/such/route",
    ] {
        let (s, b) = d.get(path).await;
        assert_error(s, &b, StatusCode::NOT_FOUND, "not_found");
    }
    let (s, b) = d.delete("/subscriptions/nope").await;
    assert_error(s, &b, StatusCode::NOT_FOUND, "not_found");
    let (s, b) = d
        .patch("/subscriptions/nope", json!({"url": "http://x"}))
        .await;
    assert_error(s, &b, StatusCode::NOT_FOUND, "not_found");
    let r = d.http.put(d.url("/events")).send().await.unwrap();
    assert_eq!(r.status(), 405);
    let (s, b) = d.get("/subscriptions?limit=0").await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "bad_request");
    let (s, b) = d.get("/subscriptions?after=%00").await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "bad_request");
    let (s, b) = d.get("/subscriptions?limit=many").await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "bad_request");

    // NUL and other control characters never reach the database (PostgreSQL
    // would refuse them, which must not surface as a 500).
    for path in [
        "/events/%00",
        "/events/a%0Ab/attempts",
        "/tasks/%00",
        "/subscriptions/%00",
    ] {
        let (s, b) = d.get(path).await;
        assert_error(s, &b, StatusCode::NOT_FOUND, "not_found");
    }
    for body in [
        json!({"url": "http://x/a\u{0}b", "event_types": ["a"]}),
        json!({"url": "http://x", "event_types": ["a"], "secret": "ab\u{0}c"}),
        json!({"url": "http://x", "event_types": ["a\u{0}"]}),
    ] {
        let (s, b) = d.post("/subscriptions", body.clone()).await;
        assert_error(s, &b, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    }
    let (s, b) = d
        .post(
            "/events",
            json!({"type": "a.b", "source": "x\u{0}", "data": "\u{0}"}),
        )
        .await;
    assert_error(s, &b, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    d.finish().await;
}

async fn subscriptions_crud_hides_secrets(backend: Backend) {
    let d = Daemon::start(backend).await;
    let created = d
        .subscribe(
            "http://127.0.0.1:9/a",
            &["order.*"],
            json!({"id": "sub_a", "rate_limit": 5, "headers": {"X-Api-Key": "crm_key_88492"}}),
        )
        .await;
    assert_eq!(
        created["headers"]["X-Api-Key"], "crm_key_88492",
        "echoed once"
    );
    let secret = created["secret"].as_str().unwrap().to_string();
    assert!(
        secret.starts_with("whsec_") && secret.len() > 20,
        "generated and shown once"
    );
    assert_eq!(created["max_attempts"], 10);
    assert_eq!(created["timeout_ms"], 30000);
    assert_eq!(created["retry"]["initial_delay_ms"], 1000);
    assert_eq!(created["rate_limit"], 5);

    let (s, got) = d.get("/subscriptions/sub_a").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(got["secret"], "whsec_********", "masked afterwards");
    assert_eq!(got["headers"]["X-Api-Key"], "********", "header values too");
    assert_eq!(got["event_types"], json!(["order.*"]));

    let (s, b) = d
        .post(
            "/subscriptions",
            json!({"id": "sub_a", "url": "http://127.0.0.1:9/b", "event_types": ["x"]}),
        )
        .await;
    assert_error(s, &b, StatusCode::CONFLICT, "conflict");

    d.subscribe(
        "http://127.0.0.1:9/b",
        &["*"],
        json!({"id": "sub_b", "secret": "plain-secret"}),
    )
    .await;
    let (_, page1) = d.get("/subscriptions?limit=1").await;
    assert_eq!(page1["data"].as_array().unwrap().len(), 1);
    assert_eq!(page1["data"][0]["id"], "sub_a");
    let cursor = page1["next_cursor"].as_str().unwrap();
    let (_, page2) = d
        .get(&format!("/subscriptions?limit=1&after={cursor}"))
        .await;
    assert_eq!(page2["data"][0]["id"], "sub_b");
    assert_eq!(page2["data"][0]["secret"], "********");

    let (s, patched) = d
        .patch(
            "/subscriptions/sub_a",
            json!({"url": "http://127.0.0.1:9/new", "rate_limit": null, "max_attempts": 3}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{patched}");
    assert_eq!(patched["url"], "http://127.0.0.1:9/new");
    assert_eq!(patched["rate_limit"], Value::Null);
    assert_eq!(patched["max_attempts"], 3);
    assert_eq!(
        patched["event_types"],
        json!(["order.*"]),
        "untouched fields stay"
    );

    let (s, _) = d.delete("/subscriptions/sub_a").await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = d.get("/subscriptions/sub_a").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    d.finish().await;
}

async fn batch_reports_each_event(backend: Backend) {
    let rx = Receiver::start().await;
    let d = Daemon::start(backend).await;
    d.subscribe(&rx.url("/b"), &["*"], json!({})).await;
    d.send_event("dup", "a.b", json!({})).await;
    let (s, b) = d
        .post(
            "/events/batch",
            json!({"events": [
                {"id": "b1", "type": "a.b", "data": {"i": 1}},
                {"type": "a.b"},
                {"id": "dup", "type": "a.b", "data": {}},
                {"type": "a.c", "data": [1, 2]},
                {"id": "b1", "type": "a.b", "data": {"i": 1}},
            ]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let statuses: Vec<&str> = b["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["queued", "rejected", "duplicate", "queued", "duplicate"]
    );
    assert_eq!(b["results"][1]["error"]["code"], "validation_failed");
    assert_eq!(b["results"][0]["id"], "b1");
    let generated = b["results"][3]["id"].as_str().unwrap();
    assert!(generated.starts_with("evt_"));
    rx.wait_for(3, Duration::from_secs(10)).await;
    d.wait_event_status(generated, "delivered", Duration::from_secs(10))
        .await;
    d.finish().await;
}

async fn tasks_report_dispatchgo_statuses(backend: Backend) {
    let ok = Receiver::start().await;
    let down = Receiver::start().await;
    down.always(dispatch_tests::Reply::status(500).body("nope"));
    let d = Daemon::start_with(backend, |c| {
        c.tasks.retry.initial_delay_ms = 10;
        c.tasks.retry.max_delay_ms = 20;
    })
    .await;
    let (s, t) = d
        .post(
            "/tasks",
            json!({"url": ok.url("/t"), "method": "PUT", "event": "payment.success",
                   "headers": {"X-Api-Key": "k"}, "data": {"txn": 1}}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{t}");
    assert_eq!(t["status"], "queued");
    let id = t["task_id"].as_str().unwrap().to_string();
    let got = ok.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got[0].method, "PUT");
    assert_eq!(got[0].json(), json!({"txn": 1}), "a task delivers its data");
    assert_eq!(got[0].header("x-api-key"), "k");
    assert_eq!(got[0].header("webhook-id"), id);
    assert_eq!(
        got[0].header("x-dispatch-signature"),
        "",
        "no secret, no signature"
    );
    let done = dispatch_tests::eventually(Duration::from_secs(10), || async {
        d.get(&format!("/tasks/{id}")).await.1["status"] == "completed"
    })
    .await;
    assert!(done);
    let (_, view) = d.get(&format!("/tasks/{id}")).await;
    assert_eq!(view["method"], "PUT");
    assert_eq!(view["attempts"].as_array().unwrap().len(), 1);

    let (_, t) = d
        .post(
            "/tasks",
            json!({"url": down.url("/t"), "event": "payment.failed", "data": {}, "max_retries": 2}),
        )
        .await;
    let id = t["task_id"].as_str().unwrap().to_string();
    let failed = dispatch_tests::eventually(Duration::from_secs(10), || async {
        d.get(&format!("/tasks/{id}")).await.1["status"] == "failed"
    })
    .await;
    assert!(failed);
    let (_, view) = d.get(&format!("/tasks/{id}")).await;
    assert_eq!(view["retry_count"], 2);
    assert_eq!(view["max_retries"], 2);
    assert_eq!(view["attempts"].as_array().unwrap().len(), 3);
    assert_eq!(view["last_status_code"], 500);
    assert_eq!(down.count(), 3);
    // A task id is not an event id.
    let (s, _) = d.get(&format!("/events/{id}")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    d.finish().await;
}

async fn auth_is_required_outside_dev(backend: Backend) {
    let key = "test-key-0123456789";
    let hmac_secret = "hmac-secret-0123456789";
    let d = Daemon::start_with(backend, |c| {
        c.dev = false;
        c.server.addr = "127.0.0.1:0".into();
        c.api.keys = vec![key.into()];
        c.api.hmac_secrets = vec![hmac_secret.into()];
    })
    .await;
    let body = serde_json::to_vec(&json!({"type": "a.b", "data": {}})).unwrap();
    let post = |auth: Option<(&'static str, String)>| {
        let mut r = d
            .http
            .post(d.url("/events"))
            .header("content-type", "application/json")
            .body(body.clone());
        if let Some((k, v)) = auth {
            r = r.header(k, v);
        }
        r.send()
    };
    let r = post(None).await.unwrap();
    assert_eq!(r.status(), 401);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["error"]["code"], "unauthorized");
    assert_eq!(
        post(Some(("authorization", "Bearer wrong-key-000000000".into())))
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        post(Some(("authorization", format!("Bearer {key}"))))
            .await
            .unwrap()
            .status(),
        202
    );

    let sig = {
        use hmac::Mac;
        let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(hmac_secret.as_bytes()).unwrap();
        m.update(&body);
        hex::encode(m.finalize().into_bytes())
    };
    assert_eq!(
        post(Some(("x-hmac-signature", sig)))
            .await
            .unwrap()
            .status(),
        202
    );
    assert_eq!(
        post(Some(("x-hmac-signature", "00ff".into())))
            .await
            .unwrap()
            .status(),
        401
    );
    let r = d.http.get(d.url("/subscriptions")).send().await.unwrap();
    assert_eq!(r.status(), 401, "reads need auth too");
    let r = d.http.get(d.url("/health")).send().await.unwrap();
    assert_eq!(r.status(), 200, "health needs none");
    d.finish().await;
}

both_backends!(
    same_event_id_is_delivered_once,
    wildcards_route_by_segment,
    bad_input_gets_precise_errors,
    subscriptions_crud_hides_secrets,
    batch_reports_each_event,
    tasks_report_dispatchgo_statuses,
    auth_is_required_outside_dev,
);
