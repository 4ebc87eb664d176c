//! The decisions a store makes, as pure functions both backends run: what
//! a batch of completions does to each endpoint's circuit, which state each
//! completion writes, and which inserted rows were the first copy of an
//! event. The backends only read the inputs and write the results.

use std::collections::{BTreeMap, HashSet};

use super::{Result, StoreError};
use crate::circuit::{self, CircuitPolicy, CircuitRow, Tally};
use crate::model::{
    CircuitState, Completion, DeliveryState, Event, InsertOutcome, Millis, NextState, RoutedEvent,
    SubscriptionStatus,
};

/// The reason recorded when a receiver answers 410 Gone.
pub(crate) const GONE: &str = "the receiver answered 410 Gone";

/// The error left on a delivery whose worker vanished mid-attempt.
pub(crate) const LEASE_EXPIRED: &str =
    "lease expired: the worker holding this delivery stopped before recording the attempt";

/// Hand-backs (its node died holding it) a delivery gets without using up
/// an attempt; later ones use one, so a delivery that kills its node every
/// time ends dead.
pub(crate) const FREE_HANDBACKS: i32 = 3;

/// The error left on a delivery handed back once its free hand-backs are
/// used up.
pub(crate) const HANDED_BACK: &str = "the node holding this delivery died before recording the \
     attempt, again: hand-backs past the third use up an attempt";

/// The reason recorded when the sweeper disables an endpoint.
pub(crate) const AUTO_DISABLED: &str =
    "disabled automatically: its circuit stayed open past circuit.auto_disable_after_hours";

/// What each endpoint's completions in a batch add up to, by subscription id
/// (sorted, so row locks are always taken in the same order).
pub(crate) fn tallies(completions: &[Completion]) -> BTreeMap<String, Tally> {
    let mut out: BTreeMap<String, Tally> = BTreeMap::new();
    for c in completions {
        // Tasks have no endpoint to keep health for.
        if let Some(sub) = &c.attempt.subscription_id
            && c.reached_endpoint
        {
            out.entry(sub.clone()).or_default().record(
                matches!(c.next, NextState::Delivered),
                c.attempt.status_code,
            );
        }
    }
    out
}

/// An endpoint's circuit and status as the completing transaction read
/// them (locked).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EndpointBefore {
    pub id: String,
    pub circuit: CircuitRow,
    pub status: SubscriptionStatus,
    pub last_success_at: Option<Millis>,
}

/// How fresh `last_success_at` is kept: a batch that only succeeds again
/// within this long of the recorded success writes nothing, so an
/// endpoint's row is not rewritten by every batch.
pub(crate) const SUCCESS_RESOLUTION_MS: Millis = 1000;

/// The new circuit columns of one endpoint.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EndpointUpdate {
    pub id: String,
    pub circuit: CircuitRow,
    /// Set `last_success_at` to the batch's time.
    pub succeeded: bool,
    pub status: SubscriptionStatus,
    /// A 410 disabled it in this batch (`disabled_reason` = `GONE`).
    pub gone: bool,
}

/// What a batch of completions does to its endpoints.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct EndpointPlan {
    pub updates: Vec<EndpointUpdate>,
    /// Endpoints whose retries are parked rather than scheduled.
    pub parked: HashSet<String>,
    /// Endpoints whose waiting deliveries must be parked now (the circuit
    /// opened, or a 410 disabled it).
    pub park: Vec<String>,
    /// Endpoints whose parked deliveries go back to the queue (the circuit
    /// closed).
    pub unpark: Vec<String>,
    /// A status changed: fan-out must see it (bump the version).
    pub status_changed: bool,
}

/// Runs the circuit breaker (`circuit::next`) over every endpoint of a
/// batch. `before` holds the rows found, in any order; endpoints deleted
/// meanwhile are simply absent.
pub(crate) fn plan_endpoints(
    before: &[EndpointBefore],
    tallies: &BTreeMap<String, Tally>,
    policy: &CircuitPolicy,
    now: Millis,
) -> EndpointPlan {
    let mut plan = EndpointPlan::default();
    for b in before {
        let Some(tally) = tallies.get(&b.id) else {
            continue;
        };
        let t = circuit::next(&b.circuit, tally, policy, now);
        let gone = tally.gone && b.status != SubscriptionStatus::Disabled;
        let status = if gone {
            SubscriptionStatus::Disabled
        } else {
            b.status
        };
        let active = status == SubscriptionStatus::Active;
        if t.row.state != CircuitState::Closed || !active {
            plan.parked.insert(b.id.clone());
        }
        if t.opened || gone {
            plan.park.push(b.id.clone());
        }
        if t.closed && active {
            plan.unpark.push(b.id.clone());
        }
        plan.status_changed |= gone;
        let unchanged = t.row == b.circuit && status == b.status;
        let success_known = !tally.succeeded
            || b.last_success_at
                .is_some_and(|at| now - at < SUCCESS_RESOLUTION_MS);
        if unchanged && success_known {
            continue;
        }
        plan.updates.push(EndpointUpdate {
            id: b.id.clone(),
            circuit: t.row,
            succeeded: tally.succeeded,
            status,
            gone,
        });
    }
    plan.updates.sort_by(|a, b| a.id.cmp(&b.id));
    plan
}

/// The endpoints of `before` whose rows a completing transaction on
/// PostgreSQL must lock (and read again) before acting on `plan`, made
/// from an unlocked read: all but those the batch only succeeded against
/// while nothing was to change (circuit closed and unchanged, status
/// active, last success recent). For those the batch writes nothing and
/// decides nothing (no retry to schedule or park), so it is as if it had
/// committed before any concurrent change of the row; locking them would
/// cost a row lock per endpoint per batch, a hundred when a batch spans a
/// hundred tenants.
pub(crate) fn to_lock(
    before: &[EndpointBefore],
    tallies: &BTreeMap<String, Tally>,
    plan: &EndpointPlan,
) -> Vec<String> {
    let touched = |id: &String| {
        plan.parked.contains(id)
            || plan.park.contains(id)
            || plan.unpark.contains(id)
            || plan.updates.iter().any(|u| &u.id == id)
            || tallies.get(id).is_some_and(|t| t.failed || t.gone)
    };
    let mut out: Vec<String> = before
        .iter()
        .map(|b| &b.id)
        .filter(|id| touched(id))
        .cloned()
        .collect();
    out.sort();
    out
}

/// The state a completion writes and the delay before it is due again: a
/// retry of a parked endpoint is parked.
pub(crate) fn final_state(c: &Completion, parked: &HashSet<String>) -> (DeliveryState, i64) {
    match c.next {
        NextState::Delivered => (DeliveryState::Delivered, 0),
        NextState::Dead => (DeliveryState::Dead, 0),
        NextState::Dropped => (DeliveryState::Dropped, 0),
        NextState::Retry { delay_ms } => {
            let sub = c.attempt.subscription_id.as_deref().unwrap_or("");
            if parked.contains(sub) {
                (DeliveryState::Paused, delay_ms)
            } else {
                (DeliveryState::Scheduled, delay_ms)
            }
        }
    }
}

/// The ordered deliveries of a group's inserted events, by line, each
/// line's in arrival order: `(event index, delivery index)`. A line's
/// deliveries get consecutive sequence numbers in this order.
pub(crate) fn lines(events: &[RoutedEvent], fresh: &[bool]) -> Lines {
    // (line, arrival, event index, delivery index), sorted: by line, then
    // in arrival order.
    let mut picks = Vec::new();
    for (ei, r) in events.iter().enumerate() {
        if !fresh.get(ei).copied().unwrap_or(false) {
            continue;
        }
        for (di, d) in r.deliveries.iter().enumerate() {
            if let (Some(sub), Some(key)) = (&d.subscription_id, &d.ordering_key) {
                picks.push(((sub.clone(), key.clone()), r.arrival, ei, di));
            }
        }
    }
    picks.sort_unstable();
    let mut out = Lines::new();
    for (line, _, ei, di) in picks {
        out.entry(line).or_default().push((ei, di));
    }
    out
}

/// Ordered deliveries by line: `(event index, delivery index)` in the
/// order they are numbered.
pub(crate) type Lines = BTreeMap<(String, String), Vec<(usize, usize)>>;

/// Each ordered delivery's sequence number, from the first number
/// `ordering::reserve` gave each line.
pub(crate) fn sequence(
    lines: &Lines,
    first: &BTreeMap<(String, String), i64>,
) -> std::collections::HashMap<(usize, usize), i64> {
    let mut out = std::collections::HashMap::new();
    for (line, picks) in lines {
        let start = first.get(line).copied().unwrap_or(1);
        for (offset, pick) in (0i64..).zip(picks) {
            out.insert(*pick, start + offset);
        }
    }
    out
}

/// A completion batch's changed rows, `(id, ordered and finished)`: how
/// many changed, and the ordered ones that left their key's line (the
/// rows say so, not the claims: a subscription may have switched to
/// `per_key` while they were in flight).
pub(crate) fn split_exits(rows: Vec<(i64, bool)>) -> (u64, Vec<i64>) {
    let n = rows.len() as u64;
    (
        n,
        rows.into_iter()
            .filter(|(_, e)| *e)
            .map(|(id, _)| id)
            .collect(),
    )
}

/// Which of `events` were inserted, given the `(id, idempotency_key)` of
/// each row the database inserted. Matching on both matters: a row skipped
/// for its idempotency key may share its id with a later row that was
/// inserted. Later copies of an identical pair are duplicates.
pub(crate) fn first_occurrences(
    events: &[RoutedEvent],
    inserted: &[(String, Option<String>)],
) -> Vec<bool> {
    let mut pending: HashSet<(&str, Option<&str>)> = inserted
        .iter()
        .map(|(id, key)| (id.as_str(), key.as_deref()))
        .collect();
    events
        .iter()
        .map(|e| pending.remove(&(e.event.id.as_str(), e.event.idempotency_key.as_deref())))
        .collect()
}

/// The outcome of each event given whether it was inserted and the stored
/// events the others' ids or idempotency keys collided with.
pub(crate) fn outcomes(
    events: &[RoutedEvent],
    fresh: &[bool],
    existing: &[Event],
) -> Result<Vec<InsertOutcome>> {
    events
        .iter()
        .zip(fresh)
        .map(|(e, &inserted)| {
            if inserted {
                return Ok(InsertOutcome::Inserted);
            }
            existing
                .iter()
                .find(|x| x.id == e.event.id)
                .or_else(|| {
                    let key = e.event.idempotency_key.as_deref()?;
                    existing
                        .iter()
                        .find(|x| x.idempotency_key.as_deref() == Some(key))
                })
                .cloned()
                .map(|e| InsertOutcome::Duplicate(Box::new(e)))
                .ok_or_else(|| {
                    StoreError::Conflict(format!(
                        "event {} conflicts with a stored event",
                        e.event.id
                    ))
                })
        })
        .collect()
}

/// The events that were not inserted: their ids and idempotency keys, to
/// look the stored copies up.
pub(crate) fn duplicates<'a>(
    events: &'a [RoutedEvent],
    fresh: &[bool],
) -> (Vec<&'a str>, Vec<&'a str>) {
    let dups = events
        .iter()
        .zip(fresh)
        .filter(|(_, f)| !**f)
        .map(|(e, _)| &e.event);
    let ids = dups.clone().map(|e| e.id.as_str()).collect();
    let keys = dups.filter_map(|e| e.idempotency_key.as_deref()).collect();
    (ids, keys)
}

/// An event's channels as stored: a JSON array, or NULL when it has none.
pub(crate) fn channels_json(channels: &[String]) -> Option<String> {
    (!channels.is_empty()).then(|| super::rows::to_json(channels))
}

/// How many lanes one fair claim of `limit` walks: a quarter of `limit`,
/// so each lane visited can offer a few deliveries and a claim spread over
/// many endpoints probes a quarter as many; lanes beyond wait their turn
/// in the next claims (round robin).
pub(crate) fn lanes_per_claim(limit: u32) -> usize {
    (limit as usize).div_ceil(4).max(1)
}

/// What one lane may offer a fair claim of `limit` over `lanes` lanes:
/// twice its even part (at most `limit`), so the picks fill the claim even
/// when some lanes have fewer due, and stay few enough to sort cheaply.
/// PostgreSQL's claim computes the same in SQL.
pub(crate) fn fair_share(limit: u32, lanes: usize) -> i64 {
    let n = i64::try_from(lanes).unwrap_or(i64::MAX).max(1);
    let limit = i64::from(limit);
    ((2 * limit + n - 1) / n).min(limit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AttemptRecord, ClaimToken};

    const P: CircuitPolicy = CircuitPolicy {
        failure_threshold: 2,
        cooldown_ms: 1000,
    };

    fn done(sub: &str, ok: bool, status: i32) -> Completion {
        Completion {
            token: ClaimToken {
                id: 1,
                run: 0,
                attempt: 1,
                claim: 1,
            },
            next: if ok {
                NextState::Delivered
            } else {
                NextState::Retry { delay_ms: 5 }
            },
            attempt: AttemptRecord {
                delivery_id: 1,
                event_id: "e".into(),
                subscription_id: Some(sub.into()),
                run: 0,
                attempt: 1,
                url: String::new(),
                status_code: Some(status),
                error: None,
                duration_ms: 0,
                response_body: None,
                created_at: 0,
            },
            reached_endpoint: true,
            transformed: None,
        }
    }

    fn before(id: &str, state: CircuitState, failures: i32) -> EndpointBefore {
        EndpointBefore {
            id: id.into(),
            circuit: CircuitRow {
                state,
                consecutive_failures: failures,
                opened_at: None,
                next_probe_at: None,
            },
            status: SubscriptionStatus::Active,
            last_success_at: None,
        }
    }

    #[test]
    fn a_batch_that_changes_nothing_writes_nothing() {
        let ok = [done("a", true, 200)];
        let t = tallies(&ok);
        let mut a = before("a", CircuitState::Closed, 0);
        a.last_success_at = Some(100 - SUCCESS_RESOLUTION_MS + 1);
        let plan = plan_endpoints(&[a.clone()], &t, &P, 100);
        assert!(plan.updates.is_empty(), "a recent success is known");
        a.last_success_at = Some(100 - SUCCESS_RESOLUTION_MS);
        let plan = plan_endpoints(&[a.clone()], &t, &P, 100);
        assert_eq!(plan.updates.len(), 1, "an older one is refreshed");
        let failed = [done("a", false, 500)];
        let plan = plan_endpoints(&[a], &tallies(&failed), &P, 100);
        assert_eq!(plan.updates.len(), 1, "a failure counts");
    }

    #[test]
    fn a_batch_opens_one_circuit_disables_on_410_and_closes_another() {
        let batch = [
            done("a", false, 500),
            done("a", false, 500),
            done("b", false, 410),
            done("c", true, 200),
        ];
        let t = tallies(&batch);
        let plan = plan_endpoints(
            &[
                before("c", CircuitState::HalfOpen, 3),
                before("a", CircuitState::Closed, 0),
                before("b", CircuitState::Closed, 0),
            ],
            &t,
            &P,
            100,
        );
        assert_eq!(plan.park, vec!["a".to_string(), "b".to_string()]);
        assert_eq!(plan.unpark, vec!["c".to_string()]);
        assert!(plan.status_changed);
        let ids: Vec<&str> = plan.updates.iter().map(|u| u.id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c"], "updates in lock order");
        assert_eq!(plan.updates[1].status, SubscriptionStatus::Disabled);
        assert!(plan.updates[1].gone);
        assert_eq!(
            final_state(&batch[0], &plan.parked).0,
            DeliveryState::Paused
        );
        assert_eq!(
            final_state(&batch[3], &plan.parked).0,
            DeliveryState::Delivered
        );
    }

    #[test]
    fn only_endpoints_a_batch_changes_or_decides_for_are_locked() {
        let batch = [
            done("quiet", true, 200),
            done("stale", true, 200),
            done("retry", false, 500),
            done("retry", true, 200),
            done("paused", true, 200),
        ];
        let t = tallies(&batch);
        let recent = |id: &str| {
            let mut b = before(id, CircuitState::Closed, 0);
            b.last_success_at = Some(1000);
            b
        };
        let mut paused = recent("paused");
        paused.status = SubscriptionStatus::Paused;
        let found = vec![
            recent("quiet"),
            before("stale", CircuitState::Closed, 0),
            recent("retry"),
            paused,
        ];
        let plan = plan_endpoints(&found, &t, &P, 1500);
        assert_eq!(
            to_lock(&found, &t, &plan),
            ["paused", "retry", "stale"],
            "a parked endpoint, a retry to schedule and a success to record are locked; \
             a quiet success is not"
        );
    }

    #[test]
    fn a_deleted_endpoint_is_skipped() {
        let t = tallies(&[done("gone", false, 500)]);
        assert_eq!(plan_endpoints(&[], &t, &P, 0), EndpointPlan::default());
    }
}
