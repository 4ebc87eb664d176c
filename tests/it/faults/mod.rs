//! Faults on purpose (SPEC §3, §10): the real `dispatchd` binary, killed
//! with SIGKILL, stopped with SIGTERM under load, run as two nodes, and a
//! private PostgreSQL cluster (this test's own, on its own port) stopped
//! mid-load. A receiver counts every delivery by event id. Each test is
//! bounded in time and talks only to 127.0.0.1.
//!
//! Hostile receivers (hang, slow drip, 1 GB body, redirect, reset, TLS to a
//! plain port) are in `hostile.rs` and `delivery.rs`; recovery in seconds
//! after a crash, memory through an outage and the cost of watchers are in
//! `recovery`.

mod recovery;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use dispatch_tests::{Binary, PgCluster, Receiver, Reply, TestDb, free_port};
use serde_json::{Value, json};
use tokio::sync::Mutex;

/// Short leases so work held by a killed node comes back within seconds.
const FAST_RECOVERY: &[(&str, &str)] = &[
    ("DISPATCH_QUEUE__LEASE_SECS", "3"),
    ("DISPATCH_DELIVERY__TIMEOUT_MS", "1500"),
    ("DISPATCH_RETENTION__SWEEP_INTERVAL_SECS", "1"),
    ("DISPATCH_SHUTDOWN__GRACE_SECS", "5"),
    ("RUST_LOG", "warn"),
];

/// A PostgreSQL cluster of this test's own, or `None` (with a notice) where
/// none can be made.
pub(super) fn private_postgres() -> Option<(PgCluster, TestDb)> {
    PgCluster::available().then(|| {
        let pg = PgCluster::start();
        let db = TestDb::at_url(&pg.url());
        (pg, db)
    })
}

/// For the two-node test: leases long enough that a slow completion on a
/// loaded machine never lets the other node take a live delivery.
const TWO_NODES: &[(&str, &str)] = &[
    ("DISPATCH_QUEUE__LEASE_SECS", "8"),
    ("DISPATCH_DELIVERY__TIMEOUT_MS", "3000"),
    ("DISPATCH_RETENTION__SWEEP_INTERVAL_SECS", "1"),
    ("RUST_LOG", "warn"),
];

/// In-flight sends per node (the default `queue.max_in_flight`).
pub(super) const MAX_IN_FLIGHT: usize = 256;

/// What a node killed with SIGKILL can have sent without its outcome
/// written: its claims are bounded by `2 × max_in_flight` unwritten
/// outcomes (`queue/mod.rs`), sends in flight and answered ones waiting
/// for the completer's next batch alike. Each may be sent again.
pub(super) const MAX_UNWRITTEN: usize = 2 * MAX_IN_FLIGHT;

pub(super) async fn subscribe(base: &str, url: &str) {
    let r = reqwest::Client::new()
        .post(format!("{base}/subscriptions"))
        .json(&json!({"url": url, "event_types": ["*"],
                      "retry": {"initial_delay_ms": 100, "multiplier": 2.0, "max_delay_ms": 1000},
                      "max_attempts": 50}))
        .send()
        .await
        .expect("create subscription");
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
}

/// Producers: `conns` connections post events `prefix0..prefix{total}`, one
/// at a time, each retried until answered 2xx (through kills and outages).
/// Returns every acknowledged id.
pub(super) struct Producer {
    acked: Arc<Mutex<HashSet<String>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Producer {
    pub(super) fn start(base: &str, prefix: &str, total: usize, conns: usize) -> Self {
        let acked = Arc::new(Mutex::new(HashSet::new()));
        let next = Arc::new(AtomicUsize::new(0));
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let tasks = (0..conns)
            .map(|_| {
                let (acked, next, http) = (acked.clone(), next.clone(), http.clone());
                let url = format!("{base}/events");
                let prefix = prefix.to_string();
                tokio::spawn(async move {
                    loop {
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        if n >= total {
                            return;
                        }
                        let id = format!("{prefix}{n}");
                        let body = json!({"id": id, "type": "fault.test", "data": {"n": n}});
                        loop {
                            match http.post(&url).json(&body).send().await {
                                Ok(r) if r.status().is_success() => break,
                                _ => tokio::time::sleep(Duration::from_millis(50)).await,
                            }
                        }
                        acked.lock().await.insert(id);
                    }
                })
            })
            .collect();
        Producer { acked, tasks }
    }

    pub(super) async fn finish(self, within: Duration) -> HashSet<String> {
        let all = futures_join(self.tasks);
        tokio::time::timeout(within, all)
            .await
            .expect("producers finished in time");
        Arc::try_unwrap(self.acked).unwrap().into_inner()
    }
}

async fn futures_join(tasks: Vec<tokio::task::JoinHandle<()>>) {
    for t in tasks {
        t.await.expect("producer task");
    }
}

/// Deliveries per event id so far.
pub(super) fn counts(rx: &Receiver) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for r in rx.received() {
        *m.entry(r.header("webhook-id").to_string()).or_insert(0) += 1;
    }
    m
}

/// Waits until every id in `acked` reached the receiver; returns the counts.
pub(super) async fn all_delivered(
    rx: &Receiver,
    acked: &HashSet<String>,
    within: Duration,
) -> HashMap<String, usize> {
    let deadline = Instant::now() + within;
    loop {
        let c = counts(rx);
        let missing = acked.iter().filter(|id| !c.contains_key(*id)).count();
        if missing == 0 {
            return c;
        }
        assert!(
            Instant::now() < deadline,
            "{missing} of {} acknowledged events were never delivered",
            acked.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub(super) fn duplicates(c: &HashMap<String, usize>) -> usize {
    c.values().map(|n| n - 1).sum()
}

/// Posts `total` events while killing dispatchd with SIGKILL `kills` times
/// at random moments; every acknowledged event must arrive.
async fn kill_storm(db: &TestDb, total: usize, kills: usize) -> (usize, usize) {
    let rx = Receiver::start().await;
    rx.always(Reply::status(200));
    let port = free_port();
    let mut node = Binary::start_dev_on(db, port, FAST_RECOVERY).await;
    subscribe(&node.base, &rx.url("/hook")).await;
    let producer = Producer::start(&node.base, "k", total, 16);
    for i in 0..kills {
        tokio::time::sleep(Duration::from_millis(fastrand_ms(300, 1200))).await;
        node.kill9().await;
        eprintln!("kill -9 #{}", i + 1);
        tokio::time::sleep(Duration::from_millis(fastrand_ms(50, 300))).await;
        node = Binary::start_dev_on(db, port, FAST_RECOVERY).await;
    }
    let acked = producer.finish(Duration::from_secs(180)).await;
    assert_eq!(acked.len(), total);
    let c = all_delivered(&rx, &acked, Duration::from_secs(120)).await;
    node.terminate();
    assert_eq!(node.wait_exit(Duration::from_secs(15)).await, Some(0));
    (acked.len(), duplicates(&c))
}

pub(super) fn fastrand_ms(lo: u64, hi: u64) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    lo + nanos % (hi - lo)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_storm_on_postgres_loses_nothing_acknowledged() {
    let Some((_pg, db)) = private_postgres() else {
        return;
    };
    let (acked, dups) = kill_storm(&db, 10_000, 5).await;
    println!("kill -9 x5 on PostgreSQL: {acked} acknowledged, all delivered, {dups} duplicates");
    assert!(dups <= 5 * MAX_UNWRITTEN, "{dups} duplicates");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_sqlite_writes_loses_nothing_acknowledged() {
    let db = TestDb::new(dispatch_tests::Backend::Sqlite).await;
    let (acked, dups) = kill_storm(&db, 5_000, 3).await;
    println!("kill -9 x3 on SQLite: {acked} acknowledged, all delivered, {dups} duplicates");
    assert!(dups <= 3 * MAX_UNWRITTEN, "{dups} duplicates");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_answers_503_fast_and_resumes() {
    let Some((pg, db)) = private_postgres() else {
        return;
    };
    let rx = Receiver::start().await;
    rx.always(Reply::status(200));
    let mut node = Binary::start_dev(&db, FAST_RECOVERY).await;
    subscribe(&node.base, &rx.url("/hook")).await;
    let producer = Producer::start(&node.base, "d", 3_000, 4);
    tokio::time::sleep(Duration::from_millis(1500)).await;

    pg.stop_server("fast");
    let down_at = Instant::now();
    let http = reqwest::Client::new();
    let mut probes = 0;
    let mut slowest = Duration::ZERO;
    while down_at.elapsed() < Duration::from_secs(10) {
        let start = Instant::now();
        let r = http
            .post(format!("{}/events", node.base))
            .json(&json!({"type": "fault.probe", "data": {}}))
            .send()
            .await
            .expect("dispatchd answers while the database is down");
        let took = start.elapsed();
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        // The first request may still have been in flight when the server
        // went away; after that, every answer is a fast 503.
        if down_at.elapsed() > Duration::from_millis(500) {
            assert_eq!(status, 503, "{body}");
            assert_eq!(body["error"]["code"], "unavailable", "{body}");
            slowest = slowest.max(took);
            probes += 1;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(probes > 50, "{probes}");
    assert!(
        slowest < Duration::from_millis(100),
        "a 503 took {slowest:?} while the database was down"
    );
    assert!(
        node.child.try_wait().unwrap().is_none(),
        "dispatchd stayed up"
    );

    pg.start_server();
    let back_at = Instant::now();
    loop {
        let r = http
            .post(format!("{}/events", node.base))
            .json(&json!({"type": "fault.probe", "data": {}}))
            .send()
            .await
            .unwrap();
        if r.status() == 202 {
            break;
        }
        assert!(
            back_at.elapsed() < Duration::from_secs(5),
            "ingest did not resume within 5 s of the database's return"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let resumed = back_at.elapsed();
    let acked = producer.finish(Duration::from_secs(120)).await;
    all_delivered(&rx, &acked, Duration::from_secs(60)).await;
    let log = node.log();
    let claim_failures = log.matches("claim failed").count();
    println!(
        "database down 10 s: {probes} probes, slowest 503 {slowest:?}, ingest back {resumed:?} after restart, {claim_failures} claim retries logged, {} events delivered",
        acked.len()
    );
    assert!(
        claim_failures < 100,
        "the worker did not back off: {claim_failures} retries"
    );
    node.terminate();
    assert_eq!(node.wait_exit(Duration::from_secs(15)).await, Some(0));
}

/// `dispatch_deliveries_total{outcome="delivered"}` of one node.
async fn delivered_by(base: &str) -> f64 {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find(|l| l.starts_with("dispatch_deliveries_total{outcome=\"delivered\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_one_postgres() {
    let Some((_pg, db)) = private_postgres() else {
        return;
    };
    let rx = Receiver::start().await;
    rx.always(Reply::status(200));
    let a = Binary::start_dev(&db, TWO_NODES).await;
    let mut b = Binary::start_dev(&db, TWO_NODES).await;
    subscribe(&a.base, &rx.url("/hook")).await;
    let http = reqwest::Client::new();
    let post_batches = |prefix: &'static str, total: usize| {
        let (http, bases) = (http.clone(), [a.base.clone(), b.base.clone()]);
        async move {
            let mut ids = HashSet::new();
            for start in (0..total).step_by(100) {
                let events: Vec<Value> = (start..start + 100)
                    .map(|i| json!({"id": format!("{prefix}{i}"), "type": "fault.two", "data": {"i": i}}))
                    .collect();
                let base = &bases[(start / 100) % 2];
                let r = http
                    .post(format!("{base}/events/batch"))
                    .json(&json!({"events": events}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                ids.extend((start..start + 100).map(|i| format!("{prefix}{i}")));
            }
            ids
        }
    };
    // Both nodes alive: every event exactly once (no delivery claimed by
    // both), and both did part of the work.
    let ids = post_batches("p", 10_000).await;
    let c = all_delivered(&rx, &ids, Duration::from_secs(120)).await;
    let twice = c.values().filter(|n| **n > 1).count();
    assert_eq!(
        twice, 0,
        "{twice} events were delivered twice by two live nodes"
    );
    let (da, dbn) = (delivered_by(&a.base).await, delivered_by(&b.base).await);
    println!("two nodes: node A delivered {da}, node B {dbn} of 10000");
    assert!(da > 0.0 && dbn > 0.0, "both nodes work: {da} / {dbn}");
    assert_eq!(da + dbn, 10_000.0);

    // Kill one mid-run, holding leases (a slow receiver keeps sends in
    // flight): the survivor takes them over once they expire.
    rx.always(Reply::status(200).delay(Duration::from_millis(300)));
    let ids2 = post_batches("q", 5_000).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let killed = Instant::now();
    b.kill9().await;
    let c = all_delivered(&rx, &ids2, Duration::from_secs(120)).await;
    let q: HashMap<String, usize> = c.into_iter().filter(|(k, _)| k.starts_with('q')).collect();
    println!(
        "node B killed mid-run: all 5000 delivered {:?} after the kill, {} duplicates",
        killed.elapsed(),
        duplicates(&q)
    );
    assert!(
        duplicates(&q) <= MAX_UNWRITTEN,
        "{} duplicates",
        duplicates(&q)
    );
    a.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_on_postgres_exits_0_and_loses_nothing() {
    let Some((_pg, db)) = private_postgres() else {
        return;
    };
    let rx = Receiver::start().await;
    // A slowish receiver, so deliveries are in flight at the signal.
    rx.always(Reply::status(200).delay(Duration::from_millis(30)));
    let port = free_port();
    let mut node = Binary::start_dev_on(&db, port, FAST_RECOVERY).await;
    subscribe(&node.base, &rx.url("/hook")).await;
    let producer = Producer::start(&node.base, "g", 3_000, 8);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let signalled = Instant::now();
    node.terminate();
    let code = node.wait_exit(Duration::from_secs(15)).await;
    let took = signalled.elapsed();
    assert_eq!(code, Some(0), "{}", node.log());
    assert!(took < Duration::from_secs(5 + 2), "exit took {took:?}");
    let node = Binary::start_dev_on(&db, port, FAST_RECOVERY).await;
    let acked = producer.finish(Duration::from_secs(120)).await;
    let c = all_delivered(&rx, &acked, Duration::from_secs(60)).await;
    println!(
        "SIGTERM under load: exit 0 after {took:?}; {} acknowledged, all delivered, {} duplicates",
        acked.len(),
        duplicates(&c)
    );
    node.terminate();
}

/// Hostile receivers against the real binary: each costs exactly one
/// attempt with a clear recorded error, while a healthy receiver keeps its
/// pace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_receivers_cost_one_attempt_each() {
    use dispatch_tests::raw_receiver;
    use tokio::io::AsyncWriteExt;
    let db = TestDb::new(dispatch_tests::Backend::Sqlite).await;
    let node = Binary::start_dev(&db, FAST_RECOVERY).await;
    let http = reqwest::Client::new();
    let hang = raw_receiver(|s| async move {
        // Holds the connection open and never answers.
        let _open = s;
        tokio::time::sleep(Duration::from_secs(30)).await;
    })
    .await;
    let drip = raw_receiver(|mut s| async move {
        for b in b"HTTP/1.1 200 OK\r\n\r\n" {
            if s.write_all(&[*b]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    })
    .await;
    let huge = raw_receiver(|mut s| async move {
        let head = "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 1073741824\r\n\r\n";
        if s.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..16 * 1024 {
            if s.write_all(&chunk).await.is_err() {
                return;
            }
        }
    })
    .await;
    // Redirects to itself, forever (if followed).
    let looping = raw_receiver(|mut s| async move {
        let _ = s
            .write_all(b"HTTP/1.1 302 Found\r\nLocation: /hostile\r\nContent-Length: 0\r\n\r\n")
            .await;
    })
    .await;
    let reset = raw_receiver(|s| async move {
        let _ = s.set_zero_linger();
        drop(s);
    })
    .await;
    let plain = Receiver::start().await;
    let tls = format!("https://127.0.0.1:{}/", plain.addr.port());
    let cases = [
        ("hang", hang.as_str(), "timeout"),
        ("drip", drip.as_str(), "timeout"),
        ("huge", huge.as_str(), "500"),
        ("loop", looping.as_str(), "redirect"),
        ("reset", reset.as_str(), ""),
        ("tls", tls.as_str(), "connection"),
    ];
    for (name, url, _) in cases {
        let r = http
            .post(format!("{}/subscriptions", node.base))
            .json(
                &json!({"url": url, "event_types": [format!("hostile.{name}")],
                          "max_attempts": 1, "timeout_ms": 1000}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    let healthy = Receiver::start().await;
    healthy.always(Reply::status(200));
    let r = http
        .post(format!("{}/subscriptions", node.base))
        .json(&json!({"url": healthy.url("/ok"), "event_types": ["healthy"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let started = Instant::now();
    for (name, _, _) in cases {
        let r = http
            .post(format!("{}/events", node.base))
            .json(&json!({"id": format!("evt_{name}"), "type": format!("hostile.{name}"), "data": {}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
    }
    let healthy_events: Vec<Value> = (0..100)
        .map(|i| json!({"id": format!("ok{i}"), "type": "healthy", "data": {}}))
        .collect();
    let r = http
        .post(format!("{}/events/batch", node.base))
        .json(&json!({"events": healthy_events}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    healthy.wait_for(100, Duration::from_secs(10)).await;
    let healthy_took = started.elapsed();
    assert!(
        healthy_took < Duration::from_millis(1000),
        "healthy deliveries waited on hostile ones: {healthy_took:?}"
    );
    for (name, _, expected) in cases {
        let deadline = Instant::now() + Duration::from_secs(20);
        let delivery = loop {
            let ev: Value = http
                .get(format!("{}/events/evt_{name}", node.base))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if ev["status"] == "failed" {
                break ev["deliveries"][0].clone();
            }
            assert!(Instant::now() < deadline, "{name}: {ev}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(delivery["attempts"], 1, "{name}: {delivery}");
        let err = delivery["last_error"].as_str().unwrap_or("");
        assert!(!err.is_empty() && err.contains(expected), "{name}: {err}");
    }
    assert_eq!(plain.count(), 0);
    println!(
        "hostile receivers: 6 cases, one attempt each; 100 healthy deliveries in {healthy_took:?}"
    );
    node.terminate();
}
