//! The events role: ingest is each dialect's own (`postgres::ingest`,
//! `sqlite::ingest`: one batched statement per table), the reads of
//! `GET /events/{id}` and its attempts are the same SQL in both.

use async_trait::async_trait;

use super::rows::{self, AttemptRow, DeliveryRow, EventRow};
use super::{Backend, Result, ordering, plan, postgres, sql, sqlite};
use crate::model::{
    AttemptRecord, DeliveryRecord, Event, EventKind, Inserted, Lessee, RoutedEvent,
};

/// Events, tasks and what happened to them.
#[async_trait]
pub trait EventStore: Backend {
    /// Inserts events and their deliveries in one transaction, unless the
    /// subscriptions changed since `routed_at_version` was read, in which case
    /// nothing is written and `StaleSubscriptions` is returned. Duplicate ids
    /// or idempotency keys are not inserted; the stored event is returned.
    /// A delivery to a parked endpoint is created `paused`. A delivery
    /// marked `leased` is created leased to `lessee` (as a claim would
    /// lease it: attempt 1, claim 1) unless it is created parked or held;
    /// those are returned. Wakes the queue's workers (here and on other
    /// nodes) on success when any delivery was created unleased.
    async fn insert_events(
        &self,
        events: &[RoutedEvent],
        routed_at_version: i64,
        lessee: Option<Lessee<'_>>,
    ) -> Result<Inserted> {
        let mut tx = self.writes().begin(self.work()).await?;
        let result = on!(
            tx,
            pg => |c| postgres::ingest::insert_events(c, events, routed_at_version).await,
            sqlite => |c| sqlite::ingest::insert_events(c, events, routed_at_version).await,
        );
        let fresh = match result {
            Ok(x) => x,
            Err(e) => {
                // The version moved (or the insert failed): nothing is
                // written, and the next snapshot is read afresh.
                drop(tx);
                self.cache().invalidate();
                return Err(e);
            }
        };
        // Ordered deliveries take their numbers under their key rows'
        // locks, held to the commit: the group's place in each line is
        // the order of the commits.
        let lines = plan::lines(events, &fresh);
        let counts = lines
            .iter()
            .map(|(line, picks)| (line.clone(), i64::try_from(picks.len()).unwrap_or(i64::MAX)))
            .collect();
        let first = ordering::reserve(&mut tx, &counts).await?;
        let seqs = plan::sequence(&lines, &first);
        let (wake, leased) = on!(
            tx,
            pg => |c| postgres::ingest::insert_deliveries(c, events, &fresh, &seqs, lessee).await?,
            sqlite => |c| sqlite::ingest::insert_deliveries(c, events, &fresh, &seqs, lessee).await?,
        );
        if !lines.is_empty() {
            let lines: Vec<_> = lines.into_keys().collect();
            ordering::admit(&mut tx, &lines).await?;
        }
        // The events not inserted: their stored copies, by id or key.
        let (ids, keys) = plan::duplicates(events, &fresh);
        let existing: Vec<EventRow> = if ids.is_empty() {
            Vec::new()
        } else {
            on!(
                tx,
                pg => |c|
                    sqlx::query_as(
                        "SELECT * FROM events WHERE id = ANY($1) OR idempotency_key = ANY($2)"
                    )
                    .bind(&ids)
                    .bind(&keys)
                    .fetch_all(&mut **c)
                    .await?,
                sqlite => |c|
                    sqlx::query_as(
                        "SELECT * FROM events WHERE id IN (SELECT value FROM json_each($1)) \
                     OR idempotency_key IN (SELECT value FROM json_each($2))"
                    )
                    .bind(rows::to_json(&ids))
                    .bind(rows::to_json(&keys))
                    .fetch_all(&mut **c)
                    .await?,
            )
        };
        let outcomes = plan::outcomes(events, &fresh, &rows::all(existing)?)?;
        if wake {
            tx.wake().await?;
        }
        tx.commit().await?;
        Ok(Inserted { outcomes, leased })
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
