//! The events role: ingest is each dialect's own (`postgres::ingest`,
//! `sqlite::ingest`: one batched statement per table), the reads of
//! `GET /events/{id}` and its attempts are the same SQL in both.

use async_trait::async_trait;

use super::rows::{self, AttemptRow, DeliveryRow, EventRow};
use super::{Backend, Result, postgres, sql, sqlite};
use crate::model::{AttemptRecord, DeliveryRecord, Event, EventKind, InsertOutcome, RoutedEvent};

/// Events, tasks and what happened to them.
#[async_trait]
pub trait EventStore: Backend {
    /// Inserts events and their deliveries in one transaction, unless the
    /// subscriptions changed since `routed_at_version` was read, in which case
    /// nothing is written and `StaleSubscriptions` is returned. Duplicate ids
    /// or idempotency keys are not inserted; the stored event is returned.
    /// A delivery to a parked endpoint is created `paused`. Wakes the
    /// queue's workers (here and on other nodes) on success.
    async fn insert_events(
        &self,
        events: &[RoutedEvent],
        routed_at_version: i64,
    ) -> Result<Vec<InsertOutcome>> {
        let mut tx = self.writes().begin(self.work()).await?;
        let result = on!(
            tx,
            pg | c | postgres::ingest::insert(c, events, routed_at_version).await,
            sqlite | c | sqlite::ingest::insert(c, events, routed_at_version).await,
        );
        match result {
            Ok((outcomes, wake)) => {
                if wake {
                    tx.wake().await?;
                }
                tx.commit().await?;
                Ok(outcomes)
            }
            Err(e) => {
                // The version moved (or the insert failed): nothing is
                // written, and the next snapshot is read afresh.
                drop(tx);
                self.cache().invalidate();
                Err(e)
            }
        }
    }

    async fn get_event(&self, id: &str, kind: EventKind) -> Result<Option<Event>> {
        let row: Option<EventRow> = on!(self.reads(), |p| sqlx::query_as(sql::EVENT)
            .bind(id)
            .bind(kind.as_str())
            .fetch_optional(p)
            .await?);
        row.map(Event::try_from).transpose()
    }

    async fn event_deliveries(&self, event_id: &str) -> Result<Vec<DeliveryRecord>> {
        let found: Vec<DeliveryRow> = on!(self.reads(), |p| sqlx::query_as(sql::EVENT_DELIVERIES)
            .bind(event_id)
            .fetch_all(p)
            .await?);
        rows::all(found)
    }

    async fn event_attempts(&self, event_id: &str) -> Result<Vec<AttemptRecord>> {
        let found: Vec<AttemptRow> = on!(self.reads(), |p| sqlx::query_as(sql::EVENT_ATTEMPTS)
            .bind(event_id)
            .fetch_all(p)
            .await?);
        rows::all(found)
    }
}
