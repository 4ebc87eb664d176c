//! The dead-letter role, written once: the filter (`dead_filter!`), the
//! list and the replay are the same SQL in both dialects; a selection by
//! ids is `ANY($1)` on PostgreSQL and `json_each` on SQLite, one statement
//! either way; a purge on PostgreSQL deletes the attempts in the same
//! statement (SQLite's foreign keys cascade).

use async_trait::async_trait;

use super::rows::{self, DeadRow};
use super::{Backend, Result, ordering, sql};
use crate::model::{DeadFilter, DeadLetter, DeadSelection};

/// Dead letters: list, replay, purge.
#[async_trait]
pub trait DeadLetterStore: Backend {
    /// Dead letters matching `filter`, by delivery id, after `after`.
    async fn dead_letters(
        &self,
        filter: &DeadFilter,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Vec<DeadLetter>> {
        let found: Vec<DeadRow> = on!(self.reads(), |p| sqlx::query_as(sql::DEAD_LETTERS)
            .bind(&filter.subscription_id)
            .bind(&filter.event_type)
            .bind(filter.since)
            .bind(filter.until)
            .bind(&filter.tenant_id)
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(p)
            .await?);
        rows::all(found)
    }

    /// Gives dead letters a fresh run of attempts (the old attempts stay,
    /// under the previous run number). Returns how many.
    async fn replay_dead(&self, selection: &DeadSelection) -> Result<u64> {
        let mut tx = self.writes().begin(self.work()).await?;
        let now = tx.now().await?;
        let replayed: Vec<Option<i64>> = match selection {
            DeadSelection::Ids(ids, tenant) => on!(
                tx,
                pg => |c|
                    sqlx::query_scalar(concat!(
                        replay_set!("$2"),
                        "d.state = 'dead' AND d.id = ANY($1) AND ",
                        of_tenant!("$3"),
                        replayed!()
                    ))
                    .bind(ids)
                    .bind(now)
                    .bind(tenant)
                    .fetch_all(&mut **c)
                    .await?,
                sqlite => |c|
                    sqlx::query_scalar(concat!(
                        replay_set!("$2"),
                        "d.state = 'dead' AND d.id IN (SELECT value FROM json_each($1)) AND ",
                        of_tenant!("$3"),
                        replayed!()
                    ))
                    .bind(rows::to_json(ids))
                    .bind(now)
                    .bind(tenant)
                    .fetch_all(&mut **c)
                    .await?,
            ),
            DeadSelection::Filter(f) => on!(tx, |c| sqlx::query_scalar(sql::REPLAY_FILTER)
                .bind(&f.subscription_id)
                .bind(&f.event_type)
                .bind(f.since)
                .bind(f.until)
                .bind(&f.tenant_id)
                .bind(now)
                .fetch_all(&mut **c)
                .await?),
        };
        let n = replayed.len() as u64;
        // An ordered dead letter rejoins its key's line (see
        // `ordering::requeue`).
        let ordered: Vec<i64> = replayed.into_iter().flatten().collect();
        if !ordered.is_empty() {
            ordering::requeue(&mut tx, &ordered).await?;
        }
        if n > 0 {
            tx.wake().await?;
        }
        tx.commit().await?;
        Ok(n)
    }

    /// Deletes dead letters and their attempts. Returns how many.
    async fn purge_dead(&self, selection: &DeadSelection) -> Result<u64> {
        let mut tx = self.writes().begin(self.work()).await?;
        let n: i64 = match selection {
            DeadSelection::Ids(ids, tenant) => on!(
                tx,
                pg => |c|
                    sqlx::query_scalar(delete_with_attempts!(
                        "DELETE FROM deliveries d WHERE d.state = 'dead' AND d.id = ANY($1) AND ",
                        of_tenant!("$2")
                    ))
                    .bind(ids)
                    .bind(tenant)
                    .fetch_one(&mut **c)
                    .await?,
                sqlite => |c|
                    sqlx::query(concat!(
                        "DELETE FROM deliveries AS d WHERE d.state = 'dead' \
                         AND d.id IN (SELECT value FROM json_each($1)) AND ",
                        of_tenant!("$2")
                    ))
                    .bind(rows::to_json(ids))
                    .bind(tenant)
                    .execute(&mut **c)
                    .await?
                    .rows_affected()
                    .try_into()
                    .unwrap_or(i64::MAX),
            ),
            DeadSelection::Filter(f) => on!(
                tx,
                pg => |c|
                    sqlx::query_scalar(delete_with_attempts!(
                        "DELETE FROM deliveries d WHERE ",
                        dead_filter!()
                    ))
                    .bind(&f.subscription_id)
                    .bind(&f.event_type)
                    .bind(f.since)
                    .bind(f.until)
                    .bind(&f.tenant_id)
                    .fetch_one(&mut **c)
                    .await?,
                sqlite => |c|
                    sqlx::query(concat!(
                        "DELETE FROM deliveries AS d WHERE ",
                        dead_filter!()
                    ))
                    .bind(&f.subscription_id)
                    .bind(&f.event_type)
                    .bind(f.since)
                    .bind(f.until)
                    .bind(&f.tenant_id)
                    .execute(&mut **c)
                    .await?
                    .rows_affected()
                    .try_into()
                    .unwrap_or(i64::MAX),
            ),
        };
        // A key stopped by a dead head that is gone goes on.
        if n > 0 {
            ordering::after_purge(&mut tx).await?;
        }
        tx.commit().await?;
        Ok(u64::try_from(n).unwrap_or_default())
    }
}
