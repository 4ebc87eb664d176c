//! SQLite: the hot path of the queue. A claim is an `UPDATE … RETURNING id`
//! and one read of the claimed rows; a batch's outcomes are one update and
//! an insert of the attempts not written on their rows, each with its rows
//! bound as one JSON array (`json_each`),
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
/// changed state (the others' tokens were stale) and which ordered ones
/// finished. A delivered one's attempt is written on its row (`ok_*`, its
/// id taken from the attempts' AUTOINCREMENT counter); the others, and
/// every attempt whose token was stale, go to `attempts`.
pub(crate) async fn write_outcomes(
    tx: &mut Transaction<'static, Sqlite>,
    completions: &[Completion],
    parked: &HashSet<String>,
    now: i64,
) -> Result<(u64, Vec<i64>)> {
    let states: Vec<(DeliveryState, i64)> = completions
        .iter()
        .map(|c| plan::final_state(c, parked))
        .collect();
    let delivered = states
        .iter()
        .filter(|(s, _)| *s == DeliveryState::Delivered)
        .count();
    let mut next_id = reserve_attempt_ids(tx, delivered).await?;
    let mut updates = Vec::with_capacity(completions.len());
    for (c, &(state, delay_ms)) in completions.iter().zip(&states) {
        let a = &c.attempt;
        let waits = matches!(state, DeliveryState::Scheduled | DeliveryState::Paused);
        let ended = matches!(state, DeliveryState::Delivered | DeliveryState::Dropped);
        let ok = (state == DeliveryState::Delivered).then(|| {
            next_id += 1;
            (
                next_id - 1,
                &a.url,
                a.duration_ms,
                &a.response_body,
                a.created_at,
            )
        });
        let t = c.transformed.as_deref().map(|t| {
            (
                t.url.as_deref(),
                t.method.as_deref(),
                t.headers.as_ref().map(to_json),
                t.body.as_deref(),
                t.event_type.as_deref(),
            )
        });
        updates.push((
            c.token.id,
            c.token.run,
            c.token.attempt,
            state.as_str(),
            waits.then_some(now + delay_ms),
            a.status_code,
            &a.error,
            ended.then_some(now),
            t,
            c.token.claim,
            ok,
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
            dest_type = CASE WHEN v.t THEN v.t_type ELSE deliveries.dest_type END, \
            ok_id = v.ok_id, ok_url = v.ok_url, ok_duration_ms = v.ok_duration_ms, \
            ok_response_body = v.ok_response_body, ok_at = v.ok_at \
         FROM (SELECT value->>0 AS id, value->>1 AS run, value->>2 AS attempt, \
                  value->>3 AS state, value->>4 AS next_at, value->>5 AS status_code, \
                  value->>6 AS error, value->>7 AS delivered_at, \
                  value->>8 IS NOT NULL AS t, value->>'$[8][0]' AS t_url, \
                  value->>'$[8][1]' AS t_method, value->>'$[8][2]' AS t_headers, \
                  value->>'$[8][3]' AS t_body, value->>'$[8][4]' AS t_type, \
                  value->>9 AS claim, value->>'$[10][0]' AS ok_id, \
                  value->>'$[10][1]' AS ok_url, value->>'$[10][2]' AS ok_duration_ms, \
                  value->>'$[10][3]' AS ok_response_body, value->>'$[10][4]' AS ok_at \
               FROM json_each($1)) AS v \
         ",
        fenced!(),
        exited!("deliveries.")
    ))
    .bind(to_json(&updates))
    .bind(now)
    .fetch_all(&mut **tx)
    .await?;
    // Every other attempt is a row: the failed ones, and the stale ones
    // (their delivery was not changed) of deliveries that still exist.
    let written: HashSet<i64> = changed.iter().map(|(id, _)| *id).collect();
    let attempts: Vec<_> = completions
        .iter()
        .zip(&states)
        .filter(|(c, (s, _))| *s != DeliveryState::Delivered || !written.contains(&c.token.id))
        .map(|(c, _)| {
            let a = &c.attempt;
            (
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
            )
        })
        .collect();
    if !attempts.is_empty() {
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
    }
    Ok(plan::split_exits(changed))
}

/// Takes `n` ids from the attempts' AUTOINCREMENT counter (which SQLite
/// keeps in `sqlite_sequence`, and lets statements move) and returns the
/// first: no row of `attempts` will take them.
async fn reserve_attempt_ids(tx: &mut Transaction<'static, Sqlite>, n: usize) -> Result<i64> {
    if n == 0 {
        return Ok(0);
    }
    let n = i64::try_from(n).unwrap_or(i64::MAX);
    let top: Option<i64> = sqlx::query_scalar(
        "UPDATE sqlite_sequence SET seq = MAX(seq, (SELECT COALESCE(MAX(id), 0) FROM attempts)) \
            + $1 WHERE name = 'attempts' RETURNING seq",
    )
    .bind(n)
    .fetch_optional(&mut **tx)
    .await?;
    let top = match top {
        Some(top) => top,
        None => {
            sqlx::query_scalar(
                "INSERT INTO sqlite_sequence (name, seq) \
                 SELECT 'attempts', COALESCE(MAX(id), 0) + $1 FROM attempts RETURNING seq",
            )
            .bind(n)
            .fetch_one(&mut **tx)
            .await?
        }
    };
    Ok(top - n + 1)
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
