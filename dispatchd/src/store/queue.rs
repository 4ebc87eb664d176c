//! The queue role. Claims and the batched writes of a completion are each
//! dialect's own hot path (`postgres::queue`, `sqlite::queue`); what a
//! batch of completions decides — the circuit of each endpoint, which
//! retries are parked — is `plan`, run here once for both.

use std::time::Duration;

use async_trait::async_trait;

use super::rows::{self, EndpointRow};
use super::{Backend, Result, ordering, plan, postgres, sql, sqlite};
use crate::circuit::CircuitPolicy;
use crate::model::{ClaimToken, ClaimedDelivery, Completion, DeliveryState};

/// The delivery queue: claim, complete, release.
#[async_trait]
pub trait QueueStore: Backend {
    /// Claims up to `limit` due deliveries for `node` under a lease of
    /// `lease`, incrementing each one's attempt number. A claimed row this
    /// version cannot read is not sent: it becomes a dead letter whose
    /// error names the row and column (visible, replayable once fixed),
    /// and the rest of the batch goes on.
    ///
    /// Claims are fair: each endpoint (lane) gets its turn. A claim walks
    /// up to a quarter of `limit` lanes with waiting deliveries
    /// (`plan::lanes_per_claim`), starting after the
    /// last lane the previous claim reached (round robin, so every lane
    /// is visited however many there are), takes at most its share,
    /// `2 × limit / lanes`, from each (and from the tasks), and orders the
    /// picks round by round. A backlog on one endpoint then
    /// delays the others by at most one claim.
    async fn claim(&self, node: &str, limit: u32, lease: Duration) -> Result<Vec<ClaimedDelivery>> {
        let lease = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
        let found = on!(
            self.writes(),
            pg => |p| claim_postgres(self, p, node, limit, lease).await?,
            sqlite => |p| claim_sqlite(self, p, node, limit, lease).await?,
        );
        let mut claimed = Vec::with_capacity(found.len());
        let mut corrupt = Vec::new();
        for row in found {
            let id = row.id;
            match ClaimedDelivery::try_from(row) {
                Ok(d) => claimed.push(d),
                Err(e) => corrupt.push((id, e.to_string())),
            }
        }
        if !corrupt.is_empty() {
            let mut tx = self.writes().begin(self.work()).await?;
            let now = tx.now().await?;
            for (id, error) in &corrupt {
                tracing::error!(delivery = id, %error, "a claimed delivery cannot be read: dead-lettered");
                on!(tx, |c| {
                    sqlx::query(sql::DEAD_CORRUPT)
                        .bind(id)
                        .bind(error)
                        .bind(now)
                        .execute(&mut **c)
                        .await?;
                });
            }
            let ids: Vec<i64> = corrupt.iter().map(|(id, _)| *id).collect();
            ordering::after_exit(&mut tx, &ids).await?;
            tx.commit().await?;
        }
        Ok(claimed)
    }

    /// Writes attempts and moves deliveries to their next state, all in one
    /// transaction. A completion whose token no longer matches the row (the
    /// lease expired and someone else claimed it) changes no state; its
    /// attempt is still recorded. In the same transaction it keeps each
    /// endpoint's circuit (`plan::plan_endpoints`): a retry of an endpoint
    /// whose circuit is open, or that is not active, is parked (`paused`); a
    /// 410 disables the subscription. Returns how many deliveries changed
    /// state.
    async fn complete(&self, completions: &[Completion], policy: &CircuitPolicy) -> Result<u64> {
        if completions.is_empty() {
            return Ok(0);
        }
        let tallies = plan::tallies(completions);
        let mut tx = self.writes().begin(self.work()).await?;
        if tallies.values().any(|t| t.gone) {
            // A 410 changes a subscription's status: order it against
            // ingest like any subscription change (version row first).
            tx.bump_version().await?;
        }
        let ids: Vec<&str> = tallies.keys().map(String::as_str).collect();
        let before = read_endpoints(&mut tx, &ids, false).await?;
        let now = tx.now().await?;
        let mut endpoints = plan::plan_endpoints(&before, &tallies, policy, now);
        // PostgreSQL: the read above took no locks; the endpoints the plan
        // writes or decides for are locked and planned again from their
        // latest rows (SQLite's single writer already orders the read).
        if tx.is_pg() {
            let lock = plan::to_lock(&before, &tallies, &endpoints);
            if !lock.is_empty() {
                let ids: Vec<&str> = lock.iter().map(String::as_str).collect();
                let locked = read_endpoints(&mut tx, &ids, true).await?;
                endpoints = plan::plan_endpoints(&locked, &tallies, policy, now);
            }
        }
        // Every endpoint of the batch in one statement: a batch spread over
        // many endpoints (one per tenant) costs no more round trips.
        if !endpoints.updates.is_empty() {
            let u = &endpoints.updates;
            on!(
                tx,
                pg => |c| postgres::queue::update_circuits(c, u, now).await?,
                sqlite => |c| sqlite::queue::update_circuits(c, u, now).await?,
            );
        }
        let parked = &endpoints.parked;
        let (changed, exits) = on!(
            tx,
            pg => |c| postgres::queue::write_outcomes(c, completions, parked, now).await?,
            sqlite => |c| sqlite::queue::write_outcomes(c, completions, parked, now).await?,
        );
        tx.park(&endpoints.park, false).await?;
        tx.park(&endpoints.unpark, true).await?;
        // An ordered delivery that finished lets the next of its key go.
        // Unordered batches skip this: no statement is added for them.
        if !exits.is_empty() {
            ordering::after_exit(&mut tx, &exits).await?;
        }
        let retries = completions
            .iter()
            .any(|c| plan::final_state(c, parked).0 == DeliveryState::Scheduled);
        if retries || !endpoints.unpark.is_empty() {
            tx.wake().await?;
        }
        tx.commit().await?;
        if endpoints.status_changed {
            self.cache().invalidate();
        }
        Ok(changed)
    }

    /// Hands claimed deliveries back unattempted, each due again after its
    /// delay in milliseconds (0 at graceful shutdown; the wait for a
    /// rate-limit slot otherwise). No attempt is consumed.
    async fn release(&self, items: &[(ClaimToken, i64)]) -> Result<u64> {
        if items.is_empty() {
            return Ok(0);
        }
        let mut tx = self.writes().begin(self.work()).await?;
        let n = on!(
            tx,
            pg => |c| postgres::queue::release(c, items).await?,
            sqlite => |c| sqlite::queue::release(c, items, crate::model::now_ms()).await?,
        );
        tx.wake().await?;
        tx.commit().await?;
        Ok(n)
    }

    /// Milliseconds until the earliest waiting delivery is due (negative when
    /// overdue), or `None` when nothing waits. Workers sleep that long.
    async fn next_due_in_ms(&self) -> Result<Option<i64>> {
        // On PostgreSQL the database's clock, in the same statement.
        Ok(on!(
            self.reads(),
            pg => |p|
                sqlx::query_scalar::<_, Option<i64>>(concat!(
                    "SELECT MIN(next_attempt_at) - dispatch_now_ms() FROM deliveries ",
                    "WHERE state IN ('pending', 'scheduled')"
                ))
                .fetch_one(p)
                .await?,
            sqlite => |p|
                sqlx::query_scalar::<_, Option<i64>>(sql::NEXT_DUE)
                    .fetch_one(p)
                    .await?
                    .map(|at| at - crate::model::now_ms()),
        ))
    }
}

/// The circuit and status of endpoints `ids`; on PostgreSQL locked when
/// `lock`, in id order, so two batches never wait on each other in a
/// cycle. An endpoint row this version cannot read is left out: it keeps
/// its circuit as it is, and its deliveries' outcomes are still written.
/// The unlocked read on PostgreSQL also reads the transaction's clock,
/// which saves the completion a round trip of its own.
async fn read_endpoints(
    tx: &mut super::db::Tx,
    ids: &[&str],
    lock: bool,
) -> Result<Vec<plan::EndpointBefore>> {
    let found: Vec<EndpointRow> = on!(
        tx,
        pg => |c| {
            let q = if lock {
                concat!(endpoint_columns!(), " FROM subscriptions WHERE id = ANY($1) ORDER BY id FOR UPDATE")
            } else {
                concat!(
                    endpoint_columns!(),
                    ", (SELECT dispatch_now_ms()) AS now FROM subscriptions WHERE id = ANY($1)"
                )
            };
            sqlx::query_as(q).bind(ids).fetch_all(&mut **c).await?
        },
        sqlite => |c|
            sqlx::query_as(concat!(
                endpoint_columns!(),
                " FROM subscriptions WHERE id IN (SELECT value FROM json_each($1))"
            ))
            .bind(rows::to_json(&ids))
            .fetch_all(&mut **c)
            .await?,
    );
    if let Some(now) = found.first().and_then(|r| r.now) {
        tx.set_now(now);
    }
    Ok(found
        .into_iter()
        .filter_map(|r| {
            plan::EndpointBefore::try_from(r)
                .map_err(|e| tracing::error!(error = %e, "circuit not updated"))
                .ok()
        })
        .collect())
}

/// PostgreSQL: the walk and the claim are one statement, which also says
/// how far the walk went. Only when nothing was due in the lanes it
/// visited does a separate walk look further (after them, then from the
/// first lane), so lanes past many idle ones are reached all the same.
async fn claim_postgres<S: Backend + ?Sized>(
    store: &S,
    pool: &sqlx::PgPool,
    node: &str,
    limit: u32,
    lease: i64,
) -> Result<Vec<rows::ClaimRow>> {
    let want = plan::lanes_per_claim(limit);
    let mut after = store.lanes().get();
    let mut wrapped = after.is_none();
    loop {
        let (found, walked, last) =
            postgres::queue::claim(pool, node, limit, want, lease, after.as_deref()).await?;
        if !found.is_empty() {
            let capped = usize::try_from(walked).unwrap_or(usize::MAX) >= want;
            store.lanes().set(capped.then_some(last).flatten());
            return Ok(found);
        }
        let lanes = walk_lanes(store, after.as_deref(), want).await?;
        if lanes.len() >= want {
            after = lanes.last().cloned();
        } else if !wrapped {
            after = None;
            wrapped = true;
        } else {
            store.lanes().set(None);
            return Ok(found);
        }
    }
}

/// SQLite: walk the lanes (after the cursor, then from the first if the
/// end came first), then claim from them.
async fn claim_sqlite<S: Backend + ?Sized>(
    store: &S,
    pool: &sqlx::SqlitePool,
    node: &str,
    limit: u32,
    lease: i64,
) -> Result<Vec<rows::ClaimRow>> {
    let want = plan::lanes_per_claim(limit);
    let after = store.lanes().get();
    let mut lanes = walk_lanes(store, after.as_deref(), want).await?;
    if after.is_some() && lanes.len() < want {
        for lane in walk_lanes(store, None, want - lanes.len()).await? {
            if !lanes.contains(&lane) {
                lanes.push(lane);
            }
        }
    }
    // Short of `limit`: every lane was reached, start from the first next
    // time; else after the last one reached.
    let next = (lanes.len() >= want)
        .then(|| lanes.last().cloned())
        .flatten();
    store.lanes().set(next);
    let share = plan::fair_share(limit, lanes.len());
    sqlite::queue::claim(pool, node, limit, lease, &lanes, share).await
}

/// Up to `n` endpoints with waiting deliveries, in id order, after `after`.
async fn walk_lanes<S: Backend + ?Sized>(
    store: &S,
    after: Option<&str>,
    n: usize,
) -> Result<Vec<String>> {
    let n = i64::try_from(n).unwrap_or(i64::MAX);
    Ok(on!(store.writes(), |p| sqlx::query_scalar(sql::LANES)
        .bind(after)
        .bind(n)
        .fetch_all(p)
        .await?))
}

/// Where the next claim's walk over the lanes starts: after this
/// endpoint, or from the first when `None`.
#[derive(Default)]
#[doc(hidden)]
pub struct LaneCursor(std::sync::Mutex<Option<String>>);

impl LaneCursor {
    fn get(&self) -> Option<String> {
        self.0.lock().expect("cursor lock").clone()
    }
    fn set(&self, v: Option<String>) {
        *self.0.lock().expect("cursor lock") = v;
    }
}
