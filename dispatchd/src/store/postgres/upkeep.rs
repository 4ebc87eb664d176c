//! PostgreSQL: the vacuum and analyze of the queue's tables. Every claim
//! and completion leaves a dead row version behind, the queue's size swings
//! within seconds, and this PostgreSQL may run with autovacuum off (or
//! waking once a minute), so the node vacuums a table once it holds enough
//! dead rows and analyzes it once its statistics are stale, one node at a
//! time.

use sqlx::PgPool;

use crate::store::Result;

/// Advisory lock key held while a node vacuums ("dispatch" in ASCII).
const VACUUM_LOCK: i64 = 0x6469_7370_6174_6368;

/// How many row changes since the last analyze make the queue's
/// statistics stale: a tenth of the table, and at least this many.
const ANALYZE_MIN_CHANGES: i64 = 5_000;

/// Vacuums the tables holding at least `min_dead` dead rows, and analyzes
/// those whose statistics are stale, unless another node holds the lock;
/// returns the tables vacuumed or analyzed.
///
/// The queue's size swings by orders of magnitude within seconds (an
/// empty table, then a backlog of 100,000), far faster than autovacuum's
/// once-a-minute analyze. Planned against an empty table's statistics, a
/// claim scanned every waiting delivery of a lane to sort it instead of
/// reading the lane's index in order: 90 µs per claimed row instead of
/// 41 (BENCHMARKS.md, "Performance, round two: the claim's plan…").
pub(crate) async fn vacuum(pool: &PgPool, min_dead: u64) -> Result<Vec<String>> {
    let due: Vec<(String, bool, bool)> = sqlx::query_as(
        "SELECT relname::text, \
            n_dead_tup >= $1 AND COALESCE(GREATEST(last_vacuum, last_autovacuum), '-infinity') \
                < now() - interval '10 seconds', \
            n_mod_since_analyze >= GREATEST($2, n_live_tup / 10) \
                AND COALESCE(GREATEST(last_analyze, last_autoanalyze), '-infinity') \
                < now() - interval '4 seconds' \
         FROM pg_stat_user_tables \
         WHERE schemaname = current_schema() \
           AND relname IN ('deliveries', 'attempts', 'events') \
         ORDER BY n_dead_tup DESC",
    )
    .bind(i64::try_from(min_dead).unwrap_or(i64::MAX))
    .bind(ANALYZE_MIN_CHANGES)
    .fetch_all(pool)
    .await?;
    let due: Vec<(String, &str)> = due
        .into_iter()
        .filter_map(|(table, vacuum, analyze)| {
            let how = match (vacuum, analyze) {
                (true, true) => "VACUUM (ANALYZE, SKIP_LOCKED)",
                (true, false) => "VACUUM (SKIP_LOCKED)",
                (false, true) => "ANALYZE (SKIP_LOCKED)",
                (false, false) => return None,
            };
            Some((table, how))
        })
        .collect();
    if due.is_empty() {
        return Ok(Vec::new());
    }
    // One node at a time, under a session lock. This connection is
    // closed when dropped, not pooled, which releases the lock however
    // the vacuum ends (done, failed or cancelled).
    let mut conn = pool.acquire().await?;
    conn.close_on_drop();
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(VACUUM_LOCK)
        .fetch_one(&mut *conn)
        .await?;
    if !locked {
        return Ok(Vec::new());
    }
    let mut done = Vec::new();
    for (table, how) in due {
        // The names come from the fixed list above. A table vacuumed
        // within 10 s (above) is skipped, so an old snapshot holding
        // dead rows back does not make this a loop of full vacuums.
        let statement = sqlx::AssertSqlSafe(format!("{how} {table}"));
        sqlx::query(statement).execute(&mut *conn).await?;
        done.push(table);
    }
    Ok(done)
}
