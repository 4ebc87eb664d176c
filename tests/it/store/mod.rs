//! The store's behaviour, one suite for both implementations: inserts and
//! idempotency, subscriptions and corrupt rows here; claims under leases,
//! fencing, release, reaping and scheduling in `queue`; pruning, wake-ups,
//! heartbeats and vacuum in `upkeep`.

mod queue;
mod upkeep;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use dispatch_tests::{Backend, TestDb, both_backends};
use dispatchd::circuit::CircuitPolicy;
use dispatchd::ingest::route;
use dispatchd::model::{
    AttemptRecord, ClaimedDelivery, Completion, DeliveryState, Event, EventKind, InsertOutcome,
    NextState, RetryPolicy, RoutedEvent, Subscription, now_ms,
};
use dispatchd::store::prelude::*;
use dispatchd::store::{self, StoreError};

pub(super) const LEASE: Duration = Duration::from_secs(30);
pub(super) const POLICY: CircuitPolicy = CircuitPolicy {
    failure_threshold: 10,
    cooldown_ms: 30_000,
};

pub(super) async fn open(db: &TestDb) -> Arc<dyn Store> {
    store::open(&db.config()).await.expect("open store")
}

/// A fresh store with one subscription, `s1`, to every event type.
pub(super) async fn with_subscription(
    backend: Backend,
    max_attempts: u32,
) -> (TestDb, Arc<dyn Store>) {
    let db = TestDb::new(backend).await;
    let store = open(&db).await;
    store
        .create_subscription(&subscription("s1", &["*"], max_attempts))
        .await
        .unwrap();
    (db, store)
}

pub(super) fn subscription(id: &str, types: &[&str], max_attempts: u32) -> Subscription {
    let now = now_ms();
    Subscription {
        id: id.into(),
        url: format!("http://127.0.0.1:9/{id}"),
        event_types: types.iter().map(|s| s.to_string()).collect(),
        secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
        previous_secret: None,
        previous_secret_expires_at: None,
        headers: BTreeMap::new(),
        rate_limit: None,
        max_attempts,
        retry: RetryPolicy {
            initial_delay_ms: 10,
            multiplier: 2.0,
            max_delay_ms: 100,
        },
        timeout_ms: 1000,
        plugins: Vec::new(),
        tenant_id: None,
        channels: None,
        ordering: dispatchd::model::Ordering::None,
        ordering_on_dead: dispatchd::model::OnDead::Skip,
        egress: Default::default(),
        status: dispatchd::model::SubscriptionStatus::Active,
        created_at: now,
        updated_at: now,
        health: Default::default(),
    }
}

pub(super) fn event(id: &str, event_type: &str, key: Option<&str>) -> Event {
    Event {
        id: id.into(),
        kind: EventKind::Event,
        event_type: event_type.into(),
        source: None,
        data: r#"{"n":1}"#.into(),
        idempotency_key: key.map(str::to_string),
        created_at: now_ms(),
        tenant_id: None,
        channels: Vec::new(),
        ordering_key: None,
    }
}

/// Routes and inserts events against the store's current subscriptions.
pub(super) async fn ingest(store: &dyn Store, events: Vec<Event>) -> Vec<InsertOutcome> {
    let snap = store.subscriptions().await.expect("snapshot");
    let routed: Vec<RoutedEvent> = events
        .into_iter()
        .enumerate()
        .map(|(arrival, e)| RoutedEvent {
            deliveries: route(&snap, &e),
            event: e,
            arrival,
        })
        .collect();
    store
        .insert_events(&routed, snap.version, None)
        .await
        .expect("insert")
        .outcomes
}

pub(super) fn completion(d: &ClaimedDelivery, next: NextState, status: Option<i32>) -> Completion {
    Completion {
        token: d.token(),
        next,
        attempt: AttemptRecord {
            delivery_id: d.id,
            event_id: d.event.id.clone(),
            subscription_id: d.subscription_id.clone(),
            run: d.run,
            attempt: d.attempt,
            url: "http://127.0.0.1:9/x".into(),
            status_code: status,
            error: None,
            duration_ms: 1,
            response_body: None,
            created_at: now_ms(),
        },
        reached_endpoint: true,
        transformed: None,
    }
}

pub(super) async fn state_of(store: &dyn Store, event_id: &str) -> DeliveryState {
    store.event_deliveries(event_id).await.unwrap()[0].state
}

async fn insert_claim_complete(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = open(&db).await;
    store
        .create_subscription(&subscription("s1", &["order.*"], 5))
        .await
        .unwrap();
    let out = ingest(
        store.as_ref(),
        vec![
            event("e1", "order.created", None),
            event("e2", "invoice.paid", None),
        ],
    )
    .await;
    assert_eq!(out, vec![InsertOutcome::Inserted, InsertOutcome::Inserted]);
    assert_eq!(store.event_deliveries("e2").await.unwrap().len(), 0);

    let claimed = store.claim("n1", 10, LEASE).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let d = &claimed[0];
    assert_eq!((d.event.id.as_str(), d.attempt, d.run), ("e1", 1, 1));
    assert_eq!(d.subscription.as_ref().unwrap().id, "s1");
    assert_eq!(d.event.data, r#"{"n":1}"#);
    assert_eq!(
        state_of(store.as_ref(), "e1").await,
        DeliveryState::InFlight
    );
    assert!(
        store.claim("n2", 10, LEASE).await.unwrap().is_empty(),
        "leased work is not claimed twice"
    );

    let changed = store
        .complete(&[completion(d, NextState::Delivered, Some(200))], &POLICY)
        .await
        .unwrap();
    assert_eq!(changed, 1);
    let rec = &store.event_deliveries("e1").await.unwrap()[0];
    assert_eq!(rec.state, DeliveryState::Delivered);
    assert!(rec.delivered_at.is_some());
    let attempts = store.event_attempts("e1").await.unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].status_code, Some(200));
    db.drop_db().await;
}

async fn duplicates_by_id_and_key(backend: Backend) {
    let (db, store) = with_subscription(backend, 5).await;
    let out = ingest(
        store.as_ref(),
        vec![
            event("a", "t.x", Some("k1")),
            event("a", "t.x", None),
            event("b", "t.x", Some("k1")),
        ],
    )
    .await;
    assert_eq!(out[0], InsertOutcome::Inserted);
    assert!(matches!(&out[1], InsertOutcome::Duplicate(e) if e.id == "a"));
    assert!(
        matches!(&out[2], InsertOutcome::Duplicate(e) if e.id == "a"),
        "same idempotency key"
    );
    // A row skipped for its idempotency key shares its id with a later row
    // that is inserted: the outcomes must say which is which.
    let mixed = ingest(
        store.as_ref(),
        vec![event("c", "t.x", Some("k1")), event("c", "t.x", None)],
    )
    .await;
    assert!(
        matches!(&mixed[0], InsertOutcome::Duplicate(_)),
        "{mixed:?}"
    );
    assert_eq!(mixed[1], InsertOutcome::Inserted);
    assert_eq!(store.event_deliveries("c").await.unwrap().len(), 1);
    let again = ingest(store.as_ref(), vec![event("a", "t.x", None)]).await;
    assert!(matches!(&again[0], InsertOutcome::Duplicate(e) if e.id == "a"));
    assert_eq!(store.event_deliveries("a").await.unwrap().len(), 1);
    assert!(
        store
            .get_event("b", EventKind::Event)
            .await
            .unwrap()
            .is_none()
    );
    db.drop_db().await;
}

async fn stale_snapshot_writes_nothing(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = open(&db).await;
    let before = store.subscriptions().await.unwrap();
    store
        .create_subscription(&subscription("s1", &["*"], 5))
        .await
        .unwrap();
    let routed = vec![RoutedEvent {
        event: event("e1", "t.x", None),
        deliveries: Vec::new(),
        arrival: 0,
    }];
    let err = store
        .insert_events(&routed, before.version, None)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::StaleSubscriptions), "{err}");
    assert!(
        store
            .get_event("e1", EventKind::Event)
            .await
            .unwrap()
            .is_none()
    );
    let after = store.subscriptions().await.unwrap();
    assert!(after.version > before.version);
    assert_eq!(after.subscriptions.len(), 1);
    db.drop_db().await;
}

async fn deleting_subscription_drops_waiting_deliveries(backend: Backend) {
    let (db, store) = with_subscription(backend, 5).await;
    ingest(store.as_ref(), vec![event("e1", "t.x", None)]).await;
    // A failed first attempt: the delivery waits for its retry, with history.
    let d = store.claim("n1", 10, LEASE).await.unwrap().pop().unwrap();
    let retry = NextState::Retry { delay_ms: 60_000 };
    store
        .complete(&[completion(&d, retry, Some(500))], &POLICY)
        .await
        .unwrap();
    assert_eq!(db.count_rows("attempts").await, 1);
    assert!(store.delete_subscription("s1").await.unwrap());
    assert_eq!(
        db.count_rows("attempts").await,
        0,
        "its attempts go with it"
    );
    assert!(!store.delete_subscription("s1").await.unwrap());
    assert!(store.event_deliveries("e1").await.unwrap().is_empty());
    assert!(store.claim("n1", 10, LEASE).await.unwrap().is_empty());
    db.drop_db().await;
}

/// A value this version cannot read is an error naming its row, never a
/// default: a subscription whose `plugins` column is corrupt must not be
/// delivered without its transform chain (a redaction plugin would not run).
async fn corrupt_rows_are_errors_that_name_the_row(backend: Backend) {
    let (db, store) = with_subscription(backend, 3).await;
    store
        .create_subscription(&subscription("s2", &["*"], 3))
        .await
        .unwrap();
    ingest(store.as_ref(), vec![event("e1", "order.created", None)]).await;
    let raw = |sql: &'static str| {
        let db = &db;
        async move { db.execute(sql).await }
    };
    raw("UPDATE subscriptions SET plugins = 'not json' WHERE id = 's1'").await;
    let err = store.get_subscription("s1").await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("subscriptions row s1") && msg.contains("plugins"),
        "{msg}"
    );
    // Its delivery is not sent untransformed: it becomes a dead letter whose
    // error names the row, and its neighbour in the claim goes on.
    let claimed = store.claim("n1", 10, LEASE).await.unwrap();
    let ids: Vec<_> = claimed.iter().map(|d| d.subscription_id.clone()).collect();
    assert_eq!(ids, [Some("s2".to_string())]);
    let deliveries = store.event_deliveries("e1").await.unwrap();
    let s1 = deliveries
        .iter()
        .find(|d| d.subscription_id.as_deref() == Some("s1"))
        .unwrap();
    assert_eq!(s1.state, DeliveryState::Dead);
    let why = s1.last_error.as_deref().unwrap_or("");
    assert!(
        why.contains("subscriptions row s1") && why.contains("plugins"),
        "{why}"
    );

    raw("UPDATE subscriptions SET plugins = '[]', status = 'sleeping' WHERE id = 's1'").await;
    let msg = store
        .list_subscriptions(&page(), None)
        .await
        .unwrap_err()
        .to_string();
    assert!(msg.contains("status") && msg.contains("sleeping"), "{msg}");

    raw("UPDATE deliveries SET state = 'lost'").await;
    let msg = store.event_deliveries("e1").await.unwrap_err().to_string();
    assert!(
        msg.contains("deliveries row") && msg.contains("\"lost\""),
        "{msg}"
    );
}

/// A subscription as stored and as claimed prints `***` for its secrets:
/// no log line or panic message can carry one.
async fn secrets_never_show_in_debug(backend: Backend) {
    let (db, store) = with_subscription(backend, 3).await;
    let mut s = store.get_subscription("s1").await.unwrap().unwrap();
    s.previous_secret = Some("whsec_old-secret-still-signing".into());
    store.update_subscription(&s).await.unwrap();
    ingest(store.as_ref(), vec![event("e1", "order.created", None)]).await;
    let stored = store.get_subscription("s1").await.unwrap().unwrap();
    let claimed = store.claim("n1", 10, LEASE).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let shown = format!("{stored:?} {claimed:?}");
    assert!(
        !shown.contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        "{shown}"
    );
    assert!(!shown.contains("old-secret-still-signing"), "{shown}");
    assert_eq!(
        stored.secret.expose(),
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    );
    drop(db);
}

fn page() -> dispatchd::store::Page {
    dispatchd::store::Page {
        after: None,
        limit: 100,
    }
}

both_backends!(
    insert_claim_complete,
    duplicates_by_id_and_key,
    stale_snapshot_writes_nothing,
    deleting_subscription_drops_waiting_deliveries,
    corrupt_rows_are_errors_that_name_the_row,
    secrets_never_show_in_debug,
);
