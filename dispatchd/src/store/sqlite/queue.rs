//! SQLite: the hot path of the queue. A claim is an `UPDATE … RETURNING id`
//! and one read of the claimed rows; a batch's outcomes are one update and
//! one insert, each with its rows bound as one JSON array (`json_each`),
//! fenced by `(id, run, attempt, claim, in_flight)`. The single writer orders
//! every write, so no row locks are needed.

use std::collections::HashSet;

use sqlx::{Sqlite, SqlitePool, Transaction};

use crate::model::{ClaimToken, Completion, DeliveryState};
use crate::store::rows::{ClaimRow, to_json};
use crate::store::{Result, plan};

/// The fence of every write to a claimed delivery: it applies only while
/// the row still carries the claim's run and attempt and is in flight, so
/// a worker that lost its lease cannot overwrite a newer outcome.
macro_rules! fenced {
    () => {
        "WHERE deliveries.id = v.id AND deliveries.run = v.run \
         AND deliveries.attempts = v.attempt AND deliveries.claims = v.claim \
         AND deliveries.state = 'in_flight'"
    };
}

/// Claims up to `limit` due deliveries for `node`, leased for `lease` ms:
/// at most `share` from each of `lanes` (endpoints, in turn) and from the
/// tasks, each lane's oldest first, then round by round (every lane's
/// first, then every lane's second...).
pub(crate) async fn claim(
    pool: &SqlitePool,
    node: &str,
    limit: u32,
    lease: i64,
    lanes: &[String],
    share: i64,
) -> Result<Vec<ClaimRow>> {
    let now = crate::model::now_ms();
    let mut tx = pool.begin().await?;
    let ids: Vec<i64> = sqlx::query_scalar(
        "WITH picks AS ( \
            SELECT d.id, d.subscription_id AS sid, d.next_attempt_at AS at \
            FROM json_each($5) l JOIN deliveries d ON d.id IN ( \
                SELECT x.id FROM deliveries x WHERE x.subscription_id = l.value \
                AND x.state IN ('pending', 'scheduled') AND x.next_attempt_at <= $1 \
                ORDER BY x.next_attempt_at LIMIT $6) \
            UNION ALL SELECT * FROM ( \
                SELECT x.id, NULL, x.next_attempt_at FROM deliveries x \
                WHERE x.subscription_id IS NULL AND x.state IN ('pending', 'scheduled') \
                AND x.next_attempt_at <= $1 ORDER BY x.next_attempt_at LIMIT $6) \
         ), ranked AS ( \
            SELECT id, at, row_number() OVER (PARTITION BY sid ORDER BY at) AS rn FROM picks \
         ) \
         UPDATE deliveries SET state = 'in_flight', attempts = attempts + 1, claims = claims + 1, \
            lease_expires_at = $1 + $2, leased_by = $3, updated_at = $1 \
         WHERE id IN (SELECT id FROM ranked ORDER BY rn, at LIMIT $4) \
         RETURNING id",
    )
    .bind(now)
    .bind(lease)
    .bind(node)
    .bind(i64::from(limit))
    .bind(to_json(lanes))
    .bind(share)
    .fetch_all(&mut *tx)
    .await?;
    if ids.is_empty() {
        tx.commit().await?;
        return Ok(Vec::new());
    }
    let found: Vec<ClaimRow> = sqlx::query_as(concat!(
        "SELECT ",
        claim_columns!(),
        " FROM deliveries d JOIN events e ON e.id = d.event_id \
          LEFT JOIN subscriptions s ON s.id = d.subscription_id \
          WHERE d.id IN (SELECT value FROM json_each($1)) ORDER BY d.id"
    ))
    .bind(to_json(&ids))
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(found)
}

/// Writes the circuits (and a 410's status) of a completion batch's
/// endpoints: one update, the rows bound as one JSON array.
pub(crate) async fn update_circuits(
    tx: &mut Transaction<'static, Sqlite>,
    updates: &[plan::EndpointUpdate],
    now: i64,
) -> Result<()> {
    let rows: Vec<_> = updates
        .iter()
        .map(|u| {
            (
                &u.id,
                u.circuit.state.as_str(),
                u.circuit.consecutive_failures,
                u.circuit.opened_at,
                u.circuit.next_probe_at,
                u.succeeded,
                u.status.as_str(),
                u.gone,
            )
        })
        .collect();
    sqlx::query(
        "UPDATE subscriptions SET circuit_state = v.state, consecutive_failures = v.failures, \
            circuit_opened_at = v.opened, circuit_next_probe_at = v.probe, \
            last_success_at = CASE WHEN v.ok THEN $2 ELSE last_success_at END, \
            status = v.status, \
            disabled_reason = CASE WHEN v.gone THEN $3 ELSE disabled_reason END \
         FROM (SELECT value->>0 AS id, value->>1 AS state, value->>2 AS failures, \
                      value->>3 AS opened, value->>4 AS probe, value->>5 AS ok, \
                      value->>6 AS status, value->>7 AS gone FROM json_each($1)) AS v \
         WHERE subscriptions.id = v.id",
    )
    .bind(to_json(&rows))
    .bind(now)
    .bind(plan::GONE)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Writes a batch's outcomes and attempts; returns how many deliveries
/// changed state (the others' tokens were stale).
pub(crate) async fn write_outcomes(
    tx: &mut Transaction<'static, Sqlite>,
    completions: &[Completion],
    parked: &HashSet<String>,
    now: i64,
) -> Result<(u64, Vec<i64>)> {
    let mut updates = Vec::with_capacity(completions.len());
    let mut attempts = Vec::with_capacity(completions.len());
    for c in completions {
        let a = &c.attempt;
        let (state, delay_ms) = plan::final_state(c, parked);
        let waits = matches!(state, DeliveryState::Scheduled | DeliveryState::Paused);
        let ended = matches!(state, DeliveryState::Delivered | DeliveryState::Dropped);
        let t = c.transformed.as_deref();
        updates.push((
            c.token.id,
            c.token.run,
            c.token.attempt,
            state.as_str(),
            waits.then_some(now + delay_ms),
            a.status_code,
            &a.error,
            ended.then_some(now),
            t.is_some(),
            t.and_then(|t| t.url.as_deref()),
            t.and_then(|t| t.method.as_deref()),
            t.and_then(|t| t.headers.as_ref()).map(to_json),
            t.and_then(|t| t.body.as_deref()),
            t.and_then(|t| t.event_type.as_deref()),
            c.token.claim,
        ));
        attempts.push((
            c.token.id,
            &a.event_id,
            c.token.run,
            c.token.attempt,
            &a.url,
            a.status_code,
            &a.error,
            a.duration_ms,
            &a.response_body,
            a.created_at,
        ));
    }
    let changed: Vec<(i64, bool)> = sqlx::query_as(concat!(
        "UPDATE deliveries SET state = v.state, \
            next_attempt_at = COALESCE(v.next_at, deliveries.next_attempt_at), \
            lease_expires_at = NULL, leased_by = NULL, \
            last_status_code = v.status_code, last_error = v.error, \
            delivered_at = COALESCE(v.delivered_at, deliveries.delivered_at), updated_at = $2, \
            dest_url = CASE WHEN v.t THEN v.t_url ELSE deliveries.dest_url END, \
            dest_method = CASE WHEN v.t THEN v.t_method ELSE deliveries.dest_method END, \
            dest_headers = CASE WHEN v.t THEN v.t_headers ELSE deliveries.dest_headers END, \
            body = CASE WHEN v.t THEN v.t_body ELSE deliveries.body END, \
            dest_type = CASE WHEN v.t THEN v.t_type ELSE deliveries.dest_type END \
         FROM (SELECT value->>0 AS id, value->>1 AS run, value->>2 AS attempt, \
                  value->>3 AS state, value->>4 AS next_at, value->>5 AS status_code, \
                  value->>6 AS error, value->>7 AS delivered_at, value->>8 AS t, \
                  value->>9 AS t_url, value->>10 AS t_method, value->>11 AS t_headers, \
                  value->>12 AS t_body, value->>13 AS t_type, value->>14 AS claim \
               FROM json_each($1)) AS v \
         ",
        fenced!(),
        exited!("deliveries.")
    ))
    .bind(to_json(&updates))
    .bind(now)
    .fetch_all(&mut **tx)
    .await?;
    sqlx::query(
        "INSERT INTO attempts (delivery_id, event_id, run, attempt, url, status_code, \
         error, duration_ms, response_body, created_at) \
         SELECT j.value->>0, j.value->>1, j.value->>2, j.value->>3, j.value->>4, \
            j.value->>5, j.value->>6, j.value->>7, j.value->>8, j.value->>9 \
         FROM json_each($1) AS j \
         WHERE EXISTS (SELECT 1 FROM deliveries d WHERE d.id = j.value->>0) \
         ORDER BY j.key \
         ON CONFLICT DO NOTHING",
    )
    .bind(to_json(&attempts))
    .execute(&mut **tx)
    .await?;
    Ok(plan::split_exits(changed))
}

/// Hands claims back unattempted, each due after its delay (one statement
/// for the batch).
pub(crate) async fn release(
    tx: &mut Transaction<'static, Sqlite>,
    items: &[(ClaimToken, i64)],
    now: i64,
) -> Result<u64> {
    let rows: Vec<_> = items
        .iter()
        .map(|(t, delay)| (t.id, t.run, t.attempt, delay, t.claim))
        .collect();
    let n = sqlx::query(concat!(
        "UPDATE deliveries SET \
            state = CASE WHEN deliveries.attempts > 1 THEN 'scheduled' ELSE 'pending' END, \
            attempts = deliveries.attempts - 1, lease_expires_at = NULL, leased_by = NULL, \
            next_attempt_at = $2 + v.delay_ms, updated_at = $2 \
         FROM (SELECT value->>0 AS id, value->>1 AS run, value->>2 AS attempt, \
                  value->>3 AS delay_ms, value->>4 AS claim FROM json_each($1)) AS v \
         ",
        fenced!()
    ))
    .bind(to_json(&rows))
    .bind(now)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(n)
}
