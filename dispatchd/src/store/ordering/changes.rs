//! A subscription's ordering changing (`reorder`), the sweeper's safety
//! net (`settle_stuck`) and deleted subscriptions (`forget`).

use super::exits::unblock_vanished;
use super::{Line, lock, promote};
use crate::model::{OnDead, Ordering};
use crate::store::Result;
use crate::store::db::Tx;
use crate::store::rows::to_json;

/// Upserts the key rows of subscription `$1`'s lines from their deliveries
/// (`$order` sorts them, `$max` keeps the higher number), returning them.
macro_rules! key_rows {
    ($order:literal, $max:literal) => {
        concat!(
            "INSERT INTO ordering_keys (subscription_id, ordering_key, last_seq) \
             SELECT subscription_id, ordering_key, MAX(order_seq) FROM deliveries \
             WHERE subscription_id = $1 AND ",
            in_line!("deliveries"),
            " GROUP BY subscription_id, ordering_key",
            $order,
            " ON CONFLICT (subscription_id, ordering_key) DO UPDATE SET last_seq = ",
            $max,
            " RETURNING subscription_id, ordering_key"
        )
    };
}

/// A subscription's ordering changed: `None` releases every held
/// delivery and forgets its keys; `PerKey` lines up the deliveries not
/// yet sent, by id (the order they were stored in); a change from `block`
/// to `skip` releases the keys that were stopped.
pub(crate) async fn reorder(
    tx: &mut Tx,
    sub: &str,
    before: (Ordering, OnDead),
    after: (Ordering, OnDead),
) -> Result<()> {
    if before == after {
        return Ok(());
    }
    // Its key rows before any of its deliveries (see `lock_subscriptions`).
    super::lock_subscriptions(tx, &[sub.to_string()]).await?;
    match (before.0, after.0) {
        (Ordering::PerKey, Ordering::None) => {
            let now = tx.now().await?;
            on!(tx, |c| {
                sqlx::query(concat!(
                    "UPDATE deliveries SET ordering_key = NULL, order_seq = NULL, \
                        state = CASE WHEN state <> 'held' THEN state \
                            WHEN EXISTS (SELECT 1 FROM subscriptions s WHERE s.id = $1 \
                                AND (s.status <> 'active' OR s.circuit_state <> 'closed')) \
                                THEN 'paused' \
                            WHEN attempts > 0 THEN 'scheduled' ELSE 'pending' END, \
                        updated_at = $2 \
                     WHERE subscription_id = $1 AND (",
                    in_line!("deliveries"),
                    " OR (state = 'dead' AND ordering_key IS NOT NULL))"
                ))
                .bind(sub)
                .bind(now)
                .execute(&mut **c)
                .await?;
                sqlx::query("DELETE FROM ordering_keys WHERE subscription_id = $1")
                    .bind(sub)
                    .execute(&mut **c)
                    .await?;
            });
            tx.wake().await?;
        }
        (Ordering::None, Ordering::PerKey) => {
            on!(tx, |c| {
                sqlx::query(
                    "UPDATE deliveries AS d SET ordering_key = e.ordering_key, order_seq = d.id, \
                        state = CASE WHEN d.state IN ('in_flight', 'dead') THEN d.state \
                            ELSE 'held' END \
                     FROM events e WHERE e.id = d.event_id AND d.subscription_id = $1 \
                     AND d.state IN ('pending', 'scheduled', 'in_flight', 'paused', 'dead') \
                     AND e.ordering_key IS NOT NULL",
                )
                .bind(sub)
                .execute(&mut **c)
                .await?;
            });
            // The key rows, each numbered past its deliveries' ids (on
            // PostgreSQL in `lock`'s order).
            let lines: Vec<Line> = on!(
                tx,
                pg => |c| sqlx::query_as(key_rows!(
                    " ORDER BY subscription_id COLLATE \"C\", ordering_key COLLATE \"C\"",
                    "GREATEST(ordering_keys.last_seq, excluded.last_seq)"
                ))
                .bind(sub)
                .fetch_all(&mut **c)
                .await?,
                sqlite => |c| sqlx::query_as(key_rows!("", "MAX(last_seq, excluded.last_seq)"))
                    .bind(sub)
                    .fetch_all(&mut **c)
                    .await?,
            );
            let mut lines = lines;
            lines.sort();
            promote(tx, &lines).await?;
        }
        (Ordering::PerKey, Ordering::PerKey)
            if before.1 == OnDead::Block && after.1 == OnDead::Skip =>
        {
            let mut lines: Vec<Line> = on!(tx, |c| sqlx::query_as(
                "UPDATE ordering_keys SET blocked_by = NULL \
                 WHERE subscription_id = $1 AND blocked_by IS NOT NULL \
                 RETURNING subscription_id, ordering_key"
            )
            .bind(sub)
            .fetch_all(&mut **c)
            .await?);
            lines.sort();
            promote(tx, &lines).await?;
        }
        _ => {}
    }
    Ok(())
}

/// The sweeper's safety net: lines with a delivery held for over a
/// minute, none out and no dead head blocking them (a head that left the
/// line by a path that did not settle it), are settled, at most `limit` at
/// a time. Driven by the held rows, so idle keys cost nothing. Returns how
/// many went.
pub(crate) async fn settle_stuck(tx: &mut Tx, limit: i64) -> Result<u64> {
    let _ = unblock_vanished(tx).await?;
    let before = tx.now().await? - 60_000;
    let mut lines: Vec<Line> = on!(tx, |c| sqlx::query_as(concat!(
        "SELECT DISTINCT h.subscription_id, h.ordering_key FROM deliveries h \
         WHERE ",
        held!("h"),
        " AND h.updated_at < $2 \
         AND NOT EXISTS (SELECT 1 FROM ordering_keys k \
            WHERE k.subscription_id = h.subscription_id AND k.ordering_key = h.ordering_key \
            AND k.blocked_by IS NOT NULL) \
         AND NOT EXISTS (SELECT 1 FROM deliveries a \
            WHERE a.subscription_id = h.subscription_id AND a.ordering_key = h.ordering_key \
            AND ",
        out!("a"),
        ") LIMIT $1"
    ))
    .bind(limit)
    .bind(before)
    .fetch_all(&mut **c)
    .await?);
    if lines.is_empty() {
        return Ok(0);
    }
    lines.sort();
    lock(tx, &lines).await?;
    promote(tx, &lines).await
}

/// Forgets the keys of these subscriptions (deleted, or their tenant).
pub(crate) async fn forget(tx: &mut Tx, subscriptions: &[String]) -> Result<()> {
    on!(
        tx,
        pg => |c| {
            sqlx::query("DELETE FROM ordering_keys WHERE subscription_id = ANY($1)")
                .bind(subscriptions)
                .execute(&mut **c)
                .await?;
        },
        sqlite => |c| {
            sqlx::query(
                "DELETE FROM ordering_keys WHERE subscription_id IN \
                 (SELECT value FROM json_each($1))",
            )
            .bind(to_json(subscriptions))
            .execute(&mut **c)
            .await?;
        },
    );
    Ok(())
}
