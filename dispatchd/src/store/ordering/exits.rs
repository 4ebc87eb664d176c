//! A head leaving its line: finished (`after_exit`: delivered, dropped or
//! dead) or purged (`after_purge`).

use super::{Line, lines_of, lock, promote};
use crate::store::Result;
use crate::store::db::Tx;
use crate::store::rows::to_json;

/// Ordered deliveries `ids` left their lines (delivered, dropped or dead,
/// in this transaction): a dead one under `block` stops its key; the
/// other lines let their next delivery go.
pub(crate) async fn after_exit(tx: &mut Tx, ids: &[i64]) -> Result<u64> {
    let lines = lines_of(tx, ids).await?;
    if lines.is_empty() {
        return Ok(0);
    }
    lock(tx, &lines).await?;
    on!(
        tx,
        pg => |c| {
            sqlx::query(
                "UPDATE ordering_keys k SET blocked_by = d.id FROM deliveries d \
                 JOIN subscriptions s ON s.id = d.subscription_id \
                 WHERE d.id = ANY($1) AND d.state = 'dead' AND s.ordering_on_dead = 'block' \
                 AND k.subscription_id = d.subscription_id AND k.ordering_key = d.ordering_key \
                 AND k.blocked_by IS NULL",
            )
            .bind(ids)
            .execute(&mut **c)
            .await?;
        },
        sqlite => |c| {
            sqlx::query(
                "UPDATE ordering_keys AS k SET blocked_by = d.id FROM deliveries d \
                 JOIN subscriptions s ON s.id = d.subscription_id \
                 WHERE d.id IN (SELECT value FROM json_each($1)) AND d.state = 'dead' \
                 AND s.ordering_on_dead = 'block' \
                 AND k.subscription_id = d.subscription_id AND k.ordering_key = d.ordering_key \
                 AND k.blocked_by IS NULL",
            )
            .bind(to_json(ids))
            .execute(&mut **c)
            .await?;
        },
    );
    promote(tx, &lines).await
}

/// Releases keys whose blocking dead head is no longer dead (replayed) or
/// gone (purged), and lets the lines of the purged ones go on. The
/// update locks the rows it changes.
pub(super) async fn unblock_vanished(tx: &mut Tx) -> Result<Vec<Line>> {
    Ok(on!(
        tx,
        // The rows locked in `lock`'s order first.
        pg => |c| sqlx::query_as(
            "UPDATE ordering_keys k SET blocked_by = NULL FROM ( \
                SELECT subscription_id, ordering_key FROM ordering_keys o \
                WHERE o.blocked_by IS NOT NULL AND NOT EXISTS (SELECT 1 FROM deliveries d \
                    WHERE d.id = o.blocked_by AND d.state = 'dead') \
                ORDER BY o.subscription_id COLLATE \"C\", o.ordering_key COLLATE \"C\" FOR UPDATE) v \
             WHERE k.subscription_id = v.subscription_id AND k.ordering_key = v.ordering_key \
             RETURNING k.subscription_id, k.ordering_key"
        )
        .fetch_all(&mut **c)
        .await?,
        sqlite => |c| sqlx::query_as(
            "UPDATE ordering_keys SET blocked_by = NULL \
             WHERE blocked_by IS NOT NULL AND NOT EXISTS (SELECT 1 FROM deliveries d \
                WHERE d.id = ordering_keys.blocked_by AND d.state = 'dead') \
             RETURNING subscription_id, ordering_key"
        )
        .fetch_all(&mut **c)
        .await?,
    ))
}

/// After a purge of dead letters: a key whose dead head went is released.
pub(crate) async fn after_purge(tx: &mut Tx) -> Result<u64> {
    let mut lines = unblock_vanished(tx).await?;
    lines.sort();
    promote(tx, &lines).await
}
