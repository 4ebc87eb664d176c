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
    // A delivery to a parked endpoint (paused, disabled, circuit not
    // closed) is created parked; an ordered one waits its turn.
    let inserted = sqlx::query(
        "INSERT INTO deliveries (event_id, subscription_id, dest_url, dest_method, \
         dest_headers, dest_secret, body, max_attempts, ordering_key, order_seq, state, \
         next_attempt_at, created_at, updated_at) \
         SELECT j.value->>0, j.value->>1, j.value->>2, j.value->>3, j.value->>4, \
            j.value->>5, j.value->>6, j.value->>7, j.value->>8, j.value->>9, \
            CASE WHEN j.value->>8 IS NOT NULL THEN 'held' ELSE COALESCE((SELECT CASE \
                WHEN s.status <> 'active' OR s.circuit_state <> 'closed' \
                THEN 'paused' ELSE 'pending' END FROM subscriptions s \
                WHERE s.id = j.value->>1), 'pending') END, \
            $2, $2, $2 \
         FROM json_each($1) AS j ORDER BY j.key",
    )
    .bind(to_json(&deliveries))
    .bind(now)
    .execute(&mut **tx)
    .await?;
    let Some(lessee) = lessee.filter(|_| deliveries.iter().any(|d| d.10)) else {
        return Ok((true, Vec::new()));
    };
    // The ones this node has a send slot for are then leased to it, as
    // a claim would lease them, unless they were created parked. The
    // statement's rows took the last ids in array order: this transaction
    // is the only writer, and AUTOINCREMENT ids ascend one by one. The
    // pages are this transaction's already: SQLite writes each once.
    let last = inserted.last_insert_rowid();
    let first = last - i64::try_from(inserted.rows_affected()).unwrap_or(i64::MAX) + 1;
    let ids: Vec<i64> = (first..=last)
        .zip(&deliveries)
        .filter_map(|(id, d)| d.10.then_some(id))
        .collect();
    let leased: Vec<CreatedRow> = sqlx::query_as(
        "UPDATE deliveries SET state = 'in_flight', attempts = 1, claims = 1, \
            lease_expires_at = $2 + $3, leased_by = $4 \
         WHERE id IN (SELECT value FROM json_each($1)) AND state = 'pending' \
         RETURNING id, run, attempts, claims, max_attempts, event_id, subscription_id",
    )
    .bind(to_json(&ids))
    .bind(now)
    .bind(lessee.lease_ms)
    .bind(lessee.node)
    .fetch_all(&mut **tx)
    .await?;
    let leased: Vec<LeasedDelivery> = leased.into_iter().filter_map(CreatedRow::leased).collect();
    Ok((leased.len() < deliveries.len(), leased))
}
