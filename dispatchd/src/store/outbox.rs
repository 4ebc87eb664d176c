//! The outbox of operational events. Rows are written by triggers
//! (`migrations/*/0010_catalogue.sql`) in the transaction that killed a
//! delivery or moved an endpoint's circuit or status, so every such change
//! is recorded however it happened and whatever crashes after. The
//! emitter (`operational`) reads them, ingests one event each and deletes
//! them; two nodes reading the same row emit one event, since its id
//! derives from `seq`.

use async_trait::async_trait;

use super::{Backend, Result};
use crate::model::OutboxEntry;

/// The outbox: read oldest first, deleted once emitted.
#[async_trait]
pub trait OutboxStore: Backend {
    /// Up to `limit` entries, oldest first.
    async fn outbox(&self, limit: u32) -> Result<Vec<OutboxEntry>> {
        Ok(on!(self.reads(), |p| sqlx::query_as(
            "SELECT * FROM operational_outbox ORDER BY seq LIMIT $1"
        )
        .bind(i64::from(limit))
        .fetch_all(p)
        .await?))
    }

    /// Deletes emitted entries.
    async fn drop_outbox(&self, seqs: &[i64]) -> Result<u64> {
        if seqs.is_empty() {
            return Ok(0);
        }
        Ok(on!(
            self.writes(),
            pg => |p| sqlx::query("DELETE FROM operational_outbox WHERE seq = ANY($1)")
                .bind(seqs)
                .execute(p)
                .await?
                .rows_affected(),
            sqlite => |p| sqlx::query(
                "DELETE FROM operational_outbox WHERE seq IN (SELECT value FROM json_each($1))"
            )
            .bind(super::rows::to_json(&seqs))
            .execute(p)
            .await?
            .rows_affected(),
        ))
    }
}
