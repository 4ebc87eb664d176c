//! Events reach only their tenant's subscriptions (and channels hold);
//! tenants are known across nodes.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use axum::http::StatusCode;
use dispatch_tests::{Backend, Daemon, Receiver, both_backends, eventually};
use serde_json::{Value, json};

use super::tenant;

/// 50 tenants, each with one subscription (every other one limited to the
/// `eu` channel), and one global subscription; 2,000 events over them at
/// random. Every endpoint receives exactly the events its tenant and
/// channels select, each once.
async fn events_reach_only_their_tenant(backend: Backend) {
    let rx = Receiver::start().await;
    let d = Daemon::start(backend).await;
    for t in 0..50usize {
        tenant(&d, &format!("t{t}")).await;
        let mut extra = json!({"id": format!("sub-t{t}"), "tenant_id": format!("t{t}")});
        if t.is_multiple_of(2) {
            extra["channels"] = json!(["eu"]);
        }
        let sub = d
            .subscribe(&rx.url(&format!("/t{t}")), &["order.*"], extra)
            .await;
        assert_eq!(sub["tenant_id"], format!("t{t}"));
    }
    let global = d
        .subscribe(
            &rx.url("/global"),
            &["order.*"],
            json!({"id": "sub-global"}),
        )
        .await;
    assert_eq!(global["tenant_id"], Value::Null);

    let channel_sets = [json!([]), json!(["eu"]), json!(["us"]), json!(["us", "eu"])];
    let mut expected: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut rng = fastrand::Rng::with_seed(16);
    let mut batch = Vec::new();
    for i in 0..2000 {
        let id = format!("evt-{i}");
        let tenant = rng.usize(0..55);
        let channels = &channel_sets[rng.usize(0..channel_sets.len())];
        let mut ev = json!({"id": id, "type": "order.created", "data": {"i": i},
                            "channels": channels});
        let path = if tenant < 50 {
            ev["tenant_id"] = json!(format!("t{tenant}"));
            let wants_eu = tenant.is_multiple_of(2);
            let has_eu = channels.as_array().unwrap().contains(&json!("eu"));
            (!wants_eu || has_eu).then(|| format!("/t{tenant}"))
        } else {
            Some("/global".to_string())
        };
        if let Some(p) = path {
            expected.entry(p).or_default().insert(id);
        }
        batch.push(ev);
        if batch.len() == 200 {
            let (s, b) = d
                .post(
                    "/events/batch",
                    json!({"events": std::mem::take(&mut batch)}),
                )
                .await;
            assert_eq!(s, StatusCode::OK, "{b}");
            assert!(
                b["results"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|r| r["status"] == "queued"),
                "{b}"
            );
        }
    }
    let total: usize = expected.values().map(BTreeSet::len).sum();
    let all_in = eventually(Duration::from_secs(60), || async { rx.count() >= total }).await;
    assert!(all_in, "{} of {total} delivered", rx.count());
    // Nothing more arrives: no event went anywhere else too.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut got: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in rx.received() {
        let id = r.json()["id"].as_str().unwrap().to_string();
        assert!(
            got.entry(r.path.clone()).or_default().insert(id),
            "a duplicate"
        );
    }
    assert_eq!(rx.count(), total);
    assert_eq!(got, expected);

    // The event shows its tenant and channels.
    let (_, e) = d.get("/events/evt-0").await;
    assert!(e["channels"].is_array(), "{e}");
    assert!(e.get("tenant_id").is_some(), "{e}");
    d.finish().await;
}

both_backends!(events_reach_only_their_tenant);

/// Two nodes on one PostgreSQL: a tenant made through one is known at
/// once to the other, whose cached snapshot predates it, and so is its
/// deletion.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_tenant_made_on_one_node_is_known_on_another() {
    if !dispatch_tests::postgres_available().await {
        return;
    }
    let rx = Receiver::start().await;
    let one = Daemon::start(Backend::Postgres).await;
    let two = Daemon::start_on(one.db.clone(), |_| {}).await;
    // Node two reads its snapshot now, before the tenant exists.
    let (s, _) = two
        .post("/events", json!({"type": "warm.up", "data": {}}))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    tenant(&one, "acme").await;
    one.subscribe(&rx.url("/acme"), &["*"], json!({"tenant_id": "acme"}))
        .await;
    let (s, b) = two
        .post(
            "/events",
            json!({"id": "e1", "type": "a.b", "tenant_id": "acme", "data": {}}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{b}");
    rx.wait_for(1, Duration::from_secs(10)).await;
    let (s, _) = one.delete("/tenants/acme").await;
    assert_eq!(s, StatusCode::OK);
    let (s, b) = two
        .post(
            "/events",
            json!({"type": "a.b", "tenant_id": "acme", "data": {}}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    two.stop().await;
    one.finish().await;
}
