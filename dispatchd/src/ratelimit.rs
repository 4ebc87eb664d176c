//! Per-endpoint rate limits: pacing by virtual scheduling (GCRA).
//!
//! Each endpoint has a "next free slot" time. A send takes the slot
//! `max(now, next_free)` and moves `next_free` one interval (1 / rate) on.
//! A slot less than `max_wait` away is waited for; a later one is not taken:
//! the delivery is handed back to the queue, due when its slot would come,
//! so a long backlog never holds in-flight slots or outlives a lease.
//!
//! Across nodes the limit is split: each node paces at `rate / live nodes`
//! (nodes counted from the heartbeat table), which keeps the total near the
//! limit while the nodes share the work evenly. It is approximate by design:
//! a node that just joined or died skews it until the next heartbeat.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The longest a send waits for its rate-limit slot before the delivery is
/// handed back to the queue instead.
pub const MAX_PACING_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// What to do with one send.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// Send after waiting this long (zero: now).
    Go(Duration),
    /// Give the delivery back; it is due again after this long.
    Defer(Duration),
}

#[derive(Default)]
pub struct Limiter {
    next_free: Mutex<HashMap<String, Instant>>,
}

impl Limiter {
    pub fn acquire(&self, key: &str, per_second: f64, max_wait: Duration, now: Instant) -> Pace {
        if per_second <= 0.0 || !per_second.is_finite() {
            return Pace::Go(Duration::ZERO);
        }
        let interval = Duration::from_secs_f64(1.0 / per_second);
        let mut slots = self.next_free.lock().expect("limiter lock");
        let next = slots.entry(key.to_string()).or_insert(now);
        let slot = (*next).max(now);
        let wait = slot - now;
        if wait > max_wait {
            return Pace::Defer(wait);
        }
        *next = slot + interval;
        Pace::Go(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paces_at_the_rate_and_defers_beyond_max_wait() {
        let l = Limiter::default();
        let t0 = Instant::now();
        let max = Duration::from_secs(1);
        let mut waits = Vec::new();
        for _ in 0..25 {
            match l.acquire("e", 20.0, max, t0) {
                Pace::Go(w) => waits.push(w),
                Pace::Defer(_) => break,
            }
        }
        // Slots 0, 50 ms, ... 1000 ms: 21 sends fit within a 1 s wait.
        assert_eq!(waits.len(), 21);
        assert_eq!(waits[1], Duration::from_millis(50));
        assert!(matches!(l.acquire("e", 20.0, max, t0), Pace::Defer(d) if d > max));
        // Other endpoints are independent; no limit means no wait.
        assert_eq!(l.acquire("other", 20.0, max, t0), Pace::Go(Duration::ZERO));
        assert_eq!(l.acquire("e", 0.0, max, t0), Pace::Go(Duration::ZERO));
        // Time passing frees slots again.
        assert!(matches!(
            l.acquire("e", 20.0, max, t0 + Duration::from_secs(2)),
            Pace::Go(_)
        ));
    }
}
