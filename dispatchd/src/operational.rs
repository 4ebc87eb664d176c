//! Operational events: what dispatchd tells subscribers of `dispatch.*`.
//! The outbox (`store::OutboxStore`) records, in the transaction that
//! made it happen, each delivery that died and each endpoint that was
//! disabled or whose circuit opened or closed; this task turns each entry
//! into an ordinary event (source `dispatchd`, the endpoint's tenant),
//! ingests it like any other, and deletes the entry. The path that caused
//! it only wrote one row; the event itself is signed, retried and
//! dead-lettered like every event.
//!
//! No loops: the triggers write nothing for a delivery of an operational
//! event, and a report never goes to the subscription it is about.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::catalogue::builtin;
use crate::ingest::{Ingestor, Outcome, Submission};
use crate::model::{Event, EventKind, OutboxEntry, now_ms};
use crate::store::Store;

/// How often the outbox is read.
pub const POLL: Duration = Duration::from_millis(200);
/// Entries per round.
const BATCH: u32 = 200;

/// Every operational event's id starts so (then the outbox row's number);
/// producers may not use it.
pub const ID_PREFIX: &str = "evt_op_";

/// The source every operational event carries.
pub const SOURCE: &str = "dispatchd";

/// Empties the outbox every `POLL` until `stop`.
pub async fn run(store: Arc<dyn Store>, ingest: Ingestor, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(POLL) => {}
        }
        if let Err(e) = emit(&*store, &ingest).await {
            tracing::debug!(error = %e, "operational events not emitted yet; retrying");
        }
    }
}

/// One round: take waiting entries, ingest them as events, and finish
/// them (deleted). A crash between the two emits them again under the same
/// ids: stored once. Each report goes to the matching subscribers except
/// the subscription it is about (its own failures never feed it reports);
/// an entry nobody else subscribes to is finished without an event.
async fn emit(store: &dyn Store, ingest: &Ingestor) -> crate::store::Result<()> {
    let batch = store.take_outbox(BATCH).await?;
    if batch.entries.is_empty() {
        return Ok(());
    }
    // Another node may have added a `dispatch.*` subscriber: not the cache.
    let snap = store.current_subscriptions().await?;
    let mut reported = Vec::new();
    let mut items = Vec::new();
    for e in &batch.entries {
        let event = event(e);
        let deliveries: Vec<_> = crate::ingest::route(&snap, &event)
            .into_iter()
            .filter(|d| d.subscription_id.as_deref() != Some(e.subscription_id.as_str()))
            .collect();
        if !deliveries.is_empty() {
            reported.push(e);
            items.push(Submission {
                event,
                fixed: Some(deliveries),
            });
        }
    }
    let outcomes = if items.is_empty() {
        Vec::new()
    } else {
        ingest.ingest(items).await?
    };
    for (entry, outcome) in reported.into_iter().zip(outcomes) {
        match outcome {
            Outcome::Inserted | Outcome::Duplicate(_) => {}
            // The endpoint's tenant was deleted meanwhile: nobody to tell.
            Outcome::NoTenant => {
                tracing::debug!(
                    seq = entry.seq,
                    "operational event for a deleted tenant dropped"
                );
            }
            Outcome::Refused(f) => {
                tracing::warn!(seq = entry.seq, kind = %entry.kind, error = %f, "an operational event was refused");
            }
        }
    }
    store.finish_outbox(batch).await
}

/// The event an entry becomes; its id derives from the entry's place.
fn event(e: &OutboxEntry) -> Event {
    let data = match e.kind.as_str() {
        builtin::DELIVERY_DEAD => json!({
            "event_id": e.event_id,
            "event_type": e.event_type,
            "subscription_id": e.subscription_id,
            "attempts": e.attempts.unwrap_or(0),
            "last_error": e.detail,
        }),
        builtin::ENDPOINT_DISABLED => json!({
            "subscription_id": e.subscription_id,
            "reason": crate::store::disabled_reason(e.detail.as_deref()),
            "detail": e.detail,
        }),
        builtin::CIRCUIT_OPENED => json!({
            "subscription_id": e.subscription_id,
            "consecutive_failures": e.attempts.unwrap_or(0),
        }),
        _ => json!({"subscription_id": e.subscription_id}),
    };
    Event {
        id: format!("{ID_PREFIX}{}", e.seq),
        kind: EventKind::Event,
        tenant_id: e.tenant_id.clone(),
        channels: Vec::new(),
        ordering_key: None,
        event_type: e.kind.clone(),
        source: Some(SOURCE.to_string()),
        data: data.to_string(),
        idempotency_key: None,
        created_at: now_ms(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the emitter writes satisfies the schemas the catalogue shows.
    #[test]
    fn every_kind_satisfies_its_published_schema() {
        for t in builtin::types() {
            let entry = OutboxEntry {
                seq: 7,
                kind: t.name.clone(),
                subscription_id: "sub_1".into(),
                tenant_id: None,
                event_id: Some("evt_1".into()),
                event_type: Some("order.created".into()),
                attempts: Some(3),
                detail: Some("HTTP 500".into()),
                created_at: 0,
            };
            let e = event(&entry);
            let schema = serde_json::from_str(t.schema.as_deref().unwrap()).unwrap();
            let data = serde_json::from_str(&e.data).unwrap();
            let v = crate::catalogue::compile(&schema).unwrap();
            assert_eq!(
                crate::catalogue::violation(&v, &data, "data"),
                None,
                "{}",
                t.name
            );
            assert_eq!(e.id, "evt_op_7");
        }
    }
}
