//! The store's behaviour, one suite for both implementations: inserts and
//! idempotency, claims under leases, fencing, release, reaping, scheduling,
//! pruning and wake-ups.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use dispatch_tests::{Backend, TestDb, both_backends, eventually};
use dispatchd::circuit::CircuitPolicy;
use dispatchd::ingest::route;
use dispatchd::model::{
    AttemptRecord, ClaimedDelivery, Completion, DeliveryState, Event, EventKind, InlineDestination,
    InsertOutcome, NextState, RetryPolicy, RoutedEvent, Subscription, now_ms,
};
use dispatchd::store::{self, Store, StoreError};

const LEASE: Duration = Duration::from_secs(30);
const POLICY: CircuitPolicy = CircuitPolicy {
    failure_threshold: 10,
    cooldown_ms: 30_000,
};

async fn open(db: &TestDb) -> Arc<dyn Store> {
    store::open(&db.config()).await.expect("open store")
}

/// A fresh store with one subscription, `s1`, to every event type.
async fn with_subscription(backend: Backend, max_attempts: u32) -> (TestDb, Arc<dyn Store>) {
    let db = TestDb::new(backend).await;
    let store = open(&db).await;
    store
        .create_subscription(&subscription("s1", &["*"], max_attempts))
        .await
        .unwrap();
    (db, store)
}

fn subscription(id: &str, types: &[&str], max_attempts: u32) -> Subscription {
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
        status: "active".into(),
        created_at: now,
        updated_at: now,
        health: Default::default(),
    }
}

fn event(id: &str, event_type: &str, key: Option<&str>) -> Event {
    Event {
        id: id.into(),
        kind: EventKind::Event,
        event_type: event_type.into(),
        source: None,
        data: r#"{"n":1}"#.into(),
        idempotency_key: key.map(str::to_string),
        created_at: now_ms(),
    }
}

/// Routes and inserts events against the store's current subscriptions.
async fn ingest(store: &dyn Store, events: Vec<Event>) -> Vec<InsertOutcome> {
    let snap = store.subscriptions().await.expect("snapshot");
    let routed: Vec<RoutedEvent> = events
        .into_iter()
        .map(|e| RoutedEvent {
            deliveries: route(&snap.subscriptions, &e),
            event: e,
        })
        .collect();
    store
        .insert_events(&routed, snap.version)
        .await
        .expect("insert")
}

fn completion(d: &ClaimedDelivery, next: NextState, status: Option<i32>) -> Completion {
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

async fn state_of(store: &dyn Store, event_id: &str) -> DeliveryState {
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
    }];
    let err = store
        .insert_events(&routed, before.version)
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

async fn stale_completion_is_fenced(backend: Backend) {
    let (db, store) = with_subscription(backend, 5).await;
    ingest(store.as_ref(), vec![event("e1", "t.x", None)]).await;
    let first = store
        .claim("n1", 1, Duration::from_millis(50))
        .await
        .unwrap()
        .remove(0);
    // The lease runs out; the reaper hands the delivery back; n2 claims it.
    let reaped = eventually(Duration::from_secs(5), || async {
        store.reap_expired_leases().await.unwrap() == 1
    })
    .await;
    assert!(reaped);
    let second = store.claim("n2", 1, LEASE).await.unwrap().remove(0);
    assert_eq!(second.attempt, 2);

    // n1 finally reports: its outcome must not overwrite n2's claim.
    let stale = store
        .complete(
            &[completion(&first, NextState::Delivered, Some(200))],
            &POLICY,
        )
        .await
        .unwrap();
    assert_eq!(stale, 0);
    assert_eq!(
        state_of(store.as_ref(), "e1").await,
        DeliveryState::InFlight
    );
    let fresh = store
        .complete(&[completion(&second, NextState::Dead, Some(500))], &POLICY)
        .await
        .unwrap();
    assert_eq!(fresh, 1);
    assert_eq!(state_of(store.as_ref(), "e1").await, DeliveryState::Dead);
    // Both attempts happened, so both are recorded.
    assert_eq!(store.event_attempts("e1").await.unwrap().len(), 2);
    db.drop_db().await;
}

async fn expired_last_attempt_is_dead(backend: Backend) {
    let (db, store) = with_subscription(backend, 1).await;
    ingest(store.as_ref(), vec![event("e1", "t.x", None)]).await;
    store
        .claim("n1", 1, Duration::from_millis(20))
        .await
        .unwrap();
    let reaped = eventually(Duration::from_secs(5), || async {
        store.reap_expired_leases().await.unwrap() == 1
    })
    .await;
    assert!(reaped);
    let d = &store.event_deliveries("e1").await.unwrap()[0];
    assert_eq!(d.state, DeliveryState::Dead);
    assert!(d.last_error.as_deref().unwrap().contains("lease expired"));
    db.drop_db().await;
}

async fn release_hands_work_back(backend: Backend) {
    let (db, store) = with_subscription(backend, 5).await;
    ingest(store.as_ref(), vec![event("e1", "t.x", None)]).await;
    let d = store.claim("n1", 1, LEASE).await.unwrap().remove(0);
    assert_eq!(store.release(&[(d.token(), 0)]).await.unwrap(), 1);
    let rec = &store.event_deliveries("e1").await.unwrap()[0];
    assert_eq!((rec.state, rec.attempts), (DeliveryState::Pending, 0));
    let again = store.claim("n2", 1, LEASE).await.unwrap();
    assert_eq!(
        again[0].attempt, 1,
        "a released claim does not cost an attempt"
    );
    // Handed back with a delay (a rate-limit slot): not due before it.
    store.release(&[(again[0].token(), 300)]).await.unwrap();
    assert!(store.claim("n2", 1, LEASE).await.unwrap().is_empty());
    let due = eventually(Duration::from_secs(5), || async {
        !store.claim("n2", 1, LEASE).await.unwrap().is_empty()
    })
    .await;
    assert!(due);
    db.drop_db().await;
}

async fn concurrent_claims_never_overlap(backend: Backend) {
    let (db, store) = with_subscription(backend, 5).await;
    let events: Vec<Event> = (0..300)
        .map(|i| event(&format!("e{i}"), "t.x", None))
        .collect();
    ingest(store.as_ref(), events).await;
    // Four claimers, as if four nodes, each on its own store handle.
    let mut tasks = Vec::new();
    for n in 0..4 {
        let s = open(&db).await;
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let got = s.claim(&format!("n{n}"), 25, LEASE).await.unwrap();
                if got.is_empty() {
                    return mine;
                }
                mine.extend(got.into_iter().map(|d| d.id));
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let unique: HashSet<i64> = all.iter().copied().collect();
    assert_eq!(all.len(), 300, "every delivery claimed exactly once");
    assert_eq!(unique.len(), 300);
    db.drop_db().await;
}

async fn retries_wait_until_due(backend: Backend) {
    let (db, store) = with_subscription(backend, 5).await;
    ingest(store.as_ref(), vec![event("e1", "t.x", None)]).await;
    let d = store.claim("n1", 1, LEASE).await.unwrap().remove(0);
    store
        .complete(
            &[completion(
                &d,
                NextState::Retry { delay_ms: 400 },
                Some(500),
            )],
            &POLICY,
        )
        .await
        .unwrap();
    assert_eq!(
        state_of(store.as_ref(), "e1").await,
        DeliveryState::Scheduled
    );
    assert!(
        store.claim("n1", 1, LEASE).await.unwrap().is_empty(),
        "not due yet"
    );
    let due = store.next_due_in_ms().await.unwrap().unwrap();
    assert!((1..=400).contains(&due), "{due}");
    let got = eventually(Duration::from_secs(5), || async {
        !store.claim("n1", 1, LEASE).await.unwrap().is_empty()
    })
    .await;
    assert!(got);
    let rec = &store.event_deliveries("e1").await.unwrap()[0];
    assert_eq!((rec.state, rec.attempts), (DeliveryState::InFlight, 2));
    db.drop_db().await;
}

async fn transformed_requests_are_kept_for_retries(backend: Backend) {
    let (db, store) = with_subscription(backend, 5).await;
    ingest(store.as_ref(), vec![event("e1", "t.x", None)]).await;
    let d = store.claim("n1", 1, LEASE).await.unwrap().remove(0);
    assert_eq!(d.inline, InlineDestination::default(), "nothing stored yet");
    let out = InlineDestination {
        url: Some("https://example.com/other".into()),
        method: Some("PUT".into()),
        headers: Some([("x-a".to_string(), "1".to_string())].into()),
        secret: None,
        body: Some(r#"{"text":"hi"}"#.into()),
        event_type: Some("t.renamed".into()),
    };
    let mut c = completion(&d, NextState::Retry { delay_ms: 0 }, None);
    c.transformed = Some(Box::new(out.clone()));
    c.reached_endpoint = false;
    store.complete(&[c], &POLICY).await.unwrap();
    let again = eventually_claim(store.as_ref()).await;
    assert_eq!(again.inline, out, "the retry resends the stored request");
    assert_eq!(again.attempt, 2);
    // A plugin failure is not the endpoint's: its health is untouched.
    let sub = store.get_subscription("s1").await.unwrap().unwrap();
    assert_eq!(sub.health.consecutive_failures, 0);
    store
        .complete(&[completion(&again, NextState::Dropped, None)], &POLICY)
        .await
        .unwrap();
    assert_eq!(state_of(store.as_ref(), "e1").await, DeliveryState::Dropped);
    assert!(DeliveryState::Dropped.is_final());
    db.drop_db().await;
}

async fn eventually_claim(store: &dyn Store) -> ClaimedDelivery {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(d) = store.claim("n1", 1, LEASE).await.unwrap().pop() {
            return d;
        }
        assert!(std::time::Instant::now() < deadline, "nothing became due");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn prune_keeps_dead_letters(backend: Backend) {
    let (db, store) = with_subscription(backend, 5).await;
    ingest(
        store.as_ref(),
        vec![event("ok", "t.x", None), event("bad", "t.x", None)],
    )
    .await;
    let claimed = store.claim("n1", 10, LEASE).await.unwrap();
    let done: Vec<Completion> = claimed
        .iter()
        .map(|d| {
            let next = if d.event.id == "ok" {
                NextState::Delivered
            } else {
                NextState::Dead
            };
            completion(d, next, Some(200))
        })
        .collect();
    store.complete(&done, &POLICY).await.unwrap();
    assert_eq!(
        store.prune_delivered(now_ms() - 60_000).await.unwrap(),
        0,
        "too recent"
    );
    assert_eq!(store.prune_delivered(now_ms() + 1000).await.unwrap(), 1);
    assert!(
        store
            .get_event("ok", EventKind::Event)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(state_of(store.as_ref(), "bad").await, DeliveryState::Dead);
    assert_eq!(store.event_attempts("bad").await.unwrap().len(), 1);
    // The pruned delivery's attempt went with it; the dead one's stays.
    assert_eq!(db.count_rows("attempts").await, 1);
    assert_eq!(db.count_rows("deliveries").await, 1);
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

async fn new_work_wakes_other_nodes(backend: Backend) {
    let db = TestDb::new(backend).await;
    let writer = open(&db).await;
    // On PostgreSQL a second node hears NOTIFY; SQLite is one process.
    let other = match backend {
        Backend::Postgres => open(&db).await,
        Backend::Sqlite => writer.clone(),
    };
    writer
        .create_subscription(&subscription("s1", &["*"], 5))
        .await
        .unwrap();
    let signal = other.work_signal();
    // Swallow the wake-up that starting to listen produces.
    let _ = tokio::time::timeout(Duration::from_millis(500), signal.notified()).await;
    let waiter = tokio::spawn(async move {
        tokio::time::timeout(Duration::from_secs(5), signal.notified())
            .await
            .is_ok()
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    ingest(writer.as_ref(), vec![event("e1", "t.x", None)]).await;
    assert!(waiter.await.unwrap(), "no wake-up after new work");
    db.drop_db().await;
}

async fn heartbeats_count_live_nodes(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = open(&db).await;
    let ttl = Duration::from_secs(30);
    assert_eq!(store.heartbeat("n1", ttl).await.unwrap(), 1);
    let live = store.heartbeat("n2", ttl).await.unwrap();
    match backend {
        Backend::Postgres => assert_eq!(live, 2, "both nodes share the database"),
        Backend::Sqlite => assert_eq!(live, 1, "one process owns the file"),
    }
    db.drop_db().await;
}

/// Dead row versions left by claims and completions get vacuumed, by one
/// node at a time; SQLite has none to vacuum.
async fn vacuum_takes_dead_rows_one_node_at_a_time(backend: Backend) {
    let (db, store) = with_subscription(backend, 5).await;
    let events = (0..200)
        .map(|i| event(&format!("v{i}"), "t.x", None))
        .collect();
    ingest(store.as_ref(), events).await;
    let claimed = store.claim("n1", 200, LEASE).await.unwrap();
    let done: Vec<Completion> = claimed
        .iter()
        .map(|d| completion(d, NextState::Delivered, Some(200)))
        .collect();
    store.complete(&done, &POLICY).await.unwrap();
    if backend == Backend::Sqlite {
        assert!(store.vacuum(1).await.unwrap().is_empty());
        db.drop_db().await;
        return;
    }
    // Two dead versions per delivery (claim, completion), some of which
    // page pruning may already have taken: count on 100.
    assert!(
        store.vacuum(1_000_000).await.unwrap().is_empty(),
        "below the threshold"
    );
    // While another node holds the vacuum lock, this one leaves it alone.
    let other = open(&db).await;
    let mut holder = <sqlx::PgConnection as sqlx::Connection>::connect(&db.url)
        .await
        .unwrap();
    sqlx::query("SELECT pg_advisory_lock(x'6469737061746368'::int8)")
        .execute(&mut holder)
        .await
        .unwrap();
    // An idle connection flushes its statistics to pg_stat_user_tables
    // within 10 s (PGSTAT_IDLE_INTERVAL); a busy one every second.
    let mut counted = false;
    for _ in 0..150 {
        let n: i64 = sqlx::query_scalar(
            "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'deliveries'",
        )
        .fetch_one(&mut holder)
        .await
        .unwrap();
        if n >= 100 {
            counted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(counted, "dead rows never showed in the statistics");
    assert!(
        other.vacuum(100).await.unwrap().is_empty(),
        "lock held elsewhere"
    );
    drop(holder);
    let mut vacuumed = Vec::new();
    for _ in 0..50 {
        vacuumed = store.vacuum(100).await.unwrap();
        if !vacuumed.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(vacuumed, ["deliveries"]);
    // The rows themselves are untouched.
    assert_eq!(db.count_rows("deliveries").await, 200);
    db.drop_db().await;
}

both_backends!(
    vacuum_takes_dead_rows_one_node_at_a_time,
    heartbeats_count_live_nodes,
    insert_claim_complete,
    duplicates_by_id_and_key,
    stale_snapshot_writes_nothing,
    stale_completion_is_fenced,
    expired_last_attempt_is_dead,
    release_hands_work_back,
    concurrent_claims_never_overlap,
    retries_wait_until_due,
    transformed_requests_are_kept_for_retries,
    prune_keeps_dead_letters,
    deleting_subscription_drops_waiting_deliveries,
    new_work_wakes_other_nodes,
);
