//! A line's primitives: lock its key rows, let its next held delivery go,
//! find the lines of some deliveries.

use super::Line;
use crate::store::{Result, db::Tx, rows::to_json};

/// Lets the next held delivery of each line in `$lines` (a SQL source of
/// `(sid, okey)` rows) go, if the line has none out and no dead head
/// blocking it. `$now` is the placeholder of the time, `$max` the dialect's
/// two-argument maximum. The head is parked when its endpoint is.
macro_rules! promote_sql {
    ($lines:literal, $now:literal, $max:literal) => {
        concat!(
            "UPDATE deliveries SET \
                state = CASE WHEN EXISTS (SELECT 1 FROM subscriptions s \
                        WHERE s.id = deliveries.subscription_id \
                        AND (s.status <> 'active' OR s.circuit_state <> 'closed')) THEN 'paused' \
                    WHEN attempts > 0 THEN 'scheduled' ELSE 'pending' END, \
                next_attempt_at = ",
            $max,
            "(next_attempt_at, ",
            $now,
            "), updated_at = ",
            $now,
            " WHERE id IN (SELECT (SELECT h.id FROM deliveries h \
                    WHERE h.subscription_id = k.subscription_id \
                    AND h.ordering_key = k.ordering_key AND ",
            held!("h"),
            " ORDER BY h.order_seq LIMIT 1) \
                FROM ordering_keys k JOIN ",
            $lines,
            " ON k.subscription_id = l.sid AND k.ordering_key = l.okey \
                WHERE k.blocked_by IS NULL AND NOT EXISTS (SELECT 1 FROM deliveries a \
                    WHERE a.subscription_id = k.subscription_id \
                    AND a.ordering_key = k.ordering_key AND ",
            out!("a"),
            "))"
        )
    };
}

/// Binds lines as PostgreSQL arrays (`$1` ids, `$2` keys) or one SQLite
/// JSON array of pairs (`$1`).
pub(super) fn columns(lines: &[Line]) -> (Vec<&str>, Vec<&str>) {
    lines.iter().map(|(s, k)| (s.as_str(), k.as_str())).unzip()
}

/// Locks the key rows of `lines` (PostgreSQL), in byte order: the order
/// `reserve` inserts them in (a `BTreeMap`'s), whatever the database's
/// collation, so two writers never lock two keys in opposite orders.
pub(super) async fn lock(tx: &mut Tx, lines: &[Line]) -> Result<()> {
    if let crate::store::db::Conn::Pg(c) = tx.conn() {
        let (sids, keys) = columns(lines);
        sqlx::query(
            "SELECT 1 FROM ordering_keys k \
             JOIN unnest($1::text[], $2::text[]) AS l(sid, okey) \
                ON k.subscription_id = l.sid AND k.ordering_key = l.okey \
             ORDER BY k.subscription_id COLLATE \"C\", k.ordering_key COLLATE \"C\" \
             FOR UPDATE OF k",
        )
        .bind(&sids)
        .bind(&keys)
        .execute(&mut **c)
        .await?;
    }
    Ok(())
}

/// Locks every key row of these subscriptions (PostgreSQL), in `lock`'s
/// order. A writer that deletes or releases held deliveries of whole
/// subscriptions takes it first, as every other writer takes a key row
/// before the held rows behind it: no lock cycle.
pub(crate) async fn lock_subscriptions(tx: &mut Tx, subscriptions: &[String]) -> Result<()> {
    if let crate::store::db::Conn::Pg(c) = tx.conn() {
        sqlx::query(
            "SELECT 1 FROM ordering_keys WHERE subscription_id = ANY($1) \
             ORDER BY subscription_id COLLATE \"C\", ordering_key COLLATE \"C\" FOR UPDATE",
        )
        .bind(subscriptions)
        .execute(&mut **c)
        .await?;
    }
    Ok(())
}

/// Lets the next delivery of each idle line go; the caller holds the key
/// rows' locks. Wakes the workers when one went; returns how many.
pub(super) async fn promote(tx: &mut Tx, lines: &[Line]) -> Result<u64> {
    if lines.is_empty() {
        return Ok(0);
    }
    let now = tx.now().await?;
    let n = on!(
        tx,
        pg => |c| {
            let (sids, keys) = columns(lines);
            sqlx::query(promote_sql!(
                "unnest($1::text[], $2::text[]) AS l(sid, okey)",
                "$3",
                "GREATEST"
            ))
            .bind(&sids)
            .bind(&keys)
            .bind(now)
            .execute(&mut **c)
            .await?
            .rows_affected()
        },
        sqlite => |c|
            sqlx::query(promote_sql!(
                "(SELECT value->>0 AS sid, value->>1 AS okey FROM json_each($1)) AS l",
                "$2",
                "MAX"
            ))
            .bind(to_json(lines))
            .bind(now)
            .execute(&mut **c)
            .await?
            .rows_affected(),
    );
    if n > 0 {
        tx.wake().await?;
    }
    Ok(n)
}

/// The lines of these deliveries (the ordered ones among them), sorted.
pub(super) async fn lines_of(tx: &mut Tx, ids: &[i64]) -> Result<Vec<Line>> {
    Ok(on!(
        tx,
        pg => |c|
            sqlx::query_as(
                "SELECT DISTINCT subscription_id, ordering_key FROM deliveries \
                 WHERE id = ANY($1) AND ordering_key IS NOT NULL AND subscription_id IS NOT NULL \
                 ORDER BY 1, 2",
            )
            .bind(ids)
            .fetch_all(&mut **c)
            .await?,
        sqlite => |c|
            sqlx::query_as(
                "SELECT DISTINCT subscription_id, ordering_key FROM deliveries \
                 WHERE id IN (SELECT value FROM json_each($1)) AND ordering_key IS NOT NULL \
                 AND subscription_id IS NOT NULL ORDER BY 1, 2",
            )
            .bind(to_json(ids))
            .fetch_all(&mut **c)
            .await?,
    ))
}
