//! The committers: gather what has queued, route it against the cached
//! subscriptions, and insert it in one transaction.

use std::sync::Arc;

use tokio::sync::{Mutex, mpsc, oneshot};

use super::Submission;
use super::lease::{keep_leased, leasable, leased_deliveries};
use crate::matching;
use crate::model::{Event, InsertOutcome, NewDelivery, RoutedEvent, SubscriptionStatus};
use crate::queue::Handoff;
use crate::store::{Store, StoreError, SubscriptionSnapshot};

pub(super) struct Job {
    pub(super) items: Vec<Submission>,
    pub(super) reply: oneshot::Sender<Result<Vec<InsertOutcome>, StoreError>>,
}

/// Most events written in one transaction...
const MAX_ROWS: usize = 2000;
/// ...and most bytes of event data, so a burst of large events does not
/// build one enormous statement.
const MAX_BYTES: usize = 16 * 1024 * 1024;
/// Committers running at once: one commits while the next gathers a batch.
pub(super) const COMMITTERS: usize = 2;

pub(super) async fn commit_loop(
    store: Arc<dyn Store>,
    rx: Arc<Mutex<mpsc::Receiver<Job>>>,
    handoff: Arc<Handoff>,
) {
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
        let result = commit(store.as_ref(), &items, &handoff).await;
        let mut offset = 0;
        for job in jobs {
            let n = job.items.len();
            let answer = match &result {
                Ok(outcomes) => Ok(outcomes[offset..offset + n].to_vec()),
                Err(e) => Err(e.clone()),
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
/// in the callers' order. As many fanned-out deliveries as the worker has
/// free slots for are leased at ingest and handed over after the commit.
async fn commit(
    store: &dyn Store,
    items: &[&Submission],
    handoff: &Handoff,
) -> Result<Vec<InsertOutcome>, StoreError> {
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by(|&a, &b| items[a].event.id.cmp(&items[b].event.id));
    let mut tries = 0;
    let sorted = loop {
        let snap = store.subscriptions().await?;
        // The snapshot the insert is checked against is the current one
        // (else the store refuses it and this runs again), so a tenant it
        // lacks does not exist: such an event is not stored.
        let known: Vec<bool> = order
            .iter()
            .map(|&i| {
                items[i]
                    .event
                    .tenant_id
                    .as_deref()
                    .is_none_or(|t| snap.tenant(t).is_some())
            })
            .collect();
        let mut routed: Vec<RoutedEvent> = order
            .iter()
            .zip(&known)
            .filter(|(_, k)| **k)
            .map(|(&i, _)| {
                let s = items[i];
                RoutedEvent {
                    arrival: i,
                    event: s.event.clone(),
                    deliveries: match &s.fixed {
                        Some(fixed) => rekeyed(&snap, &s.event, fixed),
                        None => route(&snap, &s.event),
                    },
                }
            })
            .collect();
        let reservation = handoff.reserve(leasable(&routed));
        keep_leased(&mut routed, reservation.len());
        let lessee = (!reservation.is_empty()).then(|| handoff.lessee());
        // Even with nothing to insert, the store checks the version: an
        // unknown tenant is final only against a current snapshot.
        match store.insert_events(&routed, snap.version, lessee).await {
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
            other => {
                let inserted = other?;
                let leased = leased_deliveries(&snap, &routed, inserted.leased);
                reservation.hand(leased).await;
                let mut stored = inserted.outcomes.into_iter();
                break known
                    .iter()
                    .map(|&k| {
                        if k {
                            stored.next().unwrap_or(InsertOutcome::NoTenant)
                        } else {
                            InsertOutcome::NoTenant
                        }
                    })
                    .collect::<Vec<_>>();
            }
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

/// A router's (or a task's) deliveries, each ordering key decided again
/// against the snapshot this commit is checked against: the router ran on
/// an older one, and a subscription switched to or from `per_key` since
/// must be honoured.
fn rekeyed(snap: &SubscriptionSnapshot, event: &Event, fixed: &[NewDelivery]) -> Vec<NewDelivery> {
    let lane = snap.lane(event.tenant_id.as_deref());
    fixed
        .iter()
        .map(|d| {
            let mut d = d.clone();
            if let Some(id) = &d.subscription_id {
                let sub = lane.iter().find(|s| &s.id == id);
                d.ordering_key = sub.and_then(|s| s.ordering_key_for(event));
                d.leased = sub.is_some_and(|s| s.status == SubscriptionStatus::Active)
                    && d.ordering_key.is_none()
                    && d.inline == Default::default();
            }
            d
        })
        .collect()
}

/// One delivery per subscription of the event's tenant (or, for an event
/// without one, per global subscription) whose patterns match its type and
/// whose channels, if it lists any, meet the event's. An event whose tenant
/// was deleted after it was checked finds an empty lane: no deliveries.
pub fn route(snap: &SubscriptionSnapshot, event: &Event) -> Vec<NewDelivery> {
    matching::select(snap.lane(event.tenant_id.as_deref()), event)
        .map(|s| {
            let ordering_key = s.ordering_key_for(event);
            NewDelivery {
                subscription_id: Some(s.id.clone()),
                inline: Default::default(),
                max_attempts: s.max_attempts,
                leased: ordering_key.is_none() && s.status == SubscriptionStatus::Active,
                ordering_key,
            }
        })
        .collect()
}
