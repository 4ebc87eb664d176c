//! PostgreSQL: the vacuum of the queue's tables. Every claim and
//! completion leaves a dead row version behind, and this PostgreSQL may
//! run with autovacuum off (or waking once a minute), so the node vacuums
//! a table once it holds enough dead rows, one node at a time.

use sqlx::PgPool;

use crate::store::Result;

/// Advisory lock key held while a node vacuums ("dispatch" in ASCII).
const VACUUM_LOCK: i64 = 0x6469_7370_6174_6368;

/// Vacuums the tables holding at least `min_dead` dead rows, unless another
/// node holds the lock; returns the tables vacuumed.
pub(crate) async fn vacuum(pool: &PgPool, min_dead: u64) -> Result<Vec<String>> {
    let due: Vec<String> = sqlx::query_scalar(
        "SELECT relname::text FROM pg_stat_user_tables \
         WHERE schemaname = current_schema() \
           AND relname IN ('deliveries', 'attempts', 'events') AND n_dead_tup >= $1 \
           AND COALESCE(GREATEST(last_vacuum, last_autovacuum), '-infinity') \
               < now() - interval '10 seconds' \
         ORDER BY n_dead_tup DESC",
    )
    .bind(i64::try_from(min_dead).unwrap_or(i64::MAX))
    .fetch_all(pool)
    .await?;
    if due.is_empty() {
        return Ok(due);
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
    for table in due {
        // The names come from the fixed list above. A table vacuumed
        // within 10 s (above) is skipped, so an old snapshot holding
        // dead rows back does not make this a loop of full vacuums.
        let statement = sqlx::AssertSqlSafe(format!("VACUUM (SKIP_LOCKED) {table}"));
        sqlx::query(statement).execute(&mut *conn).await?;
        done.push(table);
    }
    Ok(done)
}
