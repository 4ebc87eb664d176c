//! Leasing at ingest, the committer's side: which of a group's deliveries
//! may be created leased to this node (`mark_leased`), how many of them
//! will be (`keep_leased`: as many as the worker has free slots for, see
//! `queue::Handoff`), and the ones the store leased, rebuilt from the group
//! for the worker (`leased_deliveries`).

use std::collections::HashMap;

use crate::model::{ClaimedDelivery, LeasedDelivery, RoutedEvent, SubscriptionStatus};
use crate::store::SubscriptionSnapshot;

/// Marks every delivery that may be leased at ingest: to an active
/// subscription (per the snapshot the insert is checked against) at its
/// own address, not ordered. A task's, a router's that change the address,
/// and a parked endpoint's are claimed as usual (the store still checks
/// the circuit). Returns how many were marked.
pub(super) fn mark_leased(snap: &SubscriptionSnapshot, routed: &mut [RoutedEvent]) -> usize {
    let mut n = 0;
    for r in routed.iter_mut() {
        let lane = snap.lane(r.event.tenant_id.as_deref());
        for d in &mut r.deliveries {
            d.leased = d.ordering_key.is_none()
                && d.inline == Default::default()
                && d.subscription_id.as_ref().is_some_and(|id| {
                    lane.iter()
                        .any(|s| &s.id == id && s.status == SubscriptionStatus::Active)
                });
            n += usize::from(d.leased);
        }
    }
    n
}

/// Keeps the first `budget` marks (the slots reserved), drops the rest.
pub(super) fn keep_leased(routed: &mut [RoutedEvent], budget: usize) {
    let mut n = 0;
    for d in routed.iter_mut().flat_map(|r| &mut r.deliveries) {
        d.leased &= n < budget;
        n += usize::from(d.leased);
    }
}

/// The deliveries the store created leased, ready to send: each with its
/// event and subscription as this commit routed them (the snapshot the
/// insert was checked against is current, so they are what a claim would
/// read).
pub(super) fn leased_deliveries(
    snap: &SubscriptionSnapshot,
    routed: &[RoutedEvent],
    leased: Vec<LeasedDelivery>,
) -> Vec<ClaimedDelivery> {
    let events: HashMap<&str, &RoutedEvent> =
        routed.iter().map(|r| (r.event.id.as_str(), r)).collect();
    let found = |l: LeasedDelivery| {
        let r = events.get(l.event_id.as_str())?;
        let d = r
            .deliveries
            .iter()
            .find(|d| d.subscription_id.as_deref() == Some(l.subscription_id.as_str()))?;
        let s = snap
            .lane(r.event.tenant_id.as_deref())
            .iter()
            .find(|s| s.id == l.subscription_id)?;
        Some(ClaimedDelivery {
            id: l.token.id,
            run: l.token.run,
            attempt: l.token.attempt,
            claim: l.token.claim,
            max_attempts: i32::try_from(d.max_attempts).unwrap_or(i32::MAX),
            event: r.event.clone(),
            subscription: Some(s.clone()),
            subscription_id: Some(l.subscription_id),
            inline: Default::default(),
        })
    };
    leased
        .into_iter()
        .filter_map(|l| {
            let id = l.token.id;
            let d = found(l);
            if d.is_none() {
                // Not expected: the store leases only what was marked.
                // The lease runs out and the delivery is claimed then.
                tracing::error!(
                    delivery = id,
                    "a delivery leased at ingest was not routed here"
                );
            }
            d
        })
        .collect()
}
