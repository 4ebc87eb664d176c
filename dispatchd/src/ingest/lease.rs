//! Leasing at ingest, the committer's side: which of a group's deliveries
//! routing marked as leasable (`leasable`), how many of them will be
//! leased to this node (`keep_leased`: as many as the worker has free
//! slots for, see `queue::Handoff`), and the ones the store leased, rebuilt from the group
//! for the worker (`leased_deliveries`).

use std::collections::HashMap;

use crate::model::{ClaimedDelivery, LeasedDelivery, RoutedEvent};
use crate::store::SubscriptionSnapshot;

/// How many of the group's deliveries routing marked as leasable: to an
/// active subscription (per the snapshot the insert is checked against)
/// at its own address, not ordered. A task's, a router's that change the
/// address, and a parked endpoint's are claimed as usual (the store still
/// checks the circuit).
pub(super) fn leasable(routed: &[RoutedEvent]) -> usize {
    routed
        .iter()
        .flat_map(|r| &r.deliveries)
        .filter(|d| d.leased)
        .count()
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
        // A lane is sorted by id.
        let lane = snap.lane(r.event.tenant_id.as_deref());
        let s = lane
            .binary_search_by(|s| s.id.as_str().cmp(l.subscription_id.as_str()))
            .ok()
            .map(|i| &lane[i])?;
        Some(ClaimedDelivery {
            id: l.token.id,
            run: l.token.run,
            attempt: l.token.attempt,
            claim: l.token.claim,
            max_attempts: l.max_attempts,
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
