//! The real `dispatchd` executable: graceful shutdown under load, restart
//! without loss, `dispatchd migrate`, and start-up refusing bad settings.

use std::collections::HashSet;
use std::time::Duration;

use dispatch_tests::{
    Backend, Binary, Receiver, Reply, TestDb, both_backends, eventually, run_dispatchd,
};
use serde_json::json;

/// SIGTERM while deliveries hang past the grace period: exit 0, the
/// unfinished ones are handed back, and after a restart every accepted
/// event arrives.
async fn sigterm_in_flight_then_restart_loses_nothing(backend: Backend) {
    let db = TestDb::new(backend).await;
    let rx = Receiver::start().await;
    rx.always(Reply::status(200).delay(Duration::from_secs(3)));
    let env = [("DISPATCH_SHUTDOWN__GRACE_SECS", "1")];
    let mut node = Binary::start_dev(&db, &env).await;
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{}/subscriptions", node.base))
        .json(&json!({"url": rx.url("/slow"), "event_types": ["*"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    let mut accepted = HashSet::new();
    for i in 0..40 {
        let id = format!("evt_{i}");
        let r = http
            .post(format!("{}/events", node.base))
            .json(&json!({"id": id, "type": "t.x", "data": {"i": i}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        accepted.insert(id);
    }
    // Deliveries are in flight (the receiver holds each for 3 s).
    rx.wait_for(40, Duration::from_secs(10)).await;
    node.terminate();
    let code = node.wait_exit(Duration::from_secs(15)).await;
    assert_eq!(code, Some(0), "graceful exit:\n{}", node.log());
    assert!(
        node.log().contains("handing unfinished deliveries back"),
        "{}",
        node.log()
    );

    // Restart with a healthy receiver: everything accepted arrives.
    rx.always(Reply::status(200));
    let before = rx.count();
    let mut node = Binary::start_dev(&db, &env).await;
    let all = eventually(Duration::from_secs(20), || async {
        let ids: HashSet<String> = rx.received()[before..]
            .iter()
            .map(|r| r.header("webhook-id").to_string())
            .collect();
        accepted.is_subset(&ids)
    })
    .await;
    assert!(
        all,
        "some accepted events were never delivered after restart"
    );
    let r: serde_json::Value = http
        .get(format!("{}/events/evt_7", node.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(r["status"] == "delivered" || r["status"] == "queued", "{r}");
    node.terminate();
    assert_eq!(node.wait_exit(Duration::from_secs(15)).await, Some(0));
    db.drop_db().await;
}

/// `dispatchd migrate` creates the schema and is idempotent.
async fn migrate_command_applies_schema(backend: Backend) {
    let db = TestDb::new(backend).await;
    let mut env = vec![(
        "DISPATCH_DATABASE__SQLITE_PATH",
        db.sqlite_path.display().to_string(),
    )];
    if !db.url.is_empty() {
        env.push(("DATABASE_URL", db.url.clone()));
    }
    for _ in 0..2 {
        let (code, err) = run_dispatchd(&["migrate"], &env).await;
        assert_eq!(code, Some(0), "{err}");
        assert!(err.contains("migrations applied"), "{err}");
    }
    let store = dispatchd::store::open(&db.config()).await.unwrap();
    store.ready().await.expect("schema is current");
    db.drop_db().await;
}

both_backends!(
    sigterm_in_flight_then_restart_loses_nothing,
    migrate_command_applies_schema,
);

/// A bad setting stops start-up with a message naming it.
#[tokio::test]
async fn bad_settings_stop_startup_naming_the_key() {
    let (code, err) = run_dispatchd(&[], &[]).await;
    assert_eq!(code, Some(2));
    assert!(err.contains("api.keys") && err.contains("--dev"), "{err}");

    let env = [("DISPATCH_QUEUE__CLAIM_BATCH", "lots".to_string())];
    let (code, err) = run_dispatchd(&["--dev"], &env).await;
    assert_eq!(code, Some(2));
    assert!(err.contains("queue.claim_batch"), "{err}");

    let env = [("ADDR", "nowhere".to_string())];
    let (code, err) = run_dispatchd(&["--dev"], &env).await;
    assert_eq!(code, Some(2));
    assert!(err.contains("server.addr"), "{err}");

    let (code, err) =
        run_dispatchd(&["--dev", "--config", "/nonexistent/dispatch.toml"], &[]).await;
    assert_eq!(code, Some(2));
    assert!(err.contains("not found"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.toml");
    std::fs::write(&path, "[delivery]\ntimeout_ms = 0\n").unwrap();
    let (code, err) = run_dispatchd(&["--dev", "--config", path.to_str().unwrap()], &[]).await;
    assert_eq!(code, Some(2));
    assert!(err.contains("delivery.timeout_ms"), "{err}");
}
