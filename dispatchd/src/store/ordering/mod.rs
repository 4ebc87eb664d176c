//! Ordered delivery per key: the line of each (subscription, ordering key).
//!
//! A `per_key` subscription's deliveries of one key form a line. Its head
//! is the one delivery out (pending, scheduled, in flight or parked); the
//! rest wait `held`, a state no claim reads, in the order of `order_seq`,
//! which `reserve` hands out under the key row's lock in the committing
//! transaction. When the head leaves the line (delivered, dropped, dead),
//! the transaction that moved it calls `after_exit`, which lets the next
//! one go (`promote`) — unless the head died under `block`, which stops
//! the key until the dead letter is replayed or purged.
//!
//! Every write that lets a delivery out of `held` first locks the key
//! rows (on PostgreSQL; SQLite has one writer) and then checks the line in
//! a statement of its own: under READ COMMITTED that statement sees every
//! transaction that moved the line before, so a key never has two out.
//! Nothing here runs for an unordered delivery.
//!
//! Here: sequencing (`reserve`) and admitting new deliveries; `line`: a
//! line's primitives (lock its key rows, let its next go); `exits`: a head
//! finished or purged; `requeue`: a dead letter replayed; `changes`: a
//! subscription's ordering changing, the sweeper's safety net, deleted
//! subscriptions.

use std::collections::BTreeMap;

use super::Result;
use super::db::Tx;
use super::rows::to_json;

/// A line: (subscription id, ordering key).
pub(crate) type Line = (String, String);

/// Delivery `$d` is held: the predicate of the partial index
/// `deliveries_held` (its line's waiting ones, in sequence). Queries name
/// it in full so SQLite, which matches an index predicate term by term,
/// uses the index.
macro_rules! held {
    ($d:literal) => {
        concat!($d, ".ordering_key IS NOT NULL AND ", $d, ".state = 'held'")
    };
}

/// Delivery `$d` is its line's one out: the predicate of
/// `deliveries_out`.
macro_rules! out {
    ($d:literal) => {
        concat!(
            $d,
            ".ordering_key IS NOT NULL AND ",
            $d,
            ".state IN ('pending', 'scheduled', 'in_flight', 'paused')"
        )
    };
}

/// Delivery `$d` is in its line, held or out.
macro_rules! in_line {
    ($d:literal) => {
        concat!("((", held!($d), ") OR (", out!($d), "))")
    };
}

/// Hands out `n` sequence numbers to each line of `counts` (in its order,
/// so concurrent group commits lock key rows in one order and never
/// deadlock); returns each line's first. The rows stay locked until the
/// caller's transaction ends: a second commit of the same key waits, and
/// takes the numbers after these.
pub(crate) async fn reserve(
    tx: &mut Tx,
    counts: &BTreeMap<Line, i64>,
) -> Result<BTreeMap<Line, i64>> {
    if counts.is_empty() {
        return Ok(BTreeMap::new());
    }
    let rows: Vec<(String, String, i64)> = on!(
        tx,
        pg => |c| {
            let lines: Vec<Line> = counts.keys().cloned().collect();
            let (sids, keys) = columns(&lines);
            let ns: Vec<i64> = counts.values().copied().collect();
            sqlx::query_as(
                "INSERT INTO ordering_keys (subscription_id, ordering_key, last_seq) \
                 SELECT * FROM unnest($1::text[], $2::text[], $3::int8[]) \
                 ON CONFLICT (subscription_id, ordering_key) \
                 DO UPDATE SET last_seq = ordering_keys.last_seq + excluded.last_seq \
                 RETURNING subscription_id, ordering_key, last_seq",
            )
            .bind(&sids)
            .bind(&keys)
            .bind(&ns)
            .fetch_all(&mut **c)
            .await?
        },
        sqlite => |c| {
            let triples: Vec<(&str, &str, i64)> = counts
                .iter()
                .map(|((s, k), n)| (s.as_str(), k.as_str(), *n))
                .collect();
            sqlx::query_as(
                "INSERT INTO ordering_keys (subscription_id, ordering_key, last_seq) \
                 SELECT value->>0, value->>1, value->>2 FROM json_each($1) WHERE true \
                 ON CONFLICT (subscription_id, ordering_key) \
                 DO UPDATE SET last_seq = last_seq + excluded.last_seq \
                 RETURNING subscription_id, ordering_key, last_seq",
            )
            .bind(to_json(&triples))
            .fetch_all(&mut **c)
            .await?
        },
    );
    Ok(rows
        .into_iter()
        .map(|(s, k, last)| {
            let line = (s, k);
            let n = counts.get(&line).copied().unwrap_or(1);
            (line, last - n + 1)
        })
        .collect())
}

/// New deliveries joined these lines (`reserve` locked their rows): each
/// idle line's first goes.
pub(crate) async fn admit(tx: &mut Tx, lines: &[Line]) -> Result<u64> {
    promote(tx, lines).await
}

// After the macros above, which they use.
mod changes;
mod exits;
mod line;
mod requeue;

pub(crate) use changes::{forget, reorder, settle_stuck};
pub(crate) use exits::{after_exit, after_purge};
pub(crate) use line::lock_subscriptions;
use line::{columns, lines_of, lock, promote};
pub(crate) use requeue::requeue;
