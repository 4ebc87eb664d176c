//! PostgreSQL: a group commit's events and deliveries, one `unnest`
//! statement per table, in the transaction `EventStore::insert_events`
//! opened (which sequences the ordered deliveries in between).

use std::collections::HashMap;

use sqlx::{Postgres, Transaction};

use crate::model::{Event, LeasedDelivery, Lessee, NewDelivery, RoutedEvent, Secret};
use crate::store::rows::{CreatedRow, int, to_json};
use crate::store::{Result, StoreError, plan};

/// Inserts the group's events; returns which were inserted (the first
/// copy of each; `EventStore::insert_events` looks the others up).
pub(crate) async fn insert_events(
    tx: &mut Transaction<'static, Postgres>,
    events: &[RoutedEvent],
    routed_at_version: i64,
) -> Result<Vec<bool>> {
    let mut e = EventColumns::default();
    for r in events {
        e.push(&r.event);
    }
    // The version row FOR SHARE, in the insert's own statement: a
    // subscription change (which updates this row first) waits for
    // in-flight ingests, and ingests wait for it, so fan-out and
    // subscription changes are ordered, never interleaved. A moved version
    // inserts nothing; one row always comes back to carry it.
    // Rows go in sorted by id (see `ingest`), so concurrent batches
    // take unique-index locks in the same order and do not deadlock.
    let rows: Vec<(i64, Option<String>, Option<String>)> = sqlx::query_as(
        "WITH v AS (SELECT value FROM dispatch_meta WHERE key = 'subscriptions_version' \
            FOR SHARE), \
         ins AS (INSERT INTO events (id, kind, type, source, data, idempotency_key, \
            created_at, tenant_id, channels, ordering_key) \
            SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], \
                                 $6::text[], $7::int8[], $8::text[], $9::text[], $10::text[]) \
            WHERE (SELECT value FROM v) = $11 \
            ON CONFLICT DO NOTHING RETURNING id, idempotency_key) \
         SELECT (SELECT value FROM v), ins.id, ins.idempotency_key \
         FROM (SELECT 1) AS one LEFT JOIN ins ON true",
    )
    .bind(&e.id)
    .bind(&e.kind)
    .bind(&e.event_type)
    .bind(&e.source)
    .bind(&e.data)
    .bind(&e.idempotency_key)
    .bind(&e.created_at)
    .bind(&e.tenant_id)
    .bind(&e.channels)
    .bind(&e.ordering_key)
    .bind(routed_at_version)
    .fetch_all(&mut **tx)
    .await?;
    if rows.first().map(|r| r.0) != Some(routed_at_version) {
        return Err(StoreError::StaleSubscriptions);
    }
    let inserted: Vec<(String, Option<String>)> = rows
        .into_iter()
        .filter_map(|(_, id, key)| id.map(|id| (id, key)))
        .collect();
    Ok(plan::first_occurrences(events, &inserted))
}

/// Inserts the deliveries of the fresh events (`fresh`), the ordered ones
/// `held` with their sequence number from `seqs` (by event and delivery
/// index), the ones marked `leased` leased to `lessee`; returns whether any
/// was created unleased (the workers must wake) and the leased ones.
pub(crate) async fn insert_deliveries(
    tx: &mut Transaction<'static, Postgres>,
    events: &[RoutedEvent],
    fresh: &[bool],
    seqs: &HashMap<(usize, usize), i64>,
    lessee: Option<Lessee<'_>>,
) -> Result<(bool, Vec<LeasedDelivery>)> {
    let mut d = DeliveryColumns::default();
    for (ei, (r, _)) in events
        .iter()
        .zip(fresh)
        .enumerate()
        .filter(|(_, (_, f))| **f)
    {
        for (di, nd) in r.deliveries.iter().enumerate() {
            d.push(
                &r.event.id,
                nd,
                seqs.get(&(ei, di)).copied(),
                lessee.is_some(),
            )?;
        }
    }
    if d.event_id.is_empty() {
        return Ok((false, Vec::new()));
    }
    // A delivery to a parked endpoint (paused, disabled, circuit not
    // closed) is created parked; an ordered one waits its turn; one the
    // ingesting node has a send slot for is created leased to it, as
    // the claim would lease it. Ids follow the group's order (the join
    // may not keep it), as on SQLite: a subscription switched to per_key
    // later lines up its waiting deliveries by id.
    let created: Vec<CreatedRow> = sqlx::query_as(
        "WITH created AS ( \
            INSERT INTO deliveries (event_id, subscription_id, dest_url, dest_method, \
                dest_headers, dest_secret, body, max_attempts, ordering_key, order_seq, state, \
                attempts, claims, lease_expires_at, leased_by, \
                next_attempt_at, created_at, updated_at) \
            SELECT t.event_id, t.subscription_id, t.url, t.method, t.headers, t.secret, \
                t.body, t.max_attempts, t.ordering_key, t.order_seq, x.state, \
                CASE WHEN x.state = 'in_flight' THEN 1 ELSE 0 END, \
                CASE WHEN x.state = 'in_flight' THEN 1 ELSE 0 END, \
                CASE WHEN x.state = 'in_flight' THEN dispatch_now_ms() + $12 END, \
                CASE WHEN x.state = 'in_flight' THEN $13 END, \
                dispatch_now_ms(), dispatch_now_ms(), dispatch_now_ms() \
            FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], \
                        $6::text[], $7::text[], $8::int4[], $9::text[], $10::int8[], \
                        $11::bool[]) WITH ORDINALITY \
                AS t(event_id, subscription_id, url, method, headers, secret, body, \
                     max_attempts, ordering_key, order_seq, leased, ord) \
            LEFT JOIN subscriptions s ON s.id = t.subscription_id \
            CROSS JOIN LATERAL (SELECT CASE WHEN t.ordering_key IS NOT NULL THEN 'held' \
                WHEN s.status <> 'active' OR s.circuit_state <> 'closed' THEN 'paused' \
                WHEN t.leased AND s.id IS NOT NULL THEN 'in_flight' \
                ELSE 'pending' END AS state) x \
            ORDER BY t.ord \
            RETURNING id, run, attempts, claims, max_attempts, event_id, subscription_id, state \
         ) SELECT id, run, attempts, claims, max_attempts, event_id, subscription_id \
         FROM created \
         WHERE state = 'in_flight'",
    )
    .bind(&d.event_id)
    .bind(&d.subscription_id)
    .bind(&d.url)
    .bind(&d.method)
    .bind(&d.headers)
    .bind(&d.secret)
    .bind(&d.body)
    .bind(&d.max_attempts)
    .bind(&d.ordering_key)
    .bind(&d.order_seq)
    .bind(&d.leased)
    .bind(lessee.map_or(0, |l| l.lease_ms))
    .bind(lessee.map(|l| l.node))
    .fetch_all(&mut **tx)
    .await?;
    let wake = created.len() < d.event_id.len();
    let leased = created.into_iter().filter_map(CreatedRow::leased).collect();
    Ok((wake, leased))
}

/// Events to insert, as parallel arrays for `unnest`.
#[derive(Default)]
struct EventColumns<'a> {
    id: Vec<&'a str>,
    kind: Vec<&'a str>,
    event_type: Vec<&'a str>,
    source: Vec<Option<&'a str>>,
    data: Vec<&'a str>,
    idempotency_key: Vec<Option<&'a str>>,
    created_at: Vec<i64>,
    tenant_id: Vec<Option<&'a str>>,
    channels: Vec<Option<String>>,
    ordering_key: Vec<Option<&'a str>>,
}

impl<'a> EventColumns<'a> {
    fn push(&mut self, e: &'a Event) {
        self.id.push(&e.id);
        self.kind.push(e.kind.as_str());
        self.event_type.push(&e.event_type);
        self.source.push(e.source.as_deref());
        self.data.push(&e.data);
        self.idempotency_key.push(e.idempotency_key.as_deref());
        self.created_at.push(e.created_at);
        self.tenant_id.push(e.tenant_id.as_deref());
        self.channels.push(plan::channels_json(&e.channels));
        self.ordering_key.push(e.ordering_key.as_deref());
    }
}

/// Deliveries to insert, as parallel arrays for `unnest`.
#[derive(Default)]
struct DeliveryColumns<'a> {
    event_id: Vec<&'a str>,
    subscription_id: Vec<Option<&'a str>>,
    url: Vec<Option<&'a str>>,
    method: Vec<Option<&'a str>>,
    headers: Vec<Option<String>>,
    secret: Vec<Option<&'a str>>,
    body: Vec<Option<&'a str>>,
    max_attempts: Vec<i32>,
    ordering_key: Vec<Option<&'a str>>,
    order_seq: Vec<Option<i64>>,
    leased: Vec<bool>,
}

impl<'a> DeliveryColumns<'a> {
    fn push(
        &mut self,
        event_id: &'a str,
        d: &'a NewDelivery,
        seq: Option<i64>,
        lessee: bool,
    ) -> Result<()> {
        self.event_id.push(event_id);
        self.subscription_id.push(d.subscription_id.as_deref());
        self.url.push(d.inline.url.as_deref());
        self.method.push(d.inline.method.as_deref());
        self.headers.push(d.inline.headers.as_ref().map(to_json));
        self.secret
            .push(d.inline.secret.as_ref().map(Secret::expose));
        self.body.push(d.inline.body.as_deref());
        self.max_attempts.push(int(d.max_attempts, "max_attempts")?);
        // Ordered only with its sequence number (a line of one).
        let key = seq.and(d.ordering_key.as_deref());
        self.ordering_key.push(key);
        self.order_seq.push(key.and(seq));
        self.leased.push(lessee && d.leased);
        Ok(())
    }
}
