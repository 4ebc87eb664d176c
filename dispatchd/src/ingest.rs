//! Ingest with group commit: route events to their destinations and store
//! them durably, many requests per transaction.
//!
//! Every `POST /events`, `/events/batch` and `/tasks` hands its events to
//! `Ingestor::submit` and waits for the commit. A committer takes whatever
//! has queued up while the previous transaction was committing and writes it
//! all in one transaction, so under load hundreds of requests share one
//! fsync, and when idle a request commits alone, with no added delay. A
//! request is answered only after its own commit.
//!
//! Routing (fan-out) happens here, outside the transaction, against a cached
//! subscription snapshot; the store rejects the batch if subscriptions
//! changed since that snapshot, and the batch is routed again.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{Mutex, Notify, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::matching;
use crate::model::{Event, InsertOutcome, NewDelivery, RoutedEvent};
use crate::plugins::{PluginFailure, Plugins, stage};
use crate::store::{Store, StoreError};

/// One event to store: either fanned out to matching subscriptions, or with
/// its deliveries fixed by the caller (a task's inline destination).
#[derive(Debug, Clone)]
pub struct Submission {
    pub event: Event,
    pub fixed: Option<Vec<NewDelivery>>,
}

struct Job {
    items: Vec<Submission>,
    reply: oneshot::Sender<Result<Vec<InsertOutcome>, StoreError>>,
}

/// Most events written in one transaction...
const MAX_ROWS: usize = 2000;
/// ...and most bytes of event data, so a burst of large events does not
/// build one enormous statement.
const MAX_BYTES: usize = 16 * 1024 * 1024;
/// Committers running at once: one commits while the next gathers a batch.
const COMMITTERS: usize = 2;

#[derive(Clone)]
pub struct Ingestor {
    tx: mpsc::Sender<Job>,
    store: Arc<dyn Store>,
    plugins: Arc<Plugins>,
    gate: Arc<Gate>,
}

/// Fails ingest fast while the database is unreachable. `watch` pings the
/// database every 250 ms on a connection of its own (`Store::ping`, 500 ms
/// timeout) and closes the gate when a ping fails (only then: a busy pool
/// or lock contention is not an outage). While it is closed every ingest is
/// answered 503 at once, and requests already waiting on the database give
/// up; the next good ping reopens it.
#[derive(Default)]
pub struct Gate {
    down: AtomicBool,
    changed: Notify,
}

impl Gate {
    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::Acquire)
    }

    fn set(&self, down: bool) {
        if self.down.swap(down, Ordering::AcqRel) != down {
            if down {
                tracing::warn!("database unreachable: ingest answers 503 until it is back");
            } else {
                tracing::info!("database reachable again: ingest resumes");
            }
            self.changed.notify_waiters();
        }
    }

    /// Resolves once the gate is closed.
    async fn closed(&self) {
        loop {
            let changed = self.changed.notified();
            if self.is_down() {
                return;
            }
            changed.await;
        }
    }

    /// Pings the database until shutdown, opening and closing the gate.
    pub async fn watch(self: Arc<Self>, store: Arc<dyn Store>, shutdown: CancellationToken) {
        loop {
            let ok = matches!(
                tokio::time::timeout(Duration::from_millis(500), store.ping()).await,
                Ok(Ok(()))
            );
            self.set(!ok);
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                _ = shutdown.cancelled() => return,
            }
        }
    }
}

impl Ingestor {
    /// Starts the committers. They stop once every `Ingestor` clone is dropped
    /// and the queue is drained.
    pub fn start(store: Arc<dyn Store>, plugins: Arc<Plugins>) -> Self {
        let (tx, rx) = mpsc::channel::<Job>(4096);
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..COMMITTERS {
            tokio::spawn(commit_loop(store.clone(), rx.clone()));
        }
        Self {
            tx,
            store,
            plugins,
            gate: Arc::default(),
        }
    }

    /// Runs the router plugins (if any) over events that fan out by
    /// subscription: each gets its deliveries fixed from the routers'
    /// answer. Returns, per submission, the failure that refuses it; a
    /// refused event must not be submitted.
    ///
    /// Routers see the cached subscriptions. Should they change before the
    /// commit, the routers' choice stands (a delivery to a subscription
    /// deleted meanwhile ends dead), as if the event had come a moment
    /// earlier.
    pub async fn apply_routers(
        &self,
        items: &mut [Submission],
    ) -> Result<Vec<Option<PluginFailure>>, StoreError> {
        let mut refused = vec![None; items.len()];
        if !self.plugins.has_routers() {
            return Ok(refused);
        }
        if self.gate.is_down() {
            return Err(StoreError::Unavailable("database unreachable".into()));
        }
        let snap = self.store.subscriptions().await?;
        let subs = &snap.subscriptions;
        let open: Vec<usize> = (0..items.len())
            .filter(|&i| items[i].fixed.is_none())
            .collect();
        let work = open
            .iter()
            .map(|&i| {
                let e = &items[i].event;
                let dests = matching::select(subs, &e.event_type)
                    .map(stage::destination_of)
                    .collect();
                (stage::event_of(e), dests)
            })
            .collect();
        let answers = self.plugins.route_many(work).await;
        for (i, answer) in open.into_iter().zip(answers) {
            match answer.and_then(|dests| {
                stage::deliveries_from(subs, dests).map_err(|m| PluginFailure {
                    plugin: self.plugins.last_router().to_string(),
                    message: m,
                })
            }) {
                Ok(deliveries) => items[i].fixed = Some(deliveries),
                Err(f) => refused[i] = Some(f),
            }
        }
        Ok(refused)
    }

    /// Stores the events and their deliveries; returns one outcome per event.
    pub async fn submit(&self, items: Vec<Submission>) -> Result<Vec<InsertOutcome>, StoreError> {
        if self.gate.is_down() {
            return Err(StoreError::Unavailable("database unreachable".into()));
        }
        tokio::select! {
            result = self.commit(items) => result,
            // Only the pinger closes the gate, when the database does not
            // answer; a commit waiting then would fail anyway. Should it
            // land after all, the producer's retry is a duplicate when the
            // event has an id or Idempotency-Key, as a 503 promises nothing.
            _ = self.gate.closed() => Err(StoreError::Unavailable("database unreachable".into())),
        }
    }

    /// The gate, for the server to start its watcher.
    pub fn gate(&self) -> Arc<Gate> {
        self.gate.clone()
    }

    async fn commit(&self, items: Vec<Submission>) -> Result<Vec<InsertOutcome>, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Job { items, reply })
            .await
            .map_err(|_| StoreError::Unavailable("shutting down".into()))?;
        rx.await
            .map_err(|_| StoreError::Unavailable("shutting down".into()))?
    }
}

async fn commit_loop(store: Arc<dyn Store>, rx: Arc<Mutex<mpsc::Receiver<Job>>>) {
    loop {
        let jobs = {
            let mut rx = rx.lock().await;
            let Some(first) = rx.recv().await else { return };
            let mut rows = first.items.len();
            let mut bytes = job_bytes(&first);
            let mut jobs = vec![first];
            while rows < MAX_ROWS && bytes < MAX_BYTES {
                match rx.try_recv() {
                    Ok(j) => {
                        rows += j.items.len();
                        bytes += job_bytes(&j);
                        jobs.push(j);
                    }
                    Err(_) => break,
                }
            }
            jobs
        };
        let items: Vec<&Submission> = jobs.iter().flat_map(|j| &j.items).collect();
        let result = commit(store.as_ref(), &items).await;
        let mut offset = 0;
        for job in jobs {
            let n = job.items.len();
            let answer = match &result {
                Ok(outcomes) => Ok(outcomes[offset..offset + n].to_vec()),
                Err(e) => Err(clone_error(e)),
            };
            offset += n;
            let _ = job.reply.send(answer);
        }
    }
}

fn job_bytes(job: &Job) -> usize {
    job.items.iter().map(|s| s.event.data.len()).sum()
}

/// Routes and inserts one group. Rows go to the store sorted by id (a
/// stable sort, so copies of one id keep their order), which makes
/// concurrent groups lock unique keys in the same order; outcomes come back
/// in the callers' order.
async fn commit(
    store: &dyn Store,
    items: &[&Submission],
) -> Result<Vec<InsertOutcome>, StoreError> {
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by(|&a, &b| items[a].event.id.cmp(&items[b].event.id));
    let mut tries = 0;
    let sorted = loop {
        let snap = store.subscriptions().await?;
        let routed: Vec<RoutedEvent> = order
            .iter()
            .map(|&i| {
                let s = items[i];
                RoutedEvent {
                    event: s.event.clone(),
                    deliveries: match &s.fixed {
                        Some(fixed) => fixed.clone(),
                        None => route(&snap.subscriptions, &s.event),
                    },
                }
            })
            .collect();
        match store.insert_events(&routed, snap.version).await {
            Err(StoreError::StaleSubscriptions | StoreError::Contention(_)) if tries < 5 => {
                tries += 1;
                let pause = fastrand::u64(1..=10 * tries);
                tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
            }
            Err(StoreError::StaleSubscriptions) => {
                return Err(StoreError::Unavailable(
                    "subscriptions kept changing during ingest".into(),
                ));
            }
            other => break other?,
        }
    };
    let mut outcomes = vec![InsertOutcome::Inserted; items.len()];
    for (pos, outcome) in order.into_iter().zip(sorted) {
        if outcome == InsertOutcome::Inserted {
            crate::telemetry::events_ingested(items[pos].event.kind.as_str(), 1);
        }
        outcomes[pos] = outcome;
    }
    Ok(outcomes)
}

/// One delivery per active subscription whose patterns match the type.
pub fn route(subscriptions: &[crate::model::Subscription], event: &Event) -> Vec<NewDelivery> {
    matching::select(subscriptions, &event.event_type)
        .map(|s| NewDelivery {
            subscription_id: Some(s.id.clone()),
            inline: Default::default(),
            max_attempts: s.max_attempts,
        })
        .collect()
}

fn clone_error(e: &StoreError) -> StoreError {
    match e {
        StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
        StoreError::Conflict(m) => StoreError::Conflict(m.clone()),
        StoreError::StaleSubscriptions => StoreError::StaleSubscriptions,
        StoreError::Contention(m) => StoreError::Contention(m.clone()),
        StoreError::Other(m) => StoreError::Other(m.clone()),
    }
}
