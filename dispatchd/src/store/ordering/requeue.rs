//! A dead letter replayed: the blocking head becomes the head again; any
//! other goes to the back of its key's line.

use std::collections::BTreeMap;

use super::exits::unblock_vanished;
use super::{Line, lines_of, lock, promote, reserve};
use crate::store::Result;
use crate::store::db::Tx;
use crate::store::rows::to_json;

/// Delivery `d`'s line has another delivery, held or out: one probe of
/// each partial index.
macro_rules! other_in_line {
    () => {
        concat!(
            "(EXISTS (SELECT 1 FROM deliveries o WHERE o.subscription_id = d.subscription_id \
                AND o.ordering_key = d.ordering_key AND o.id <> d.id AND ",
            held!("o"),
            ") OR EXISTS (SELECT 1 FROM deliveries o WHERE o.subscription_id = d.subscription_id \
                AND o.ordering_key = d.ordering_key AND o.id <> d.id AND ",
            out!("o"),
            "))"
        )
    };
}

/// After a replay: a replayed head that blocked its key is the head again
/// (the key waits for it); any other replayed ordered delivery goes to the
/// back of its line, so it never overtakes a newer event of its key.
pub(crate) async fn requeue(tx: &mut Tx, ids: &[i64]) -> Result<u64> {
    if ids.is_empty() {
        return Ok(0);
    }
    let lines = lines_of(tx, ids).await?;
    if lines.is_empty() {
        return Ok(0);
    }
    lock(tx, &lines).await?;
    let heads: Vec<i64> = on!(
        tx,
        pg => |c|
            sqlx::query_scalar("SELECT blocked_by FROM ordering_keys WHERE blocked_by = ANY($1)")
                .bind(ids)
                .fetch_all(&mut **c)
                .await?,
        sqlite => |c|
            sqlx::query_scalar(
                "SELECT blocked_by FROM ordering_keys \
                 WHERE blocked_by IN (SELECT value FROM json_each($1))",
            )
            .bind(to_json(ids))
            .fetch_all(&mut **c)
            .await?,
    );
    let _ = unblock_vanished(tx).await?;
    let others: Vec<i64> = ids.iter().copied().filter(|i| !heads.contains(i)).collect();
    // The replayed deliveries, other than heads, whose line has another.
    let queued: Vec<(i64, String, String)> = if others.is_empty() {
        Vec::new()
    } else {
        on!(
            tx,
            pg => |c|
                sqlx::query_as(concat!(
                    "SELECT d.id, d.subscription_id, d.ordering_key FROM deliveries d \
                     WHERE d.id = ANY($1) AND d.ordering_key IS NOT NULL AND ",
                    other_in_line!(),
                    " ORDER BY d.id"
                ))
                .bind(&others)
                .fetch_all(&mut **c)
                .await?,
            sqlite => |c|
                sqlx::query_as(concat!(
                    "SELECT d.id, d.subscription_id, d.ordering_key FROM deliveries d \
                     WHERE d.id IN (SELECT value FROM json_each($1)) \
                     AND d.ordering_key IS NOT NULL AND ",
                    other_in_line!(),
                    " ORDER BY d.id"
                ))
                .bind(to_json(&others))
                .fetch_all(&mut **c)
                .await?,
        )
    };
    if !queued.is_empty() {
        let mut counts: BTreeMap<Line, i64> = BTreeMap::new();
        for (_, s, k) in &queued {
            *counts.entry((s.clone(), k.clone())).or_default() += 1;
        }
        let mut next = reserve(tx, &counts).await?;
        let (qids, seqs): (Vec<i64>, Vec<i64>) = queued
            .into_iter()
            .map(|(id, s, k)| {
                let slot = next.entry((s, k)).or_default();
                let seq = *slot;
                *slot += 1;
                (id, seq)
            })
            .unzip();
        on!(
            tx,
            pg => |c| {
                sqlx::query(
                    "UPDATE deliveries d SET state = 'held', order_seq = v.seq \
                     FROM unnest($1::int8[], $2::int8[]) AS v(id, seq) WHERE d.id = v.id",
                )
                .bind(&qids)
                .bind(&seqs)
                .execute(&mut **c)
                .await?;
            },
            sqlite => |c| {
                let pairs: Vec<(i64, i64)> = qids.into_iter().zip(seqs).collect();
                sqlx::query(
                    "UPDATE deliveries SET state = 'held', order_seq = \
                        (SELECT value->>1 FROM json_each($1) WHERE value->>0 = deliveries.id) \
                     WHERE id IN (SELECT value->>0 FROM json_each($1))",
                )
                .bind(to_json(&pairs))
                .execute(&mut **c)
                .await?;
            },
        );
    }
    promote(tx, &lines).await
}
