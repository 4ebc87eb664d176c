//! The outbox of operational events. Rows are written by triggers
//! (`migrations/*/0010_catalogue.sql`) in the transaction that killed a
//! delivery or moved an endpoint's circuit or status, so every such change
//! is recorded however it happened and whatever crashes after. The
//! emitter (`operational`) takes a batch, ingests one event per entry and
//! finishes the batch, deleting the entries.
//!
//! On PostgreSQL a batch is taken `FOR UPDATE SKIP LOCKED` in a
//! transaction held until it is finished, so nodes share the outbox rather
//! than each emitting all of it; a node that dies mid-batch lets its rows
//! go with its connection, and the next taker emits them again under the
//! same event ids (stored once). SQLite has one node and one writer: the
//! batch is read, and deleted when finished.

use async_trait::async_trait;

use super::db::{Db, Tx};
use super::{Backend, Result};
use crate::model::OutboxEntry;

const OLDEST: &str = "SELECT * FROM operational_outbox ORDER BY seq LIMIT $1";

/// Entries taken from the outbox, to be finished once emitted.
pub struct OutboxBatch {
    pub entries: Vec<OutboxEntry>,
    /// PostgreSQL: the transaction holding the entries' row locks.
    tx: Option<Tx>,
}

/// The outbox: taken oldest first, deleted once emitted.
#[async_trait]
pub trait OutboxStore: Backend {
    /// Up to `limit` entries no other node holds, oldest first.
    async fn take_outbox(&self, limit: u32) -> Result<OutboxBatch> {
        let limit = i64::from(limit);
        if let Db::Pg(_) = self.writes() {
            let mut tx = self.writes().begin(self.work()).await?;
            let entries: Vec<OutboxEntry> = on!(tx, |c| sqlx::query_as(concat!(
                "SELECT * FROM operational_outbox ORDER BY seq LIMIT $1",
                " FOR UPDATE SKIP LOCKED"
            ))
            .bind(limit)
            .fetch_all(&mut **c)
            .await?);
            if entries.is_empty() {
                tx.rollback().await?;
                return Ok(OutboxBatch { entries, tx: None });
            }
            return Ok(OutboxBatch {
                entries,
                tx: Some(tx),
            });
        }
        let entries = on!(self.reads(), |p| sqlx::query_as(OLDEST)
            .bind(limit)
            .fetch_all(p)
            .await?);
        Ok(OutboxBatch { entries, tx: None })
    }

    /// Deletes a batch's entries, now emitted.
    async fn finish_outbox(&self, batch: OutboxBatch) -> Result<()> {
        let seqs: Vec<i64> = batch.entries.iter().map(|e| e.seq).collect();
        if seqs.is_empty() {
            return Ok(());
        }
        let mut tx = match batch.tx {
            Some(tx) => tx,
            None => self.writes().begin(self.work()).await?,
        };
        on!(
            tx,
            pg => |c| sqlx::query("DELETE FROM operational_outbox WHERE seq = ANY($1)")
                .bind(&seqs)
                .execute(&mut **c)
                .await?
                .rows_affected(),
            sqlite => |c| sqlx::query(
                "DELETE FROM operational_outbox WHERE seq IN (SELECT value FROM json_each($1))"
            )
            .bind(super::rows::to_json(&seqs))
            .execute(&mut **c)
            .await?
            .rows_affected(),
        );
        tx.commit().await
    }
}
