//! Leasing at ingest, the committer's side: which of a group's deliveries
//! may be created leased to this node (`mark_leased`, as many as the
//! worker has free slots for: `queue::Handoff`), and the deliveries the
//! store leased, rebuilt from the group for the worker (`leased_deliveries`).

use std::collections::HashMap;

use crate::model::{ClaimedDelivery, LeasedDelivery, RoutedEvent};
use crate::store::SubscriptionSnapshot;

/// Marks the first `budget` deliveries that may be leased at ingest (to
/// a subscription at its own address, not ordered; a task's, and a
/// router's that change the address, are claimed as usual) and unmarks
/// the rest; returns how many could be.
pub(super) fn mark_leased(routed: &mut [RoutedEvent], budget: usize) -> usize {
    let mut n = 0;
    for r in routed.iter_mut() {
        for d in &mut r.deliveries {
            let may = d.subscription_id.is_some()
                && d.ordering_key.is_none()
                && d.inline == Default::default();
            d.leased = may && n < budget;
            n += usize::from(may);
        }
    }
    n
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
