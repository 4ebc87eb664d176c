//! SQLite: a group commit's events and deliveries, one statement per
//! table (the rows bound as one JSON array, unpacked by `json_each` in
//! array order, so the first copy of an id wins), in the transaction
//! `EventStore::insert_events` opened.

use std::collections::HashMap;

use sqlx::{Sqlite, Transaction};

use crate::model::{LeasedDelivery, Lessee, RoutedEvent, now_ms};
use crate::store::rows::{CreatedRow, to_json};
use crate::store::{Result, StoreError, plan, sql};

/// Inserts the group's events; returns which were inserted (the first
/// copy of each; `EventStore::insert_events` looks the others up).
pub(crate) async fn insert_events(
    tx: &mut Transaction<'static, Sqlite>,
    events: &[RoutedEvent],
    routed_at_version: i64,
) -> Result<Vec<bool>> {
    let version: i64 = sqlx::query_scalar(sql::VERSION)
        .fetch_one(&mut **tx)
        .await?;
    if version != routed_at_version {
        return Err(StoreError::StaleSubscriptions);
    }
    let event_rows: Vec<_> = events
        .iter()
        .map(|r| {
            let e = &r.event;
            (
                &e.id,
                e.kind.as_str(),
                &e.event_type,
                &e.source,
                &e.data,
                &e.idempotency_key,
                e.created_at,
                &e.tenant_id,
                plan::channels_json(&e.channels),
                &e.ordering_key,
            )
        })
        .collect();
    let inserted: Vec<(String, Option<String>)> = sqlx::query_as(
        "INSERT INTO events (id, kind, type, source, data, idempotency_key, created_at, \
         tenant_id, channels, ordering_key) \
         SELECT value->>0, value->>1, value->>2, value->>3, value->>4, value->>5, value->>6, \
            value->>7, value->>8, value->>9 \
         FROM json_each($1) WHERE true ORDER BY key \
         ON CONFLICT DO NOTHING RETURNING id, idempotency_key",
    )
    .bind(to_json(&event_rows))
    .fetch_all(&mut **tx)
    .await?;
    Ok(plan::first_occurrences(events, &inserted))
}

/// The insert of a group's deliveries (`$1`, one JSON array), created at
/// `$2`. One to a parked endpoint (paused, disabled, circuit not closed) is
/// created parked; an ordered one waits its turn; one marked leased is
/// leased for `$3` ms to node `$4`, as a claim would lease it, so it never
/// enters the waiting indexes (`deliveries_due`, `deliveries_lanes`: a page
/// per endpoint, and SQLite's WAL writes whole pages). Ids follow the
/// array. The endpoint is a join: SQLite flattens the inner select, so a
/// subquery would run once for each use of `state`.
macro_rules! insert_deliveries {
    () => {
        "INSERT INTO deliveries (event_id, subscription_id, dest_url, dest_method, \
         dest_headers, dest_secret, body, max_attempts, ordering_key, order_seq, state, \
         attempts, claims, lease_expires_at, leased_by, next_attempt_at, created_at, updated_at) \
         SELECT v->>0, v->>1, v->>2, v->>3, v->>4, v->>5, v->>6, v->>7, v->>8, v->>9, state, \
            state = 'in_flight', state = 'in_flight', \
            CASE WHEN state = 'in_flight' THEN $2 + $3 END, \
            CASE WHEN state = 'in_flight' THEN $4 END, $2, $2, $2 \
         FROM (SELECT j.key AS k, j.value AS v, CASE \
                WHEN j.value->>8 IS NOT NULL THEN 'held' \
                WHEN s.id IS NULL THEN 'pending' \
                WHEN s.status <> 'active' OR s.circuit_state <> 'closed' THEN 'paused' \
                WHEN j.value->>10 THEN 'in_flight' ELSE 'pending' END AS state \
            FROM json_each($1) AS j LEFT JOIN subscriptions s ON s.id = j.value->>1) \
         ORDER BY k"
    };
}

/// Inserts the deliveries of the fresh events (`fresh`), the ordered ones
/// `held` with their sequence number from `seqs` (by event and delivery
/// index), the ones marked `leased` leased to `lessee`; returns whether any
/// was created unleased (the workers must wake) and the leased ones.
pub(crate) async fn insert_deliveries(
    tx: &mut Transaction<'static, Sqlite>,
    events: &[RoutedEvent],
    fresh: &[bool],
    seqs: &HashMap<(usize, usize), i64>,
    lessee: Option<Lessee<'_>>,
) -> Result<(bool, Vec<LeasedDelivery>)> {
    let now = now_ms();
    let deliveries: Vec<_> = events
        .iter()
        .enumerate()
        .zip(fresh)
        .filter(|(_, f)| **f)
        .flat_map(|((ei, r), _)| {
            r.deliveries
                .iter()
                .enumerate()
                .map(move |(di, d)| (ei, di, &r.event.id, d))
        })
        .map(|(ei, di, event_id, d)| {
            let i = &d.inline;
            let seq = seqs.get(&(ei, di)).copied();
            (
                event_id,
                &d.subscription_id,
                &i.url,
                &i.method,
                i.headers.as_ref().map(to_json),
                &i.secret,
                &i.body,
                d.max_attempts,
                seq.and(d.ordering_key.as_deref()),
                seq,
                lessee.is_some() && d.leased,
            )
        })
        .collect();
    if deliveries.is_empty() {
        return Ok((false, Vec::new()));
    }
    // Rows come back when some were marked leased (`CreatedRow::leased`
    // skips the unleased, which return no event id).
    let lessee = lessee.filter(|_| deliveries.iter().any(|d| d.10));
    let statement = match lessee {
        Some(_) => concat!(
            insert_deliveries!(),
            " RETURNING id, run, attempts, claims, max_attempts, \
               CASE WHEN state = 'in_flight' THEN event_id END AS event_id, subscription_id"
        ),
        None => insert_deliveries!(),
    };
    let leased: Vec<CreatedRow> = sqlx::query_as(statement)
        .bind(to_json(&deliveries))
        .bind(now)
        .bind(lessee.map_or(0, |l| l.lease_ms))
        .bind(lessee.map(|l| l.node))
        .fetch_all(&mut **tx)
        .await?;
    let leased: Vec<LeasedDelivery> = leased.into_iter().filter_map(CreatedRow::leased).collect();
    Ok((leased.len() < deliveries.len(), leased))
}
