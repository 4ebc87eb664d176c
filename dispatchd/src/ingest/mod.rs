//! Ingest with group commit: route events to their destinations and store
//! them durably, many requests per transaction.
//!
//! Every `POST /events`, `/events/batch` and `/tasks` makes one call,
//! `Ingestor::ingest`, and waits for the commit. Router plugins run first
//! (`routers`); a committer (`commit`) takes whatever has queued up while
//! the previous transaction was committing and writes it all in one
//! transaction, so under load hundreds of requests share one fsync, and
//! when idle a request commits alone, with no added delay. A request is
//! answered only after its own commit. `gate` answers 503 at once while
//! the database is away.
//!
//! Routing (fan-out) happens here, outside the transaction, against a cached
//! subscription snapshot; the store rejects the batch if subscriptions
//! changed since that snapshot, and the batch is routed again. Deliveries
//! the node has free send slots for are created leased to it and handed to
//! its worker after the commit, skipping the claim (`lease`, `Handoff`).

mod commit;
mod gate;
mod lease;
mod routers;

use std::sync::Arc;

use tokio::sync::{Mutex, mpsc, oneshot};

pub use commit::route;
pub use gate::Gate;

use crate::model::{Event, InsertOutcome, NewDelivery};
use crate::plugins::{PluginFailure, Plugins};
use crate::queue::Handoff;
use crate::store::{Store, StoreError};
use commit::{COMMITTERS, Job, commit_loop};

/// One event to store: either fanned out to matching subscriptions, or with
/// its deliveries fixed by the caller (a task's inline destination).
#[derive(Debug, Clone)]
pub struct Submission {
    pub event: Event,
    pub fixed: Option<Vec<NewDelivery>>,
}

/// What became of one submission.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Stored with its deliveries.
    Inserted,
    /// An event with this id (or idempotency key) exists: this one.
    Duplicate(Box<Event>),
    /// A router plugin refused it; nothing was stored.
    Refused(PluginFailure),
    /// Its tenant does not exist (deleted since the request was checked);
    /// nothing was stored.
    NoTenant,
}

#[derive(Clone)]
pub struct Ingestor {
    tx: mpsc::Sender<Job>,
    store: Arc<dyn Store>,
    plugins: Arc<Plugins>,
    gate: Arc<Gate>,
}

impl Ingestor {
    /// Starts the committers. They stop once every `Ingestor` clone is dropped
    /// and the queue is drained. They lease deliveries through `handoff`.
    pub fn start(store: Arc<dyn Store>, plugins: Arc<Plugins>, handoff: Arc<Handoff>) -> Self {
        let (tx, rx) = mpsc::channel::<Job>(4096);
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..COMMITTERS {
            tokio::spawn(commit_loop(store.clone(), rx.clone(), handoff.clone()));
        }
        Self {
            tx,
            store,
            plugins,
            gate: Arc::default(),
        }
    }

    /// Routes the events (router plugins first, when any are configured)
    /// and stores them with their deliveries: one outcome per submission,
    /// in order. A submission a router refused is not stored.
    pub async fn ingest(&self, mut items: Vec<Submission>) -> Result<Vec<Outcome>, StoreError> {
        let refused = self.apply_routers(&mut items).await?;
        let mut out: Vec<Option<Outcome>> = Vec::with_capacity(items.len());
        let mut kept = Vec::with_capacity(items.len());
        for (item, refusal) in items.into_iter().zip(refused) {
            match refusal {
                Some(f) => out.push(Some(Outcome::Refused(f))),
                None => {
                    out.push(None);
                    kept.push(item);
                }
            }
        }
        let mut stored = if kept.is_empty() {
            Vec::new()
        } else {
            self.submit(kept).await?
        }
        .into_iter();
        out.into_iter()
            .map(|o| match o {
                Some(refused) => Ok(refused),
                None => match stored.next() {
                    Some(InsertOutcome::Inserted) => Ok(Outcome::Inserted),
                    Some(InsertOutcome::Duplicate(e)) => Ok(Outcome::Duplicate(e)),
                    Some(InsertOutcome::NoTenant) => Ok(Outcome::NoTenant),
                    None => Err(StoreError::Other(
                        "the store returned fewer outcomes than events".into(),
                    )),
                },
            })
            .collect()
    }

    /// Stores the events and their deliveries; returns one outcome per event.
    async fn submit(&self, items: Vec<Submission>) -> Result<Vec<InsertOutcome>, StoreError> {
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
