//! Schemas enforced at ingest, single and batch; the catalogue's CRUD and
//! its errors; `api.require_known_event_types`; deprecation; a change on
//! one node enforced by another.

use std::time::Duration;

use axum::http::StatusCode;
use dispatch_tests::{Backend, Daemon, both_backends, eventually};
use serde_json::{Value, json};

use super::{add_order_type, order, order_schema};

async fn post_order(d: &Daemon, id: &str, data: Value) -> (StatusCode, Value) {
    d.post(
        "/events",
        json!({"id": id, "type": "order.created", "data": data}),
    )
    .await
}

/// A 422 `schema_violation` whose message names `pointer` and `rule`, and
/// nothing stored.
async fn assert_refused(d: &Daemon, id: &str, data: Value, pointer: &str, rule: &str) {
    let (s, b) = post_order(d, id, data).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_eq!(b["error"]["code"], "schema_violation", "{b}");
    let m = b["error"]["message"].as_str().unwrap();
    assert!(m.starts_with(&format!("{pointer}: ")), "{pointer}: {m}");
    assert!(m.contains(&format!("rule \"{rule}\"")), "{rule}: {m}");
    assert_eq!(
        d.get(&format!("/events/{id}")).await.0,
        StatusCode::NOT_FOUND
    );
}

async fn a_schema_is_enforced_at_ingest(backend: Backend) {
    let d = Daemon::start(backend).await;
    add_order_type(&d).await;
    assert_eq!(
        post_order(&d, "ok1", order(1)).await.0,
        StatusCode::ACCEPTED
    );
    let mut o = order(2);
    o.as_object_mut().unwrap().remove("amount");
    assert_refused(&d, "bad1", o, "data", "required").await;
    let mut o = order(3);
    o["amount"] = json!(0);
    assert_refused(&d, "bad2", o.clone(), "data/amount", "minimum").await;
    o["amount"] = json!(2_000_000);
    assert_refused(&d, "bad3", o.clone(), "data/amount", "maximum").await;
    o["amount"] = json!("12");
    assert_refused(&d, "bad4", o, "data/amount", "type").await;
    let mut o = order(5);
    o["customer"]["email"] = json!(42);
    assert_refused(&d, "bad5", o.clone(), "data/customer/email", "type").await;
    o["customer"] = json!({"vip": true});
    assert_refused(&d, "bad6", o, "data/customer", "required").await;
    // Other types are not checked (the catalogue does not require them).
    d.send_event("free1", "note.added", json!({"anything": [1, 2]}))
        .await;
    d.finish().await;
}

async fn a_batch_stores_only_its_valid_items(backend: Backend) {
    let d = Daemon::start(backend).await;
    add_order_type(&d).await;
    let bad = [7usize, 42, 99];
    let events: Vec<Value> = (0..100u64)
        .map(|n| {
            let mut data = order(n);
            if bad.contains(&(n as usize)) {
                data["customer"] = json!("not an object");
            }
            json!({"id": format!("b{n}"), "type": "order.created", "data": data})
        })
        .collect();
    let (s, b) = d.post("/events/batch", json!({"events": events})).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let results = b["results"].as_array().unwrap();
    let queued = results.iter().filter(|r| r["status"] == "queued").count();
    assert_eq!(queued, 97, "{b}");
    for i in bad {
        let r = &results[i];
        assert_eq!(r["status"], "rejected", "{r}");
        assert_eq!(r["error"]["code"], "schema_violation", "{r}");
        let m = r["error"]["message"].as_str().unwrap();
        assert!(m.starts_with("data/customer: "), "{m}");
        assert_eq!(
            d.get(&format!("/events/b{i}")).await.0,
            StatusCode::NOT_FOUND
        );
    }
    assert_eq!(d.db.count_rows("events").await, 97);
    d.finish().await;
}

async fn the_catalogue_checks_what_it_stores(backend: Backend) {
    let d = Daemon::start(backend).await;
    let cases = [
        (
            json!({"name": "a.b", "schema": {"type": "objekt"}}),
            "schema",
        ),
        (
            json!({"name": "a.b", "schema": {"minimum": "zero"}}),
            "schema",
        ),
        (
            json!({"name": "a.b", "schema": order_schema(), "example": {"order_id": 1}}),
            "example",
        ),
        (json!({"name": "dispatch.mine"}), "name"),
        (json!({"name": "a b"}), "name"),
        (json!({"name": "a.b", "colour": "red"}), "colour"),
    ];
    for (body, field) in cases {
        let (s, b) = d.post("/event-types", body.clone()).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {b}");
        let m = b["error"]["message"].as_str().unwrap();
        assert!(m.contains(field), "{body}: {field} not in {m}");
    }
    assert_eq!(d.db.count_rows("event_types").await, 0);
    add_order_type(&d).await;
    let (s, b) = d
        .post("/event-types", json!({"name": "order.created"}))
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    let (s, t) = d.get("/event-types/order.created").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(t["schema"], order_schema());
    assert_eq!(t["operational"], false);
    // A bad patch changes nothing.
    let (s, b) = d
        .patch("/event-types/order.created", json!({"schema": {"type": 7}}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_eq!(
        d.get("/event-types/order.created").await.1["schema"],
        order_schema()
    );
    // Without a schema, the type's events are no longer checked.
    let (s, b) = d
        .patch(
            "/event-types/order.created",
            json!({"schema": null, "example": null}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["schema"], Value::Null);
    d.send_event("free", "order.created", json!({"amount": -1}))
        .await;
    // The operational types cannot be changed.
    let (s, _) = d
        .patch(
            "/event-types/dispatch.delivery.dead",
            json!({"deprecated": true}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(
        d.delete("/event-types/dispatch.delivery.dead").await.0,
        StatusCode::CONFLICT
    );
    // Nor posted by a producer, nor their ids taken.
    let (s, b) = d
        .post(
            "/events",
            json!({"type": "dispatch.delivery.dead", "data": {}}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    let (s, b) = d
        .post(
            "/events",
            json!({"id": "evt_op_1", "type": "a.b", "data": {}}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert!(
        b["error"]["message"].as_str().unwrap().starts_with("id"),
        "{b}"
    );
    // A name with a `/` is reached percent-encoded.
    let (s, b) = d
        .post("/event-types", json!({"name": "billing/invoice.paid"}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, b) = d.get("/event-types/billing%2Finvoice.paid").await;
    assert_eq!(
        (s, &b["name"]),
        (StatusCode::OK, &json!("billing/invoice.paid")),
        "{b}"
    );
    let (s, b) = d.get("/event-types?after=billing/invoice.paid").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(
        d.delete("/event-types/billing%2Finvoice.paid").await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        d.delete("/event-types/order.created").await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        d.get("/event-types/order.created").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        d.delete("/event-types/order.created").await.0,
        StatusCode::NOT_FOUND
    );
    d.finish().await;
}

async fn the_catalogue_lists_in_pages_with_the_operational_types(backend: Backend) {
    let d = Daemon::start(backend).await;
    for name in ["a.one", "e.two", "z.three"] {
        let (s, b) = d.post("/event-types", json!({"name": name})).await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
    }
    let mut names = Vec::new();
    let mut path = "/event-types?limit=2".to_string();
    loop {
        let (s, page) = d.get(&path).await;
        assert_eq!(s, StatusCode::OK, "{page}");
        for t in page["data"].as_array().unwrap() {
            names.push(t["name"].as_str().unwrap().to_string());
            let operational = t["name"].as_str().unwrap().starts_with("dispatch.");
            assert_eq!(t["operational"], operational, "{t}");
            if operational {
                assert!(
                    t["schema"]["properties"]["subscription_id"].is_object(),
                    "{t}"
                );
            }
        }
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/event-types?limit=2&after={c}"),
            None => break,
        }
    }
    assert_eq!(
        names,
        [
            "a.one",
            "dispatch.delivery.dead",
            "dispatch.endpoint.circuit_closed",
            "dispatch.endpoint.circuit_opened",
            "dispatch.endpoint.disabled",
            "e.two",
            "z.three"
        ]
    );
    d.finish().await;
}

async fn unknown_types_are_refused_when_required(backend: Backend) {
    let d = Daemon::start_with(backend, |c| c.api.require_known_event_types = true).await;
    let (s, b) = d
        .post("/events", json!({"type": "note.added", "data": {}}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_eq!(b["error"]["code"], "validation_failed", "{b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("catalogue"),
        "{b}"
    );
    let (s, b) = d.post("/event-types", json!({"name": "note.added"})).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    d.send_event("n1", "note.added", json!({})).await;
    d.finish().await;
}

async fn a_deprecated_type_is_accepted_and_flagged(backend: Backend) {
    let d = Daemon::start(backend).await;
    add_order_type(&d).await;
    d.send_event("before", "order.created", order(1)).await;
    assert_eq!(d.get("/events/before").await.1["deprecated"], false);
    let (s, b) = d
        .patch("/event-types/order.created", json!({"deprecated": true}))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    d.send_event("after", "order.created", order(2)).await;
    let (_, e) = d.get("/events/after").await;
    assert_eq!(e["deprecated"], true, "{e}");
    // Still checked.
    let (s, _) = post_order(&d, "after-bad", json!({})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    d.finish().await;
}

/// Two nodes on one PostgreSQL: a schema written through one is enforced
/// by the other within its poll, and so is its removal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_change_on_one_node_is_enforced_by_another() {
    if !dispatch_tests::postgres_available().await {
        return;
    }
    let a = Daemon::start(Backend::Postgres).await;
    let b = Daemon::start_on(a.db.clone(), |_| {}).await;
    assert_eq!(
        post_order(&b, "free", json!({})).await.0,
        StatusCode::ACCEPTED
    );
    add_order_type(&a).await;
    let enforced = eventually(Duration::from_secs(5), || async {
        post_order(&b, "probe", json!({})).await.0 == StatusCode::UNPROCESSABLE_ENTITY
    })
    .await;
    assert!(enforced, "node b checks the schema node a stored");
    assert_eq!(
        a.delete("/event-types/order.created").await.0,
        StatusCode::NO_CONTENT
    );
    let lifted = eventually(Duration::from_secs(5), || async {
        post_order(&b, "probe2", json!({})).await.0 == StatusCode::ACCEPTED
    })
    .await;
    assert!(lifted, "node b stops checking once the type is deleted");
    b.stop().await;
    a.finish().await;
}

both_backends!(
    a_schema_is_enforced_at_ingest,
    a_batch_stores_only_its_valid_items,
    the_catalogue_checks_what_it_stores,
    the_catalogue_lists_in_pages_with_the_operational_types,
    unknown_types_are_refused_when_required,
    a_deprecated_type_is_accepted_and_flagged,
);
