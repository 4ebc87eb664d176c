//! The queue's rules on both stores: fencing of stale completions, expired
//! leases, release, concurrent claims, schedules and stored plugin output.

use std::collections::HashSet;
use std::time::Duration;

use dispatch_tests::{Backend, TestDb, both_backends, eventually};
use dispatchd::model::{
    ClaimedDelivery, DeliveryState, Event, InlineDestination, Lessee, NextState, SubscriptionStatus,
};
use dispatchd::store::prelude::*;

use super::*;

/// Deliveries created leased at ingest are leases like a claim's: in
/// flight for their node only, fenced, completed by their token, and
/// handed back when the lease runs out. A parked endpoint's delivery is
/// not leased whatever the committer marked.
async fn leased_at_ingest(backend: Backend) {
    let (db, store) = with_subscription(backend, 5).await;
    store
        .create_subscription(&subscription("s2", &["*"], 5))
        .await
        .unwrap();
    store
        .set_status("s2", SubscriptionStatus::Paused, None)
        .await
        .unwrap();
    let snap = store.subscriptions().await.unwrap();
    let mut routed = Vec::new();
    for (arrival, id) in ["e1", "e2"].into_iter().enumerate() {
        let e = event(id, "t.x", None);
        let mut deliveries = route(&snap, &e);
        assert_eq!(deliveries.len(), 2, "s1 and s2 match");
        // e1's deliveries are marked, e2's are not.
        for d in &mut deliveries {
            d.leased = id == "e1";
        }
        routed.push(RoutedEvent {
            event: e,
            deliveries,
            arrival,
        });
    }
    let lessee = Lessee {
        node: "n1",
        lease_ms: 50,
    };
    let inserted = store
        .insert_events(&routed, snap.version, Some(lessee))
        .await
        .unwrap();
    assert_eq!(inserted.outcomes, vec![InsertOutcome::Inserted; 2]);
    assert_eq!(inserted.leased.len(), 1, "{:?}", inserted.leased);
    let l = &inserted.leased[0];
    assert_eq!(
        (l.event_id.as_str(), l.subscription_id.as_str()),
        ("e1", "s1")
    );
    assert_eq!((l.token.run, l.token.attempt, l.token.claim), (1, 1, 1));
    let states = |id: &'static str| {
        let store = store.clone();
        async move {
            let mut v: Vec<(String, DeliveryState)> = store
                .event_deliveries(id)
                .await
                .unwrap()
                .into_iter()
                .map(|d| (d.subscription_id.unwrap(), d.state))
                .collect();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            v
        }
    };
    assert_eq!(
        states("e1").await,
        vec![
            ("s1".into(), DeliveryState::InFlight),
            ("s2".into(), DeliveryState::Paused)
        ]
    );
    assert_eq!(
        states("e2").await,
        vec![
            ("s1".into(), DeliveryState::Pending),
            ("s2".into(), DeliveryState::Paused)
        ]
    );
    // A claim takes the unleased delivery only.
    let claimed = store.claim("n2", 10, LEASE).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].event.id, "e2");

    // The lease runs out: the reaper hands it back, and the next claim
    // fences the first holder's outcome off.
    reap_one(store.as_ref()).await;
    let again = store.claim("n2", 10, LEASE).await.unwrap().remove(0);
    assert_eq!(
        (again.event.id.as_str(), again.attempt, again.claim),
        ("e1", 2, 2)
    );
    let mut first = again.clone();
    (first.attempt, first.claim) = (l.token.attempt, l.token.claim);
    let stale = delivered(store.as_ref(), &first).await;
    assert_eq!(stale, 0, "the first lease's outcome is fenced off");
    let done = delivered(store.as_ref(), &again).await;
    assert_eq!(done, 1);
    assert_eq!(
        states("e1").await[0],
        ("s1".into(), DeliveryState::Delivered)
    );
    db.drop_db().await;
}

/// Waits (up to 5 s) until the reaper hands one expired lease back.
async fn reap_one(store: &dyn Store) {
    let reaped = eventually(Duration::from_secs(5), || async {
        store.reap_expired_leases().await.unwrap() == 1
    })
    .await;
    assert!(reaped, "an expired lease was reaped");
}

/// Reports `d` delivered; returns how many deliveries changed state.
async fn delivered(store: &dyn Store, d: &ClaimedDelivery) -> u64 {
    store
        .complete(&[completion(d, NextState::Delivered, Some(200))], &POLICY)
        .await
        .unwrap()
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
    reap_one(store.as_ref()).await;
    let second = store.claim("n2", 1, LEASE).await.unwrap().remove(0);
    assert_eq!(second.attempt, 2);

    // n1 finally reports: its outcome must not overwrite n2's claim.
    let stale = delivered(store.as_ref(), &first).await;
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
    reap_one(store.as_ref()).await;
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

/// A dead node's claim comes back at once without using up an attempt (it
/// is given one more), its late outcome is fenced off, and a delivery that
/// keeps killing its node ends dead after three free hand-backs.
async fn dead_nodes_deliveries_come_back_fenced_and_bounded(backend: Backend) {
    const TIMEOUT: Duration = Duration::from_millis(50);
    let (db, store) = with_subscription(backend, 2).await;
    ingest(store.as_ref(), vec![event("e1", "t.x", None)]).await;
    let hand_back = || async {
        // The dead node's heartbeat and claim age past the timeout.
        tokio::time::sleep(TIMEOUT * 2).await;
        store.heartbeat("live", TIMEOUT).await.unwrap();
        store.return_orphaned_leases("live", TIMEOUT).await.unwrap()
    };
    store.heartbeat("dead", TIMEOUT).await.unwrap();
    let lost = store.claim("dead", 1, LEASE).await.unwrap().remove(0);
    assert_eq!(hand_back().await, 1);
    let rec = &store.event_deliveries("e1").await.unwrap()[0];
    assert_eq!(
        (rec.state, rec.attempts, rec.max_attempts),
        (DeliveryState::Scheduled, 1, 3),
        "no attempt used up: one more given"
    );
    // The live node claims it with a new attempt number; the dead node's
    // late outcome changes nothing.
    let live = eventually_claim(store.as_ref()).await;
    assert_eq!((live.attempt, live.claim), (2, 2));
    let late = completion(&lost, NextState::Delivered, Some(200));
    assert_eq!(store.complete(&[late], &POLICY).await.unwrap(), 0);
    let rec = &store.event_deliveries("e1").await.unwrap()[0];
    assert_eq!(rec.state, DeliveryState::InFlight);
    // Its node dies four more times: the fourth and later hand-backs use
    // the attempt, and the delivery ends dead.
    store.release(&[(live.token(), 0)]).await.unwrap();
    for _ in 0..4 {
        store.heartbeat("dead", TIMEOUT).await.unwrap();
        assert_eq!(store.claim("dead", 1, LEASE).await.unwrap().len(), 1);
        assert_eq!(hand_back().await, 1);
    }
    let rec = &store.event_deliveries("e1").await.unwrap()[0];
    assert_eq!(rec.state, DeliveryState::Dead, "{rec:?}");
    let why = rec.last_error.as_deref().unwrap_or("");
    assert!(why.contains("past the third"), "{why}");
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

/// PostgreSQL: the store's sessions plan without JIT, whatever the
/// database asks for. With a backlog, the claim's cost estimate passes
/// `jit_above_cost`, and compiling the statement took ~170 ms of the
/// database's CPU per claim, far more than running it: long runs decayed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_sessions_run_without_jit() {
    use sqlx::Connection;
    if !dispatch_tests::postgres_available().await {
        return;
    }
    let db = TestDb::new(Backend::Postgres).await;
    let mut admin = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let name: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&mut admin)
        .await
        .unwrap();
    // The database JITs every statement for its sessions unless told not to.
    for setting in ["jit = on", "jit_above_cost = 0"] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "ALTER DATABASE \"{name}\" SET {setting}"
        )))
        .execute(&mut admin)
        .await
        .unwrap();
    }
    let mut fresh = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let asked: String = sqlx::query_scalar("SHOW jit_above_cost")
        .fetch_one(&mut fresh)
        .await
        .unwrap();
    assert_eq!(asked, "0", "the database setting took");
    let store = dispatchd::store::PgStore::connect(&db.config())
        .await
        .unwrap();
    for _ in 0..3 {
        let jit: String = sqlx::query_scalar("SHOW jit")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(jit, "off");
    }
    drop((admin, fresh, store));
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

/// A delivered attempt is written on its delivery row, not as a row of
/// `attempts`; failed attempts still are. Every reader shows both the
/// same: an event's attempts (in order, each field as completed), the
/// live tail (one id sequence for both kinds) and the figures.
async fn a_success_is_kept_on_its_delivery(backend: Backend) {
    let (db, store) = with_subscription(backend, 5).await;
    let since = now_ms() - 1000;
    ingest(
        store.as_ref(),
        vec![event("e1", "t.x", None), event("e2", "t.x", None)],
    )
    .await;
    let claimed = store.claim("n1", 10, LEASE).await.unwrap();
    let by = |id: &str| claimed.iter().find(|d| d.event.id == id).unwrap();
    let mut ok = completion(by("e1"), NextState::Delivered, Some(200));
    ok.attempt.duration_ms = 7;
    ok.attempt.response_body = Some("thanks".into());
    let failed = completion(by("e2"), NextState::Retry { delay_ms: 0 }, Some(500));
    assert_eq!(
        store
            .complete(&[ok.clone(), failed.clone()], &POLICY)
            .await
            .unwrap(),
        2
    );
    let again = store.claim("n1", 10, LEASE).await.unwrap().remove(0);
    assert_eq!((again.event.id.as_str(), again.attempt), ("e2", 2));
    let second = completion(&again, NextState::Delivered, Some(204));
    assert_eq!(delivered_with(store.as_ref(), &second).await, 1);
    assert_eq!(
        db.count_rows("attempts").await,
        1,
        "only the failure is a row"
    );

    assert_eq!(
        store.event_attempts("e1").await.unwrap(),
        vec![ok.attempt.clone()]
    );
    assert_eq!(
        store.event_attempts("e2").await.unwrap(),
        vec![failed.attempt.clone(), second.attempt.clone()]
    );

    // A failure after them takes the next id of the one sequence.
    ingest(store.as_ref(), vec![event("e3", "t.x", None)]).await;
    let third = store.claim("n1", 10, LEASE).await.unwrap().remove(0);
    let late = completion(&third, NextState::Retry { delay_ms: 60_000 }, Some(503));
    assert_eq!(store.complete(&[late], &POLICY).await.unwrap(), 1);
    let tail = store.attempt_tail(None, 50).await.unwrap();
    let seen: Vec<(&str, i32, Option<i32>)> = tail
        .iter()
        .map(|a| (a.event_id.as_str(), a.attempt, a.status_code))
        .collect();
    assert_eq!(seen.len(), 4, "{seen:?}");
    assert_eq!(
        seen[3],
        ("e3", 1, Some(503)),
        "the newest is last: {seen:?}"
    );
    for want in [
        ("e1", 1, Some(200)),
        ("e2", 1, Some(500)),
        ("e2", 2, Some(204)),
    ] {
        assert!(seen.contains(&want), "{want:?} in {seen:?}");
    }
    let ids: HashSet<i64> = tail.iter().map(|a| a.id).collect();
    assert_eq!(ids.len(), 4, "distinct ids");
    let e1 = tail.iter().find(|a| a.event_id == "e1").unwrap();
    assert_eq!((e1.duration_ms, e1.event_type.as_str()), (7, "t.x"));
    let after = store.attempt_tail(Some(e1.id), 50).await.unwrap();
    assert!(after.iter().all(|a| a.id > e1.id));
    assert_eq!(after.len(), tail.iter().filter(|a| a.id > e1.id).count());

    let figures = store.stats(since).await.unwrap();
    let (ok_n, all_n) = figures
        .attempts
        .iter()
        .fold((0, 0), |(o, n), &(_, ok, all)| (o + ok, n + all));
    assert_eq!((ok_n, all_n), (2, 4));
    assert_eq!(figures.recent, vec![("s1".to_string(), 2, 4)]);
    db.drop_db().await;
}

async fn delivered_with(store: &dyn Store, c: &Completion) -> u64 {
    store
        .complete(std::slice::from_ref(c), &POLICY)
        .await
        .unwrap()
}

both_backends!(
    leased_at_ingest,
    stale_completion_is_fenced,
    expired_last_attempt_is_dead,
    release_hands_work_back,
    dead_nodes_deliveries_come_back_fenced_and_bounded,
    concurrent_claims_never_overlap,
    retries_wait_until_due,
    transformed_requests_are_kept_for_retries,
    a_success_is_kept_on_its_delivery,
);
