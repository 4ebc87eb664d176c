//! PostgreSQL: the hot path of the queue. A claim is one statement (walk
//! the lanes, pick each one's share, lock with `SKIP LOCKED`, lease on the
//! database's clock, increment the attempt, join event and subscription); a batch's outcomes are one
//! statement: an `unnest` update of the deliveries, fenced by `(id, run,
//! attempt, claim, in_flight)`, which writes a delivered one's attempt on
//! its row, with an `unnest` insert of the other attempts.

use std::collections::HashSet;

use sqlx::{PgPool, Postgres, Transaction};

use crate::model::{ClaimToken, Completion};
use crate::store::rows::{ClaimRow, to_json};
use crate::store::{Result, plan};

/// Claims up to `limit` due deliveries for `node`, leased for `lease` ms,
/// fairly, in one statement: it walks up to `lanes` lanes (endpoints with
/// waiting deliveries) after `after` (`sql::LANES`' skip scan), takes at
/// most each one's share (`plan::fair_share`, here in SQL) and as much
/// from the tasks, oldest first, then round by round. Returns the claimed
/// rows, how many lanes the walk visited and the last one.
///
/// The picks are locked through the primary key (`d.id = ANY(…)`, which
/// says nothing new but pins the access path): joined on `id` alone, a
/// planner with stale statistics (a young table, before autovacuum's
/// first analyze) hashed the picks and scanned every waiting delivery,
/// 28 ms per claim with 90,000 waiting.
pub(crate) async fn claim(
    pool: &PgPool,
    node: &str,
    limit: u32,
    lanes: usize,
    lease: i64,
    after: Option<&str>,
) -> Result<(Vec<ClaimRow>, i64, Option<String>)> {
    let found: Vec<FairRow> = sqlx::query_as(concat!(
        "WITH RECURSIVE lanes(sid, n) AS ( \
            SELECT (SELECT MIN(subscription_id) FROM deliveries \
                    WHERE state IN ('pending', 'scheduled') \
                    AND subscription_id > COALESCE($4::text, '')), 1 \
            UNION ALL \
            SELECT (SELECT MIN(d.subscription_id) FROM deliveries d \
                    WHERE d.state IN ('pending', 'scheduled') AND d.subscription_id > l.sid), \
                l.n + 1 \
            FROM lanes l WHERE l.sid IS NOT NULL AND l.n < $5 \
         ), walked AS ( \
            SELECT COUNT(sid) AS c, MAX(sid) AS last, \
                LEAST($1, (2 * $1 + GREATEST(COUNT(sid), 1) - 1) / GREATEST(COUNT(sid), 1)) AS k \
            FROM lanes \
         ), picks AS ( \
            SELECT p.id, p.rn, p.at FROM lanes l CROSS JOIN LATERAL ( \
                SELECT d.id, d.next_attempt_at AS at, \
                    row_number() OVER (ORDER BY d.next_attempt_at) AS rn \
                FROM deliveries d WHERE d.subscription_id = l.sid \
                AND d.state IN ('pending', 'scheduled') AND d.next_attempt_at <= dispatch_now_ms() \
                ORDER BY d.next_attempt_at LIMIT (SELECT k FROM walked)) p \
            WHERE l.sid IS NOT NULL \
            UNION ALL SELECT t.id, row_number() OVER (ORDER BY t.at), t.at FROM ( \
                SELECT d.id, d.next_attempt_at AS at FROM deliveries d \
                WHERE d.subscription_id IS NULL AND d.state IN ('pending', 'scheduled') \
                AND d.next_attempt_at <= dispatch_now_ms() \
                ORDER BY d.next_attempt_at LIMIT (SELECT k FROM walked)) t \
         ), due AS ( \
            SELECT d.id FROM deliveries d JOIN picks p ON p.id = d.id \
            WHERE d.id = ANY(ARRAY(SELECT id FROM picks)) \
            AND d.state IN ('pending', 'scheduled') \
            ORDER BY p.rn, p.at LIMIT $1 FOR UPDATE OF d SKIP LOCKED \
         ), claimed AS ( \
            UPDATE deliveries d SET state = 'in_flight', attempts = d.attempts + 1, \
                claims = d.claims + 1, \
                lease_expires_at = dispatch_now_ms() + $2, leased_by = $3, \
                updated_at = dispatch_now_ms() \
            FROM due WHERE d.id = due.id RETURNING d.* \
         ) SELECT ",
        claim_columns!(),
        ", w.c AS walked, w.last AS last_lane \
          FROM claimed d JOIN events e ON e.id = d.event_id \
          LEFT JOIN subscriptions s ON s.id = d.subscription_id CROSS JOIN walked w \
          ORDER BY d.id"
    ))
    .bind(i64::from(limit))
    .bind(lease)
    .bind(node)
    .bind(after)
    .bind(i64::try_from(lanes).unwrap_or(i64::MAX))
    .fetch_all(pool)
    .await?;
    let (walked, last) = found
        .first()
        .map_or((0, None), |r| (r.walked, r.last_lane.clone()));
    Ok((found.into_iter().map(|r| r.claim).collect(), walked, last))
}

/// A claimed row with how far the claim's walk went.
#[derive(sqlx::FromRow)]
struct FairRow {
    #[sqlx(flatten)]
    claim: ClaimRow,
    walked: i64,
    last_lane: Option<String>,
}

/// Writes a batch's outcomes and attempts; returns how many deliveries
/// changed state (the others' tokens were stale) and which ordered ones
/// finished.
pub(crate) async fn write_outcomes(
    tx: &mut Transaction<'static, Postgres>,
    completions: &[Completion],
    parked: &HashSet<String>,
    now: i64,
) -> Result<(u64, Vec<i64>)> {
    let mut c = CompletionColumns::default();
    for x in completions {
        c.push(x, parked);
    }
    // One statement: the outcomes, and the attempts. A delivered one's
    // attempt is written on its row (`ok_*`, its id from the attempts'
    // sequence); the others, and every attempt whose token was stale, go
    // to `attempts`. No attempt row without its delivery (the schema has
    // no foreign key): the rows the update changed are locked by it until
    // commit, so nothing deletes them meanwhile; a late completion's
    // delivery (not updated) is locked here the way a foreign key check
    // would.
    let updated: Vec<(i64, bool)> = sqlx::query_as(concat!(
        "WITH u AS (UPDATE deliveries d SET state = v.state, \
            next_attempt_at = CASE WHEN v.state IN ('scheduled', 'paused') \
                THEN $14 + v.delay_ms ELSE d.next_attempt_at END, \
            lease_expires_at = NULL, leased_by = NULL, \
            last_status_code = v.status_code, last_error = v.error, \
            delivered_at = CASE WHEN v.state IN ('delivered', 'dropped') \
                THEN $14 ELSE d.delivered_at END, \
            dest_url = CASE WHEN v.t THEN v.t_url ELSE d.dest_url END, \
            dest_method = CASE WHEN v.t THEN v.t_method ELSE d.dest_method END, \
            dest_headers = CASE WHEN v.t THEN v.t_headers ELSE d.dest_headers END, \
            body = CASE WHEN v.t THEN v.t_body ELSE d.body END, \
            dest_type = CASE WHEN v.t THEN v.t_type ELSE d.dest_type END, \
            ok_id = CASE WHEN v.state = 'delivered' THEN nextval('attempts_id_seq') END, \
            ok_url = CASE WHEN v.state = 'delivered' THEN v.url END, \
            ok_duration_ms = CASE WHEN v.state = 'delivered' THEN v.duration_ms END, \
            ok_response_body = CASE WHEN v.state = 'delivered' THEN v.response_body END, \
            ok_at = CASE WHEN v.state = 'delivered' THEN v.created_at END, \
            updated_at = $14 \
         FROM unnest($1::int8[], $2::int4[], $3::int4[], $4::text[], $5::int8[], \
                     $6::int4[], $7::text[], $8::bool[], $9::text[], $10::text[], \
                     $11::text[], $12::text[], $13::text[], $15::int4[], $17::text[], \
                     $18::int8[], $19::text[], $20::int8[]) \
             AS v(id, run, attempt, state, delay_ms, status_code, error, \
                  t, t_url, t_method, t_headers, t_body, t_type, claim, url, \
                  duration_ms, response_body, created_at) \
         WHERE d.id = v.id AND d.run = v.run AND d.attempts = v.attempt \
           AND d.claims = v.claim AND d.state = 'in_flight'",
        exited!("d."),
        ", d.state = 'delivered' AS ok), \
         a AS (INSERT INTO attempts (delivery_id, event_id, run, attempt, url, status_code, \
            error, duration_ms, response_body, created_at) \
         SELECT x.delivery_id, x.event_id, x.run, x.attempt, x.url, x.status_code, x.error, \
            x.duration_ms, x.response_body, x.created_at \
         FROM unnest($1::int8[], $16::text[], $2::int4[], $3::int4[], $17::text[], \
                     $6::int4[], $7::text[], $18::int8[], $19::text[], $20::int8[]) \
             AS x(delivery_id, event_id, run, attempt, url, status_code, error, duration_ms, \
                  response_body, created_at) \
         WHERE NOT EXISTS (SELECT 1 FROM u WHERE u.id = x.delivery_id AND u.ok) \
           AND (x.delivery_id IN (SELECT id FROM u) \
            OR EXISTS (SELECT 1 FROM deliveries d WHERE d.id = x.delivery_id \
                AND d.id NOT IN (SELECT id FROM u) FOR KEY SHARE)) \
         ON CONFLICT DO NOTHING) \
         SELECT id, exited FROM u"
    ))
    .bind(&c.id)
    .bind(&c.run)
    .bind(&c.attempt)
    .bind(&c.state)
    .bind(&c.delay_ms)
    .bind(&c.status_code)
    .bind(&c.error)
    .bind(&c.transformed)
    .bind(&c.t_url)
    .bind(&c.t_method)
    .bind(&c.t_headers)
    .bind(&c.t_body)
    .bind(&c.t_type)
    .bind(now)
    .bind(&c.claim)
    .bind(&c.event_id)
    .bind(&c.url)
    .bind(&c.duration_ms)
    .bind(&c.response_body)
    .bind(&c.created_at)
    .fetch_all(&mut **tx)
    .await?;
    Ok(crate::store::plan::split_exits(updated))
}

/// Writes the circuits (and a 410's status) of a completion batch's
/// endpoints, whose rows the caller holds locked: one `unnest` update.
pub(crate) async fn update_circuits(
    tx: &mut Transaction<'static, Postgres>,
    updates: &[plan::EndpointUpdate],
    now: i64,
) -> Result<()> {
    let ids: Vec<&str> = updates.iter().map(|u| u.id.as_str()).collect();
    let states: Vec<&str> = updates.iter().map(|u| u.circuit.state.as_str()).collect();
    let failures: Vec<i32> = updates
        .iter()
        .map(|u| u.circuit.consecutive_failures)
        .collect();
    let opened: Vec<Option<i64>> = updates.iter().map(|u| u.circuit.opened_at).collect();
    let probe: Vec<Option<i64>> = updates.iter().map(|u| u.circuit.next_probe_at).collect();
    let ok: Vec<bool> = updates.iter().map(|u| u.succeeded).collect();
    let status: Vec<&str> = updates.iter().map(|u| u.status.as_str()).collect();
    let gone: Vec<bool> = updates.iter().map(|u| u.gone).collect();
    sqlx::query(
        "UPDATE subscriptions s SET circuit_state = v.state, consecutive_failures = v.failures, \
            circuit_opened_at = v.opened, circuit_next_probe_at = v.probe, \
            last_success_at = CASE WHEN v.ok THEN $9 ELSE s.last_success_at END, \
            status = v.status, \
            disabled_reason = CASE WHEN v.gone THEN $10 ELSE s.disabled_reason END \
         FROM unnest($1::text[], $2::text[], $3::int4[], $4::int8[], $5::int8[], $6::bool[], \
                     $7::text[], $8::bool[]) \
            AS v(id, state, failures, opened, probe, ok, status, gone) \
         WHERE s.id = v.id",
    )
    .bind(&ids)
    .bind(&states)
    .bind(&failures)
    .bind(&opened)
    .bind(&probe)
    .bind(&ok)
    .bind(&status)
    .bind(&gone)
    .bind(now)
    .bind(plan::GONE)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Hands claims back unattempted, each due after its delay.
pub(crate) async fn release(
    tx: &mut Transaction<'static, Postgres>,
    items: &[(ClaimToken, i64)],
) -> Result<u64> {
    let ids: Vec<i64> = items.iter().map(|(t, _)| t.id).collect();
    let runs: Vec<i32> = items.iter().map(|(t, _)| t.run).collect();
    let attempts: Vec<i32> = items.iter().map(|(t, _)| t.attempt).collect();
    let claims: Vec<i32> = items.iter().map(|(t, _)| t.claim).collect();
    let delays: Vec<i64> = items.iter().map(|(_, d)| *d).collect();
    let n = sqlx::query(
        "UPDATE deliveries d SET \
            state = CASE WHEN d.attempts > 1 THEN 'scheduled' ELSE 'pending' END, \
            attempts = d.attempts - 1, lease_expires_at = NULL, leased_by = NULL, \
            next_attempt_at = dispatch_now_ms() + v.delay_ms, updated_at = dispatch_now_ms() \
         FROM unnest($1::int8[], $2::int4[], $3::int4[], $4::int8[], $5::int4[]) \
            AS v(id, run, attempt, delay_ms, claim) \
         WHERE d.id = v.id AND d.run = v.run AND d.attempts = v.attempt \
           AND d.claims = v.claim AND d.state = 'in_flight'",
    )
    .bind(&ids)
    .bind(&runs)
    .bind(&attempts)
    .bind(&delays)
    .bind(&claims)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(n)
}

/// Completions, as parallel arrays for `unnest`.
#[derive(Default)]
struct CompletionColumns<'a> {
    id: Vec<i64>,
    event_id: Vec<&'a str>,
    run: Vec<i32>,
    attempt: Vec<i32>,
    claim: Vec<i32>,
    url: Vec<&'a str>,
    status_code: Vec<Option<i32>>,
    error: Vec<Option<&'a str>>,
    duration_ms: Vec<i64>,
    response_body: Vec<Option<&'a str>>,
    created_at: Vec<i64>,
    state: Vec<&'static str>,
    delay_ms: Vec<i64>,
    transformed: Vec<bool>,
    t_url: Vec<Option<&'a str>>,
    t_method: Vec<Option<&'a str>>,
    t_headers: Vec<Option<String>>,
    t_body: Vec<Option<&'a str>>,
    t_type: Vec<Option<&'a str>>,
}

impl<'a> CompletionColumns<'a> {
    fn push(&mut self, c: &'a Completion, parked: &HashSet<String>) {
        let a = &c.attempt;
        self.id.push(c.token.id);
        self.event_id.push(&a.event_id);
        self.run.push(c.token.run);
        self.attempt.push(c.token.attempt);
        self.claim.push(c.token.claim);
        self.url.push(&a.url);
        self.status_code.push(a.status_code);
        self.error.push(a.error.as_deref());
        self.duration_ms.push(a.duration_ms);
        self.response_body.push(a.response_body.as_deref());
        self.created_at.push(a.created_at);
        let (state, delay) = plan::final_state(c, parked);
        self.state.push(state.as_str());
        self.delay_ms.push(delay);
        let t = c.transformed.as_deref();
        self.transformed.push(t.is_some());
        self.t_url.push(t.and_then(|t| t.url.as_deref()));
        self.t_method.push(t.and_then(|t| t.method.as_deref()));
        self.t_headers
            .push(t.and_then(|t| t.headers.as_ref()).map(to_json));
        self.t_body.push(t.and_then(|t| t.body.as_deref()));
        self.t_type.push(t.and_then(|t| t.event_type.as_deref()));
    }
}
