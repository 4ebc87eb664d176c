//! Router plugins at ingest: each router sees the destinations an event
//! matched and answers the event's deliveries, or refuses it.

use super::{Ingestor, Submission};
use crate::matching;
use crate::plugins::{PluginFailure, stage};
use crate::store::StoreError;

impl Ingestor {
    /// Runs the router plugins (if any) over events that fan out by
    /// subscription: each gets its deliveries fixed from the routers'
    /// answer. Returns, per submission, the failure that refuses it; a
    /// refused event must not be submitted.
    ///
    /// Routers see the cached subscriptions. Should they change before the
    /// commit, the routers' choice stands (a delivery to a subscription
    /// deleted meanwhile ends dead), as if the event had come a moment
    /// earlier.
    pub(super) async fn apply_routers(
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
        let open: Vec<usize> = (0..items.len())
            .filter(|&i| items[i].fixed.is_none())
            .collect();
        let work = open
            .iter()
            .map(|&i| {
                let e = &items[i].event;
                let dests = matching::select(snap.lane(e.tenant_id.as_deref()), e)
                    .map(stage::destination_of)
                    .collect();
                (stage::event_of(e), dests)
            })
            .collect();
        let answers = self.plugins.route_many(work).await;
        for (i, answer) in open.into_iter().zip(answers) {
            // A router chooses among the event's own lane: it cannot send
            // one tenant's event to another tenant's subscription.
            let lane = snap.lane(items[i].event.tenant_id.as_deref());
            match answer.and_then(|dests| {
                stage::deliveries_from(lane, &items[i].event, dests).map_err(|m| PluginFailure {
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
}
