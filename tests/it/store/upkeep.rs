//! Upkeep on both stores: retention keeps dead letters, new work wakes
//! other nodes, heartbeats count live nodes, vacuum takes dead rows.

use std::time::Duration;

use dispatch_tests::{Backend, TestDb, both_backends};
use dispatchd::model::{Completion, DeliveryState, EventKind, NextState, now_ms};

use super::*;

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
    prune_keeps_dead_letters,
    new_work_wakes_other_nodes,
    heartbeats_count_live_nodes,
    vacuum_takes_dead_rows_one_node_at_a_time,
);
