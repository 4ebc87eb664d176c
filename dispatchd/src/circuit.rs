//! The per-endpoint circuit breaker as a pure state transition.
//!
//! `closed`: deliveries flow; consecutive failures are counted. At
//! `failure_threshold` the circuit opens: the endpoint's waiting deliveries
//! are parked (`paused`, attempts not consumed) and new ones are created
//! parked. After `cooldown` the sweeper moves it to `half_open` and lets one
//! parked delivery through as a probe: success closes the circuit and
//! unparks everything; failure opens it for another cooldown. The store
//! applies `next` inside the transaction that records the attempts, with the
//! subscription's row locked whenever the batch changes or decides anything
//! for it (`store::plan::to_lock`), so every node sees one consistent circuit.

use crate::model::{CircuitState, Millis};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CircuitPolicy {
    pub failure_threshold: u32,
    pub cooldown_ms: i64,
}

/// What a batch of completions said about one endpoint, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    /// Any attempt succeeded.
    pub succeeded: bool,
    /// Any attempt failed (a retry may follow it).
    pub failed: bool,
    /// Failures after the last success (all failures if none succeeded).
    pub trailing_failures: u32,
    /// The receiver answered 410 Gone: the subscription is disabled.
    pub gone: bool,
}

impl Tally {
    pub fn record(&mut self, success: bool, status_code: Option<i32>) {
        if success {
            self.succeeded = true;
            self.trailing_failures = 0;
        } else {
            self.failed = true;
            self.trailing_failures += 1;
        }
        if status_code == Some(410) {
            self.gone = true;
        }
    }
}

/// The circuit columns of a subscription.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CircuitRow {
    pub state: CircuitState,
    pub consecutive_failures: i32,
    pub opened_at: Option<Millis>,
    pub next_probe_at: Option<Millis>,
}

/// The new circuit columns, and whether deliveries must be parked or
/// unparked as a result.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub row: CircuitRow,
    /// Closed (or half-open) → open: park the endpoint's waiting deliveries.
    pub opened: bool,
    /// Open or half-open → closed: unpark them.
    pub closed: bool,
}

pub fn next(before: &CircuitRow, tally: &Tally, policy: &CircuitPolicy, now: Millis) -> Transition {
    let failures = if tally.succeeded {
        tally.trailing_failures as i32
    } else {
        before.consecutive_failures + tally.trailing_failures as i32
    };
    let was_closed = before.state == CircuitState::Closed;
    let open = tally.trailing_failures > 0
        && (failures >= policy.failure_threshold as i32
            || (before.state == CircuitState::HalfOpen && !tally.succeeded)
            || (before.state == CircuitState::Open && !tally.succeeded));
    if open {
        return Transition {
            row: CircuitRow {
                state: CircuitState::Open,
                consecutive_failures: failures,
                // The streak's start: kept across re-openings, so the
                // auto-disable window measures the whole outage.
                opened_at: if was_closed {
                    Some(now)
                } else {
                    before.opened_at.or(Some(now))
                },
                next_probe_at: Some(now + policy.cooldown_ms),
            },
            opened: before.state != CircuitState::Open,
            closed: false,
        };
    }
    if tally.succeeded {
        return Transition {
            row: CircuitRow {
                state: CircuitState::Closed,
                consecutive_failures: failures,
                opened_at: None,
                next_probe_at: None,
            },
            opened: false,
            closed: !was_closed,
        };
    }
    Transition {
        row: CircuitRow {
            consecutive_failures: failures,
            ..*before
        },
        opened: false,
        closed: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: CircuitPolicy = CircuitPolicy {
        failure_threshold: 3,
        cooldown_ms: 1000,
    };

    fn closed(failures: i32) -> CircuitRow {
        CircuitRow {
            state: CircuitState::Closed,
            consecutive_failures: failures,
            opened_at: None,
            next_probe_at: None,
        }
    }

    fn tally(events: &[bool]) -> Tally {
        let mut t = Tally::default();
        for ok in events {
            t.record(*ok, Some(if *ok { 200 } else { 500 }));
        }
        t
    }

    #[test]
    fn opens_at_the_threshold() {
        let t = next(&closed(1), &tally(&[false]), &P, 10);
        assert_eq!((t.row.state, t.opened), (CircuitState::Closed, false));
        assert_eq!(t.row.consecutive_failures, 2);
        let t = next(&t.row, &tally(&[false]), &P, 20);
        assert_eq!((t.row.state, t.opened), (CircuitState::Open, true));
        assert_eq!(t.row.opened_at, Some(20));
        assert_eq!(t.row.next_probe_at, Some(1020));
    }

    #[test]
    fn a_success_resets_and_closes() {
        let t = next(&closed(2), &tally(&[false, true]), &P, 10);
        assert_eq!(
            (t.row.state, t.row.consecutive_failures),
            (CircuitState::Closed, 0)
        );
        // Failures after the last success are what count.
        let t = next(&closed(2), &tally(&[true, false, false]), &P, 10);
        assert_eq!(
            (t.row.state, t.row.consecutive_failures),
            (CircuitState::Closed, 2)
        );
        let t = next(&closed(0), &tally(&[true, false, false, false]), &P, 10);
        assert_eq!(t.row.state, CircuitState::Open);
    }

    #[test]
    fn half_open_probe_decides() {
        let half = CircuitRow {
            state: CircuitState::HalfOpen,
            consecutive_failures: 5,
            opened_at: Some(1),
            next_probe_at: None,
        };
        let failed = next(&half, &tally(&[false]), &P, 50);
        assert_eq!(
            (failed.row.state, failed.opened),
            (CircuitState::Open, true)
        );
        assert_eq!(
            failed.row.opened_at,
            Some(1),
            "the outage started at the first opening"
        );
        let ok = next(&half, &tally(&[true]), &P, 50);
        assert_eq!((ok.row.state, ok.closed), (CircuitState::Closed, true));
        assert_eq!(ok.row.opened_at, None);
    }

    #[test]
    fn gone_is_reported() {
        let mut t = Tally::default();
        t.record(false, Some(410));
        assert!(t.gone);
    }
}
